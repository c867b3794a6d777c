//! Conformance with statsd_exporter 0.30's line protocol, row by row.
//!
//! `tests/conformance/line.yaml` holds every row of statsd_exporter v0.30.0's `pkg/line` test tables
//! (inputs and the events it produces, as data); `tests/conformance/differences.yaml` names the rows
//! where we deliberately differ, with the reason (README "Where we differ" lists them too). Each row
//! must produce exactly its events here, or be listed as a difference (see `conformance/verdict.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use serde::Deserialize;
use statsd_line::{Dialects, Line, Parser, SampleKind};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    case: String,
    #[serde(default)]
    packet: Option<String>,
    /// The exact bytes, for packets that are not UTF-8.
    #[serde(default)]
    packet_hex: Option<String>,
    #[serde(default)]
    dialects: Option<Vec<String>>,
    events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    value: f64,
    #[serde(default)]
    relative: bool,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Difference {
    case: String,
    #[serde(default)]
    dialects: Option<Vec<String>>,
    why: String,
}

fn dialects(names: &Option<Vec<String>>) -> Dialects {
    let Some(names) = names else {
        return Dialects::default();
    };
    let has = |d: &str| names.iter().any(|n| n == d);
    Dialects {
        dogstatsd: has("dogstatsd"),
        influxdb: has("influxdb"),
        librato: has("librato"),
        signalfx: has("signalfx"),
    }
}

fn packet(row: &Row) -> Vec<u8> {
    match (&row.packet, &row.packet_hex) {
        (Some(text), None) => text.as_bytes().to_vec(),
        (None, Some(hex)) => (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect(),
        _ => panic!("{}: exactly one of packet and packet_hex", row.case),
    }
}

/// The events statsd_exporter would emit for what our parser reads: counters divided by the rate,
/// observers repeated, gauges with their relative flag. Sets (ours) are events of type `set`.
fn our_events(parser: Parser, packet: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut line = Line::default();
    for text in statsd_line::lines(packet) {
        if parser.parse_into(text, &mut line).is_err() {
            continue;
        }
        for sample in line.samples().flatten() {
            let labels: BTreeMap<String, String> = sample
                .tags
                .iter()
                .map(|t| (t.key.to_string(), t.value.to_string()))
                .collect();
            let (kind, value, repeat) = match sample.kind {
                SampleKind::Counter => ("counter", sample.counter_increment(), 1),
                SampleKind::Gauge => ("gauge", sample.value, 1),
                SampleKind::Set => ("set", 0.0, 1),
                _ => ("observer", sample.observation(), sample.repeat()),
            };
            for _ in 0..repeat {
                events.push(Event {
                    kind: kind.into(),
                    name: sample.name.to_string(),
                    value,
                    relative: sample.kind == SampleKind::Gauge && sample.relative,
                    labels: labels.clone(),
                });
            }
        }
    }
    events
}

fn same(a: &[Event], b: &[Event]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.kind == y.kind
                && x.name == y.name
                && x.relative == y.relative
                && x.labels == y.labels
                && (x.value == y.value || (x.value - y.value).abs() <= 1e-12 * y.value.abs())
        })
}

#[path = "conformance/verdict.rs"]
mod verdict;

#[test]
fn statsd_exporter_line_tables() {
    let rows: Vec<Row> =
        serde_yaml::from_str(include_str!("conformance/line.yaml")).expect("line.yaml");
    let differences: Vec<Difference> =
        serde_yaml::from_str(include_str!("conformance/differences.yaml"))
            .expect("differences.yaml");
    let id =
        |case: &str, dialects: &Option<Vec<String>>| format!("{case:?} (dialects {dialects:?})");
    let judged: Vec<(String, Vec<String>)> = rows
        .iter()
        .map(|row| {
            let got = our_events(Parser::new(dialects(&row.dialects)), &packet(row));
            let problems = if same(&got, &row.events) {
                Vec::new()
            } else {
                vec![format!(
                    "packet {:?}\n   want {:?}\n    got {got:?}",
                    row.packet, row.events
                )]
            };
            (id(&row.case, &row.dialects), problems)
        })
        .collect();
    let differences: Vec<(String, String)> = differences
        .into_iter()
        .map(|d| (id(&d.case, &d.dialects), d.why))
        .collect();
    verdict::judge("line", &judged, &differences);
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EscapeRow {
    name: String,
    escaped: String,
}

/// statsd_exporter's name-escaping table (`pkg/mapper/escape_test.go`); no differences are allowed.
#[test]
fn statsd_exporter_escape_table() {
    let rows: Vec<EscapeRow> =
        serde_yaml::from_str(include_str!("conformance/escape.yaml")).expect("escape.yaml");
    let judged: Vec<(String, Vec<String>)> = rows
        .iter()
        .map(|row| {
            let got = statsd_line::escape_name(&row.name);
            let problems = if got == row.escaped {
                Vec::new()
            } else {
                vec![format!("got {got:?}, want {:?}", row.escaped)]
            };
            (format!("{:?}", row.name), problems)
        })
        .collect();
    verdict::judge("escape", &judged, &[]);
}
