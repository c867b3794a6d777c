//! The operator console: `/status` (HTML, rendered here, readable without JavaScript, no external
//! assets) and the same data as JSON at `/api/v1/status`.
//!
//! It shows the proxy (version, uptime, listeners, the mapping's source, rules, warnings and last
//! load), the traffic (line and sample rates over the last minute, every drop and refusal by
//! reason), the most frequent unmapped names, each rule's hits and live series, refusals by metric,
//! the series held against the limits with the biggest metrics, and an explain form: StatsD lines in,
//! what each becomes out, by [`crate::explain::explain`] (nothing is ingested).
//!
//! Everything here is bounded: [`TOP_UNMAPPED`] names, [`TOP_METRICS`] metrics, [`MAX_REFUSALS`]
//! refusal rows, one row per rule, and [`MAX_EXPLAIN_LINES`] lines of at most [`MAX_EXPLAIN_BYTES`]
//! explained per request. The report is gathered on a blocking thread (counting series is a pass over
//! the store).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use prometheus::proto::MetricType as PromType;
use serde::Serialize;
use statsd_line::escape_name;
use statsd_mapping::{Action, MatchType, MetricType};

use crate::config::MappingSource;
use crate::state::State;

mod drops;
mod html;

use drops::drops_and_refusals;
pub use html::{escape_html, html};

/// Unmapped names shown.
pub const TOP_UNMAPPED: usize = 50;
/// Biggest metrics shown.
pub const TOP_METRICS: usize = 20;
/// Refusal rows shown (most first).
pub const MAX_REFUSALS: usize = 50;
/// Lines explained per request.
pub const MAX_EXPLAIN_LINES: usize = 100;
/// Bytes of explain input read per request.
pub const MAX_EXPLAIN_BYTES: usize = 16 * 1024;

/// A listening socket.
#[derive(Debug, Clone, Serialize)]
pub struct Listener {
    /// `udp`, `tcp`, `unixgram`, `http` or `https`.
    pub protocol: &'static str,
    /// Its address or path.
    pub address: String,
}

/// Everything `/status` shows.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The proxy's version and git revision.
    pub version: String,
    /// When it started (RFC 3339).
    pub started: String,
    /// Seconds since.
    pub uptime_seconds: u64,
    /// What it listens on.
    pub listeners: Vec<Listener>,
    /// The mapping.
    pub mapping: Mapping,
    /// Rates and totals.
    pub traffic: Traffic,
    /// Every non-zero drop or refusal counter.
    pub drops: Vec<DropCount>,
    /// The most frequent unmapped StatsD names.
    pub unmapped: Vec<Unmapped>,
    /// Each rule, in file order.
    pub rules: Vec<RuleRow>,
    /// Live series of unmapped names.
    pub unmapped_series: usize,
    /// Live series made by rules of earlier mapping loads that the current one no longer has.
    pub other_series: usize,
    /// Conflicts and limit refusals by metric, most first.
    pub refusals: Vec<Refusal>,
    /// Series against the limits.
    pub series: Series,
}

/// The mapping in use.
#[derive(Debug, Serialize)]
pub struct Mapping {
    /// `file`, `embedded` or `none`.
    pub source: &'static str,
    /// The file, or the embedded mapping's name.
    pub path: String,
    /// Rules loaded.
    pub rules: usize,
    /// Warnings of the file, each with file:line:column.
    pub warnings: Vec<String>,
    /// When it was last loaded, or a reload last tried (RFC 3339).
    pub last_load: String,
    /// That load's error (the previous mapping stays in use), with file:line:column.
    pub last_load_error: Option<String>,
}

/// Traffic.
#[derive(Debug, Serialize)]
pub struct Traffic {
    /// Lines a second over the last minute (`None` in the first second).
    pub lines_per_second: Option<f64>,
    /// Samples a second over the last minute.
    pub samples_per_second: Option<f64>,
    /// Lines since start.
    pub lines_total: u64,
    /// Samples since start.
    pub samples_total: u64,
}

