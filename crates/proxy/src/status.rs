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

/// Self-metrics that count something lost or refused, with what the page calls them.
const DROPS: &[(&str, &str)] = &[
    (
        "statsd_exporter_sample_errors_total",
        "malformed samples and lines",
    ),
    ("statsd_exporter_tag_errors_total", "malformed tags"),
    ("statsd_exporter_events_error_total", "refused events"),
    (
        "statsd_exporter_events_conflict_total",
        "type, help and name conflicts",
    ),
    (
        "statsd_proxy_series_limited_total",
        "refused by the series limits",
    ),
    (
        "statsd_exporter_events_actions_total",
        "dropped by a mapping rule",
    ),
    (
        "statsd_exporter_udp_packet_drops_total",
        "UDP datagrams dropped by the kernel",
    ),
    (
        "statsd_exporter_tcp_connection_errors_total",
        "TCP connection errors",
    ),
    (
        "statsd_exporter_tcp_too_long_lines_total",
        "TCP lines too long",
    ),
    (
        "statsd_proxy_receive_errors_total",
        "UDP/Unixgram receive errors",
    ),
    (
        "statsd_proxy_receive_panics_total",
        "UDP/Unixgram receive panics (bugs)",
    ),
    (
        "statsd_proxy_tcp_cut_lines_total",
        "TCP lines cut by a close of ours",
    ),
    (
        "statsd_proxy_tcp_connections_evicted_total",
        "idle TCP connections closed for new ones",
    ),
    (
        "statsd_exporter_relay_long_lines_total",
        "relay: lines too long",
    ),
    (
        "statsd_proxy_relay_dropped_lines_total",
        "relay: lines dropped",
    ),
    ("statsd_proxy_relay_send_errors_total", "relay: send errors"),
    (
        "statsd_proxy_web_unauthorized_total",
        "web: requests without valid credentials",
    ),
    (
        "statsd_proxy_web_rate_limited_total",
        "web: requests over the rate limit",
    ),
    (
        "statsd_proxy_web_auth_busy_total",
        "web: refused, too many password checks waiting",
    ),
    (
        "statsd_proxy_web_tls_handshake_errors_total",
        "web: failed TLS handshakes",
    ),
];

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

/// Every non-zero drop counter, and the refusals by metric among them (most first, bounded).
fn drops_and_refusals(state: &State) -> (Vec<DropCount>, Vec<Refusal>) {
    let mut drops = Vec::new();
    let mut refusals = Vec::new();
    for family in state.telemetry().registry.gather() {
        let Some(&(_, what)) = DROPS.iter().find(|(name, _)| *name == family.name()) else {
            continue;
        };
        if family.get_field_type() != PromType::COUNTER {
            continue;
        }
        for m in family.get_metric() {
            let count = m.get_counter().get_value() as u64;
            let label = |n: &str| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == n)
                    .map(|l| l.value().to_string())
            };
            if count == 0 || label("action").is_some_and(|a| a != "drop") {
                continue;
            }
            match family.name() {
                "statsd_exporter_events_conflict_total" => refusals.push(Refusal {
                    metric: label("metric_name").unwrap_or_default(),
                    reason: "conflict",
                    kind: label("type").unwrap_or_default(),
                    count,
                }),
                "statsd_proxy_series_limited_total" => refusals.push(Refusal {
                    metric: label("metric_name").unwrap_or_default(),
                    reason: "series limit",
                    kind: String::new(),
                    count,
                }),
                _ => {}
            }
            let labels = m
                .get_label()
                .iter()
                .map(|l| format!("{}={:?}", l.name(), l.value()))
                .collect::<Vec<_>>()
                .join(",");
            drops.push(DropCount {
                what,
                metric: family.name().to_string(),
                labels,
                count,
            });
        }
    }
    // Conflicts by metric are listed under refusals; keep the drop list to one row per reason.
    let mut merged: Vec<DropCount> = Vec::new();
    for d in drops {
        let by_metric = matches!(
            d.metric.as_str(),
            "statsd_exporter_events_conflict_total" | "statsd_proxy_series_limited_total"
        );
        match merged
            .iter_mut()
            .find(|m| by_metric && m.metric == d.metric)
        {
            Some(m) => m.count += d.count,
            None if by_metric => merged.push(DropCount {
                labels: String::new(),
                ..d
            }),
            None => merged.push(d),
        }
    }
    refusals.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.metric.cmp(&b.metric)));
    refusals.truncate(MAX_REFUSALS);
    (merged, refusals)
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

