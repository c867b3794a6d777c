//! The real `statsd-proxy` binary, started as an admin would, on ephemeral loopback ports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use common::{WAIT_LIMIT, rss_kib, spawn, wait_for_lines};

/// The acceptance scenario: `foo:2|c\nbar:250|ms|#env:prod` in one datagram.
#[test]
fn binary_serves_the_acceptance_datagram() {
    let proxy = spawn(&[]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(b"foo:2|c\nbar:250|ms|#env:prod", proxy.udp)
        .unwrap();
    let m = wait_for_lines(proxy.http, 2.0);
    assert_eq!(m.get("foo"), Some(&2.0), "{m:#?}");
    assert_eq!(m.get("bar_sum{env=\"prod\"}"), Some(&0.25), "{m:#?}");
    assert_eq!(m.get("bar_count{env=\"prod\"}"), Some(&1.0), "{m:#?}");
}

#[test]
fn binary_exits_cleanly_on_sigterm() {
    let mut proxy = spawn(&[]);
    common::sigterm(proxy.child.id());
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    loop {
        if let Some(status) = proxy.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn binary_refuses_an_unusable_address() {
    let out = Command::new(env!("CARGO_BIN_EXE_statsd-proxy"))
        .args([
            "--statsd.listen-udp=256.0.0.1:1",
            "--web.listen-address=127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen on UDP address"));
}

fn check_config(file: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_statsd-proxy"))
        .arg("--check-config")
        .arg(format!("--statsd.mapping-config={}", file.display()))
        .args(extra)
        .output()
        .expect("run statsd-proxy --check-config")
}

/// `--check-config` exits 1 naming file:line:column for each kind of mapping error, and 0 for a good
/// file, without opening any port (a busy web port does not matter).
#[test]
fn check_config_reports_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("statsd-proxy-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "syntax",
            "mappings:\n  - match: \"open\n",
            ":2:12: invalid YAML",
        ),
        (
            "unknown_key_is_an_error_only_when_strict",
            "mappings:\n  - match: a\n    name: b\n    lables: {}\n",
            ":4:5: ",
        ),
        (
            "missing_name",
            "mappings:\n  - match: a\n",
            ":2:5: mappings[0]: ",
        ),
        (
            "bad_glob",
            "mappings:\n  - match: a.b*\n    name: x\n",
            ":2:5: mappings[0]: invalid glob",
        ),
        (
            "bad_regex",
            "mappings:\n  - match: \"(\"\n    match_type: regex\n    name: x\n",
            ":2:5: mappings[0]: invalid regex",
        ),
        (
            "bad_name",
            "mappings:\n  - match: a\n    name: a.b\n",
            ":3:5: mappings[0]: invalid metric name",
        ),
        (
            "bad_label",
            "mappings:\n  - match: a\n    name: a\n    labels:\n      9x: y\n",
            ":5:7: mappings[0]: invalid label name",
        ),
        (
            "bad_value",
            "mappings:\n  - match: a\n    name: a\n    action: keep\n",
            ":4:5: mappings[0]: unknown action",
        ),
        (
            "conflict",
            "mappings:\n  - match: a\n    name: a\n    observer_type: histogram\n    summary_options: {}\n",
            ":5:5: mappings[0]: `summary_options` on a rule whose observer_type is histogram",
        ),
        ("bad_duration", "defaults:\n  ttl: forever\n", ":2:"),
    ];
    for (name, yaml, expected) in cases {
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, yaml).unwrap();
        // Strict, so that the unknown key fails too; real errors fail either way.
        let out = check_config(&file, &["--statsd.mapping-strict"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        let prefix = format!("error: {}{expected}", file.display());
        let error = stderr.lines().find(|l| l.starts_with("error: "));
        assert!(
            error.is_some_and(|e| e.starts_with(&prefix)),
            "{name}: {stderr:?} should start with {prefix:?}"
        );
    }

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let community = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../mappings/testdata/ipng-mastodon-mapping.yaml");
    let out = check_config(
        &community,
        &[
            &format!("--web.listen-address={busy_addr}"),
            &format!("--statsd.listen-udp={busy_addr}"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK, 12 mapping rules"));
    std::fs::remove_dir_all(&dir).ok();
}

/// A flood of 1M distinct names with `--statsd.max-series=100000`: 100000 series are kept, the other
/// 900000 samples are counted, our own output does not grow with them, and memory stays bounded.
#[test]
fn a_flood_of_new_names_is_capped() {
    use std::io::Write as _;
    const NAMES: usize = 1_000_000;
    let proxy = spawn(&["--statsd.max-series=100000"]);
    let before = rss_kib(proxy.child.id());
    let mut stream = std::net::TcpStream::connect(proxy.tcp).expect("connect over TCP");
    let mut batch = String::with_capacity(1 << 20);
    for i in 0..NAMES {
        batch.push_str(&format!("flood.name_{i}:1|c\n"));
        if batch.len() > (1 << 20) - 64 {
            stream.write_all(batch.as_bytes()).unwrap();
            batch.clear();
        }
    }
    stream.write_all(batch.as_bytes()).unwrap();
    drop(stream);
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let m = loop {
        let m = common::scrape(proxy.http);
        if m.get("statsd_exporter_lines_total").copied().unwrap_or(0.0) >= NAMES as f64 {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the flood was not processed in time"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let after = rss_kib(proxy.child.id());
    assert_eq!(m.get("statsd_proxy_series"), Some(&100_000.0));
    assert_eq!(
        m.get("statsd_exporter_metrics_total{type=\"counter\"}"),
        Some(&100_000.0)
    );
    assert_eq!(
        m.get("statsd_proxy_series_limited_total{metric_name=\"\"}"),
        Some(&900_000.0)
    );
    assert_eq!(
        m.get("statsd_exporter_events_total{type=\"counter\"}"),
        Some(&100_000.0)
    );
    let limited_series = m
        .keys()
        .filter(|k| k.starts_with("statsd_proxy_series_limited_total"))
        .count();
    assert_eq!(limited_series, 1, "refusals of new names share one series");
    eprintln!(
        "RSS before {before} KiB, after {after} KiB ({} bytes per kept series)",
        (after - before) * 1024 / 100_000
    );
    assert!(after < 256 * 1024, "RSS {after} KiB after the flood");
}

/// `mapping explain` (arguments and standard input) and `mapping check`, as an admin runs them.
#[test]
fn mapping_explain_and_check_subcommands() {
    use std::io::Write as _;
    let bin = env!("CARGO_BIN_EXE_statsd-proxy");
    let out = Command::new(bin)
        .args([
            "mapping",
            "explain",
            "Mastodon.production.cache.exist?.duration:0.5|ms",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(r#"series: mastodon_cache_duration{mastodon="cache",namespace="Mastodon.production",operation="exist?"}"#),
        "{text}"
    );
    let mut child = Command::new(bin)
        .args(["mapping", "explain", "--statsd.default-mapping=none"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a.b:1|c\n\nc-d:2|g\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("series: a_b\n") && text.contains("series: c_d\n"),
        "{text}"
    );
    let check = Command::new(bin)
        .args(["mapping", "check"])
        .output()
        .unwrap();
    assert!(check.status.success());
    assert!(String::from_utf8_lossy(&check.stdout).contains("OK, 19 mapping rules"));
    let bad = Command::new(bin)
        .args([
            "mapping",
            "check",
            "--statsd.mapping-config=/nonexistent/mapping.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
}

/// `mapping lint`, as an admin or a CI job runs it: findings with `file:line:column`, exit 1 on
/// errors; the embedded mapping passes; `--strict` fails on warnings.
#[test]
fn mapping_lint_subcommand() {
    let bin = env!("CARGO_BIN_EXE_statsd-proxy");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fixture = root.join("crates/mapping/tests/data/lint.yaml");
    let out = Command::new(bin)
        .args(["mapping", "lint"])
        .arg(&fixture)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let file = fixture.display().to_string();
    for needle in [
        format!("{file}:5:5: error: mappings[1]: never used"),
        format!(
            "{file}:25:5: error: mappings[6]: `statsd_exporter_lines_total` is one of statsd-proxy's own metrics"
        ),
        format!("{file}:10:5: warning: mappings[2]: `db_$1_x`"),
        format!("{file}: 9 rules, 3 errors, 2 warnings, 2 hints"),
    ] {
        assert!(text.contains(&needle), "no {needle:?} in:\n{text}");
    }
    // The embedded mapping (no file, no --statsd.mapping-config): hints only.
    let out = Command::new(bin)
        .args(["mapping", "lint", "--strict"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Warnings fail only under --strict.
    let dir = std::env::temp_dir().join(format!("statsd-proxy-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let warned = dir.join("warned.yaml");
    std::fs::write(
        &warned,
        "mappings:\n  - match: \"a.*\"\n    name: \"x_$1_y\"\n",
    )
    .unwrap();
    let lint = |strict: bool| {
        let mut command = Command::new(bin);
        command.args(["mapping", "lint"]).arg(&warned);
        if strict {
            command.arg("--strict");
        }
        command.output().unwrap().status.code()
    };
    assert_eq!(lint(false), Some(0));
    assert_eq!(lint(true), Some(1));
    std::fs::remove_dir_all(&dir).ok();
}
