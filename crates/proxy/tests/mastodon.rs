//! The shipped Mastodon mapping (embedded default): Mastodon traffic for every key shape and quirk, in
//! the default and a non-default namespace, through the real app; exact series, labels and values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::UdpSocket;

use common::wait_for_lines;
use statsd_proxy::app::{Config, MappingSource};

#[test]
fn the_shipped_mapping_compiles_cleanly() {
    let mapper = statsd_proxy::mappings::embedded_mastodon_mapper();
    assert!(mapper.warnings().is_empty(), "{:?}", mapper.warnings());
    assert_eq!(mapper.rules().len(), 19);
}

#[test]
fn mastodon_traffic_through_the_embedded_mapping() {
    let config = Config {
        mapping: MappingSource::EmbeddedMastodon,
        ..Config::loopback()
    };
    let (rt, running) = common::start_app(config);
    let lines = [
        // Web, default namespace; a multi-segment controller; an empty status code; a 1|ms placeholder.
        "Mastodon.production.web.Api.V1.Timelines.HomeController.show.json.total_duration:80|ms",
        "Mastodon.production.web.Api.V1.Timelines.HomeController.show.json.db_time:4.0e-05|ms",
        "Mastodon.production.web.Api.V1.Timelines.HomeController.show.json.view_time:1|ms",
        "Mastodon.production.web.Api.V1.Timelines.HomeController.show.json.status.200:1|c",
        "Mastodon.production.web.HomeController.index.html.status.:1|c",
        "Mastodon.production.web.HomeController.index..total_duration:5|ms",
        // Database, cache, with their quirks.
        "Mastodon.production.db.tables.(SELECT.queries.select.duration:2|ms",
        "Mastodon.production.db.tables.statuses.queries.insert.duration:3|ms",
        "Mastodon.production.cache.exist?.duration:0.5|ms",
        "Mastodon.production.cache.read_multi.duration:1|ms",
        // Sidekiq: both worker-name forms give one series; one- and three-part workers; queues; gauges.
        "Mastodon.production.sidekiq.ActivityPub..DeliveryWorker.processing_time:100|ms",
        "Mastodon.production.sidekiq.ActivityPub.DeliveryWorker.processing_time:300|ms",
        "Mastodon.production.sidekiq.ActivityPub..DeliveryWorker.success:1|c",
        "Mastodon.production.sidekiq.ActivityPub.DeliveryWorker.success:1|c",
        "Mastodon.production.sidekiq.ActivityPub.DeliveryWorker.failure:1|c",
        "Mastodon.production.sidekiq.LinkCrawlWorker.processing_time:20|ms",
        "Mastodon.production.sidekiq.Admin..Foo..BarWorker.success:1|c",
        "Mastodon.production.sidekiq.queues.default.enqueued:7|g",
        "Mastodon.production.sidekiq.queues.push.latency:0.25|g",
        "Mastodon.production.sidekiq.dead_size:3|g",
        "Mastodon.production.sidekiq.processes_size:2|g",
        // Another namespace, multi-segment.
        "social.example.staging.web.StatusesController.show.html.total_duration:40|ms",
        "social.example.staging.sidekiq.ActivityPub..DeliveryWorker.success:1|c",
        // Not Mastodon: left alone.
        "myapp.web.requests:1|c",
        "other.sidekiq.thing:1|c",
    ];
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for l in lines {
        socket
            .send_to(l.as_bytes(), running.udp_addr.unwrap())
            .unwrap();
    }
    let m = wait_for_lines(running.http_addr, lines.len() as f64);
    let web = r#"action="show",controller="Api.V1.Timelines.HomeController",format="json",mastodon="web",namespace="Mastodon.production""#;
    let sidekiq = r#"mastodon="sidekiq",namespace="Mastodon.production""#;
    let want: Vec<(String, f64)> = vec![
        (format!("mastodon_controller_duration_sum{{{web}}}"), 0.08),
        (format!("mastodon_controller_duration{{{web},quantile=\"0.99\"}}"), 0.08),
        (format!("mastodon_controller_db_time_sum{{{web}}}"), 4e-8),
        (format!("mastodon_controller_view_time_sum{{{web}}}"), 0.001),
        (format!("mastodon_controller_status{{{web},status=\"200\"}}"), 1.0),
        (
            r#"mastodon_controller_status{action="index",controller="HomeController",format="html",mastodon="web",namespace="Mastodon.production",status=""}"#.into(),
            1.0,
        ),
        (
            r#"mastodon_controller_duration_count{action="index",controller="HomeController",format="",mastodon="web",namespace="Mastodon.production"}"#.into(),
            1.0,
        ),
        (r#"mastodon_db_operation_sum{mastodon="db",namespace="Mastodon.production",operation="select",table="(SELECT"}"#.into(), 0.002),
        (r#"mastodon_db_operation_count{mastodon="db",namespace="Mastodon.production",operation="insert",table="statuses"}"#.into(), 1.0),
        (r#"mastodon_cache_duration_sum{mastodon="cache",namespace="Mastodon.production",operation="exist?"}"#.into(), 0.0005),
        (r#"mastodon_cache_duration_count{mastodon="cache",namespace="Mastodon.production",operation="read_multi"}"#.into(), 1.0),
        (format!("mastodon_sidekiq_worker_processing_time_count{{{sidekiq},worker=\"ActivityPub.DeliveryWorker\"}}"), 2.0),
        (format!("mastodon_sidekiq_worker_processing_time_sum{{{sidekiq},worker=\"ActivityPub.DeliveryWorker\"}}"), 0.4),
        (format!("mastodon_sidekiq_worker_success_total{{{sidekiq},worker=\"ActivityPub.DeliveryWorker\"}}"), 2.0),
        (format!("mastodon_sidekiq_worker_failure_total{{{sidekiq},worker=\"ActivityPub.DeliveryWorker\"}}"), 1.0),
        (format!("mastodon_sidekiq_worker_processing_time_count{{{sidekiq},worker=\"LinkCrawlWorker\"}}"), 1.0),
        (format!("mastodon_sidekiq_worker_success_total{{{sidekiq},worker=\"Admin.Foo.BarWorker\"}}"), 1.0),
        (format!("mastodon_sidekiq_queue_enqueued{{{sidekiq},queue=\"default\"}}"), 7.0),
        (format!("mastodon_sidekiq_queue_latency{{{sidekiq},queue=\"push\"}}"), 0.25),
        (format!("mastodon_sidekiq_dead_size{{{sidekiq}}}"), 3.0),
        (format!("mastodon_sidekiq_processes_size{{{sidekiq}}}"), 2.0),
        (
            r#"mastodon_controller_duration_sum{action="show",controller="StatusesController",format="html",mastodon="web",namespace="social.example.staging"}"#.into(),
            0.04,
        ),
        (
            r#"mastodon_sidekiq_worker_success_total{mastodon="sidekiq",namespace="social.example.staging",worker="ActivityPub.DeliveryWorker"}"#.into(),
            1.0,
        ),
        ("myapp_web_requests".into(), 1.0),
        ("other_sidekiq_thing".into(), 1.0),
        (r#"statsd_exporter_events_actions_total{action="map"}"#.into(), 23.0),
        ("statsd_exporter_events_unmapped_total".into(), 2.0),
        ("statsd_exporter_loaded_mappings".into(), 19.0),
    ];
    for (series, value) in &want {
        let got = m.get(series).copied();
        assert!(
            got.is_some_and(|g| (g - value).abs() <= 1e-12 * value.abs().max(1.0)),
            "{series} = {got:?}, want {value}\n{:#?}",
            m.keys()
                .filter(|k| k.starts_with("mastodon_"))
                .collect::<Vec<_>>()
        );
    }
    common::stop_app(rt, running);
}

/// The binary with no arguments but its addresses uses the embedded mapping, says so, and
/// `--statsd.default-mapping=none` turns it off.
#[test]
fn binary_defaults_to_the_mastodon_mapping() {
    let line = "Mastodon.production.sidekiq.queues.default.enqueued:4|g";
    let proxy = common::spawn(&[]);
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(line.as_bytes(), proxy.udp)
        .unwrap();
    let m = wait_for_lines(proxy.http, 1.0);
    assert_eq!(
        m.get(r#"mastodon_sidekiq_queue_enqueued{mastodon="sidekiq",namespace="Mastodon.production",queue="default"}"#),
        Some(&4.0)
    );
    let plain = common::spawn(&["--statsd.default-mapping=none"]);
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(line.as_bytes(), plain.udp)
        .unwrap();
    let m = wait_for_lines(plain.http, 1.0);
    assert_eq!(
        m.get("Mastodon_production_sidekiq_queues_default_enqueued"),
        Some(&4.0)
    );
}

/// Every key shape of DESIGN §6 (the benchmark corpus) in three namespaces through the embedded
/// default: no `Mastodon…`-named (unmapped) series, every line mapped, and the worker of any depth in
/// one label with single dots.
#[test]
fn the_mastodon_corpus_leaves_nothing_unmapped() {
    let namespaces = ["Mastodon.production", "social.example.staging", "mastodon"];
    let lines: Vec<String> = namespaces
        .iter()
        .flat_map(|ns| statsd_benches::mastodon_lines_in(ns))
        .collect();
    let proxy = common::spawn(&[]);
    // Over TCP, so that no line can be lost in a kernel buffer however slow this build is.
    let mut stream = std::net::TcpStream::connect(proxy.tcp).unwrap();
    std::io::Write::write_all(&mut stream, (lines.join("\n") + "\n").as_bytes()).unwrap();
    drop(stream);
    let m = wait_for_lines(proxy.http, lines.len() as f64);
    let unmapped: Vec<&String> = m
        .keys()
        .filter(|k| {
            !k.starts_with("mastodon_") && !k.starts_with("statsd_") && !k.starts_with("process_")
        })
        .collect();
    assert!(unmapped.is_empty(), "unmapped series: {unmapped:#?}");
    assert_eq!(m.get("statsd_exporter_events_unmapped_total"), Some(&0.0));
    assert_eq!(
        m.get(r#"statsd_exporter_events_actions_total{action="map"}"#),
        Some(&(lines.len() as f64))
    );
    for ns in namespaces {
        // Both spellings of a worker (`.` and older nsa's `..`) land in one series.
        for (worker, count) in [
            ("ActiveJob.QueueAdapters.SidekiqAdapter.JobWrapper", 2.0),
            ("ActivityPub.DeliveryWorker", 2.0),
            ("Admin.AccountDeletionWorker", 1.0),
        ] {
            let series = format!(
                r#"mastodon_sidekiq_worker_success_total{{mastodon="sidekiq",namespace="{ns}",worker="{worker}"}}"#
            );
            assert_eq!(m.get(&series), Some(&count), "{series}");
        }
        let deep = format!(
            r#"mastodon_sidekiq_worker_processing_time_count{{mastodon="sidekiq",namespace="{ns}",worker="Scheduler.Accounts.Maintenance.Deep.CleanupScheduler"}}"#
        );
        assert_eq!(m.get(&deep), Some(&1.0), "{deep}");
    }
}

/// `mapping explain` and ingest share one routing function: for the whole corpus (three namespaces),
/// the series explain names are exactly the series `/metrics` holds.
#[test]
fn explain_names_exactly_the_series_ingest_creates() {
    let lines: Vec<String> = ["Mastodon.production", "social.example.staging", "mastodon"]
        .iter()
        .flat_map(|ns| statsd_benches::mastodon_lines_in(ns))
        .collect();
    let mapper = statsd_proxy::mappings::embedded_mastodon_mapper();
    let explained: std::collections::BTreeSet<String> = lines
        .iter()
        .flat_map(|line| {
            let text =
                statsd_proxy::explain::explain(&mapper, statsd_line::Parser::default(), line);
            text.lines()
                .filter_map(|l| l.strip_prefix("  series: "))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let (rt, running) = common::start_app(Config {
        mapping: MappingSource::EmbeddedMastodon,
        ..Config::loopback()
    });
    let mut stream = std::net::TcpStream::connect(running.tcp_addr.unwrap()).unwrap();
    std::io::Write::write_all(&mut stream, (lines.join("\n") + "\n").as_bytes()).unwrap();
    drop(stream);
    let m = wait_for_lines(running.http_addr, lines.len() as f64);
    // The series behind each sample line: summaries' `_count` stands for the summary.
    let ingested: std::collections::BTreeSet<String> = m
        .keys()
        .filter(|k| !k.starts_with("statsd_") && !k.starts_with("process_"))
        .filter(|k| !k.contains("quantile=\"") && !k.contains("_sum"))
        .map(|k| k.replacen("_count", "", 1))
        .collect();
    assert!(!explained.is_empty());
    assert_eq!(explained, ingested);
    common::stop_app(rt, running);
}

/// `examples/mastodon-histograms.yaml` is the shipped mapping with histogram defaults: below `defaults:`
/// its rules are the shipped file's, byte for byte, and every timing gets a native histogram.
#[test]
fn the_histogram_example_keeps_the_shipped_rules() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rules = |file: &str| {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        text[text.find("\nmappings:\n").expect("a mappings section")..].to_string()
    };
    assert_eq!(
        rules("examples/mastodon-histograms.yaml"),
        rules("mappings/mastodon.yaml"),
        "copy the rules of mappings/mastodon.yaml into examples/mastodon-histograms.yaml"
    );
    let mapper =
        statsd_mapping::Mapper::from_file(&root.join("examples/mastodon-histograms.yaml")).unwrap();
    assert!(mapper.warnings().is_empty(), "{:?}", mapper.warnings());
    let timings = mapper
        .rules()
        .iter()
        .filter(|r| r.match_metric_type == Some(statsd_mapping::MetricType::Observer))
        .count();
    assert!(timings >= 5);
    for rule in mapper.rules() {
        if rule.match_metric_type == Some(statsd_mapping::MetricType::Observer) {
            match &rule.spec.observer {
                statsd_mapping::Observer::Histogram(h) => {
                    assert_eq!(
                        h.native,
                        Some(statsd_mapping::NativeOptions {
                            schema: 3,
                            max_buckets: 160
                        })
                    );
                    assert_eq!(h.buckets.len(), 11);
                }
                other => panic!("{}: {other:?}", rule.pattern),
            }
        }
    }
}
