//! Drop-in fidelity with statsd_exporter 0.30, as an admin swapping it out would meet it: mapping
//! files it loads, flag values it takes, its self-metrics and its log format. Each test runs the real
//! binary on loopback ports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::process::Command;

use common::{scrape_until, spawn};

/// A mapping file statsd_exporter 0.30 loads: digit and `--` glob segments, an unknown key, a duplicate
/// key, a negative ttl.
const LENIENT_MAPPING: &str = "\
version: 2
mappings:
  - match: test.99.myapp.*
    name: myapp_$1
    lables: {typo: here}
  - match: foo--bar.*.200
    name: first
    name: http_ok
    labels: {handler: \"$1\"}
    ttl: -1s
  - match: kafka.server.brokerPort.9092.*.1MinuteRate.gauge
    name: kafka_rate
    labels: {metric: \"$1\"}
";

/// A file in a temporary directory of its own, removed with the directory when dropped.
struct TempFile(std::path::PathBuf);

impl std::ops::Deref for TempFile {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempFile {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `name` holding `text`, in a directory named after this process and the file (tests of one process
/// run in parallel; each file name is used by one test).
fn temp_file(name: &str, text: &str) -> TempFile {
    let dir =
        std::env::temp_dir().join(format!("statsd-proxy-dropin-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    TempFile(path)
}

#[test]
fn a_file_statsd_exporter_loads_starts_the_proxy_with_positioned_warnings() {
    let file = temp_file("lenient.yaml", LENIENT_MAPPING);
    let proxy = spawn(&[&format!("--statsd.mapping-config={}", file.display())]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for line in [
        "test.99.myapp.requests:3|c",
        "foo--bar.index.200:1|c",
        "kafka.server.brokerPort.9092.BytesIn.1MinuteRate.gauge:7|g",
    ] {
        socket.send_to(line.as_bytes(), proxy.udp).unwrap();
    }
    let m = scrape_until(proxy.http, "three mapped lines", |m| {
        m.get("statsd_exporter_lines_total").copied().unwrap_or(0.0) >= 3.0
    });
    assert_eq!(m.get("myapp_requests"), Some(&3.0), "{m:#?}");
    assert_eq!(m.get("http_ok{handler=\"index\"}"), Some(&1.0), "{m:#?}");
    assert_eq!(
        m.get("kafka_rate{metric=\"BytesIn\"}"),
        Some(&7.0),
        "{m:#?}"
    );
    assert_eq!(m.get("statsd_proxy_mapping_warnings"), Some(&4.0), "{m:#?}");
    let logs = proxy.stop_and_collect_logs();
    let file = file.display().to_string();
    for (position, what) in [
        ("1:1", "unknown key `version`"),
        ("5:5", "unknown key `mappings.0.lables`"),
        ("8:5", "duplicate key `mappings.1.name`"),
        ("10:5", "negative ttl"),
    ] {
        let needle = format!("{file}:{position}: ");
        assert!(
            logs.iter()
                .any(|l| l.contains("\"WARN\"") && l.contains(&needle) && l.contains(what)),
            "no warning {needle}{what} in {logs:#?}"
        );
    }
}

#[test]
fn strict_mode_refuses_what_statsd_exporter_would_load() {
    let file = temp_file("strict.yaml", LENIENT_MAPPING);
    let mapping = format!("--statsd.mapping-config={}", file.display());
    let out = Command::new(env!("CARGO_BIN_EXE_statsd-proxy"))
        .args([
            "--statsd.listen-udp=127.0.0.1:0",
            "--statsd.listen-tcp=127.0.0.1:0",
            "--web.listen-address=127.0.0.1:0",
            "--statsd.mapping-strict",
            &mapping,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("level=ERROR")
            && stderr.contains(&format!("{}:1:1: unknown key `version`", file.display()))
            && stderr.contains("mapping-strict"),
        "{stderr}"
    );
    // `mapping check` and --check-config: 0 with warnings printed, 1 under strict.
    for args in [vec!["mapping", "check"], vec!["--check-config"]] {
        let lenient = Command::new(env!("CARGO_BIN_EXE_statsd-proxy"))
            .args(&args)
            .arg(&mapping)
            .output()
            .unwrap();
        assert_eq!(lenient.status.code(), Some(0), "{args:?}");
        let warnings = String::from_utf8_lossy(&lenient.stderr);
        assert_eq!(
            warnings
                .lines()
                .filter(|l| l.starts_with("warning: "))
                .count(),
            4,
            "{warnings}"
        );
        assert!(
            String::from_utf8_lossy(&lenient.stdout).contains("OK, 3 mapping rules, 4 warnings")
        );
        let strict = Command::new(env!("CARGO_BIN_EXE_statsd-proxy"))
            .args(&args)
            .arg(&mapping)
            .arg("--statsd.mapping-strict")
            .output()
            .unwrap();
        assert_eq!(strict.status.code(), Some(1), "{args:?}");
    }
}

/// kingpin's command line: `@file` argument files (a unit may keep its flags in one), and exit status
/// 1 for a command line it refuses.
#[test]
fn argument_files_and_refused_command_lines_as_kingpin_has_them() {
    let mapping = temp_file(
        "args-mapping.yaml",
        "mappings:\n  - match: a.*\n    name: a\n",
    );
    let args = temp_file(
        "args",
        &format!(
            "# statsd_exporter's flags\n--statsd.mapping-config\n{}\n\n--check-config\n",
            mapping.display()
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_statsd-proxy"))
        .arg(format!("@{}", args.display()))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("OK, 1 mapping rules"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for bad in [["--no-such-flag"], ["@/nonexistent/statsd-proxy-args"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_statsd-proxy"))
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
    }
    let help = Command::new(env!("CARGO_BIN_EXE_statsd-proxy"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
}

#[test]
fn an_empty_mapping_config_flag_means_no_file() {
    let proxy = spawn(&["--statsd.mapping-config=", "--statsd.default-mapping=none"]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(b"some.metric:1|c", proxy.udp).unwrap();
    let m = common::wait_for_lines(proxy.http, 1.0);
    assert_eq!(m.get("some_metric"), Some(&1.0), "{m:#?}");
}

#[test]
fn self_metrics_that_dashboards_query_are_exposed() {
    let proxy = spawn(&["--log.level=DEBUG"]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..3 {
        socket.send_to(b"cached.name:1|c", proxy.udp).unwrap();
    }
    // A packet's counts are published counter by counter, `lines_total` last (after a release fence,
    // read first by a scrape): once it shows the three lines, every other count of them is on the
    // page. (Waiting on a cache counter instead raced with the ones published after it: CI once saw
    // the series-cache lookups but not yet their hits.)
    let m = scrape_until(proxy.http, "three lines", |m| {
        m.get("statsd_exporter_lines_total").copied() == Some(3.0)
    });
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "statsd_exporter_udp_packet_drops_total",
    ] {
        assert!(m.contains_key(name), "{name} missing: {m:#?}");
    }
    assert!(m["process_resident_memory_bytes"] > 1e6);
    assert!(m["process_open_fds"] >= 3.0);
    assert_eq!(m.get("statsd_metric_mapper_cache_gets_total"), Some(&3.0));
    assert_eq!(m.get("statsd_metric_mapper_cache_hits_total"), Some(&2.0));
    assert_eq!(m.get("statsd_metric_mapper_cache_length"), Some(&1.0));
    // Ours: the series cache in front of it (the first sample missed, the next two hit).
    assert_eq!(m.get("statsd_proxy_series_cache_lookups_total"), Some(&3.0));
    assert_eq!(m.get("statsd_proxy_series_cache_hits_total"), Some(&2.0));
    assert_eq!(m.get("statsd_proxy_series_cache_length"), Some(&1.0));
    let build_info: Vec<&String> = m
        .keys()
        .filter(|k| k.starts_with("statsd_exporter_build_info{"))
        .collect();
    assert_eq!(build_info.len(), 1, "{m:#?}");
    let labels = labels_of(build_info[0]);
    let names: Vec<&str> = labels.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "branch",
            "goarch",
            "goos",
            "goversion",
            "revision",
            "tags",
            "version"
        ]
    );
    assert_eq!(labels["version"], env!("CARGO_PKG_VERSION"));
    assert!(labels["goversion"].starts_with("rustc1."), "{labels:?}");
    assert_eq!(labels["goos"], std::env::consts::OS);
    assert_eq!(labels["goarch"], std::env::consts::ARCH);
    for value in labels.values() {
        assert!(!value.is_empty(), "{labels:?}");
    }
    assert_eq!(m[build_info[0]], 1.0);
}

/// `name{a="x",b="y"}` → {a: x, b: y} (values here hold no quotes or commas).
fn labels_of(series: &str) -> BTreeMap<String, String> {
    let inner = series
        .split_once('{')
        .and_then(|(_, rest)| rest.strip_suffix('}'))
        .unwrap_or_default();
    inner
        .split("\",")
        .filter_map(|pair| pair.split_once("=\""))
        .map(|(k, v)| (k.to_string(), v.trim_end_matches('"').to_string()))
        .collect()
}

/// A strict logfmt reader: `key=value` pairs separated by single spaces; a value is bare (no space,
/// `=` or `"`) or a double-quoted string with backslash escapes. Returns the pairs in order.
fn parse_logfmt(line: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or(format!("no `=` in {rest:?}"))?;
        let key = &rest[..eq];
        if key.is_empty() || key.contains([' ', '"']) {
            return Err(format!("bad key {key:?}"));
        }
        rest = &rest[eq + 1..];
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, 'n')) => out.push('\n'),
                        Some((_, 't')) => out.push('\t'),
                        Some((_, 'r')) => out.push('\r'),
                        Some((_, c @ ('"' | '\\'))) => out.push(c),
                        Some((_, e @ ('x' | 'u'))) => {
                            let digits = if e == 'x' { 2 } else { 4 };
                            let hex: String = (0..digits)
                                .filter_map(|_| chars.next().map(|(_, c)| c))
                                .collect();
                            let code = u32::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
                            out.push(char::from_u32(code).ok_or("bad escape")?);
                        }
                        other => return Err(format!("bad escape {other:?}")),
                    },
                    c if c.is_control() => {
                        return Err(format!("raw control {c:?} in a quoted value"));
                    }
                    c => out.push(c),
                }
            }
            let end = end.ok_or("unterminated quoted value")?;
            value = out;
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            let bare = &rest[..end];
            if bare.is_empty() || bare.contains(['=', '"']) || bare.chars().any(char::is_control) {
                return Err(format!("bad bare value {bare:?}"));
            }
            value = bare.to_string();
            rest = &rest[end..];
        }
        pairs.push((key.to_string(), value));
        match rest.strip_prefix(' ') {
            Some(r) if !r.is_empty() => rest = r,
            Some(_) => return Err("trailing space".into()),
            None if rest.is_empty() => {}
            None => return Err(format!("junk after a value: {rest:?}")),
        }
    }
    Ok(pairs)
}

/// Traffic that makes the proxy log warnings and debug lines with awkward characters.
fn noisy_session(format: &str) -> Vec<String> {
    let file = temp_file(&format!("noisy-{format}.yaml"), LENIENT_MAPPING);
    let proxy = spawn(&[
        &format!("--log.format={format}"),
        "--log.level=debug",
        &format!("--statsd.mapping-config={}", file.display()),
    ]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for line in [
        &b"bad line with \"quotes\" = and spaces|x"[..],
        b"tab\there:1|q",
        b"ctl\x1bchar:zz|c",
        b"ok.metric:1|c",
    ] {
        socket.send_to(line, proxy.udp).unwrap();
    }
    common::wait_for_lines(proxy.http, 4.0);
    proxy.stop_and_collect_logs()
}

#[test]
fn logfmt_logs_parse_line_by_line_with_promslog_keys() {
    let lines = noisy_session("logfmt");
    assert!(lines.len() >= 8, "{lines:#?}");
    let mut levels = std::collections::BTreeSet::new();
    for line in &lines {
        let pairs = parse_logfmt(line).unwrap_or_else(|e| panic!("not logfmt: {e}: {line:?}"));
        let keys: Vec<&str> = pairs.iter().take(4).map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["time", "level", "source", "msg"], "{line}");
        assert!(humantime::parse_rfc3339(&pairs[0].1).is_ok(), "{line}");
        assert!(pairs[2].1.contains(".rs:"), "{line}");
        levels.insert(pairs[1].1.clone());
    }
    for level in ["DEBUG", "INFO", "WARN"] {
        assert!(levels.contains(level), "{level} missing: {levels:?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("level=WARN") && l.contains("unknown key `version`")),
        "{lines:#?}"
    );
}

#[test]
fn json_logs_parse_line_by_line_with_the_same_keys() {
    let lines = noisy_session("json");
    assert!(lines.len() >= 8, "{lines:#?}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {e}: {line:?}"));
        let object = v.as_object().expect("one object per line");
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        for key in ["time", "level", "source", "msg"] {
            assert!(keys.contains(&key), "{key} missing in {line}");
        }
        assert!(
            ["DEBUG", "INFO", "WARN", "ERROR"].contains(&object["level"].as_str().unwrap()),
            "{line}"
        );
        // The same order as logfmt: time, level, source, msg first.
        let expected = ["\"time\"", "\"level\"", "\"source\"", "\"msg\""];
        let at: Vec<usize> = expected.iter().map(|k| line.find(k).unwrap()).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{line}");
    }
}

/// On reload, a file with warnings is loaded (and its warnings counted) unless the proxy runs with
/// `--statsd.mapping-strict`, which keeps the previous mapping and answers 500 naming the problem.
#[test]
fn reload_warns_or_refuses_as_at_start() {
    for strict in [false, true] {
        let file = temp_file(
            &format!("reload-{strict}.yaml"),
            "mappings:\n  - match: a.*\n    name: first_$1\n",
        );
        let mut args = vec![
            format!("--statsd.mapping-config={}", file.display()),
            "--web.enable-lifecycle".to_string(),
        ];
        if strict {
            args.push("--statsd.mapping-strict".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let proxy = spawn(&args);
        std::fs::write(
            &file,
            "mappings:\n  - match: a.*\n    name: second_$1\n    lables: {x: y}\n",
        )
        .unwrap();
        let response = common::request(proxy.http, "POST", "/-/reload", &[]);
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.send_to(b"a.b:1|c", proxy.udp).unwrap();
        let m = common::wait_for_lines(proxy.http, 1.0);
        if strict {
            assert_eq!(response.status, 500);
            let body = response.text();
            assert!(body.contains(":4:5: mappings[0]: unknown key"), "{body}");
            assert_eq!(
                m.get("first_b"),
                Some(&1.0),
                "the old mapping stays: {m:#?}"
            );
            assert_eq!(m.get("statsd_proxy_mapping_warnings"), Some(&0.0));
            assert_eq!(
                m.get(r#"statsd_exporter_config_reloads_total{outcome="failure"}"#),
                Some(&1.0)
            );
        } else {
            assert_eq!(response.status, 200, "{}", response.text());
            assert_eq!(m.get("second_b"), Some(&1.0), "{m:#?}");
            assert_eq!(m.get("statsd_proxy_mapping_warnings"), Some(&1.0));
        }
    }
}
