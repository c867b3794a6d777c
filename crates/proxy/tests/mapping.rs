//! Mapping rules end to end: the real app with a mapping file, real datagrams, exact series on /metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{request, wait_for_lines};
use statsd_proxy::app::{self, Config, Running};
use statsd_store::ManualClock;

fn community_mapping() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../mappings/testdata/ipng-mastodon-mapping.yaml")
}

fn start_with(mapping: PathBuf, cache_size: usize) -> (tokio::runtime::Runtime, Running) {
    common::start_app(Config {
        mapping: app::MappingSource::File(mapping),
        cache_size,
        ..Config::loopback()
    })
}

fn send(running: &Running, lines: &[&str]) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for line in lines {
        // One metric per datagram, as Mastodon sends them.
        socket
            .send_to(line.as_bytes(), running.udp_addr.unwrap())
            .unwrap();
    }
}

/// Mastodon lines through the community mapping: exact series, labels and values. Run with the cache
/// on and off: results must be identical.
#[test]
fn community_mastodon_mapping_end_to_end() {
    for cache_size in [1000, 0] {
        let (rt, running) = start_with(community_mapping(), cache_size);
        send(
            &running,
            &[
                "Mastodon.production.web.Api.V1.Timelines.HomeController.show.json.total_duration:80|ms",
                "Mastodon.production.web.Api.V1.Timelines.HomeController.show.json.total_duration:20|ms",
                "Mastodon.production.web.Api.V1.Timelines.HomeController.show.json.db_time:4.0e-05|ms",
                "Mastodon.production.web.HomeController.index.html.status.200:1|c",
                "Mastodon.production.web.HomeController.index.html.status.200:1|c",
                "Mastodon.production.db.tables.(SELECT.queries.select.duration:1|ms",
                "Mastodon.production.cache.exist?.duration:0.5|ms",
                "Mastodon.production.sidekiq.ActivityPub..DeliveryWorker.processing_time:120|ms",
                "Mastodon.production.sidekiq.LinkCrawlWorker.success:1|c",
                "Mastodon.production.sidekiq.queues.default.enqueued:7|g",
                "Mastodon.production.sidekiq.queues.default.latency:0.25|g",
                "Mastodon.production.sidekiq.dead_size:3|g",
                "Other.app.requests:5|c",
            ],
        );
        let m = wait_for_lines(running.http_addr, 13.0);
        let want = [
            (
                r#"mastodon_controller_duration_sum{action="show",controller="Api.V1.Timelines.HomeController",format="json",mastodon="web"}"#,
                0.1,
            ),
            (
                r#"mastodon_controller_duration_count{action="show",controller="Api.V1.Timelines.HomeController",format="json",mastodon="web"}"#,
                2.0,
            ),
            (
                r#"mastodon_controller_duration{action="show",controller="Api.V1.Timelines.HomeController",format="json",mastodon="web",quantile="0.99"}"#,
                0.08,
            ),
            (
                r#"mastodon_controller_db_time_sum{action="show",controller="Api.V1.Timelines.HomeController",format="json",mastodon="web"}"#,
                4e-8,
            ),
            (
                r#"mastodon_controller_status{action="index",controller="HomeController",format="html",mastodon="web",status="200"}"#,
                2.0,
            ),
            (
                r#"mastodon_db_operation_sum{mastodon="db",operation="select",table="(SELECT"}"#,
                0.001,
            ),
            (
                r#"mastodon_cache_duration_count{mastodon="cache",operation="exist?"}"#,
                1.0,
            ),
            (
                r#"mastodon_sidekiq_worker_processing_time_sum{mastodon="sidekiq",worker="ActivityPub..DeliveryWorker"}"#,
                0.12,
            ),
            (
                r#"mastodon_sidekiq_worker_success_total{mastodon="sidekiq",worker="LinkCrawlWorker"}"#,
                1.0,
            ),
            (
                r#"mastodon_sidekiq_queue_enqueued{mastodon="sidekiq",queue="default"}"#,
                7.0,
            ),
            (
                r#"mastodon_sidekiq_queue_latency{mastodon="sidekiq",queue="default"}"#,
                0.25,
            ),
            (r#"mastodon_sidekiq_dead_size{mastodon="sidekiq"}"#, 3.0),
            ("Other_app_requests", 5.0),
            ("statsd_exporter_loaded_mappings", 12.0),
            (
                r#"statsd_exporter_events_actions_total{action="map"}"#,
                12.0,
            ),
            ("statsd_exporter_events_unmapped_total", 1.0),
        ];
        for (series, value) in want {
            let got = m.get(series).copied();
            assert!(
                got.is_some_and(|g| (g - value).abs() <= 1e-12 * value.abs().max(1.0)),
                "cache {cache_size}: {series} = {got:?}, want {value}"
            );
        }
        common::stop_app(rt, running);
    }
}

/// Drop, honor_labels, scale, histograms, help, match_metric_type and an empty expanded name.
#[test]
fn rule_behaviours_end_to_end() {
    let dir = std::env::temp_dir().join(format!("statsd-proxy-mapping-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules.yaml");
    std::fs::write(
        &file,
        r#"
mappings:
  - match: "noise.*"
    action: drop
  - match: "api.*.requests"
    name: "api_requests"
    help: "Requests by endpoint."
    labels: { endpoint: "$1", env: "from-rule" }
  - match: "web.*.requests"
    name: "web_requests"
    honor_labels: true
    labels: { endpoint: "$1", env: "from-rule" }
  - match: "bytes.sent"
    name: "sent_kilobytes"
    scale: 0.001
  - match: "job.duration"
    match_metric_type: observer
    name: "job_seconds"
    observer_type: histogram
    histogram_options: { buckets: [0.1, 1] }
  - match: "job.duration"
    match_metric_type: counter
    name: "job_duration_count_metric"
  - match: "empty.*"
    match_type: regex
    name: "$9"
  - match: "render.time"
    name: "render_seconds"
    summary_options:
      quantiles: [{ quantile: 0.75, error: 0.01 }]
"#,
    )
    .unwrap();
    let (rt, running) = start_with(file, 1000);
    send(
        &running,
        &[
            "noise.a:1|c",
            "api.users.requests:1|c|#env:prod",
            "web.home.requests:1|c|#env:prod",
            "bytes.sent:1500|g",
            "job.duration:50|ms",
            "job.duration:500|ms",
            "job.duration:5000|ms",
            "job.duration:1|c",
            "empty.x:1|c",
            "render.time:100|ms",
            "render.time:300|ms",
        ],
    );
    let m = wait_for_lines(running.http_addr, 11.0);
    let want = [
        (r#"api_requests{endpoint="users",env="from-rule"}"#, 1.0),
        (r#"web_requests{endpoint="home",env="prod"}"#, 1.0),
        ("sent_kilobytes", 1.5),
        (r#"job_seconds_bucket{le="0.1"}"#, 1.0),
        (r#"job_seconds_bucket{le="1"}"#, 2.0),
        (r#"job_seconds_bucket{le="+Inf"}"#, 3.0),
        ("job_seconds_sum", 5.55),
        ("job_seconds_count", 3.0),
        ("job_duration_count_metric", 1.0),
        (
            r#"statsd_exporter_events_actions_total{action="drop"}"#,
            1.0,
        ),
        (r#"statsd_exporter_events_actions_total{action="map"}"#, 9.0),
        (
            r#"statsd_exporter_events_error_total{reason="empty_metric_name"}"#,
            1.0,
        ),
    ];
    for (series, value) in want {
        assert_eq!(m.get(series), Some(&value), "{series}");
    }
    assert!(
        !m.keys().any(|k| k.starts_with("noise")),
        "dropped metrics are not exposed"
    );
    let body = request(running.http_addr, "GET", "/metrics", &[]).text();
    assert!(body.contains("# HELP api_requests Requests by endpoint.\n"));
    assert!(body.contains("# TYPE job_seconds histogram\n"));
    common::stop_app(rt, running);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bad_mapping_file_never_starts_the_proxy() {
    let dir = std::env::temp_dir().join(format!("statsd-proxy-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(&file, "mappings:\n  - match: a.b\n    name: ok\n  - match: \"x(\"\n    match_type: regex\n    name: y\n").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt
        .block_on(app::start(Config {
            mapping: app::MappingSource::File(file.clone()),
            ..Config::loopback()
        }))
        .expect_err("a bad mapping file must not start");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "{}:4:5: mappings[1]: invalid regex",
            file.display()
        )),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A rule's `ttl` reaches the store: an idle series disappears from /metrics once the store's clock
/// (a manual one here: no waiting for real minutes) is past its TTL and the sweeper has run, a series
/// without TTL stays, and the expired name can come back (through the worker's series cache, whose
/// reference to the expired series is then stale and replaced).
#[test]
fn ttl_from_the_mapping_expires_idle_series() {
    let dir = std::env::temp_dir().join(format!("statsd-proxy-ttl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ttl.yaml");
    std::fs::write(&file, "mappings:\n  - match: \"short.*\"\n    name: \"short_lived\"\n    ttl: 10m\n    labels: { id: \"$1\" }\n").unwrap();
    let clock = Arc::new(ManualClock::default());
    let (rt, running) = common::start_app(Config {
        mapping: app::MappingSource::File(file),
        clock: Arc::clone(&clock) as Arc<dyn statsd_store::Clock>,
        ..Config::loopback()
    });
    send(&running, &["short.a:1|c", "long.lived:1|c"]);
    let m = wait_for_lines(running.http_addr, 2.0);
    assert_eq!(m.get(r#"short_lived{id="a"}"#), Some(&1.0));
    clock.advance(Duration::from_secs(9 * 60));
    send(&running, &["long.lived:1|c"]);
    let m = wait_for_lines(running.http_addr, 3.0);
    assert_eq!(
        m.get(r#"short_lived{id="a"}"#),
        Some(&1.0),
        "not idle for 10m yet"
    );
    clock.advance(Duration::from_secs(2 * 60));
    let gone = common::scrape_until(running.http_addr, "the idle series to expire", |m| {
        !m.contains_key(r#"short_lived{id="a"}"#)
    });
    assert_eq!(
        gone.get("long_lived"),
        Some(&2.0),
        "series without TTL stay"
    );
    // The page is not one snapshot: `statsd_proxy_series` is read before the families are rendered,
    // so the sweep can land between the two. The count follows by the next scrape.
    common::scrape_until(running.http_addr, "the series count to follow", |m| {
        m.get("statsd_proxy_series") == Some(&1.0)
    });
    send(&running, &["short.a:5|c"]);
    let back = wait_for_lines(running.http_addr, 4.0);
    assert_eq!(
        back.get(r#"short_lived{id="a"}"#),
        Some(&5.0),
        "a new series starts from zero"
    );
    common::stop_app(rt, running);
    std::fs::remove_dir_all(&dir).ok();
}

/// A reload that edits a rule's `help:` serves the new text for the existing family, and keeps its series.
#[test]
fn a_reload_applies_a_changed_help_text() {
    let dir = std::env::temp_dir().join(format!("statsd-proxy-help-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("help.yaml");
    let rule = |help: &str| {
        format!("mappings:\n  - match: \"app.*\"\n    name: app_$1\n    help: \"{help}\"\n")
    };
    std::fs::write(&file, rule("Before.")).unwrap();
    let (rt, running) = start_with(file.clone(), 1000);
    send(&running, &["app.hits:1|c"]);
    wait_for_lines(running.http_addr, 1.0);
    std::fs::write(&file, rule("After.")).unwrap();
    rt.block_on(running.state.reload()).expect("reloads");
    send(&running, &["app.hits:1|c"]);
    let m = wait_for_lines(running.http_addr, 2.0);
    assert_eq!(m.get("app_hits"), Some(&2.0), "{m:#?}");
    let text = request(running.http_addr, "GET", "/metrics", &[]).text();
    assert!(text.contains("# HELP app_hits After.\n"), "{text}");
    assert!(
        !text.contains("conflicting_help\"} 1"),
        "no help conflict counted: {text}"
    );
    common::stop_app(rt, running);
    std::fs::remove_dir_all(&dir).ok();
}
