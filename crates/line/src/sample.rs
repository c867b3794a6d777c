//! One parsed sample: its kind, value, rate and tags, and what it means to a counter or an observer.

use crate::Tags;

/// The most one sample can stand for: a rate below `1 / MAX_SAMPLE_WEIGHT` counts as that rate, so
/// `@1e-300` cannot push a counter or a count towards overflow (statsd_exporter would add 1e300, or
/// loop 1e300 times).
pub const MAX_SAMPLE_WEIGHT: u64 = 1_000_000;

/// The metric type of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleKind {
    /// `c`: a counter increment.
    Counter,
    /// `g`: a gauge value, or a delta when the value starts with `+` or `-`.
    Gauge,
    /// `ms`: a timing in milliseconds (exported in seconds).
    Timer,
    /// `h`: a histogram observation (exported as is).
    Histogram,
    /// `d`: a distribution observation (exported as is).
    Distribution,
    /// `s`: a set member (counted distinct).
    Set,
}

impl SampleKind {
    /// True for the observer types (`ms`, `h`, `d`).
    pub const fn is_observer(self) -> bool {
        matches!(
            self,
            SampleKind::Timer | SampleKind::Histogram | SampleKind::Distribution
        )
    }

    /// The StatsD type code (`c`, `g`, `ms`, `h`, `d`, `s`).
    pub const fn code(self) -> &'static str {
        match self {
            SampleKind::Counter => "c",
            SampleKind::Gauge => "g",
            SampleKind::Timer => "ms",
            SampleKind::Histogram => "h",
            SampleKind::Distribution => "d",
            SampleKind::Set => "s",
        }
    }

    pub(crate) fn from_code(code: &str) -> Option<Self> {
        // Matched as bytes: string patterns compile to `memcmp` calls, which showed in profiles.
        Some(match *code.as_bytes() {
            [b'c'] => SampleKind::Counter,
            [b'g'] => SampleKind::Gauge,
            [b'm', b's'] => SampleKind::Timer,
            [b'h'] => SampleKind::Histogram,
            [b'd'] => SampleKind::Distribution,
            [b's'] => SampleKind::Set,
            _ => return None,
        })
    }
}

/// One sample of a line. Borrows the line's text (`'a`) and the parsed [`crate::Line`] (`'l`), whose tag set
/// all its samples share.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'l, 'a> {
    /// The StatsD name as sent, tag syntax removed, not escaped (`Mastodon.production.web.…`).
    pub name: &'l str,
    /// The metric type.
    pub kind: SampleKind,
    /// The value as sent (`0.0` for sets, whose members are text).
    pub value: f64,
    /// The value's text as sent (the member, for sets).
    pub raw_value: &'a str,
    /// The value started with `+` or `-`: for gauges, a delta.
    pub relative: bool,
    /// The sample rate in (0, 1]; 1 when absent, zero or invalid.
    pub rate: f64,
    /// An `@rate` component was unparsable or outside (0, 1]: count `invalid_sample_factor` (the sample is kept).
    pub invalid_rate: bool,
    /// Name tags or DogStatsD tags (never both), plus `container_id` from a `c:` component.
    pub tags: &'l Tags<'a>,
}

impl Sample<'_, '_> {
    /// What one sample stands for: `1/rate`, at most [`MAX_SAMPLE_WEIGHT`].
    pub fn weight(&self) -> f64 {
        (1.0 / self.rate).min(MAX_SAMPLE_WEIGHT as f64)
    }

    /// A counter's increment: the value divided by the sample rate (times [`Sample::weight`]).
    pub fn counter_increment(&self) -> f64 {
        // Divided, as statsd_exporter divides (the same rounding), unless the rate is below the clamp.
        if self.rate >= 1.0 / MAX_SAMPLE_WEIGHT as f64 {
            self.value / self.rate
        } else {
            self.value * MAX_SAMPLE_WEIGHT as f64
        }
    }

    /// An observer's observation: milliseconds become seconds for `ms`; `h` and `d` are kept as sent.
    pub fn observation(&self) -> f64 {
        match self.kind {
            SampleKind::Timer => self.value / 1000.0,
            _ => self.value,
        }
    }

    /// How many observations this sample stands for: `floor(1/rate)` for observers (at most
    /// [`MAX_SAMPLE_WEIGHT`]), else 1.
    pub fn repeat(&self) -> u64 {
        if self.kind.is_observer() {
            // rate ∈ (0, 1], so this is ≥ 1, and the weight is clamped.
            (self.weight().floor() as u64).max(1)
        } else {
            1
        }
    }
}
