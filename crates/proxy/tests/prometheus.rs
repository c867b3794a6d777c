//! Real clients and a real Prometheus: statsd-ruby (the library Mastodon uses) sends Mastodon-shaped
//! metrics to the real binary with its embedded mapping; a real Prometheus (Debian package `prometheus`,
//! installed by scripts/test) scrapes it every second; every PromQL expression of the shipped Grafana
//! dashboard and alert rules must then return data. Loopback only; everything is stopped at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::prom::{self, Killed, percent_encode, query_value, require};
use common::{request, spawn};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dashboard_queries() -> Vec<String> {
    panel_queries("examples/grafana/mastodon.json")
}

/// The PromQL of every panel of a dashboard, with Grafana's variables replaced as an "All" selection
/// would.
fn panel_queries(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            out.push(
                expr.replace("$__rate_interval", "1m")
                    .replace("$namespace", ".*"),
            );
        }
    }
    out
}

/// The measured quantity of every alert rule: its expression without the final threshold comparison
/// (a rule that is not firing returns nothing; the quantity must still exist).
fn alert_quantities() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("examples/alerts.yml")).unwrap();
    let rules: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut out = Vec::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let expr = rule["expr"].as_str().unwrap();
            let cut = [" > ", " < ", " == "]
                .iter()
                .filter_map(|op| expr.rfind(op))
                .max()
                .expect("a comparison");
            out.push(expr[..cut].to_string());
        }
    }
    out
}

/// A Prometheus scraping `target` every second, its data in `dir/name` (with native histograms on:
/// it then asks for protobuf first), on a free port; stopped when the handle is dropped.
fn start_prometheus(
    dir: &Path,
    name: &str,
    target: SocketAddr,
    native: bool,
) -> (Killed, SocketAddr) {
    let job = format!("static_configs:\n      - targets: [\"{target}\"]\n");
    let args: &[&str] = if native {
        &["--enable-feature=native-histograms"]
    } else {
        &[]
    };
    prom::start(dir, name, &job, args)
}

/// statsd-ruby sending Mastodon's metrics to `udp` for up to two minutes (stopped when dropped).
fn mastodon_client(udp: SocketAddr) -> Killed {
    Killed(
        Command::new("ruby")
            .arg(repo().join("crates/proxy/tests/data/mastodon_client.rb"))
            .args(["127.0.0.1", &udp.port().to_string(), "120"])
            .spawn()
            .expect("start the statsd-ruby client"),
    )
}

/// Queries `prometheus` (once it is ready) until every one of `queries` returns data or 90 s pass;
/// returns those still without data.
fn wait_for_data(prometheus: SocketAddr, mut pending: BTreeSet<String>) -> BTreeSet<String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !pending.is_empty() && Instant::now() < deadline {
        if std::net::TcpStream::connect(prometheus).is_ok()
            && request(prometheus, "GET", "/-/ready", &[]).status == 200
        {
            pending.retain(|q| !has_data(prometheus, q));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    pending
}

fn has_data(prometheus: SocketAddr, query: &str) -> bool {
    let response = request(
        prometheus,
        "GET",
        &format!("/api/v1/query?query={}", percent_encode(query)),
        &[],
    );
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&response.body) else {
        return false;
    };
    assert_eq!(body["status"], "success", "query {query} failed: {body}");
    body["data"]["result"]
        .as_array()
        .is_some_and(|r| !r.is_empty())
}

