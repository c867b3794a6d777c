//! What an update is and what it may be refused for: family kinds, updates, refusals, limits and
//! the store's settings.

use std::time::Duration;

use statsd_exposition::FamilyType;

use crate::{
    DEFAULT_MAX_SERIES, DEFAULT_MAX_SERIES_PER_METRIC, DEFAULT_SET_WINDOW, Observer, Spec,
};

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Counter (`c`).
    Counter,
    /// Gauge (`g`).
    Gauge,
    /// Summary (observers: `ms`, `h`, `d`, by default).
    Summary,
    /// Classic histogram (observers, when the mapping says `observer_type: histogram`).
    Histogram,
    /// Distinct count of a StatsD set (`s`), exposed as a gauge.
    Set,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [
        Kind::Counter,
        Kind::Gauge,
        Kind::Summary,
        Kind::Histogram,
        Kind::Set,
    ];

    pub(crate) fn family_type(self) -> FamilyType {
        match self {
            Kind::Counter => FamilyType::Counter,
            Kind::Gauge | Kind::Set => FamilyType::Gauge,
            Kind::Summary => FamilyType::Summary,
            Kind::Histogram => FamilyType::Histogram,
        }
    }

    /// statsd_exporter's event type for this kind (`counter`, `gauge`, `observer`; `set` is ours): the
    /// `type` label of `statsd_exporter_events_total` and `statsd_exporter_events_conflict_total`.
    pub const fn event_type(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary | Kind::Histogram => "observer",
            Kind::Set => "set",
        }
    }

    /// The `type` label of `statsd_exporter_metrics_total`.
    pub const fn type_label(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
            Kind::Histogram => "histogram",
            Kind::Set => "set",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The sample names a family of this kind writes besides its own name.
    pub(crate) fn suffixes(self) -> &'static [&'static str] {
        match self {
            Kind::Counter | Kind::Gauge | Kind::Set => &[],
            Kind::Summary => &["_sum", "_count"],
            Kind::Histogram => &["_bucket", "_sum", "_count"],
        }
    }
}

/// One update to a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Update<'a> {
    /// Add to a counter (must not be negative).
    Add(f64),
    /// Set a gauge.
    Set(f64),
    /// Add to a gauge (a `+`/`-` StatsD value).
    Delta(f64),
    /// Observe `value`, standing for `weight` observations.
    Observe {
        /// The observed value.
        value: f64,
        /// How many observations it stands for (≥ 1).
        weight: u64,
    },
    /// Add a member to a set.
    Member(&'a str),
}

impl Update<'_> {
    /// The family type this update needs, observers taking theirs from `spec`.
    pub fn kind(&self, spec: &Spec) -> Kind {
        match self {
            Update::Add(_) => Kind::Counter,
            Update::Set(_) | Update::Delta(_) => Kind::Gauge,
            Update::Observe { .. } => match spec.observer {
                Observer::Summary(_) => Kind::Summary,
                Observer::Histogram(_) => Kind::Histogram,
            },
            Update::Member(_) => Kind::Set,
        }
    }
}

/// Why an update was refused. Every refusal is counted by the caller; none reaches the exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The name already holds a family of another type (the first type seen wins).
    #[error("metric already exists with type {}", existing.type_label())]
    TypeConflict {
        /// The type the family already has.
        existing: Kind,
    },
    /// The name, or a sample name its family would write (`_sum`, `_count`, `_bucket`), is written by
    /// another family or is one of our own metrics.
    #[error("metric name collides with another family's samples or a self-metric")]
    NameCollision,
    /// The family exists with another HELP text.
    #[error("help text differs from the family's")]
    HelpConflict,
    /// A counter cannot go down.
    #[error("counter increment is negative")]
    NegativeCounter,
    /// The value, or the counter or gauge it would be added to, would not be a finite number.
    #[error("value would overflow to infinity")]
    Overflow,
    /// The metric name is empty.
    #[error("empty metric name")]
    EmptyName,
    /// A label name is reserved: `__…`, `quantile` on a summary, `le` on a histogram.
    #[error("reserved label name")]
    ReservedLabel,
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("invalid label name")]
    InvalidLabel,
    /// Two labels of one sample have the same name (callers merge them first; this is the guard).
    #[error("duplicate label name")]
    DuplicateLabel,
    /// A new series would have more than [`crate::MAX_LABELS_PER_SERIES`] labels.
    #[error("too many labels")]
    TooManyLabels,
    /// A new series would have a label value longer than [`crate::MAX_LABEL_VALUE_BYTES`].
    #[error("label value too long")]
    LabelValueTooLong,
    /// Creating the series would exceed a cardinality limit; existing series keep updating.
    #[error("series limit reached")]
    SeriesLimit {
        /// The metric already has series (false: a new name refused by the store-wide limit).
        family_exists: bool,
    },
}

/// Cardinality limits (0: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Series in the whole store.
    pub max_series: usize,
    /// Series of one metric name.
    pub max_series_per_metric: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_series: DEFAULT_MAX_SERIES,
            max_series_per_metric: DEFAULT_MAX_SERIES_PER_METRIC,
        }
    }
}

/// Store settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Cardinality limits.
    pub limits: Limits,
    /// Sliding window of sets.
    pub set_window: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            set_window: DEFAULT_SET_WINDOW,
        }
    }
}