/// One non-zero drop counter.
#[derive(Debug, Serialize)]
pub struct DropCount {
    /// What it counts.
    pub what: &'static str,
    /// The self-metric.
    pub metric: String,
    /// Its labels, as `/metrics` writes them.
    pub labels: String,
    /// Its value.
    pub count: u64,
}

/// An unmapped name.
#[derive(Debug, Serialize)]
pub struct Unmapped {
    /// The StatsD name.
    pub name: String,
    /// The Prometheus name it is exposed under.
    pub series_name: String,
    /// Samples (an estimate: at most `error` of it may belong to names it replaced in the top list).
    pub count: u64,
    /// See `count`.
    pub error: u64,
}

/// A mapping rule and what it did.
#[derive(Debug, Serialize)]
pub struct RuleRow {
    /// Index in `mappings`.
    pub index: usize,
    /// file:line:column.
    pub position: String,
    /// Line in the file.
    pub line: usize,
    /// Column in the file.
    pub column: usize,
    /// `match` as written.
    #[serde(rename = "match")]
    pub pattern: String,
    /// `glob` or `regex`.
    pub match_type: &'static str,
    /// `match_metric_type`, if any.
    pub match_metric_type: Option<&'static str>,
    /// `map` or `drop`.
    pub action: &'static str,
    /// The name template.
    pub name: String,
    /// Samples it matched (since a load that first had it).
    pub hits: u64,
    /// Live series it created.
    pub series: usize,
}

/// Refusals of one metric.
#[derive(Debug, Serialize)]
pub struct Refusal {
    /// The Prometheus name ("" when the limit refused a name that has no series yet).
    pub metric: String,
    /// `conflict` (type, help or name) or `series limit`.
    pub reason: &'static str,
    /// The sample type, for conflicts.
    #[serde(rename = "type")]
    pub kind: String,
    /// Samples refused.
    pub count: u64,
}

/// Series against the limits.
#[derive(Debug, Serialize)]
pub struct Series {
    /// Held now.
    pub total: usize,
    /// `--statsd.max-series` (0: none).
    pub max_series: usize,
    /// `--statsd.max-series-per-metric` (0: none).
    pub max_series_per_metric: usize,
    /// Metrics held.
    pub metrics: usize,
    /// The biggest metrics.
    pub biggest: Vec<Metric>,
}

/// A metric and its series.
#[derive(Debug, Serialize)]
pub struct Metric {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Its series.
    pub series: usize,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn match_type(m: MatchType) -> &'static str {
    match m {
        MatchType::Glob => "glob",
        MatchType::Regex => "regex",
    }
}

fn metric_type(m: MetricType) -> &'static str {
    match m {
        MetricType::Counter => "counter",
        MetricType::Gauge => "gauge",
        MetricType::Observer => "observer",
    }
}

