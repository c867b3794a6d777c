//! `mapping lint`: problems a mapping file loads with but should not have, each at its
//! `file:line:column`, with a severity.
//!
//! Checks (the name in brackets is printed with each finding):
//! - **[unreachable]** (error): a rule no name can reach, because an earlier rule of the same kind
//!   (glob or regex) whose `match_metric_type` covers it matches every name it matches — an identical
//!   pattern, a glob whose every segment is `*` or the same text, or a catch-all regex (`.*`, `^(.+)$`…).
//!   Decided only where it is certain (in file order; globs under `glob_disable_ordering` are skipped).
//! - **[empty-reference]** (warning): a template reference that names no group, so it expands to
//!   nothing: `$1_x` names the group `1_x` (Go's rule), write `${1}_x`.
//! - **[unbounded-label]** (hint): a label value from a regex group that can match `.`, so it takes any
//!   number of name segments — a cardinality risk if the names vary there (often intended: Rails
//!   controller names span segments), so a hint, once per rule.
//! - **[glob-would-do]** (hint): an anchored regex made of literal segments and whole-segment
//!   `([^.]+)` groups, which a glob rule expresses (globs are matched by a trie, before any regex).
//! - **[name-conflict]** (error): two rules whose fixed names (no `$` reference) collide across types —
//!   a counter `x_count` and a summary `x`, or the same name as a counter and a histogram — or a name
//!   that is one of ours (`reserved`): the store would refuse every sample of the later one.
//! - **[untyped-shared-name]** (warning): two rules give the same fixed name and one has no
//!   `match_metric_type`: a counter and a timer arriving under it would conflict (Mastodon sends both
//!   kinds under one prefix).

use regex_syntax::hir::{Class, Hir, HirKind, Look};

use crate::positions::Positions;
use crate::{Mapper, MatchType, MetricType, Observer, Position, Rule};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The file does something it surely does not mean to (`mapping lint` exits 1).
    Error,
    /// Probably a mistake, or a risk (exit 1 only with `--strict`).
    Warning,
    /// A suggestion (never fails).
    Hint,
}

impl Severity {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Hint => "hint",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// How serious.
    pub severity: Severity,
    /// Which check (`unreachable`, `empty-reference`, …).
    pub check: &'static str,
    /// Where in the file.
    pub position: Position,
    /// The rule concerned (index in the file's `mappings`).
    pub rule: usize,
    /// What is wrong, and what to do.
    pub message: String,
}

/// Regexes that match every StatsD name (names are never empty and hold no newline).
const CATCH_ALL: [&str; 10] = [
    ".*", "^.*$", ".+", "^.+$", "(.*)", "^(.*)$", "(.+)", "^(.+)$", "^.*", "^.+",
];

