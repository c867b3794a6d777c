//! Registering self-metrics, and the facts of `statsd_exporter_build_info`.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

pub(super) fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("static metric name and help are valid");
    registry
        .register(Box::new(c.clone()))
        .expect("each self-metric is registered once");
    c
}

pub(super) fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("static metric name and help are valid");
    registry
        .register(Box::new(g.clone()))
        .expect("each self-metric is registered once");
    g
}

/// The label names of `statsd_exporter_build_info`, statsd_exporter 0.30's.
pub const BUILD_INFO_LABELS: [&str; 7] = [
    "version",
    "revision",
    "branch",
    "goversion",
    "goos",
    "goarch",
    "tags",
];

/// The values of `statsd_exporter_build_info`, in [`BUILD_INFO_LABELS`] order: the crate version, the
/// git commit and branch the binary was built from (`unknown` outside a git checkout), the Rust
/// compiler's version in `goversion`, the target OS and architecture, and the enabled cargo features
/// (`unknown` when none, as Go builds without tags say).
pub fn build_info_values() -> [&'static str; 7] {
    [
        env!("CARGO_PKG_VERSION"),
        env!("STATSD_PROXY_REVISION"),
        env!("STATSD_PROXY_BRANCH"),
        env!("STATSD_PROXY_RUSTC"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        env!("STATSD_PROXY_FEATURES"),
    ]
}

/// `--version`: prometheus/common's `version.Print` layout, which statsd_exporter prints (so scripts
/// that read `version (\S+)` from it work), with the values of `statsd_exporter_build_info`.
pub fn version_text() -> String {
    let [version, revision, branch, compiler, os, arch, tags] = build_info_values();
    format!(
        "statsd-proxy, version {version} (branch: {branch}, revision: {revision})\n  \
         build user:       unknown\n  \
         build date:       unknown\n  \
         go version:       {compiler}\n  \
         platform:         {os}/{arch}\n  \
         tags:             {tags}\n"
    )
}

pub(super) fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .expect("static metric name, help and labels are valid");
    registry
        .register(Box::new(c.clone()))
        .expect("each self-metric is registered once");
    c
}