#[test]
fn every_dashboard_and_alert_query_returns_data() {
    for tool in ["prometheus", "promtool", "ruby"] {
        require(tool);
    }
    // The shipped rules and scrape configuration are valid.
    let rules = Command::new("promtool")
        .args(["check", "rules"])
        .arg(repo().join("examples/alerts.yml"))
        .output()
        .unwrap();
    assert!(
        rules.status.success(),
        "{}",
        String::from_utf8_lossy(&rules.stdout)
    );
    let config = Command::new("promtool")
        .args(["check", "config"])
        .arg(repo().join("examples/prometheus.yml"))
        .output()
        .unwrap();
    assert!(
        config.status.success(),
        "{}{}",
        String::from_utf8_lossy(&config.stdout),
        String::from_utf8_lossy(&config.stderr)
    );

    let proxy = spawn(&[]);
    let dir = std::env::temp_dir().join(format!("statsd-proxy-prometheus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_prometheus, prometheus_addr) = start_prometheus(&dir, "data", proxy.http, false);
    let _client = mastodon_client(proxy.udp);

    let queries: BTreeSet<String> = dashboard_queries()
        .into_iter()
        .chain(alert_quantities())
        .collect();
    assert!(queries.len() >= 30, "{} queries", queries.len());
    let pending = wait_for_data(prometheus_addr, queries);
    assert!(
        pending.is_empty(),
        "queries without data after 90 s:\n{}",
        pending.into_iter().collect::<Vec<_>>().join("\n")
    );
    // Prometheus' default `Accept` (native histograms off) got text: no protobuf scrape was served, and
    // the counter names the dashboards use (no `_total` added) answered above.
    let m = common::scrape(proxy.http);
    assert_eq!(
        m.get(r#"statsd_proxy_scrapes_total{format="protobuf"}"#),
        Some(&0.0)
    );
    assert!(m[r#"statsd_proxy_scrapes_total{format="text"}"#] >= 2.0);
    std::fs::remove_dir_all(&dir).ok();
}

/// The first value of an instant query, if any.
/// Prometheus with native histograms enabled asks for the protobuf format first: it scrapes the proxy
/// in that format (counted by `statsd_proxy_scrapes_total{format="protobuf"}`), and every kind of
/// series — counter, gauge, summary, native histogram, set, our own metrics — reads back exactly
/// through Prometheus' own protobuf parser. A second Prometheus, without native histograms, scrapes
/// text and gets the classic buckets of the same histogram.
#[test]
fn prometheus_scrapes_the_protobuf_format() {
    require("prometheus");
    let dir = std::env::temp_dir().join(format!(
        "statsd-proxy-prometheus-proto-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mapping = dir.join("mapping.yaml");
    std::fs::write(
        &mapping,
        "mappings:\n  - match: \"hist.*\"\n    name: \"hist_$1\"\n    observer_type: histogram\n    histogram_options:\n      buckets: [0.1, 1, 10]\n",
    )
    .unwrap();
    let proxy = spawn(&[&format!("--statsd.mapping-config={}", mapping.display())]);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let lines = [
        "proto.count:5|c|#env:prod",
        "proto.gauge:-2.5|g",
        "proto.timer:100|ms",
        "proto.timer:200|ms",
        "proto.timer:300|ms",
        "hist.size:0.5|h",
        "hist.size:5|h",
        "hist.size:50|h",
        "proto.set:a|s",
        "proto.set:b|s",
    ];
    for line in lines {
        socket.send_to(line.as_bytes(), proxy.udp).unwrap();
    }
    common::wait_for_lines(proxy.http, lines.len() as f64);

    // One Prometheus with native histograms (it asks for protobuf), one without (text).
    let (_native, prometheus_addr) = start_prometheus(&dir, "native", proxy.http, true);
    let (_classic, classic_addr) = start_prometheus(&dir, "classic", proxy.http, false);
    let deadline = Instant::now() + Duration::from_secs(60);
    for addr in [prometheus_addr, classic_addr] {
        let mut seen = None;
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(addr).is_ok() {
                seen = query_value(addr, "proto_count");
                if seen.is_some() {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        assert_eq!(
            seen,
            Some(5.0),
            "Prometheus at {addr} never stored proto_count"
        );
    }
    let close = |q: &str, want: f64| {
        let got = query_value(prometheus_addr, q);
        assert!(
            got.is_some_and(|g| (g - want).abs() < 1e-9),
            "{q}: {got:?}, want {want}"
        );
    };
    close(r#"proto_count{env="prod"}"#, 5.0);
    close("proto_gauge", -2.5);
    close("proto_timer_count", 3.0);
    close("proto_timer_sum", 0.6);
    close(r#"proto_timer{quantile="0.5"}"#, 0.2);
    close(r#"proto_timer{quantile="0.99"}"#, 0.3);
    close("proto_set", 2.0);
    close(r#"up{job="statsd-proxy"}"#, 1.0);
    // The native histogram: exact count and sum, the median within the schema's relative error
    // (schema 3: a bucket spans a factor of 2^(1/8)).
    close("histogram_count(hist_size)", 3.0);
    close("histogram_sum(hist_size)", 55.5);
    let median = query_value(prometheus_addr, "histogram_quantile(0.5, hist_size)");
    assert!(
        median.is_some_and(|m| (m - 5.0).abs() / 5.0 <= 2f64.powf(0.125) - 1.0),
        "median {median:?}, want 5 within a bucket"
    );
    assert!(
        query_value(prometheus_addr, "statsd_exporter_lines_total").is_some_and(|v| v >= 10.0),
        "our own metrics come through too"
    );
    // The classic buckets, from the text format, answer `histogram_quantile` over `le` as before.
    let classic = |q: &str| query_value(classic_addr, q);
    assert_eq!(classic(r#"hist_size_bucket{le="1"}"#), Some(1.0));
    assert_eq!(classic(r#"hist_size_bucket{le="+Inf"}"#), Some(3.0));
    assert_eq!(classic("hist_size_count"), Some(3.0));
    let classic_median = classic("histogram_quantile(0.5, hist_size_bucket)");
    assert!(
        classic_median.is_some_and(|m| (1.0..=10.0).contains(&m)),
        "classic median {classic_median:?}"
    );
    // The proxy served protobuf (to one) and text (to the other).
    let m = common::scrape(proxy.http);
    assert!(
        m.get(r#"statsd_proxy_scrapes_total{format="protobuf"}"#)
            .is_some_and(|&n| n >= 1.0),
        "{m:#?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The native-histogram kit: statsd-ruby sends Mastodon's metrics to the proxy running
/// `examples/mastodon-histograms.yaml`; a Prometheus with native histograms scrapes it (protobuf); every
/// panel of `examples/grafana/mastodon-native-histograms.json` then returns data.
#[test]
fn every_native_histogram_panel_returns_data() {
    for tool in ["prometheus", "ruby"] {
        require(tool);
    }
    let mapping = repo().join("examples/mastodon-histograms.yaml");
    let proxy = spawn(&[&format!("--statsd.mapping-config={}", mapping.display())]);
    let dir = std::env::temp_dir().join(format!(
        "statsd-proxy-prometheus-native-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (_prometheus, prometheus_addr) = start_prometheus(&dir, "data", proxy.http, true);
    let _client = mastodon_client(proxy.udp);
    let queries: BTreeSet<String> =
        panel_queries("examples/grafana/mastodon-native-histograms.json")
            .into_iter()
            .collect();
    assert!(queries.len() >= 6, "{queries:?}");
    let pending = wait_for_data(prometheus_addr, queries);
    assert!(
        pending.is_empty(),
        "native-histogram panels without data after 90 s:\n{}",
        pending.into_iter().collect::<Vec<_>>().join("\n")
    );
    std::fs::remove_dir_all(&dir).ok();
}