/// Lints `mapper`, loaded from `text` (for positions). `reserved` are names of our own metrics.
pub fn lint(mapper: &Mapper, text: &str, reserved: &[&str]) -> Vec<Finding> {
    let positions = Positions::index(text);
    let at = |i: usize, key: &str| {
        let path = if key.is_empty() {
            format!("mappings.{i}")
        } else {
            format!("mappings.{i}.{key}")
        };
        positions.find(&path).unwrap_or_default()
    };
    let rules = mapper.rules();
    let mut findings = Vec::new();
    let mut finding = |severity, check, position, rule, message| {
        findings.push(Finding {
            severity,
            check,
            position,
            rule,
            message,
        });
    };

    for (i, rule) in rules.iter().enumerate() {
        // [unreachable]
        if let Some(earlier) = rules[..i]
            .iter()
            .find(|e| covers(e, rule, mapper.glob.ordered()))
        {
            finding(
                Severity::Error,
                "unreachable",
                at(i, "match"),
                i,
                format!(
                    "never used: rule {} (line {}) matches every name `{}` matches, and comes first",
                    earlier.index, earlier.position.line, rule.pattern
                ),
            );
        }
        // [empty-reference]
        let templates = std::iter::once(("name".to_string(), &rule.name))
            .chain(rule.labels.iter().map(|(k, t)| (format!("labels.{k}"), t)));
        for (key, template) in templates {
            for name in template.unresolved() {
                let hint = match name.find(|c: char| !c.is_ascii_digit()) {
                    Some(digits) if digits > 0 => format!(
                        ": write `${{{}}}{}` for group {} followed by `{}`",
                        &name[..digits],
                        &name[digits..],
                        &name[..digits],
                        &name[digits..]
                    ),
                    _ => String::new(),
                };
                finding(
                    Severity::Warning,
                    "empty-reference",
                    at(i, &key),
                    i,
                    format!(
                        "`{}` refers to a group named `{name}`, which does not exist, so it expands to nothing{hint}",
                        template.source()
                    ),
                );
            }
        }
        if rule.match_type == MatchType::Regex {
            let hir = regex_syntax::parse(&crate::go_regex::translate(&rule.pattern)).ok();
            // [unbounded-label]: one finding per rule, at its first such label.
            if let Some(hir) = &hir {
                let unbounded: Vec<&str> = rule
                    .labels
                    .iter()
                    .filter(|(_, t)| {
                        t.groups()
                            .any(|g| g > 0 && capture(hir, g).is_some_and(can_match_dot))
                    })
                    .map(|(label, _)| &**label)
                    .collect();
                if let Some(first) = unbounded.first() {
                    finding(
                        Severity::Hint,
                        "unbounded-label",
                        at(i, &format!("labels.{first}")),
                        i,
                        format!(
                            "label{} `{}` from a group that can span several name segments: as many values as the names there (`([^.]+)` takes one segment)",
                            if unbounded.len() > 1 { "s" } else { "" },
                            unbounded.join("`, `")
                        ),
                    );
                }
            }
            // [glob-would-do]
            if let Some(glob) = hir.as_ref().and_then(as_glob) {
                finding(
                    Severity::Hint,
                    "glob-would-do",
                    at(i, "match"),
                    i,
                    format!("a glob rule would match the same names faster: `{glob}`"),
                );
            }
        }
    }

    // [name-conflict], [untyped-shared-name]: fixed names only.
    let fixed: Vec<(usize, &Rule, String)> = rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.name.groups().next().is_none() && r.name.unresolved().is_empty())
        .map(|(i, r)| (i, r, r.name.literal_text()))
        .filter(|(_, _, n)| !n.is_empty())
        .collect();
    for (k, (i, rule, name)) in fixed.iter().enumerate() {
        let names = produced(rule, name);
        if let Some(ours) = names.iter().find(|n| reserved.contains(&n.as_str())) {
            finding(
                Severity::Error,
                "name-conflict",
                at(*i, "name"),
                *i,
                format!(
                    "`{ours}` is one of statsd-proxy's own metrics: every sample of this rule would be refused"
                ),
            );
        }
        for (j, other, other_name) in &fixed[..k] {
            let kinds = (kind(other), kind(rule));
            if other_name == name
                && (other.match_metric_type.is_none() || rule.match_metric_type.is_none())
            {
                finding(
                    Severity::Warning,
                    "untyped-shared-name",
                    at(*i, "name"),
                    *i,
                    format!(
                        "rule {j} (line {}) gives the same name `{name}`, and one of the two has no match_metric_type: a counter and a timer under it would conflict",
                        other.position.line
                    ),
                );
            } else if let (Some(a), Some(b)) = kinds
                && a != b
                && let Some(clash) = produced(other, other_name)
                    .iter()
                    .find(|n| names.contains(n))
            {
                finding(
                    Severity::Error,
                    "name-conflict",
                    at(*i, "name"),
                    *i,
                    format!(
                        "`{clash}` is also written by rule {j} (line {}) as a {a}: the later type's samples would be refused (write another name, or restrict match_metric_type)",
                        other.position.line
                    ),
                );
            }
        }
    }
    findings.sort_by_key(|f| (f.position.line, f.position.column, f.severity));
    findings
}

/// The Prometheus type a rule's samples get, if its `match_metric_type` fixes it.
fn kind(rule: &Rule) -> Option<&'static str> {
    match rule.match_metric_type? {
        MetricType::Counter => Some("counter"),
        MetricType::Gauge => Some("gauge"),
        MetricType::Observer => Some(match rule.spec.observer {
            Observer::Summary(_) => "summary",
            Observer::Histogram(_) => "histogram",
        }),
    }
}

