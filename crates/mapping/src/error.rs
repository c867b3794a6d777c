//! Load errors that name the file, the line and column, and the rule.

use crate::positions::Position;

/// What kind of mistake a [`LoadError`] reports (for tests and tooling; the message says it in words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// Not YAML, a value of the wrong type, or an unknown key.
    Yaml,
    /// A required key is missing (`match`, `name`).
    Missing,
    /// A glob pattern that is not `*` and name segments.
    Glob,
    /// A regex that does not compile.
    Regex,
    /// A `name` template that cannot give a valid metric name.
    Name,
    /// A label name that is not a valid Prometheus label name, or is reserved.
    LabelName,
    /// An unknown value for an enumerated key (`match_type`, `action`, `observer_type`, …).
    Value,
    /// Options that contradict each other (summary options on a histogram rule, …).
    Conflict,
    /// A warning, made an error by `--statsd.mapping-strict` (see [`Warning::into_strict_error`]).
    Strict,
}

/// A mapping file that cannot be loaded. Its `Display` is `file:line:column: [mappings[i]: ]message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{}:{}: {}{message}", position.line, position.column, rule.map(|i| format!("mappings[{i}]: ")).unwrap_or_default())]
pub struct LoadError {
    /// The file name as given.
    pub file: String,
    /// Where the offending key or value is (1-based; 0:0 when the file could not be read).
    pub position: Position,
    /// The index of the offending rule in `mappings`, if the error is in one.
    pub rule: Option<usize>,
    /// What is wrong, in words.
    pub message: String,
    /// The category of the error.
    pub kind: ErrorKind,
}

/// What kind of thing a [`Warning`] points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// A key the schema does not know (a typo, or a setting of another tool); it is ignored.
    UnknownKey,
    /// A key given twice in one mapping; the last value is used.
    DuplicateKey,
    /// A deprecated key (`timer_type`, top-level `quantiles`/`buckets`); it still works.
    Deprecated,
    /// A value statsd_exporter accepts but that cannot work as written (a negative `ttl`, unsorted
    /// buckets, a reserved label name, …); the message says what is used instead.
    Repaired,
    /// A setting without effect (histogram options on a summary rule, a template group that does not
    /// exist, …).
    NoEffect,
}

/// Something in a mapping file that statsd_exporter 0.30 accepts and so do we, but that deserves a
/// look. Its `Display` is `file:line:column: [mappings[i]: ]message`, like [`LoadError`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{}:{}: {}{message}", position.line, position.column, rule.map(|i| format!("mappings[{i}]: ")).unwrap_or_default())]
pub struct Warning {
    /// The file name as given.
    pub file: String,
    /// Where the key or value is (1-based).
    pub position: Position,
    /// The index of the rule in `mappings`, if the warning is about one.
    pub rule: Option<usize>,
    /// What is wrong and what is done about it, in words.
    pub message: String,
    /// The category.
    pub kind: WarningKind,
}

impl Warning {
    /// This warning as the error that `--statsd.mapping-strict` makes of it; `others` more warnings
    /// follow it in the file.
    pub fn into_strict_error(self, others: usize) -> LoadError {
        let more = match others {
            0 => String::new(),
            1 => " (and 1 more warning)".to_string(),
            n => format!(" (and {n} more warnings)"),
        };
        LoadError {
            file: self.file,
            position: self.position,
            rule: self.rule,
            message: format!(
                "{}{more}; --statsd.mapping-strict makes warnings errors",
                self.message
            ),
            kind: ErrorKind::Strict,
        }
    }
}
