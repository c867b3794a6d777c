//! `/metrics` never breaks: a mixed workload holding every case the store refuses, then the scrape must
//! answer 200 with a body that `promtool check metrics` (Debian package `prometheus`, installed by
//! scripts/test) accepts, and every refusal must be counted under its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::UdpSocket;
use std::process::{Command, Stdio};

use common::{request, wait_for_lines};
use statsd_proxy::app::{self, Config};
use statsd_store::Limits;

const MAPPING: &str = r#"
mappings:
  - match: "doc.one"
    name: "documented"
    help: "First help."
  - match: "doc.two"
    name: "documented"
    help: "Second help."
  - match: "hist.*"
    name: "hist_$1"
    observer_type: histogram
    histogram_options: { buckets: [0.1, 1] }
  - match: "empty.*"
    match_type: regex
    name: "$7"
"#;

/// The only findings allowed: naming-style lints on StatsD series (statsd_exporter's names, kept on
/// purpose), and on `statsd_exporter_metrics_total`, a gauge whose name statsd_exporter chose.
fn allowed(finding: &str) -> bool {
    let style = finding.ends_with("counter metrics should have \"_total\" suffix")
        || finding.ends_with("metric names should be written in 'snake_case' not 'camelCase'")
        || finding
            .ends_with("non-histogram and non-summary metrics should not have \"_sum\" suffix");
    (style && !finding.starts_with("statsd_exporter_") && !finding.starts_with("statsd_proxy_"))
        || finding
            == "statsd_exporter_metrics_total non-counter metrics should not have \"_total\" suffix"
}

fn promtool(body: &str) -> (Option<i32>, Vec<String>) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool is missing: install the Debian package `prometheus`, or run ./scripts/test",
        );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let findings = report
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    (out.status.code(), findings)
}

#[test]
fn every_refused_case_leaves_a_valid_scrape() {
    let dir =
        std::env::temp_dir().join(format!("statsd-proxy-never-breaks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mapping = dir.join("mapping.yaml");
    std::fs::write(&mapping, MAPPING).unwrap();
    let config = Config {
        mapping: app::MappingSource::File(mapping),
        store: statsd_store::Config {
            limits: Limits {
                max_series: 40,
                max_series_per_metric: 3,
            },
            ..statsd_store::Config::default()
        },
        ..Config::loopback()
    };
    let (rt, running) = common::start_app(config);
    let lines: &[&str] = &[
        // Accepted: one of each kind, escapes, specials.
        "requests:3|c|#route:/a\"b\\c,method:GET",
        "requests:1|c",
        "temperature:-4.5|g|#room:kitchen",
        "latency:12|ms|#route:/home",
        "hist.size:0.5|h",
        "visitors:alice|s",
        "visitors:bob|s",
        "Mastodon.production.web.HomeController.index.html.status.:1|c",
        "doc.one:1|c",
        // Accepted although it looks suspicious: a gauge writes no `_sum`, so nothing collides.
        "temperature_sum:1|c",
        // Refused: type conflict (first type wins).
        "requests:1|g",
        "latency:1|c",
        // Refused: names colliding with samples of another family, both ways.
        "latency_sum:1|c",
        "latency_count:1|g",
        "hist_size_bucket:1|c",
        "base_sum:1|c",
        "base:1|ms",
        // Refused: help differs from the family's.
        "doc.two:1|c",
        // Refused: our own metric names.
        "statsd_exporter_lines_total:1|c",
        "statsd_proxy_series:1|g",
        // Refused: reserved labels.
        "reserved:1|c|#__name__:x",
        "latency:5|ms|#quantile:x",
        "hist.size:1|h|#le:5",
        // Refused: empty name after mapping; negative counter.
        "empty.x:1|c",
        "requests:-1|c",
        // Refused: series limit (3 per metric).
        "many:1|c|#i:1",
        "many:1|c|#i:2",
        "many:1|c|#i:3",
        "many:1|c|#i:4",
        "many:1|c|#i:5",
    ];
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for line in lines {
        socket
            .send_to(line.as_bytes(), running.udp_addr.unwrap())
            .unwrap();
    }
    let m = wait_for_lines(running.http_addr, lines.len() as f64);

    let conflicts = |name: &str| -> f64 {
        m.iter()
            .filter(|(k, _)| {
                k.starts_with("statsd_exporter_events_conflict_total")
                    && k.contains(&format!("metric_name=\"{name}\""))
            })
            .map(|(_, v)| v)
            .sum()
    };
    for (name, n) in [
        ("requests", 1.0),
        ("latency", 1.0),
        ("latency_sum", 1.0),
        ("latency_count", 1.0),
        ("hist_size_bucket", 1.0),
        ("base", 1.0),
        ("documented", 1.0),
        ("statsd_exporter_lines_total", 1.0),
        ("statsd_proxy_series", 1.0),
    ] {
        assert_eq!(conflicts(name), n, "conflicts for {name}");
    }
    let errors = |reason: &str| {
        m.get(&format!(
            "statsd_exporter_events_error_total{{reason=\"{reason}\"}}"
        ))
        .copied()
    };
    assert_eq!(errors("reserved_label_name"), Some(3.0));
    assert_eq!(errors("empty_metric_name"), Some(1.0));
    assert_eq!(errors("illegal_negative_counter"), Some(1.0));
    assert_eq!(
        m.get("statsd_proxy_series_limited_total{metric_name=\"many\"}"),
        Some(&2.0)
    );
    assert_eq!(m.get("visitors"), Some(&2.0), "sets count distinct members");
    assert_eq!(m.get("temperature_sum"), Some(&1.0), "no false collision");
    assert_eq!(
        m.get("requests"),
        Some(&1.0),
        "the refused -1 did not reach the counter"
    );

    let response = request(running.http_addr, "GET", "/metrics", &[]);
    assert_eq!(response.status, 200);
    let body = response.text();
    let (status, findings) = promtool(&body);
    assert!(
        matches!(status, Some(0 | 3)) && findings.iter().all(|f| allowed(f)),
        "promtool rejected the exposition (status {status:?}):\n{}\n--- body ---\n{body}",
        findings.join("\n")
    );
    // The lint did run: it flagged our deliberately suffix-less StatsD counters.
    assert!(
        findings.iter().any(|l| l.starts_with("requests ")),
        "{findings:?}"
    );
    common::stop_app(rt, running);
    std::fs::remove_dir_all(&dir).ok();
}