/// The sample names a rule writes under `name`.
fn produced(rule: &Rule, name: &str) -> Vec<String> {
    let suffixes: &[&str] = match kind(rule) {
        Some("summary") => &["", "_sum", "_count"],
        Some("histogram") => &["", "_sum", "_count", "_bucket"],
        _ => &[""],
    };
    suffixes.iter().map(|s| format!("{name}{s}")).collect()
}

/// Does `earlier` take every name `later` could match (so `later` never applies)?
fn covers(earlier: &Rule, later: &Rule, globs_ordered: bool) -> bool {
    let types =
        earlier.match_metric_type.is_none() || earlier.match_metric_type == later.match_metric_type;
    if !types || earlier.match_type != later.match_type {
        return false;
    }
    match later.match_type {
        MatchType::Regex => {
            earlier.pattern == later.pattern || CATCH_ALL.contains(&earlier.pattern.as_str())
        }
        MatchType::Glob => {
            globs_ordered && {
                let (a, b): (Vec<&str>, Vec<&str>) = (
                    earlier.pattern.split('.').collect(),
                    later.pattern.split('.').collect(),
                );
                a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| *x == "*" || x == y)
            }
        }
    }
}

/// The sub-expression of capture group `index`.
fn capture(hir: &Hir, index: usize) -> Option<&Hir> {
    match hir.kind() {
        HirKind::Capture(c) if c.index as usize == index => Some(&c.sub),
        HirKind::Capture(c) => capture(&c.sub, index),
        HirKind::Repetition(r) => capture(&r.sub, index),
        HirKind::Concat(parts) | HirKind::Alternation(parts) => {
            parts.iter().find_map(|p| capture(p, index))
        }
        _ => None,
    }
}

/// Can `hir` match a text containing `.`?
fn can_match_dot(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Literal(l) => l.0.contains(&b'.'),
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .any(|r| r.start() <= '.' && '.' <= r.end()),
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .any(|r| r.start() <= b'.' && b'.' <= r.end()),
        HirKind::Repetition(r) => r.max != Some(0) && can_match_dot(&r.sub),
        HirKind::Capture(c) => can_match_dot(&c.sub),
        HirKind::Concat(parts) | HirKind::Alternation(parts) => parts.iter().any(can_match_dot),
        HirKind::Empty | HirKind::Look(_) => false,
    }
}

/// The glob an anchored regex of literal segments and whole-segment `([^.]+)` groups amounts to.
fn as_glob(hir: &Hir) -> Option<String> {
    let HirKind::Concat(parts) = hir.kind() else {
        return None;
    };
    let (first, rest) = parts.split_first()?;
    let (last, middle) = rest.split_last()?;
    if !matches!(first.kind(), HirKind::Look(Look::Start))
        || !matches!(last.kind(), HirKind::Look(Look::End))
    {
        return None;
    }
    let mut glob = String::new();
    for part in middle {
        match part.kind() {
            HirKind::Literal(l) => {
                let text = std::str::from_utf8(&l.0).ok()?;
                // Glob segments are letters, digits, `_`, `-` and `:` (and `*`).
                if !text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
                {
                    return None;
                }
                glob.push_str(text);
            }
            HirKind::Capture(c) => {
                let HirKind::Repetition(r) = c.sub.kind() else {
                    return None;
                };
                let HirKind::Class(Class::Unicode(class)) = r.sub.kind() else {
                    return None;
                };
                let all_but_dot = [('\0', '-'), ('/', char::MAX)];
                let ranges: Vec<(char, char)> = class
                    .ranges()
                    .iter()
                    .map(|r| (r.start(), r.end()))
                    .collect();
                if r.min != 1 || r.max.is_some() || !r.greedy || ranges != all_but_dot {
                    return None;
                }
                // A whole segment: after a dot or at the start, before a dot or at the end.
                if !(glob.is_empty() || glob.ends_with('.')) {
                    return None;
                }
                glob.push('*');
            }
            _ => return None,
        }
    }
    // Every `*` must end its segment too.
    let whole = glob.split('.').all(|s| s == "*" || !s.contains('*'));
    (whole && !glob.is_empty() && !glob.starts_with('.')).then_some(glob)
}
