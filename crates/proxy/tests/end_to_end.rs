//! The real app on loopback: real datagrams and TCP lines in, real HTTP scrapes out, exact values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};

use common::{request, scrape, wait_for_lines};
use statsd_proxy::app::{Config, Running};

use common::{start_app as start, stop_app as stop};

fn send_udp(running: &Running, datagrams: &[&[u8]]) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in datagrams {
        socket
            .send_to(d, running.udp_addr.expect("UDP on"))
            .unwrap();
    }
}

#[test]
fn udp_datagrams_become_exact_series() {
    let (rt, running) = start(Config::loopback());
    send_udp(
        &running,
        &[
            b"foo:2|c\nbar:250|ms|#env:prod",
            b"foo:3|c\n",                                // trailing newline
            b"gauge:10|g\ngauge:-4|g\ngauge:+1.5|g\n\n", // deltas, empty lines skipped
            b"sampled:1|c|@0.25",
            b"timer:100|ms|@0.5|#route:/home",
            b"multi:1|c:2|c",
            b"Mastodon.production.web.Api.V1.TimelinesController.home.json.total_duration:12.5|ms",
            b"ext:1:2:3|d",
        ],
    );
    let m = wait_for_lines(running.http_addr, 11.0);
    let want = [
        ("foo", 5.0),
        ("bar_sum{env=\"prod\"}", 0.25),
        ("bar_count{env=\"prod\"}", 1.0),
        ("bar{env=\"prod\",quantile=\"0.5\"}", 0.25),
        ("bar{env=\"prod\",quantile=\"0.99\"}", 0.25),
        ("gauge", 7.5),
        ("sampled", 4.0),
        ("timer_sum{route=\"/home\"}", 0.2),
        ("timer_count{route=\"/home\"}", 2.0),
        ("multi", 3.0),
        (
            "Mastodon_production_web_Api_V1_TimelinesController_home_json_total_duration_sum",
            0.0125,
        ),
        ("ext_sum", 6.0),
        ("ext_count", 3.0),
        ("ext{quantile=\"0.5\"}", 2.0),
        ("statsd_exporter_lines_total", 11.0),
        ("statsd_exporter_samples_total", 14.0),
        ("statsd_exporter_udp_packets_total", 8.0),
        ("statsd_exporter_tags_total", 2.0),
        ("statsd_exporter_events_total{type=\"counter\"}", 5.0),
        ("statsd_exporter_events_total{type=\"gauge\"}", 3.0),
        // bar 1, timer @0.5 counts 2, Mastodon 1, ext 3.
        ("statsd_exporter_events_total{type=\"observer\"}", 7.0),
    ];
    for (series, value) in want {
        assert_eq!(m.get(series), Some(&value), "{series}");
    }
    let errors: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("statsd_exporter_sample_errors_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(errors, 0.0);
    stop(rt, running);
}

#[test]
fn tcp_lines_with_crlf_and_split_reads() {
    let (rt, running) = start(Config::loopback());
    let mut stream = TcpStream::connect(running.tcp_addr.expect("TCP on")).unwrap();
    stream.write_all(b"tcp_counter:1|c\r\ntcp_gauge:4").unwrap();
    stream.flush().unwrap();
    stream.write_all(b"2|g\r\ntcp_counter:2|c\n").unwrap();
    stream.write_all(&[b'x'; 5000]).unwrap(); // longer than the 4096-byte limit: skipped, counted
    stream.write_all(b"\ntcp_counter:4|c\r\n").unwrap();
    drop(stream);
    let m = wait_for_lines(running.http_addr, 4.0);
    assert_eq!(m.get("tcp_counter"), Some(&7.0));
    assert_eq!(m.get("tcp_gauge"), Some(&42.0));
    assert_eq!(m.get("statsd_exporter_tcp_connections_total"), Some(&1.0));
    assert_eq!(
        m.get("statsd_exporter_tcp_too_long_lines_total"),
        Some(&1.0)
    );
    assert_eq!(m.get("statsd_exporter_lines_total"), Some(&4.0));
    stop(rt, running);
}

/// Every malformed example of the protocol is counted under its reason; none stops the proxy, and
/// every line is accounted for (one sample per line here: lines = events + errors).
#[test]
fn malformed_lines_are_counted_by_reason_and_skipped() {
    let (rt, running) = start(Config::loopback());
    let cases: &[(&[u8], &str)] = &[
        (b"no_colon", "malformed_line"),
        (b":1|c", "malformed_line"),
        (b"bad\xffutf8:1|c", "malformed_line"),
        (b"mixed,a=b:1|c|#c:d", "mixed_tagging_styles"),
        (b"nopipe:1", "not_enough_parts_after_colon"),
        (b"ext:1:2|c", "invalid_extended_aggregate_type"),
        (b"trailing:1|c|", "malformed_component"),
        (b"value:abc|c", "malformed_value"),
        (b"comp:1|c|x", "invalid_sample_factor"),
        (b"container:1|c|#a:b|c:", "malformed_container_id"),
        (b"stamp:1|c|Tnope", "malformed_timestamp"),
        (b"type:1|x", "illegal_event"),
    ];
    let datagrams: Vec<&[u8]> = cases.iter().map(|(line, _)| *line).collect();
    send_udp(&running, &datagrams);
    // Then good lines, including the input that crashes statsd_exporter.
    send_udp(
        &running,
        &[b"after:1|c", b"foo]x[:1|c", b"neg:-1|c", b"after:1|g"],
    );
    let total = (cases.len() + 4) as f64;
    let m = wait_for_lines(running.http_addr, total);
    for (line, reason) in cases {
        let expected = cases.iter().filter(|(_, r)| r == reason).count() as f64;
        let key = format!("statsd_exporter_sample_errors_total{{reason=\"{reason}\"}}");
        assert_eq!(
            m.get(&key),
            Some(&expected),
            "{} → {reason}",
            String::from_utf8_lossy(line)
        );
    }
    assert_eq!(m.get("after"), Some(&1.0));
    assert_eq!(
        m.get("foo_x_"),
        Some(&1.0),
        "SignalFX `]x[` name kept as sent, escaped"
    );
    assert_eq!(m.get("statsd_exporter_tag_errors_total"), Some(&1.0));
    assert_eq!(
        m.get("statsd_exporter_events_error_total{reason=\"illegal_negative_counter\"}"),
        Some(&1.0)
    );
    assert_eq!(
        m.get("statsd_exporter_events_conflict_total{metric_name=\"after\",type=\"gauge\"}"),
        Some(&1.0)
    );
    // Accounting: every line was either stored, or refused with a counted reason.
    let sample_errors: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("statsd_exporter_sample_errors_total"))
        .map(|(_, v)| v)
        .sum();
    let events: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("statsd_exporter_events_total"))
        .map(|(_, v)| v)
        .sum();
    let refused: f64 = m
        .iter()
        .filter(|(k, _)| {
            k.starts_with("statsd_exporter_events_error_total")
                || k.starts_with("statsd_exporter_events_conflict_total")
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(events + sample_errors + refused, total);
    // Still serving.
    assert_eq!(
        request(running.http_addr, "GET", "/-/healthy", &[]).status,
        200
    );
    stop(rt, running);
}

#[test]
fn dialects_can_be_switched_off() {
    let mut config = Config::loopback();
    config.dialects.influxdb = false;
    config.dialects.dogstatsd = false;
    let (rt, running) = start(config);
    send_udp(
        &running,
        &[b"influx,a=b:1|c", b"dog:1|c|#a:b", b"libr#a=b:1|c"],
    );
    let m = wait_for_lines(running.http_addr, 3.0);
    assert_eq!(m.get("influx_a_b"), Some(&1.0));
    assert_eq!(m.get("dog"), Some(&1.0), "DogStatsD tags ignored when off");
    assert_eq!(m.get("libr{a=\"b\"}"), Some(&1.0), "Librato still on");
    stop(rt, running);
}

#[test]
fn http_endpoints() {
    let (rt, running) = start(Config::loopback());
    let addr = running.http_addr;
    let metrics = request(addr, "GET", "/metrics", &[]);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        metrics
            .text()
            .contains("# TYPE statsd_exporter_lines_total counter")
    );
    let landing = request(addr, "GET", "/", &[]);
    assert_eq!(landing.status, 200);
    assert!(landing.text().contains("href=\"/metrics\""));
    assert_eq!(request(addr, "GET", "/-/healthy", &[]).status, 200);
    assert_eq!(request(addr, "GET", "/-/ready", &[]).status, 200);
    assert_eq!(request(addr, "GET", "/nope", &[]).status, 404);
    assert_eq!(request(addr, "POST", "/metrics", &[]).status, 200);

    send_udp(&running, &[b"zipped:1|c"]);
    wait_for_lines(addr, 1.0);
    let gz = request(addr, "GET", "/metrics", &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz.body[..]), &mut text)
        .unwrap();
    assert!(text.contains("\nzipped 1\n"));
    assert_eq!(scrape(addr).get("zipped"), Some(&1.0));
    stop(rt, running);
}