/// HTML-escapes `s`.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn uptime(secs: u64) -> String {
    let d = Duration::from_secs(secs);
    humantime::format_duration(d).to_string()
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "—".to_string(), |r| format!("{r:.1}/s"))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:80em}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.4em 0}th,td{padding:.2em .6em;text-align:left;\
vertical-align:top;border-bottom:1px solid #eee}th{background:#f4f4f4}td.n{text-align:right;\
font-variant-numeric:tabular-nums}code,pre{font-family:ui-monospace,monospace;font-size:.92em}\
pre{background:#f7f7f7;padding:.6em;overflow-x:auto}.err{color:#a00}.warn{color:#850}\
.muted{color:#777}textarea{width:100%;font-family:ui-monospace,monospace}\
td code{overflow-wrap:anywhere}";

/// The page: `report`, and the explanation of `explain` (the form's input) if one was asked for.
/// Without an explain request it refreshes itself every 10 s (a meta tag: no script).
pub fn html(report: &Report, explain: Option<(&str, &str)>) -> String {
    let e = escape_html;
    let mut h = String::with_capacity(16 * 1024);
    let refresh = if explain.is_none() {
        "<meta http-equiv=\"refresh\" content=\"10\">"
    } else {
        ""
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}\
         <title>statsd-proxy status</title><style>{STYLE}</style></head><body>\n\
         <h1>statsd-proxy status</h1>\n<p class=\"muted\"><a href=\"/\">Home</a> · \
         <a href=\"/api/v1/status\">JSON</a> · <a href=\"#explain\">Explain</a></p>\n"
    );
    // The proxy.
    let m = &report.mapping;
    let _ = write!(
        h,
        "<h2 id=\"proxy\">Proxy</h2>\n<table>\
         <tr><th>Version</th><td>{}</td></tr>\
         <tr><th>Up since</th><td>{} ({})</td></tr>",
        e(&report.version),
        e(&report.started),
        uptime(report.uptime_seconds)
    );
    for l in &report.listeners {
        let _ = write!(
            h,
            "<tr><th>Listens</th><td>{} <code>{}</code></td></tr>",
            l.protocol,
            e(&l.address)
        );
    }
    let source = match m.source {
        "none" => "none: every metric is unmapped".to_string(),
        "embedded" => format!("embedded <code>{}</code>", e(&m.path)),
        _ => format!("file <code>{}</code>", e(&m.path)),
    };
    let _ = write!(
        h,
        "<tr><th>Mapping</th><td>{source}, {} rules</td></tr>\
         <tr><th>Last load</th><td id=\"last-load\">{} ",
        m.rules,
        e(&m.last_load)
    );
    match &m.last_load_error {
        None => h.push_str("succeeded</td></tr>"),
        Some(err) => {
            let _ = write!(
                h,
                "<span class=\"err\">failed; the previous mapping stays in use:</span>\
                 <pre class=\"err\">{}</pre></td></tr>",
                e(err)
            );
        }
    }
    h.push_str("</table>\n");
    if !m.warnings.is_empty() {
        h.push_str("<p class=\"warn\">Mapping warnings:</p><ul id=\"warnings\">");
        for w in &m.warnings {
            let _ = write!(h, "<li><code>{}</code></li>", e(w));
        }
        h.push_str("</ul>\n");
    }
    // Traffic.
    let t = &report.traffic;
    let _ = write!(
        h,
        "<h2 id=\"traffic\">Traffic</h2>\n<table>\
         <tr><th>Lines</th><td class=\"n\">{}</td><td class=\"n\">{} in total</td></tr>\
         <tr><th>Samples</th><td class=\"n\">{}</td><td class=\"n\">{} in total</td></tr>\
         </table>\n<p class=\"muted\">Rates over the last minute.</p>\n",
        rate(t.lines_per_second),
        t.lines_total,
        rate(t.samples_per_second),
        t.samples_total
    );
    h.push_str("<h3>Drops and refusals</h3>\n");
    if report.drops.is_empty() {
        h.push_str("<p id=\"drops\">None.</p>\n");
    } else {
        h.push_str("<table id=\"drops\"><tr><th>What</th><th>Self-metric</th><th>Count</th></tr>");
        for d in &report.drops {
            let labels = if d.labels.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", d.labels)
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td><code>{}{}</code></td><td class=\"n\">{}</td></tr>",
                e(d.what),
                e(&d.metric),
                e(&labels),
                d.count
            );
        }
        h.push_str("</table>\n");
    }
    // Unmapped names.
    let _ = write!(
        h,
        "<h2 id=\"unmapped\">Top unmapped names</h2>\n<p class=\"muted\">StatsD names no rule \
         matched, most samples first ({} live series). Counts are exact unless marked ±: the list \
         keeps the {TOP_UNMAPPED} most frequent of all names seen in fixed memory.</p>\n",
        report.unmapped_series
    );
    if report.unmapped.is_empty() {
        h.push_str("<p>None.</p>\n");
    } else {
        h.push_str(
            "<table id=\"unmapped-names\"><tr><th>StatsD name</th><th>Exposed as</th>\
             <th>Samples</th></tr>",
        );
        for u in &report.unmapped {
            let error = if u.error > 0 {
                format!(" ±{}", u.error)
            } else {
                String::new()
            };
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td><code>{}</code></td>\
                 <td class=\"n\">{}{error}</td></tr>",
                e(&u.name),
                e(&u.series_name),
                u.count
            );
        }
        h.push_str("</table>\n");
    }
    // Rules.
    h.push_str("<h2 id=\"rules\">Mapping rules</h2>\n");
    if report.rules.is_empty() {
        h.push_str("<p>No rules.</p>\n");
    } else {
        h.push_str(
            "<table id=\"rule-hits\"><tr><th>#</th><th>Line</th><th>Match</th><th>Name</th>\
             <th>Hits</th><th>Live series</th></tr>",
        );
        for r in &report.rules {
            let ty = r
                .match_metric_type
                .map(|t| format!(" <span class=\"muted\">({t})</span>"))
                .unwrap_or_default();
            let name = match r.action {
                "drop" => "<em>drop</em>".to_string(),
                _ => format!("<code>{}</code>", e(&r.name)),
            };
            let _ = write!(
                h,
                "<tr><td class=\"n\">{}</td><td class=\"n\" title=\"{}\">{}:{}</td>\
                 <td><code>{}</code> <span class=\"muted\">{}</span>{ty}</td><td>{name}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                r.index,
                e(&r.position),
                r.line,
                r.column,
                e(&r.pattern),
                r.match_type,
                r.hits,
                r.series
            );
        }
        h.push_str("</table>\n");
    }
    if report.other_series > 0 {
        let _ = writeln!(
            h,
            "<p class=\"muted\">{} live series come from rules no longer in the mapping.</p>",
            report.other_series
        );
    }
    // Refusals by metric.
    h.push_str("<h2 id=\"refusals\">Refusals by metric</h2>\n");
    if report.refusals.is_empty() {
        h.push_str("<p>None.</p>\n");
    } else {
        h.push_str(
            "<table id=\"refusal-list\"><tr><th>Metric</th><th>Reason</th><th>Sample type</th>\
             <th>Samples</th></tr>",
        );
        for r in &report.refusals {
            let metric = if r.metric.is_empty() {
                "<em>new names</em>".to_string()
            } else {
                format!("<code>{}</code>", e(&r.metric))
            };
            let _ = write!(
                h,
                "<tr><td>{metric}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                r.reason,
                e(&r.kind),
                r.count
            );
        }
        h.push_str("</table>\n");
    }
    // Series.
    let s = &report.series;
    let limit = |n: usize| {
        if n == 0 {
            "unlimited".to_string()
        } else {
            n.to_string()
        }
    };
    let _ = write!(
        h,
        "<h2 id=\"series\">Series</h2>\n<p>{} series in {} metrics; limit {} \
         (<code>--statsd.max-series</code>), {} per metric \
         (<code>--statsd.max-series-per-metric</code>).</p>\n",
        s.total,
        s.metrics,
        limit(s.max_series),
        limit(s.max_series_per_metric)
    );
    if !s.biggest.is_empty() {
        h.push_str(
            "<table id=\"biggest\"><tr><th>Metric</th><th>Type</th><th>Series</th>\
             <th>Of the per-metric limit</th></tr>",
        );
        for b in &s.biggest {
            let share = if s.max_series_per_metric == 0 {
                "—".to_string()
            } else {
                format!(
                    "{:.1}%",
                    100.0 * b.series as f64 / s.max_series_per_metric as f64
                )
            };
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{share}</td></tr>",
                e(&b.name),
                b.kind,
                b.series
            );
        }
        h.push_str("</table>\n");
    }
    // Explain.
    let (input, output) = explain.unwrap_or(("", ""));
    let _ = write!(
        h,
        "<h2 id=\"explain\">Explain</h2>\n<p class=\"muted\">Paste StatsD lines (up to \
         {MAX_EXPLAIN_LINES}): see what each becomes under the mapping in use, and which rule did \
         it. Nothing is ingested.</p>\n<form method=\"get\" action=\"/status#explain\">\
         <textarea name=\"explain\" id=\"explain-input\" rows=\"5\">{}</textarea><br>\
         <button type=\"submit\" id=\"explain-submit\">Explain</button></form>\n",
        e(input)
    );
    if explain.is_some() {
        let _ = writeln!(h, "<pre id=\"explain-result\">{}</pre>", e(output));
    }
    h.push_str("</body></html>\n");
    h
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
