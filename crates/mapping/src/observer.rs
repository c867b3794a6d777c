//! How observations of a rule are aggregated, resolved from the file as statsd_exporter resolves it:
//! `observer_type` (or the deprecated `timer_type`), the defaults' and the rule's `summary_options` /
//! `histogram_options` (or the deprecated top-level `quantiles` / `buckets`), with repairs for values
//! statsd_exporter accepts but cannot use.

use std::sync::Arc;
use std::time::Duration;

use statsd_spec::{
    DEFAULT_AGE_BUCKETS, DEFAULT_BUCKETS, DEFAULT_MAX_AGE, DEFAULT_NATIVE_BUCKET_FACTOR,
    DEFAULT_NATIVE_MAX_BUCKETS, DEFAULT_QUANTILES, HistogramOptions, NativeOptions, Observer,
    SummaryOptions,
};

use crate::config::{RawHistogramOptions, RawQuantile, RawSummaryOptions};
use crate::duration::GoDuration;
use crate::{ErrorKind, WarningKind};

/// `observer_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObserverType {
    Summary,
    Histogram,
}

impl ObserverType {
    pub(crate) fn parse(text: Option<&str>) -> Result<Option<Self>, String> {
        match text {
            None | Some("") => Ok(None),
            Some("summary") => Ok(Some(ObserverType::Summary)),
            Some("histogram") => Ok(Some(ObserverType::Histogram)),
            Some(other) => Err(format!(
                "unknown observer_type {other:?} (expected `summary` or `histogram`)"
            )),
        }
    }
}

