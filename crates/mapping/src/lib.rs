//! statsd_exporter's mapping rules: the YAML file, its validation, and matching.
//!
//! This crate owns the mapping-file schema ([`config`]), read non-strictly as statsd_exporter 0.30 reads
//! it (`document`: unknown and duplicate keys become positioned [`Warning`]s; [`Mapper::strict_error`]
//! turns them into an error for `--statsd.mapping-strict`), its compilation into an immutable [`Mapper`]
//! (`compile`, with observers resolved in `observer` as statsd_exporter resolves them; every error
//! reported with file:line:column and the rule's index, see [`LoadError`]); each [`Rule`] carries its
//! whole route: action, labels, `honor_labels`, `scale` and the [`Spec`] of its series. Glob matching
//! ([`glob`]: a segment trie, first rule in file order wins), regex matching (unanchored, first rule in file order wins), capture
//! templates with Go's rules ([`template`]), and a per-worker result cache ([`MappingCache`]). It knows
//! nothing of storage or I/O beyond reading the file.
//!
//! ```
//! use statsd_mapping::{Mapper, MetricType};
//!
//! let yaml = r#"
//! mappings:
//!   - match: "Mastodon.production.db.tables.*.queries.*.duration"
//!     name: mastodon_db_operation
//!     labels: { table: "$1", operation: "$2" }
//! "#;
//! let mapper = Mapper::from_yaml(yaml, "example.yaml").expect("valid mapping");
//! let m = mapper
//!     .map("Mastodon.production.db.tables.statuses.queries.select.duration", MetricType::Observer)
//!     .expect("matches");
//! assert_eq!(m.name, "mastodon_db_operation");
//! assert_eq!(m.labels[..], [("operation".into(), "select".to_string()), ("table".into(), "statuses".into())]);
//! ```

#![forbid(unsafe_code)]

mod cache;
mod compile;
pub mod config;
mod document;
pub mod duration;
mod error;
pub mod glob;
mod go_regex;
pub mod lint;
mod mapper;
mod observer;
mod positions;
mod simple_regex;
pub mod template;

pub use cache::{DEFAULT_CACHE_SIZE, MappingCache};
pub use error::{ErrorKind, LoadError, Warning, WarningKind};
pub use mapper::{Mapped, Mapper, Rule};
pub use positions::Position;
pub use statsd_spec::{
    DEFAULT_AGE_BUCKETS, DEFAULT_BUCKETS, DEFAULT_HELP, DEFAULT_MAX_AGE,
    DEFAULT_NATIVE_BUCKET_FACTOR, DEFAULT_NATIVE_MAX_BUCKETS, DEFAULT_QUANTILES, HistogramOptions,
    NativeOptions, Observer, Spec, SummaryOptions,
};

/// The sample types a rule can be restricted to (`match_metric_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `c` samples.
    Counter,
    /// `g` samples (and sets, which are exposed as gauges).
    Gauge,
    /// `ms`, `h` and `d` samples.
    Observer,
}

impl MetricType {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "counter" => Some(MetricType::Counter),
            "gauge" => Some(MetricType::Gauge),
            // `timer` is what statsd_exporter called observers before v0.13.
            "observer" | "timer" => Some(MetricType::Observer),
            _ => None,
        }
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Expose the sample under the rule's name and labels.
    Map,
    /// Discard the sample (counted in `statsd_exporter_events_actions_total{action="drop"}`).
    Drop,
}

/// How a rule's `match` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchType {
    /// Dot-separated segments, `*` for one segment.
    Glob,
    /// An unanchored regular expression.
    Regex,
}
