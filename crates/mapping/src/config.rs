//! The mapping file as written: raw serde structs, statsd_exporter's schema.
//!
//! The structs refuse unknown keys, but they never see one: the non-strict reader (`document.rs`) sets unknown and
//! duplicate keys aside as warnings first, as statsd_exporter 0.30's non-strict YAML decoding ignores
//! them. Nothing here is used at runtime; [`crate::Mapper::from_yaml`] compiles these into immutable
//! rules.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::duration::GoDuration;

/// A whole mapping file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Settings every rule (and every unmapped metric) inherits.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// The rules, in file order (order decides which rule wins).
    #[serde(default)]
    pub mappings: Vec<RawMapping>,
}

/// The `defaults` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// `histogram` or `summary` (default): how timers, histograms and distributions are exposed.
    pub observer_type: Option<String>,
    /// Deprecated name of `observer_type` (accepted with a warning).
    pub timer_type: Option<String>,
    /// Deprecated: use `histogram_options.buckets`.
    pub buckets: Option<Vec<f64>>,
    /// Deprecated: use `summary_options.quantiles`.
    pub quantiles: Option<Vec<RawQuantile>>,
    /// `glob` (default) or `regex`: how `match` is read when a rule does not say.
    pub match_type: Option<String>,
    /// When true, the most specific glob rule wins instead of the first in file order.
    #[serde(default)]
    pub glob_disable_ordering: bool,
    /// Series not updated for this long are removed (`0s`, the default, keeps them forever).
    #[serde(default, with = "crate::duration::option")]
    pub ttl: Option<GoDuration>,
    /// Summary settings for rules that set none.
    pub summary_options: Option<RawSummaryOptions>,
    /// Histogram settings for rules that set none.
    pub histogram_options: Option<RawHistogramOptions>,
}

/// One rule of `mappings`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMapping {
    /// The StatsD name pattern: a glob (`a.*.c`, `*` = one dot-separated segment) or a regex.
    #[serde(rename = "match")]
    pub match_: Option<String>,
    /// The Prometheus name, with `$1`, `${1}`, `${name}` references to captures.
    pub name: Option<String>,
    /// Labels to add, values with capture references. Label names must be valid Prometheus names.
    pub labels: Option<BTreeMap<String, String>>,
    /// Let tags from the StatsD line override this rule's labels of the same name.
    #[serde(default)]
    pub honor_labels: bool,
    /// `glob` or `regex` (default: `defaults.match_type`).
    pub match_type: Option<String>,
    /// Only apply to `counter`, `gauge` or `observer` samples.
    pub match_metric_type: Option<String>,
    /// `map` (default) or `drop`: drop discards the samples (counted).
    pub action: Option<String>,
    /// HELP text of the metric family.
    pub help: Option<String>,
    /// `histogram` or `summary` (default: `defaults.observer_type`).
    pub observer_type: Option<String>,
    /// Deprecated name of `observer_type`.
    pub timer_type: Option<String>,
    /// Deprecated: use `histogram_options.buckets`.
    pub buckets: Option<Vec<f64>>,
    /// Deprecated: use `summary_options.quantiles`.
    pub quantiles: Option<Vec<RawQuantile>>,
    /// Series expire this long after their last update (default: `defaults.ttl`).
    #[serde(default, with = "crate::duration::option")]
    pub ttl: Option<GoDuration>,
    /// Multiply every value by this (e.g. `0.001` for ms in a histogram sent with `|h`).
    pub scale: Option<f64>,
    /// Summary settings (only with a summary observer).
    pub summary_options: Option<RawSummaryOptions>,
    /// Histogram settings (only with a histogram observer).
    pub histogram_options: Option<RawHistogramOptions>,
}

/// One summary objective.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuantile {
    /// The quantile, in [0, 1].
    pub quantile: f64,
    /// Allowed rank error, in (0, 1).
    pub error: f64,
}

/// `summary_options`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSummaryOptions {
    /// Objectives (default 0.5/0.05, 0.9/0.01, 0.99/0.001).
    pub quantiles: Option<Vec<RawQuantile>>,
    /// Sliding window length (default 10m).
    #[serde(default, with = "crate::duration::option")]
    pub max_age: Option<GoDuration>,
    /// Streams the window is split into (default 5).
    pub age_buckets: Option<u32>,
    /// Observations buffered before compression (accepted for compatibility; we always use 500).
    pub buf_cap: Option<u32>,
}

/// `histogram_options`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHistogramOptions {
    /// Bucket upper bounds (default .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10).
    pub buckets: Option<Vec<f64>>,
    /// Native-histogram growth factor between buckets (default 1.1, schema 3; 1 or less: no native
    /// histogram). Served in the protobuf format only.
    pub native_histogram_bucket_factor: Option<f64>,
    /// Most buckets of a native histogram (default 256); beyond, its resolution is halved.
    pub native_histogram_max_buckets: Option<u32>,
}