/// Hostile sample rates: a rate of 1e-300 weighs a million observations, not 1e300; counts stay finite
/// and self-metrics never go backwards; every rate outside (0, 1] is taken as 1 and counted; a counter
/// that would reach infinity is refused and counted.
#[test]
fn hostile_rates_and_values_stay_bounded() {
    let (rt, running) = start(Config::loopback());
    send_udp(&running, &[b"t:1|ms|@1e-300"]);
    let first = wait_for_lines(running.http_addr, 1.0);
    assert_eq!(first.get("t_count"), Some(&1e6));
    assert_eq!(
        first.get(r#"statsd_exporter_events_total{type="observer"}"#),
        Some(&1e6)
    );
    send_udp(&running, &[b"t:1|ms|@0.0000001"]);
    let second = wait_for_lines(running.http_addr, 2.0);
    assert_eq!(
        second.get("t_count"),
        Some(&2e6),
        "clamped to a million too"
    );
    assert_eq!(
        second.get(r#"statsd_exporter_events_total{type="observer"}"#),
        Some(&2e6)
    );
    send_udp(
        &running,
        &[
            b"r:1|c|@0",
            b"r:1|c|@-1",
            b"r:1|c|@nan",
            b"r:1|c|@inf",
            b"r:1|c|@2",
        ],
    );
    let rates = wait_for_lines(running.http_addr, 7.0);
    assert_eq!(rates.get("r"), Some(&5.0), "each taken at rate 1");
    assert_eq!(
        rates.get(r#"statsd_exporter_sample_errors_total{reason="invalid_sample_factor"}"#),
        Some(&5.0)
    );
    send_udp(&running, &[b"big:1e308|c", b"big:1e308|c"]);
    let big = wait_for_lines(running.http_addr, 9.0);
    assert_eq!(big.get("big"), Some(&1e308));
    assert_eq!(
        big.get(r#"statsd_exporter_events_error_total{reason="value_overflow"}"#),
        Some(&1.0)
    );
    stop(rt, running);
}

/// `udp_reuseport`: each of the workers has its own socket on the one address; datagrams from many
/// senders (source ports, which the kernel spreads over the sockets) all arrive, once each.
#[test]
fn reuseport_workers_receive_every_sender() {
    let (rt, running) = start(Config {
        udp_workers: 3,
        udp_reuseport: true,
        ..Config::loopback()
    });
    let udp = running.udp_addr.expect("UDP bound");
    // Three sockets on that port (Linux lists each in /proc/net/udp). Counted by inode: the file is
    // read in several reads, and a socket other tests open or close meanwhile can make the kernel
    // list one twice (seen in CI: the same inode on two lines).
    let port = format!(":{:04X} ", udp.port());
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    let inodes: std::collections::BTreeSet<&str> = table
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|local| local.ends_with(&port[..5]))
        })
        .filter_map(|l| l.split_whitespace().nth(9))
        .collect();
    assert_eq!(inodes.len(), 3, "{table}");
    for i in 0..16 {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..10 {
            sender
                .send_to(format!("spread:1|c\nsender_{i}:1|c").as_bytes(), udp)
                .unwrap();
        }
    }
    let m = wait_for_lines(running.http_addr, 320.0);
    assert_eq!(m.get("spread"), Some(&160.0));
    assert!((0..16).all(|i| m.get(&format!("sender_{i}")) == Some(&10.0)));
    assert_eq!(m.get("statsd_exporter_lines_total"), Some(&320.0));
    stop(rt, running);
}

/// Content negotiation: Prometheus' default `Accept` headers (2.x and 3.x, native histograms off; both
/// list OpenMetrics first) get text 0.0.4 with counter names unchanged; an `Accept` that prefers
/// delimited protobuf gets it, gzipped too, the same families and values.
#[test]
fn scrape_format_follows_the_accept_header() {
    use prost::Message as _;
    use statsd_exposition::proto::MetricFamily;
    let (rt, running) = start(Config::loopback());
    send_udp(&running, &[b"requests:2|c|#env:prod", b"latency:250|ms"]);
    wait_for_lines(running.http_addr, 2.0);
    for accept in [
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
    ] {
        let text = request(running.http_addr, "GET", "/metrics", &[("Accept", accept)]);
        assert_eq!(
            text.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        assert!(
            text.text().contains("\nrequests{env=\"prod\"} 2\n"),
            "{}",
            text.text()
        );
    }
    let protobuf_accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1";
    for gzip in [false, true] {
        let mut headers = vec![("Accept", protobuf_accept)];
        if gzip {
            headers.push(("Accept-Encoding", "gzip"));
        }
        let response = request(running.http_addr, "GET", "/metrics", &headers);
        assert_eq!(
            response.header("content-type"),
            Some(
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            )
        );
        let body = if gzip {
            let mut raw = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(&response.body[..]),
                &mut raw,
            )
            .unwrap();
            raw
        } else {
            response.body.clone()
        };
        let mut buf = body.as_slice();
        let mut families = Vec::new();
        while !buf.is_empty() {
            families.push(MetricFamily::decode_length_delimited(&mut buf).unwrap());
        }
        let find = |name: &str| families.iter().find(|f| f.name.as_deref() == Some(name));
        let requests = find("requests").expect("requests family");
        assert_eq!(
            requests.metric[0].counter.as_ref().unwrap().value,
            Some(2.0)
        );
        assert_eq!(requests.metric[0].label[0].value.as_deref(), Some("prod"));
        let latency = find("latency").expect("latency family");
        assert_eq!(
            latency.metric[0].summary.as_ref().unwrap().sample_count,
            Some(1)
        );
        assert!(find("statsd_exporter_lines_total").is_some());
        // Every family once, sorted by name within the store's part.
        let names: Vec<&str> = families.iter().filter_map(|f| f.name.as_deref()).collect();
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }
    stop(rt, running);
}
