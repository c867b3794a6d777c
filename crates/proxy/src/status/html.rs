//! The `/status` page as HTML (no script, no external assets).

use super::*;

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
