//! `statsd-proxy mapping explain`: what a StatsD line turns into, and why.
//!
//! For each sample of a line: how it was read, which rule matched (with its place in the file), and the
//! series it updates (name, labels, type and options), or why it is dropped or refused. It uses the
//! parser, the mapper and the helpers the receive path uses, so what it shows is what the proxy does.

use std::fmt::Write as _;
use std::time::Duration;

use statsd_line::{Parser, SampleKind};
use statsd_mapping::{Mapper, Observer};
use statsd_store::Update;

use crate::route::{self, Labels, Route, metric_type};

fn duration(d: Duration) -> String {
    if d.is_zero() {
        "never".into()
    } else if d.as_secs() > 0 && d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn observer(o: &Observer) -> String {
    match o {
        Observer::Summary(s) => {
            let q: Vec<String> = s
                .quantiles
                .iter()
                .map(|(q, e)| format!("{q}±{e}"))
                .collect();
            format!(
                "summary (quantiles {}; window {}, {} age buckets)",
                q.join(", "),
                duration(s.max_age),
                s.age_buckets
            )
        }
        Observer::Histogram(h) => {
            let b: Vec<String> = h.buckets.iter().map(ToString::to_string).collect();
            let native = match h.native {
                Some(n) => format!(
                    "; native: schema {}, at most {} buckets",
                    n.schema, n.max_buckets
                ),
                None => "; no native histogram".to_string(),
            };
            format!("histogram (buckets {}{native})", b.join(", "))
        }
    }
}

/// The series a resolved sample updates, as `/metrics` writes it: `name{label="value",…}`.
pub fn series_text(name: &str, labels: &mut Labels<'_>) -> String {
    labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let rendered = statsd_exposition::render_label_set(labels.iter().copied());
    if rendered.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{rendered}}}")
    }
}

