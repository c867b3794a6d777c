//! Build facts for `statsd_exporter_build_info`: git revision and branch, the compiler's version, and
//! the enabled cargo features. Each is `unknown` when it cannot be found (a source tarball, no git).

use std::process::Command;

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let git = |args: &[&str]| output("git", args).unwrap_or_else(|| "unknown".into());
    let revision = git(&["rev-parse", "HEAD"]);
    let branch = git(&["rev-parse", "--abbrev-ref", "HEAD"]);
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    // "rustc 1.95.0 (59807616e 2026-04-14)" → "rustc1.95.0", in the spirit of Go's "go1.25.1".
    let compiler = output(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(|n| format!("rustc{n}")))
        .unwrap_or_else(|| "unknown".into());
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(str::to_lowercase))
        .collect();
    features.sort();
    let features = if features.is_empty() {
        "unknown".to_string()
    } else {
        features.join(",")
    };
    println!("cargo:rustc-env=STATSD_PROXY_REVISION={revision}");
    println!("cargo:rustc-env=STATSD_PROXY_BRANCH={branch}");
    println!("cargo:rustc-env=STATSD_PROXY_RUSTC={compiler}");
    println!("cargo:rustc-env=STATSD_PROXY_FEATURES={features}");
    // Rebuild the facts when the checked-out commit changes, not on every build.
    if let Some(git_dir) = output("git", &["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        println!("cargo:rerun-if-changed={git_dir}/refs/heads");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