/// What a resolution notes about a part of the file: the key (relative to the rule or `defaults`), the
/// kind, the message.
pub(crate) type Note = (&'static str, WarningKind, String);

/// A positive duration, or `None` for unset, zero and negative ones (which mean "the default").
pub(crate) fn positive(d: Option<GoDuration>) -> Option<Duration> {
    d.filter(|d| !d.negative && !d.magnitude.is_zero())
        .map(|d| d.magnitude)
}

pub(crate) fn quantiles(raw: &[RawQuantile]) -> Vec<(f64, f64)> {
    raw.iter().map(|q| (q.quantile, q.error)).collect()
}

/// Drops objectives no summary can have (a quantile outside [0, 1], a rank error outside (0, 1)),
/// which statsd_exporter accepts and then misreports; returns a note for each.
fn repair_summary(s: &mut SummaryOptions, notes: &mut Vec<Note>, key: &'static str) {
    s.quantiles.retain(|&(q, e)| {
        let why = if !(0.0..=1.0).contains(&q) {
            format!("quantile {q} is outside [0, 1]")
        } else if !(e > 0.0 && e < 1.0) {
            format!("error {e} of quantile {q} is outside (0, 1)")
        } else {
            return true;
        };
        notes.push((
            key,
            WarningKind::Repaired,
            format!("{why}: this objective is left out"),
        ));
        false
    });
}

/// Makes bucket bounds usable: statsd_exporter accepts unsorted or repeated bounds and then crashes
/// at the first observation; here they are sorted, repeats and NaN removed, with a note. A last
/// bound of +Inf is dropped without one (the Go client drops it too).
fn repair_buckets(b: &mut Vec<f64>, notes: &mut Vec<Note>, key: &'static str) {
    let before = b.clone();
    b.retain(|v| !v.is_nan());
    b.sort_by(f64::total_cmp);
    b.dedup();
    if *b != before || before.iter().any(|v| v.is_nan()) {
        notes.push((
            key,
            WarningKind::Repaired,
            format!(
                "bucket bounds {before:?} must be strictly increasing numbers (statsd_exporter crashes on them at the first observation): using {b:?}"
            ),
        ));
    }
    // A last bound of +Inf is the implicit one every histogram has: dropped, as the Go client drops it
    // (kept, the page had two `le="+Inf"` lines).
    if b.last() == Some(&f64::INFINITY) {
        b.pop();
    }
}

fn negative_max_age(max_age: Option<GoDuration>, default: Duration, notes: &mut Vec<Note>) {
    if let Some(bad) = max_age.filter(|a| a.negative) {
        notes.push((
            "summary_options.max_age",
            WarningKind::Repaired,
            format!(
                "negative max_age -{:?}: using {default:?} (statsd_exporter crashes at the first observation)",
                bad.magnitude
            ),
        ));
    }
}

/// The observer settings of the `defaults` section: what rules inherit, and unmapped metrics use.
#[derive(Debug, Clone)]
pub(crate) struct DefaultObservers {
    pub(crate) observer_type: Option<ObserverType>,
    pub(crate) summary: SummaryOptions,
    pub(crate) buckets: Vec<f64>,
    /// `native_histogram_bucket_factor` (0 or absent: 1.1, as statsd_exporter fills it in).
    pub(crate) native_factor: f64,
    /// `native_histogram_max_buckets` (0 or absent: 256).
    pub(crate) native_max_buckets: u32,
}

impl DefaultObservers {
    /// Resolves the defaults; `quantiles` and `buckets` are the (already de-deprecated) lists.
    pub(crate) fn resolve(
        observer_type: Option<ObserverType>,
        summary: Option<&RawSummaryOptions>,
        histogram: Option<&RawHistogramOptions>,
        quantiles: Option<Vec<(f64, f64)>>,
        buckets: Option<Vec<f64>>,
        notes: &mut Vec<Note>,
    ) -> Self {
        let max_age = summary.and_then(|s| s.max_age);
        negative_max_age(max_age, DEFAULT_MAX_AGE, notes);
        let mut summary = SummaryOptions {
            quantiles: quantiles.unwrap_or_else(|| DEFAULT_QUANTILES.to_vec()),
            max_age: positive(max_age).unwrap_or(DEFAULT_MAX_AGE),
            age_buckets: summary
                .and_then(|s| s.age_buckets)
                .filter(|&b| b > 0)
                .unwrap_or(DEFAULT_AGE_BUCKETS),
        };
        repair_summary(&mut summary, notes, "summary_options");
        let mut buckets = buckets.unwrap_or_else(|| DEFAULT_BUCKETS.to_vec());
        repair_buckets(&mut buckets, notes, "histogram_options");
        Self {
            observer_type,
            summary,
            buckets,
            native_factor: histogram
                .and_then(|h| h.native_histogram_bucket_factor)
                .filter(|&f| f != 0.0)
                .unwrap_or(DEFAULT_NATIVE_BUCKET_FACTOR),
            native_max_buckets: histogram
                .and_then(|h| h.native_histogram_max_buckets)
                .filter(|&m| m > 0)
                .unwrap_or(DEFAULT_NATIVE_MAX_BUCKETS),
        }
    }

    /// A rule's histogram settings: its buckets, and its native-histogram keys where positive, else
    /// the defaults' (statsd_exporter's rule). A bucket factor of 1 or less turns the native histogram
    /// off.
    fn histogram(&self, buckets: Vec<f64>, raw: Option<&RawHistogramOptions>) -> HistogramOptions {
        let factor = raw
            .and_then(|h| h.native_histogram_bucket_factor)
            .filter(|&f| f > 0.0)
            .unwrap_or(self.native_factor);
        let max_buckets = raw
            .and_then(|h| h.native_histogram_max_buckets)
            .filter(|&m| m > 0)
            .unwrap_or(self.native_max_buckets);
        HistogramOptions {
            buckets,
            native: NativeOptions::from_factor(factor, max_buckets),
        }
    }

    /// The observer of unmapped metrics.
    pub(crate) fn observer(&self) -> Observer {
        match self.observer_type {
            Some(ObserverType::Histogram) => {
                Observer::Histogram(Arc::new(self.histogram(self.buckets.clone(), None)))
            }
            _ => Observer::Summary(Arc::new(self.summary.clone())),
        }
    }

    /// statsd_exporter's observer resolution for one rule: its type (else the default's), its options
    /// over the defaults. `quantiles` and `buckets` are the rule's, deprecated top-level lists already
    /// folded in. Errors name the offending key.
    pub(crate) fn for_rule(
        &self,
        observer_type: Option<ObserverType>,
        summary: Option<RawSummaryOptions>,
        histogram: Option<RawHistogramOptions>,
        quantiles: Option<Vec<(f64, f64)>>,
        buckets: Option<Vec<f64>>,
        notes: &mut Vec<Note>,
    ) -> Result<Observer, (&'static str, ErrorKind, String)> {
        match observer_type.or(self.observer_type) {
            Some(ObserverType::Histogram) => {
                if summary.is_some() {
                    return Err((
                        "summary_options",
                        ErrorKind::Conflict,
                        "`summary_options` on a rule whose observer_type is histogram".into(),
                    ));
                }
                let mut buckets = buckets.unwrap_or_else(|| self.buckets.clone());
                repair_buckets(&mut buckets, notes, "histogram_options");
                Ok(Observer::Histogram(Arc::new(
                    self.histogram(buckets, histogram.as_ref()),
                )))
            }
            _ => {
                if observer_type == Some(ObserverType::Summary) && histogram.is_some() {
                    return Err((
                        "histogram_options",
                        ErrorKind::Conflict,
                        "`histogram_options` on a rule whose observer_type is summary".into(),
                    ));
                }
                if histogram.is_some() {
                    notes.push((
                        "histogram_options",
                        WarningKind::NoEffect,
                        "`histogram_options` has no effect: this rule's observers are summaries (set `observer_type: histogram`)".into(),
                    ));
                }
                let s = summary.unwrap_or_default();
                negative_max_age(s.max_age, self.summary.max_age, notes);
                let own = quantiles.is_some();
                let mut settings = SummaryOptions {
                    quantiles: quantiles.unwrap_or_else(|| self.summary.quantiles.clone()),
                    max_age: positive(s.max_age).unwrap_or(self.summary.max_age),
                    age_buckets: s
                        .age_buckets
                        .filter(|&b| b > 0)
                        .unwrap_or(self.summary.age_buckets),
                };
                if own {
                    repair_summary(&mut settings, notes, "summary_options");
                }
                Ok(Observer::Summary(Arc::new(settings)))
            }
        }
    }
}
