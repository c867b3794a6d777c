//! Conformance with statsd_exporter 0.30's mapper, row by row.
//!
//! `tests/conformance/mapper.yaml` holds the rows of statsd_exporter v0.30.0's `pkg/mapper` test tables
//! (a mapping file, whether 0.30 loads it, and what given StatsD names map to, as data);
//! `tests/conformance/differences.yaml` names the rows where we deliberately differ, with the reason
//! (README "Where we differ" lists them too). Each row must pass here, or be listed (see
//! `crates/line/tests/conformance/verdict.rs`). A row is checked the way the Go test checks it:
//! only the fields it states (the name only when the metric is mapped, labels always).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use serde::Deserialize;
use statsd_mapping::{Action, Mapper, MetricType, Observer};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    case: String,
    config: String,
    #[serde(default)]
    bad: bool,
    #[serde(default)]
    mappings: Vec<Expect>,
    /// `TestAction`: the action of the first rule.
    #[serde(default)]
    first_rule_action: Option<String>,
    /// `TestMultipleMatches`: each name must be mapped, to the given name; nothing else is checked.
    #[serde(default)]
    name_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Quantile {
    quantile: f64,
    error: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    statsd: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    unmapped: bool,
    ttl: Option<String>,
    quantiles: Option<Vec<Quantile>>,
    buckets: Option<Vec<f64>>,
    max_age: Option<String>,
    age_buckets: Option<u32>,
    buf_cap: Option<u32>,
    scale: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Difference {
    case: String,
    why: String,
}

fn metric_type(name: Option<&str>) -> MetricType {
    match name {
        None | Some("counter") => MetricType::Counter,
        Some("gauge") => MetricType::Gauge,
        Some("observer" | "timer") => MetricType::Observer,
        Some(other) => panic!("unknown metric type {other}"),
    }
}

fn duration(text: &str) -> std::time::Duration {
    statsd_mapping::duration::parse(text).expect("a Go duration")
}

/// Checks one row; returns what disagrees (empty when the row passes).
fn check(row: &Row) -> Vec<String> {
    let mut problems = Vec::new();
    let mapper = match Mapper::from_yaml(&row.config, "conformance.yaml") {
        Ok(_) if row.bad => return vec!["statsd_exporter refuses this config; we load it".into()],
        Ok(m) => m,
        Err(_) if row.bad => return problems,
        Err(e) => {
            return vec![format!(
                "statsd_exporter loads this config; we refuse it: {e}"
            )];
        }
    };
    if let Some(action) = &row.first_rule_action {
        let want = if action == "drop" {
            Action::Drop
        } else {
            Action::Map
        };
        match mapper.rules().first() {
            Some(rule) if rule.action == want => {}
            other => problems.push(format!("first rule's action: want {action}, got {other:?}")),
        }
    }
    for e in &row.mappings {
        let ty = metric_type(e.kind.as_deref());
        let got = mapper.map(&e.statsd, ty);
        let rule = got.as_ref().map(|m| &mapper.rules()[m.rule]);
        let at = &e.statsd;
        if row.name_only {
            match (&got, &e.name) {
                (Some(m), Some(name)) if m.name == statsd_line::escape_name(name) => {}
                _ => problems.push(format!("{at}: {got:?}, want the name {:?}", e.name)),
            }
            continue;
        }
        // Like the Go test: the name is compared only when the metric is mapped.
        if let (Some(m), Some(name)) = (&got, &e.name) {
            // statsd_exporter escapes the expanded name when it creates the metric; ours is escaped.
            let want = statsd_line::escape_name(name);
            if m.name != want {
                problems.push(format!("{at}: name {:?}, want {want:?}", m.name));
            }
        }
        if e.unmapped && got.is_some() {
            problems.push(format!(
                "{at}: mapped by rule {:?}, want unmapped",
                got.as_ref().map(|m| m.rule)
            ));
        }
        let labels: BTreeMap<String, String> = got
            .as_ref()
            .map(|m| {
                m.labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        if labels != e.labels {
            problems.push(format!("{at}: labels {labels:?}, want {:?}", e.labels));
        }
        let Some(rule) = rule else {
            // The Go test reads the rule's fields for these, so it needs a mapped metric.
            let needs_rule = e.kind.is_some()
                || e.ttl.is_some()
                || e.quantiles.is_some()
                || e.buckets.is_some()
                || e.max_age.is_some()
                || e.age_buckets.is_some()
                || e.buf_cap.is_some();
            if needs_rule {
                problems.push(format!("{at}: not mapped"));
            }
            continue;
        };
        if e.kind.is_some() && rule.match_metric_type != Some(ty) {
            problems.push(format!(
                "{at}: match_metric_type {:?}, want {ty:?}",
                rule.match_metric_type
            ));
        }
        if let Some(ttl) = &e.ttl
            && rule.spec.ttl != duration(ttl)
        {
            problems.push(format!("{at}: ttl {:?}, want {ttl}", rule.spec.ttl));
        }
        if rule.scale != e.scale {
            problems.push(format!("{at}: scale {:?}, want {:?}", rule.scale, e.scale));
        }
        if let Some(buckets) = &e.buckets {
            match &rule.spec.observer {
                Observer::Histogram(h) if h.buckets[..] == buckets[..] => {}
                other => problems.push(format!(
                    "{at}: observer {other:?}, want buckets {buckets:?}"
                )),
            }
        }
        let summary = match &rule.spec.observer {
            Observer::Summary(s) => Some(s),
            Observer::Histogram(_) => None,
        };
        if let Some(quantiles) = &e.quantiles {
            let want: Vec<(f64, f64)> = quantiles.iter().map(|q| (q.quantile, q.error)).collect();
            if summary.map(|s| &s.quantiles) != Some(&want) {
                problems.push(format!(
                    "{at}: summary {summary:?}, want quantiles {want:?}"
                ));
            }
        }
        if let Some(max_age) = &e.max_age
            && summary.map(|s| s.max_age) != Some(duration(max_age))
        {
            problems.push(format!("{at}: summary {summary:?}, want max_age {max_age}"));
        }
        if let Some(age_buckets) = e.age_buckets
            && summary.map(|s| s.age_buckets) != Some(age_buckets)
        {
            problems.push(format!(
                "{at}: summary {summary:?}, want age_buckets {age_buckets}"
            ));
        }
        if let Some(buf_cap) = e.buf_cap {
            problems.push(format!(
                "{at}: buf_cap {buf_cap} is not kept (our summaries size their buffer themselves)"
            ));
        }
    }
    problems
}

#[path = "../../line/tests/conformance/verdict.rs"]
mod verdict;

#[test]
fn statsd_exporter_mapper_tables() {
    let rows: Vec<Row> =
        serde_yaml::from_str(include_str!("conformance/mapper.yaml")).expect("mapper.yaml");
    let differences: Vec<Difference> =
        serde_yaml::from_str(include_str!("conformance/differences.yaml"))
            .expect("differences.yaml");
    let judged: Vec<(String, Vec<String>)> = rows
        .iter()
        .map(|row| (format!("{:?}", row.case), check(row)))
        .collect();
    let differences: Vec<(String, String)> = differences
        .into_iter()
        .map(|d| (format!("{:?}", d.case), d.why))
        .collect();
    verdict::judge("mapper", &judged, &differences);
}