/// Gathers the report (blocking: counts the store's series).
pub fn report(state: &State) -> Report {
    // As before a scrape: the kernel's drops of our UDP sockets, brought up to date.
    state.update_kernel_drops();
    let activity = state.activity();
    let mapper = state.mapper();
    let (started, started_at) = activity.started();
    let census = state.store().census(TOP_METRICS);
    let hits = activity.rule_hits(&mapper).counts();
    let source_name = match state.mapping_source() {
        MappingSource::None => ("none", String::new()),
        MappingSource::EmbeddedMastodon => ("embedded", mapper.source().to_string()),
        MappingSource::File(path) => ("file", path.display().to_string()),
    };
    let load = activity.last_load();
    let mut counted = 0;
    let rules = mapper
        .rules()
        .iter()
        .zip(hits)
        .map(|(rule, hits)| {
            let series = census
                .by_origin
                .get(&rule.spec.origin)
                .copied()
                .unwrap_or(0);
            counted += series;
            RuleRow {
                index: rule.index,
                position: format!(
                    "{}:{}:{}",
                    mapper.source(),
                    rule.position.line,
                    rule.position.column
                ),
                line: rule.position.line,
                column: rule.position.column,
                pattern: rule.pattern.clone(),
                match_type: match_type(rule.match_type),
                match_metric_type: rule.match_metric_type.map(metric_type),
                action: match rule.action {
                    Action::Map => "map",
                    Action::Drop => "drop",
                },
                name: rule.name_template().to_string(),
                hits,
                series,
            }
        })
        .collect();
    let unmapped_series = census.by_origin.get(&0).copied().unwrap_or(0);
    let total: usize = census.by_origin.values().sum();
    let (lines_total, samples_total) = state.telemetry().totals();
    let rates = activity.rates();
    let (drops, refusals) = drops_and_refusals(state);
    let limits = state.store().config().limits;
    Report {
        version: format!(
            "{} (revision {})",
            env!("CARGO_PKG_VERSION"),
            crate::telemetry::build_info_values()[1]
        ),
        started: rfc3339(started_at),
        uptime_seconds: started.elapsed().as_secs(),
        listeners: state.listeners().to_vec(),
        mapping: Mapping {
            source: source_name.0,
            path: source_name.1,
            rules: mapper.rules().len(),
            warnings: mapper.warnings().iter().map(ToString::to_string).collect(),
            last_load: rfc3339(load.at),
            last_load_error: load.error,
        },
        traffic: Traffic {
            lines_per_second: rates.map(|r| r.0),
            samples_per_second: rates.map(|r| r.1),
            lines_total,
            samples_total,
        },
        drops,
        unmapped: activity
            .top_unmapped(TOP_UNMAPPED)
            .into_iter()
            .map(|e| Unmapped {
                series_name: escape_name(&e.name).into_owned(),
                name: e.name.into(),
                count: e.count,
                error: e.error,
            })
            .collect(),
        rules,
        unmapped_series,
        other_series: total.saturating_sub(counted + unmapped_series),
        refusals,
        series: Series {
            total,
            max_series: limits.max_series,
            max_series_per_metric: limits.max_series_per_metric,
            metrics: census.families,
            biggest: census
                .biggest
                .into_iter()
                .map(|f| Metric {
                    name: f.name.to_string(),
                    kind: f.kind.type_label(),
                    series: f.series,
                })
                .collect(),
        },
    }
}

/// The lines of an explain request: at most [`MAX_EXPLAIN_LINES`] non-empty lines of the first
/// [`MAX_EXPLAIN_BYTES`] bytes.
pub fn explain_lines(input: &str) -> Vec<&str> {
    let mut end = input.len().min(MAX_EXPLAIN_BYTES);
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    input[..end]
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .take(MAX_EXPLAIN_LINES)
        .collect()
}

/// What each line becomes, as `mapping explain` writes it.
pub fn explain(state: &State, input: &str) -> String {
    let mapper = state.mapper();
    explain_lines(input)
        .into_iter()
        .map(|line| crate::explain::explain(&mapper, state.parser(), line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `explain` field of a query string (`/status?explain=…`), decoded.
pub fn explain_query(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "explain")
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_input_is_bounded() {
        let many = "a:1|c\n\n".repeat(500);
        assert_eq!(explain_lines(&many).len(), MAX_EXPLAIN_LINES);
        let long = "é".repeat(MAX_EXPLAIN_BYTES);
        let lines = explain_lines(&long);
        assert!(lines[0].len() <= MAX_EXPLAIN_BYTES);
        assert_eq!(
            explain_query(Some("x=1&explain=a.b%3A1%7Cc%0Ab+c%3A2%7Cg")).as_deref(),
            Some("a.b:1|c\nb c:2|g")
        );
        assert_eq!(explain_query(Some("x=1")), None);
        assert_eq!(explain_query(None), None);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
