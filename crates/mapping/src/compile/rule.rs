//! Compiling one rule of `mappings`: its matcher, name and label templates, observer, scale and TTL.

use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use statsd_spec::Spec;

use super::{Ctx, parse_match_type};
use crate::config::RawMapping;
use crate::glob;
use crate::go_regex;
use crate::mapper::Rule;
use crate::observer::{DefaultObservers, ObserverType, positive, quantiles};
use crate::template::Template;
use crate::{Action, ErrorKind, LoadError, MatchType, MetricType, WarningKind};

/// What a rule inherits from `defaults`.
pub(super) struct RuleDefaults<'a> {
    pub(super) match_type: MatchType,
    pub(super) observers: &'a DefaultObservers,
    pub(super) ttl: Duration,
    pub(super) help: &'a Arc<str>,
}

/// Compiles rule `i`; returns it with its regex (`None` for a glob rule).
pub(super) fn compile_rule(
    ctx: &mut Ctx<'_>,
    i: usize,
    m: RawMapping,
    defaults: &RuleDefaults<'_>,
) -> Result<(Rule, Option<Regex>), LoadError> {
    let prefix = format!("mappings.{i}.");
    let at = |key: &str| format!("{prefix}{key}");
    let position = ctx
        .positions
        .find(&format!("mappings.{i}"))
        .unwrap_or_default();
    let action = match m.action.as_deref() {
        None | Some("") | Some("map") => Action::Map,
        Some("drop") => Action::Drop,
        Some(other) => {
            return Err(ctx.error(
                &at("action"),
                ErrorKind::Value,
                format!("unknown action {other:?} (expected `map` or `drop`)"),
            ));
        }
    };
    let match_type = parse_match_type(m.match_type.as_deref(), defaults.match_type)
        .map_err(|e| ctx.error(&at("match_type"), ErrorKind::Value, e))?;
    let pattern = match (m.match_, match_type) {
        (Some(pattern), _) => pattern,
        (None, MatchType::Glob) => {
            return Err(ctx.error(&at("match"), ErrorKind::Missing, "the rule has no `match`"));
        }
        (None, MatchType::Regex) => {
            // statsd_exporter compiles the empty regex, which matches every name.
            let at_rule = format!("mappings.{i}");
            ctx.warn(
                &at_rule,
                WarningKind::Repaired,
                "the regex rule has no `match`: it matches every name (as in statsd_exporter)",
            );
            String::new()
        }
    };
    let only = match m.match_metric_type.as_deref() {
        None | Some("") => None,
        Some(t) => Some(MetricType::parse(t).ok_or_else(|| {
            ctx.error(
                &at("match_metric_type"),
                ErrorKind::Value,
                format!(
                    "unknown match_metric_type {t:?} (expected `counter`, `gauge` or `observer`)"
                ),
            )
        })?),
    };

    // The matcher, and how templates find groups.
    let regex = match match_type {
        MatchType::Glob => {
            glob::validate(&pattern).map_err(|e| {
                ctx.error(
                    &at("match"),
                    ErrorKind::Glob,
                    format!("invalid glob {pattern:?}: {e}"),
                )
            })?;
            None
        }
        MatchType::Regex => Some(Regex::new(&go_regex::translate(&pattern)).map_err(|e| {
            ctx.error(
                &at("match"),
                ErrorKind::Regex,
                format!("invalid regex {pattern:?}: {e}"),
            )
        })?),
    };
    let groups = regex.as_ref().map_or_else(
        || pattern.split('.').filter(|s| *s == "*").count(),
        |r| r.captures_len() - 1,
    );
    let group_index = |group: &str| -> Option<usize> {
        regex
            .as_ref()
            .and_then(|r| r.capture_names().position(|n| n == Some(group)))
    };

    // Name and labels.
    let name = match m.name {
        Some(n) if !n.is_empty() => n,
        _ if action == Action::Drop => String::new(),
        _ => {
            return Err(ctx.error(
                &at("name"),
                ErrorKind::Missing,
                "the rule has no `name` (only `action: drop` rules may omit it)",
            ));
        }
    };
    let name_template = Template::compile(&name, group_index);
    check_name_template(&name, &name_template)
        .map_err(|e| ctx.error(&at("name"), ErrorKind::Name, e))?;
    let mut labels = Vec::new();
    for (label, value) in m.labels.unwrap_or_default() {
        let path = at(&format!("labels.{label}"));
        let valid = statsd_spec::valid_label_name(&label);
        if label.starts_with("__") && valid {
            // statsd_exporter 0.30 loads it, then fails to register every series of the rule.
            ctx.warn(
                &path,
                WarningKind::Repaired,
                format!("label name {label:?} is reserved by Prometheus (it starts with `__`): the label is left out"),
            );
            continue;
        }
        if !valid {
            return Err(ctx.error(
                &path,
                ErrorKind::LabelName,
                format!("invalid label name {label:?}: label names are letters, digits and `_`, not starting with a digit"),
            ));
        }
        labels.push((Arc::from(label), Template::compile(&value, group_index)));
    }
    for t in std::iter::once(&name_template).chain(labels.iter().map(|(_, t)| t)) {
        if let Some(g) = t.max_group().filter(|&g| g > groups) {
            ctx.warn(
                &at("name"),
                WarningKind::NoEffect,
                format!(
                    "{:?} refers to group {g}, but the match has only {groups}: it expands to \"\"",
                    t.source()
                ),
            );
        }
    }

    // Observer type and options, resolved like statsd_exporter.
    let observer_type = ctx.deprecated(
        &prefix,
        ("observer_type", m.observer_type),
        ("timer_type", m.timer_type),
        false,
    )?;
    let observer_type = ObserverType::parse(observer_type.as_deref())
        .map_err(|e| ctx.error(&at("observer_type"), ErrorKind::Value, e))?;
    let own_quantiles = m
        .summary_options
        .as_ref()
        .and_then(|s| s.quantiles.as_deref())
        .map(quantiles);
    let rule_quantiles = ctx.deprecated(
        &prefix,
        ("summary_options.quantiles", own_quantiles),
        ("quantiles", m.quantiles.as_deref().map(quantiles)),
        true,
    )?;
    let own_buckets = m.histogram_options.as_ref().and_then(|h| h.buckets.clone());
    let rule_buckets = ctx.deprecated(
        &prefix,
        ("histogram_options.buckets", own_buckets),
        ("buckets", m.buckets),
        true,
    )?;
    let mut notes = Vec::new();
    let observer = defaults
        .observers
        .for_rule(
            observer_type,
            m.summary_options,
            m.histogram_options,
            rule_quantiles.filter(|q| !q.is_empty()),
            rule_buckets.filter(|b| !b.is_empty()),
            &mut notes,
        )
        .map_err(|(key, kind, e)| ctx.error(&at(key), kind, e))?;
    ctx.notes(&prefix, notes);
    let scale = match m.scale {
        Some(s) if !s.is_finite() => {
            ctx.warn(
                &at("scale"),
                WarningKind::Repaired,
                format!("scale {s} is not a finite number: ignored (statsd_exporter would store {s} or NaN)"),
            );
            None
        }
        other => other,
    };
    let ttl = match m.ttl {
        Some(t) if t.negative => {
            ctx.warn(
                &at("ttl"),
                WarningKind::Repaired,
                format!(
                    "negative ttl -{:?}: this rule's series never expire (statsd_exporter deletes them at its next sweep, within a second of each update)",
                    t.magnitude
                ),
            );
            Duration::ZERO
        }
        other => positive(other).unwrap_or(defaults.ttl),
    };
    let rule = Rule {
        index: i,
        pattern,
        match_type,
        action,
        honor_labels: m.honor_labels,
        match_metric_type: only,
        scale,
        spec: Spec {
            help: m.help.map_or_else(|| Arc::clone(defaults.help), Arc::from),
            observer,
            ttl,
            generation: 0,
            origin: 0,
        },
        position,
        name: name_template,
        labels,
    };
    Ok((rule, regex))
}

/// statsd_exporter's check of a `name` (`metricNameRE`): letters, digits and `_` around references
/// `$1`, `${1}` — and, as its braces are optional each, `${1` and `$1}`.
static GO_METRIC_NAME: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a constant pattern
    Regex::new(r"^(?:[a-zA-Z_]|\$\{?[0-9]+\}?)(?:[a-zA-Z0-9_]|\$\{?[0-9]+\}?)*$")
        .expect("valid regex")
});

/// A `name` must give a valid metric name: letters, digits and `_` around capture references, not
/// starting with a digit. Whatever statsd_exporter accepts is accepted (its check lets unbalanced
/// braces through); so are `${name}` references, which it refuses.
fn check_name_template(source: &str, template: &Template) -> Result<(), String> {
    if source.is_empty() || GO_METRIC_NAME.is_match(source) {
        return Ok(());
    }
    let literal = template.literal_text();
    if let Some(bad) = literal
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(format!(
            "invalid metric name {source:?}: {bad:?} is not allowed (use letters, digits, `_` and capture references like $1)"
        ));
    }
    if source.as_bytes()[0].is_ascii_digit() {
        return Err(format!(
            "invalid metric name {source:?}: it starts with a digit"
        ));
    }
    Ok(())
}
