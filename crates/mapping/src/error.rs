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
    /// Numbers out of range: quantiles, buckets, scale.
    Range,
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