/// Explains one line as the proxy would read it with `parser` and `mapper`.
pub fn explain(mapper: &Mapper, parser: Parser, line: &str) -> String {
    let mut out = format!("{line}\n");
    let parsed = match parser.parse(line.as_bytes()) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(out, "  refused: {} ({:?})", e.reason, &line[e.span.clone()]);
            return out;
        }
    };
    if parsed.tag_errors() > 0 {
        let _ = writeln!(
            out,
            "  note: {} malformed tag(s) skipped",
            parsed.tag_errors()
        );
    }
    for sample in parsed.samples() {
        let sample = match sample {
            Ok(s) => s,
            Err(e) => {
                let _ = writeln!(
                    out,
                    "  sample refused: {} ({:?})",
                    e.reason,
                    &line[e.span.clone()]
                );
                continue;
            }
        };
        // Declared before `labels`, which borrows the rule's label values from it.
        let mapped = mapper.map(sample.name, metric_type(sample.kind));
        let mut unmapped_name = String::new();
        let mut labels: Labels<'_> = sample
            .tags
            .iter()
            .map(|t| (t.key.as_ref(), t.value))
            .collect();
        let route = route::resolve(
            mapper,
            mapped.as_ref(),
            &sample,
            &mut labels,
            &mut unmapped_name,
        );
        let rule = match &route {
            Route::Dropped { rule } | Route::EmptyName { rule } => Some(*rule),
            Route::Series(s) => s.rule,
        };
        if let Route::Series(s) = &route {
            let read = match s.update {
                Update::Add(v) => format!("counter +{v}"),
                Update::Set(v) => format!("gauge = {v}"),
                Update::Delta(v) => format!("gauge {v:+}"),
                Update::Observe { value, .. } => match sample.kind {
                    SampleKind::Timer => format!("timing {value} s"),
                    _ => format!("observation {value}"),
                },
                Update::Member(m) => format!("set member {m:?}"),
            };
            let rate = match (sample.rate < 1.0, sample.kind.is_observer()) {
                (true, true) => format!(
                    " (sampled at {}: counts as {} observations)",
                    sample.rate, s.events
                ),
                (true, false) => format!(" (sampled at {})", sample.rate),
                (false, _) => String::new(),
            };
            let _ = writeln!(out, "  sample: {read}{rate}, StatsD name {:?}", sample.name);
        }
        if sample.invalid_rate {
            let _ = writeln!(
                out,
                "  note: invalid sample rate, taken as 1 (counted as invalid_sample_factor)"
            );
        }
        match rule {
            Some(rule) => {
                let _ = writeln!(
                    out,
                    "  rule: mappings[{}] at {}:{}:{}, match '{}'",
                    rule.index,
                    mapper.source(),
                    rule.position.line,
                    rule.position.column,
                    rule.pattern
                );
            }
            None => {
                let _ = writeln!(out, "  rule: none matched (unmapped)");
            }
        }
        let series = match route {
            Route::Dropped { .. } => {
                let _ = writeln!(out, "  result: dropped (action: drop)");
                continue;
            }
            Route::EmptyName { .. } => {
                let _ = writeln!(
                    out,
                    "  result: refused: the name template expanded to nothing (empty_metric_name)"
                );
                continue;
            }
            Route::Series(series) => series,
        };
        let kind = match sample.kind {
            SampleKind::Counter => "counter".to_string(),
            SampleKind::Gauge => "gauge".to_string(),
            SampleKind::Set => "gauge (distinct members of the set)".to_string(),
            _ => observer(&series.spec.observer),
        };
        let _ = writeln!(out, "  series: {}", series_text(series.name, &mut labels));
        let scale = series
            .rule
            .and_then(|r| r.scale)
            .map(|s| format!(", values × {s}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  type: {kind}; expires: {}{scale}",
            duration(series.spec.ttl)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mastodon() -> Mapper {
        crate::mappings::embedded_mastodon_mapper()
    }

    #[test]
    fn a_mapped_timer_shows_rule_series_and_type() {
        let text = explain(
            &mastodon(),
            Parser::default(),
            "Mastodon.production.web.HomeController.index.html.total_duration:42|ms",
        );
        assert!(text.contains("  sample: timing 0.042 s"), "{text}");
        assert!(
            text.contains("  rule: mappings[1] at <embedded mappings/mastodon.yaml>:"),
            "{text}"
        );
        assert!(text.contains("  series: mastodon_controller_duration{action=\"index\",controller=\"HomeController\",format=\"html\",mastodon=\"web\",namespace=\"Mastodon.production\"}"), "{text}");
        assert!(text.contains("  type: summary (quantiles 0.5±0.05, 0.9±0.01, 0.99±0.001; window 600s, 5 age buckets); expires: never"), "{text}");
    }

    #[test]
    fn unmapped_dropped_and_refused_lines_say_so() {
        let m = Mapper::from_yaml(
            "mappings:\n  - match: noise.*\n    action: drop\n",
            "m.yaml",
        )
        .unwrap();
        let p = Parser::default();
        let unmapped = explain(&m, p, "app.hits:1|c|@0.5|#env:prod");
        assert!(
            unmapped.contains("sample: counter +2 (sampled at 0.5)"),
            "{unmapped}"
        );
        let timer = explain(&m, p, "t:10|ms|@0.25");
        assert!(
            timer.contains("sample: timing 0.01 s (sampled at 0.25: counts as 4 observations)"),
            "{timer}"
        );
        assert!(
            unmapped.contains("rule: none matched (unmapped)"),
            "{unmapped}"
        );
        assert!(
            unmapped.contains("series: app_hits{env=\"prod\"}"),
            "{unmapped}"
        );
        let dropped = explain(&m, p, "noise.x:1|c");
        assert!(
            dropped.contains("rule: mappings[0] at m.yaml:2:5")
                && dropped.contains("result: dropped"),
            "{dropped}"
        );
        let refused = explain(&m, p, "bad:abc|c");
        assert!(
            refused.contains("sample refused: malformed_value (\"abc\")"),
            "{refused}"
        );
        let line_refused = explain(&m, p, "no colon");
        assert!(
            line_refused.contains("refused: malformed_line"),
            "{line_refused}"
        );
    }
}
