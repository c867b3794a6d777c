//! statsd_exporter's mapping rules: the YAML file, its validation, and matching.
//!
//! This crate owns the mapping-file schema ([`config`]), read non-strictly as statsd_exporter 0.30 reads
//! it (unknown and duplicate keys become positioned [`Warning`]s; [`Mapper::strict_error`] turns them
//! into an error for `--statsd.mapping-strict`), its compilation into an immutable [`Mapper`] (defaults
//! resolved as statsd_exporter resolves them, every error reported with file:line:column and the rule's
//! index, see [`LoadError`]), glob matching ([`glob`]: a segment trie,
//! first rule in file order wins), regex matching (unanchored, first rule in file order wins), capture
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
//! assert_eq!(m.labels, [("operation".to_string(), "select".to_string()), ("table".into(), "statuses".into())]);
//! ```

#![forbid(unsafe_code)]

mod cache;
pub mod config;
mod document;
pub mod duration;
mod error;
pub mod glob;
mod positions;
pub mod template;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use regex::Regex;

pub use cache::{DEFAULT_CACHE_SIZE, MappingCache};
pub use error::{ErrorKind, LoadError, Warning, WarningKind};
pub use positions::Position;

use config::{RawConfig, RawHistogramOptions, RawMapping, RawQuantile, RawSummaryOptions};
use glob::GlobIndex;
use template::Template;

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

/// Summary settings, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct SummarySettings {
    /// (quantile, rank error) objectives.
    pub quantiles: Vec<(f64, f64)>,
    /// Sliding window.
    pub max_age: Duration,
    /// Streams in the window.
    pub age_buckets: u32,
}

/// How observations (`ms`, `h`, `d`) are exposed, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Observer {
    /// A summary with these settings.
    Summary(SummarySettings),
    /// A classic histogram with these bucket upper bounds (strictly increasing, `+Inf` implied).
    Histogram(Vec<f64>),
}

/// statsd_exporter's default summary objectives.
pub const DEFAULT_QUANTILES: [(f64, f64); 3] = [(0.5, 0.05), (0.9, 0.01), (0.99, 0.001)];
/// Default summary window.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);
/// Default number of summary age buckets.
pub const DEFAULT_AGE_BUCKETS: u32 = 5;
/// Default histogram buckets (the Prometheus client default).
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Settings that apply to every rule that does not override them, and to unmapped metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// TTL of series (zero: never expire).
    pub ttl: Duration,
    /// Observer settings.
    pub observer: Observer,
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// Index in the file's `mappings`.
    pub index: usize,
    /// `match` as written.
    pub pattern: String,
    /// Glob or regex.
    pub match_type: MatchType,
    /// Map or drop.
    pub action: Action,
    /// HELP text, if set.
    pub help: Option<String>,
    /// Tags win over this rule's labels.
    pub honor_labels: bool,
    /// The sample type this rule is restricted to.
    pub match_metric_type: Option<MetricType>,
    /// How observations are exposed.
    pub observer: Observer,
    /// TTL (the rule's, else the defaults'; zero: never).
    pub ttl: Duration,
    /// Value multiplier.
    pub scale: Option<f64>,
    /// Where the rule starts in the file.
    pub position: Position,
    name: Template,
    labels: Vec<(String, Template)>,
}

/// The result of mapping a StatsD name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// Index of the rule that matched.
    pub rule: usize,
    /// The Prometheus name: the expanded template, escaped (empty if the template expanded to nothing,
    /// which the caller counts as `empty_metric_name`).
    pub name: String,
    /// The rule's labels, expanded, sorted by name.
    pub labels: Vec<(String, String)>,
}

/// Regex rules, tried in file order after the globs: `captures` on each in turn, the first hit wins.
///
/// Measured alternatives (community Mastodon mapping, see BENCHMARKS.md): a `RegexSet` finding every
/// candidate in one pass, an `is_match` pre-check before `captures`, and an ASCII-only twin of each
/// regex for ASCII names were all no faster: the cost is the winning rule's capture extraction (the
/// bounded backtracker on `(.+)` groups), which the per-worker cache takes off the hot path.
#[derive(Debug)]
struct RegexIndex {
    /// (rule index, compiled regex), in file order.
    rules: Vec<(usize, Regex)>,
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// A compiled mapping file. Immutable; share it by `Arc` and replace it whole on reload.
#[derive(Debug)]
pub struct Mapper {
    rules: Vec<Rule>,
    glob: GlobIndex,
    regex: Option<RegexIndex>,
    defaults: Defaults,
    warnings: Vec<Warning>,
    generation: u64,
    /// The file name given at load (for messages).
    source: String,
}

/// Builds [`LoadError`]s for one file.
struct Errors<'a> {
    file: &'a str,
    positions: positions::Positions,
}

impl Errors<'_> {
    fn at(
        &self,
        path: &str,
        rule: Option<usize>,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> LoadError {
        LoadError {
            file: self.file.to_string(),
            position: self
                .positions
                .find(path)
                .unwrap_or(Position { line: 1, column: 1 }),
            rule,
            message: message.into(),
            kind,
        }
    }

    fn warn(
        &self,
        path: &str,
        rule: Option<usize>,
        kind: WarningKind,
        message: impl Into<String>,
    ) -> Warning {
        Warning {
            file: self.file.to_string(),
            position: self.positions.find(path).unwrap_or_default(),
            rule,
            message: message.into(),
            kind,
        }
    }
}

/// Is `name` a valid Prometheus label name that is not reserved (`__…`)?
fn valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    first_ok && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') && !name.starts_with("__")
}

fn quantiles(raw: &[RawQuantile]) -> Vec<(f64, f64)> {
    raw.iter().map(|q| (q.quantile, q.error)).collect()
}

impl Mapper {
    /// A mapper without rules: every metric is unmapped (statsd_exporter without a mapping file).
    pub fn empty() -> Self {
        Self {
            rules: Vec::new(),
            glob: GlobIndex::new(true),
            regex: None,
            defaults: Defaults {
                ttl: Duration::ZERO,
                observer: Observer::Summary(SummarySettings {
                    quantiles: DEFAULT_QUANTILES.to_vec(),
                    max_age: DEFAULT_MAX_AGE,
                    age_buckets: DEFAULT_AGE_BUCKETS,
                }),
            },
            warnings: Vec::new(),
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            source: String::new(),
        }
    }

    /// Reads and compiles a mapping file.
    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| LoadError {
            file: file.clone(),
            position: Position::default(),
            rule: None,
            message: format!("cannot read the mapping file: {e}"),
            kind: ErrorKind::Io,
        })?;
        Self::from_yaml(&text, &file)
    }

    /// Compiles mapping YAML; `file` names it in error messages.
    pub fn from_yaml(text: &str, file: &str) -> Result<Self, LoadError> {
        let errors = Errors {
            file,
            positions: positions::Positions::index(text),
        };
        let (value, issues) = document::read(text).map_err(|e| LoadError {
            file: file.to_string(),
            position: e.position,
            rule: None,
            message: format!("invalid YAML: {}", e.message),
            kind: ErrorKind::Yaml,
        })?;
        let raw: RawConfig = if value.is_null() {
            RawConfig::default()
        } else {
            serde_path_to_error::deserialize(value).map_err(|e| {
                // `mappings[3].ttl` → `mappings.3.ttl`, the form positions are recorded under.
                let path = e.path().to_string();
                let dotted = path.replace('[', ".").replace(']', "");
                let rule = dotted
                    .strip_prefix("mappings.")
                    .and_then(|r| r.split('.').next())
                    .and_then(|i| i.parse().ok());
                errors.at(
                    &dotted,
                    rule,
                    ErrorKind::Yaml,
                    format!("{path}: {}", e.into_inner()),
                )
            })?
        };
        let mut warnings: Vec<Warning> = issues
            .into_iter()
            .map(|issue| {
                let rule = issue
                    .path
                    .strip_prefix("mappings.")
                    .and_then(|r| r.split('.').next())
                    .and_then(|i| i.parse().ok());
                let (kind, message) = match issue.kind {
                    document::IssueKind::UnknownKey => (
                        WarningKind::UnknownKey,
                        format!(
                            "unknown key `{}` ignored (statsd_exporter ignores it too)",
                            issue.path
                        ),
                    ),
                    document::IssueKind::DuplicateKey => (
                        WarningKind::DuplicateKey,
                        format!("duplicate key `{}`: the last value is used", issue.path),
                    ),
                };
                Warning {
                    file: file.to_string(),
                    position: issue.position,
                    rule,
                    message,
                    kind,
                }
            })
            .collect();
        let mut mapper = Self::compile(raw, &errors)?;
        warnings.append(&mut mapper.warnings);
        warnings.sort_by_key(|w| (w.position.line, w.position.column));
        mapper.warnings = warnings;
        Ok(mapper)
    }

    fn compile(raw: RawConfig, errors: &Errors<'_>) -> Result<Self, LoadError> {
        let mut warnings = Vec::new();
        let d = raw.defaults;

        // Defaults, resolved as statsd_exporter does, including its deprecated keys.
        let default_observer_type = match (&d.observer_type, &d.timer_type) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(t)) => {
                warnings.push(errors.warn(
                    "defaults.timer_type",
                    None,
                    WarningKind::Deprecated,
                    "`timer_type` is deprecated: use `observer_type`",
                ));
                Some(t.clone())
            }
            (None, None) => None,
        };
        let default_observer_type = parse_observer_type(default_observer_type.as_deref())
            .map_err(|m| errors.at("defaults.observer_type", None, ErrorKind::Value, m))?;
        let default_match_type = match d.match_type.as_deref() {
            None | Some("") | Some("glob") => MatchType::Glob,
            Some("regex") => MatchType::Regex,
            Some(other) => {
                return Err(errors.at(
                    "defaults.match_type",
                    None,
                    ErrorKind::Value,
                    format!("unknown match_type {other:?} (expected `glob` or `regex`)"),
                ));
            }
        };
        let mut default_quantiles = d
            .summary_options
            .as_ref()
            .and_then(|s| s.quantiles.as_deref())
            .filter(|q| !q.is_empty())
            .map(quantiles);
        if let Some(legacy) = d.quantiles.as_deref().filter(|q| !q.is_empty()) {
            warnings.push(errors.warn(
                "defaults.quantiles",
                None,
                WarningKind::Deprecated,
                "`quantiles` is deprecated: use `summary_options.quantiles`",
            ));
            default_quantiles.get_or_insert_with(|| quantiles(legacy));
        }
        let default_max_age = d.summary_options.as_ref().and_then(|s| s.max_age);
        if let Some(bad) = default_max_age.filter(|a| a.negative) {
            warnings.push(errors.warn(
                "defaults.summary_options.max_age",
                None,
                WarningKind::Repaired,
                format!("negative max_age -{:?}: using {DEFAULT_MAX_AGE:?} (statsd_exporter crashes at the first observation)", bad.magnitude),
            ));
        }
        let mut default_summary = SummarySettings {
            quantiles: default_quantiles.unwrap_or_else(|| DEFAULT_QUANTILES.to_vec()),
            max_age: positive(default_max_age).unwrap_or(DEFAULT_MAX_AGE),
            age_buckets: d
                .summary_options
                .as_ref()
                .and_then(|s| s.age_buckets)
                .filter(|&b| b > 0)
                .unwrap_or(DEFAULT_AGE_BUCKETS),
        };
        for note in repair_summary(&mut default_summary) {
            warnings.push(errors.warn(
                "defaults.summary_options",
                None,
                WarningKind::Repaired,
                note,
            ));
        }
        let mut default_buckets = d
            .histogram_options
            .as_ref()
            .and_then(|h| h.buckets.clone())
            .filter(|b| !b.is_empty());
        if let Some(legacy) = d.buckets.as_ref().filter(|b| !b.is_empty()) {
            warnings.push(errors.warn(
                "defaults.buckets",
                None,
                WarningKind::Deprecated,
                "`buckets` is deprecated: use `histogram_options.buckets`",
            ));
            default_buckets.get_or_insert_with(|| legacy.clone());
        }
        let mut default_buckets = default_buckets.unwrap_or_else(|| DEFAULT_BUCKETS.to_vec());
        if let Some(note) = repair_buckets(&mut default_buckets) {
            warnings.push(errors.warn(
                "defaults.histogram_options",
                None,
                WarningKind::Repaired,
                note,
            ));
        }
        if let Some(bad) = d.ttl.filter(|t| t.negative) {
            warnings.push(errors.warn(
                "defaults.ttl",
                None,
                WarningKind::Repaired,
                format!(
                    "negative ttl -{:?}: series never expire (as in statsd_exporter)",
                    bad.magnitude
                ),
            ));
        }
        let default_ttl = positive(d.ttl).unwrap_or(Duration::ZERO);
        let defaults = Defaults {
            ttl: default_ttl,
            observer: match default_observer_type {
                Some(ObserverType::Histogram) => Observer::Histogram(default_buckets.clone()),
                _ => Observer::Summary(default_summary.clone()),
            },
        };

        let mut glob = GlobIndex::new(!d.glob_disable_ordering);
        let mut regex_rules: Vec<(usize, Regex)> = Vec::new();
        let mut rules = Vec::with_capacity(raw.mappings.len());

        for (i, m) in raw.mappings.into_iter().enumerate() {
            let at = |key: &str| format!("mappings.{i}.{key}");
            let err =
                |key: &str, kind, message: String| errors.at(&at(key), Some(i), kind, message);
            let position = errors
                .positions
                .find(&format!("mappings.{i}"))
                .unwrap_or_default();
            let RawMapping {
                match_,
                name,
                labels,
                honor_labels,
                match_type,
                match_metric_type,
                action,
                help,
                observer_type,
                timer_type,
                buckets,
                quantiles: legacy_quantiles,
                ttl,
                scale,
                summary_options,
                histogram_options,
            } = m;

            let Some(pattern) = match_ else {
                return Err(err(
                    "match",
                    ErrorKind::Missing,
                    "the rule has no `match`".into(),
                ));
            };
            let action = match action.as_deref() {
                None | Some("") | Some("map") => Action::Map,
                Some("drop") => Action::Drop,
                Some(other) => {
                    return Err(err(
                        "action",
                        ErrorKind::Value,
                        format!("unknown action {other:?} (expected `map` or `drop`)"),
                    ));
                }
            };
            let match_type = match match_type.as_deref() {
                None | Some("") => default_match_type,
                Some("glob") => MatchType::Glob,
                Some("regex") => MatchType::Regex,
                Some(other) => {
                    return Err(err(
                        "match_type",
                        ErrorKind::Value,
                        format!("unknown match_type {other:?} (expected `glob` or `regex`)"),
                    ));
                }
            };
            let only = match match_metric_type.as_deref() {
                None | Some("") => None,
                Some(t) => Some(MetricType::parse(t).ok_or_else(|| {
                    err(
                        "match_metric_type",
                        ErrorKind::Value,
                        format!("unknown match_metric_type {t:?} (expected `counter`, `gauge` or `observer`)"),
                    )
                })?),
            };

            // The matcher, and how templates find groups.
            let regex = match match_type {
                MatchType::Glob => {
                    glob::validate(&pattern).map_err(|m| {
                        err(
                            "match",
                            ErrorKind::Glob,
                            format!("invalid glob {pattern:?}: {m}"),
                        )
                    })?;
                    None
                }
                MatchType::Regex => Some(Regex::new(&pattern).map_err(|e| {
                    err(
                        "match",
                        ErrorKind::Regex,
                        format!("invalid regex {pattern:?}: {e}"),
                    )
                })?),
            };
            let wildcards = pattern.split('.').filter(|s| *s == "*").count();
            let group_index = |group: &str| -> Option<usize> {
                regex
                    .as_ref()
                    .and_then(|r| r.capture_names().position(|n| n == Some(group)))
            };
            let groups = regex.as_ref().map_or(wildcards, |r| r.captures_len() - 1);

            // Name and labels.
            let name = match name {
                Some(n) if !n.is_empty() => n,
                _ if action == Action::Drop => String::new(),
                _ => {
                    return Err(err(
                        "name",
                        ErrorKind::Missing,
                        "the rule has no `name` (only `action: drop` rules may omit it)".into(),
                    ));
                }
            };
            let name_template = Template::compile(&name, group_index);
            check_name_template(&name, &name_template)
                .map_err(|m| err("name", ErrorKind::Name, m))?;
            let mut label_templates = Vec::new();
            for (label, value) in labels.unwrap_or_default() {
                if label.starts_with("__")
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    // statsd_exporter 0.30 loads it, then fails to register every series of the rule.
                    warnings.push(errors.warn(
                        &at(&format!("labels.{label}")),
                        Some(i),
                        WarningKind::Repaired,
                        format!("label name {label:?} is reserved by Prometheus (it starts with `__`): the label is left out"),
                    ));
                    continue;
                }
                if !valid_label_name(&label) {
                    let why = "label names are letters, digits and `_`, not starting with a digit";
                    return Err(err(
                        &format!("labels.{label}"),
                        ErrorKind::LabelName,
                        format!("invalid label name {label:?}: {why}"),
                    ));
                }
                label_templates.push((label, Template::compile(&value, group_index)));
            }
            for t in std::iter::once(&name_template).chain(label_templates.iter().map(|(_, t)| t)) {
                if let Some(g) = t.max_group()
                    && g > groups
                {
                    warnings.push(errors.warn(
                        &at("name"),
                        Some(i),
                        WarningKind::NoEffect,
                        format!("{:?} refers to group {g}, but the match has only {groups}: it expands to \"\"", t.source()),
                    ));
                }
            }

            // Observer type and options, resolved like statsd_exporter.
            let observer_type = match (observer_type, timer_type) {
                (Some(t), _) => Some(t),
                (None, Some(t)) => {
                    warnings.push(errors.warn(
                        &at("timer_type"),
                        Some(i),
                        WarningKind::Deprecated,
                        "`timer_type` is deprecated: use `observer_type`",
                    ));
                    Some(t)
                }
                (None, None) => None,
            };
            let observer_type = parse_observer_type(observer_type.as_deref())
                .map_err(|m| err("observer_type", ErrorKind::Value, m))?
                .or(default_observer_type);
            if let Some(bad) = summary_options
                .as_ref()
                .and_then(|s| s.max_age)
                .filter(|a| a.negative)
            {
                warnings.push(errors.warn(
                    &at("summary_options.max_age"),
                    Some(i),
                    WarningKind::Repaired,
                    format!(
                        "negative max_age -{:?}: using {:?} (statsd_exporter crashes at the first observation)",
                        bad.magnitude, default_summary.max_age
                    ),
                ));
            }
            let (observer, notes) = resolve_observer(
                observer_type,
                summary_options,
                histogram_options,
                legacy_quantiles,
                buckets,
                &default_summary,
                &default_buckets,
            )
            .map_err(|(key, kind, m)| err(key, kind, m))?;
            for (key, kind, note) in notes {
                warnings.push(errors.warn(&at(key), Some(i), kind, note));
            }
            let scale = match scale {
                Some(s) if !s.is_finite() => {
                    warnings.push(errors.warn(
                        &at("scale"),
                        Some(i),
                        WarningKind::Repaired,
                        format!("scale {s} is not a finite number: ignored (statsd_exporter would store {s} or NaN)"),
                    ));
                    None
                }
                other => other,
            };
            let ttl = match ttl {
                Some(t) if t.negative => {
                    warnings.push(errors.warn(
                        &at("ttl"),
                        Some(i),
                        WarningKind::Repaired,
                        format!("negative ttl -{:?}: this rule's series never expire (as in statsd_exporter)", t.magnitude),
                    ));
                    Duration::ZERO
                }
                other => positive(other).unwrap_or(default_ttl),
            };

            match match_type {
                MatchType::Glob => {
                    glob.add(&pattern, i, only);
                }
                MatchType::Regex => {
                    if let Some(r) = regex {
                        regex_rules.push((i, r));
                    }
                }
            }
            rules.push(Rule {
                index: i,
                pattern,
                match_type,
                action,
                help,
                honor_labels,
                match_metric_type: only,
                observer,
                ttl,
                scale,
                position,
                name: name_template,
                labels: label_templates,
            });
        }

        let regex = (!regex_rules.is_empty()).then_some(RegexIndex { rules: regex_rules });
        Ok(Self {
            rules,
            glob,
            regex,
            defaults,
            warnings,
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            source: errors.file.to_string(),
        })
    }

    /// The compiled rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The settings for unmapped metrics.
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// Things in the file that statsd_exporter 0.30 accepts and so do we, but that deserve a look
    /// (unknown and duplicate keys, deprecated keys, repaired values, references to missing groups), in
    /// file order, each displayed with file:line:column.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The error `--statsd.mapping-strict` makes of this file's warnings: the first one, naming how
    /// many follow; `None` when there are none.
    pub fn strict_error(&self) -> Option<LoadError> {
        let first = self.warnings.first()?.clone();
        Some(first.into_strict_error(self.warnings.len() - 1))
    }

    /// The file name the mapping was loaded from ("" for [`Mapper::empty`]).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// A number unique to this mapper (caches use it to notice a reload).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Maps a StatsD name of type `ty`: glob rules first, then regex rules, each in their order.
    pub fn map(&self, name: &str, ty: MetricType) -> Option<Mapped> {
        if let Some(m) = self.glob.find(name, ty) {
            let rule = &self.rules[m.rule];
            let group = |i: usize| match i {
                0 => Some(name),
                i => m.captures.get(i - 1).copied(),
            };
            return Some(rule.expand(group));
        }
        let regex = self.regex.as_ref()?;
        for (index, re) in &regex.rules {
            let rule = &self.rules[*index];
            if rule.match_metric_type.is_some_and(|t| t != ty) {
                continue;
            }
            // `captures` fails as fast as `is_match` when there is no match (both start with the same
            // DFA scan); a separate `is_match` would scan the winner twice.
            if let Some(caps) = re.captures(name) {
                return Some(rule.expand(|g| caps.get(g).map(|m| m.as_str())));
            }
        }
        None
    }
}

impl Rule {
    fn expand<'a>(&self, group: impl Fn(usize) -> Option<&'a str> + Copy) -> Mapped {
        let mut raw_name = String::new();
        self.name.expand_into(&mut raw_name, group);
        let name = statsd_line::escape_name(&raw_name).into_owned();
        let mut labels: Vec<(String, String)> = self
            .labels
            .iter()
            .map(|(k, t)| (k.clone(), t.expand(group)))
            .collect();
        labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Mapped {
            rule: self.index,
            name,
            labels,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObserverType {
    Summary,
    Histogram,
}

fn parse_observer_type(text: Option<&str>) -> Result<Option<ObserverType>, String> {
    match text {
        None | Some("") => Ok(None),
        Some("summary") => Ok(Some(ObserverType::Summary)),
        Some("histogram") => Ok(Some(ObserverType::Histogram)),
        Some(other) => Err(format!(
            "unknown observer_type {other:?} (expected `summary` or `histogram`)"
        )),
    }
}

/// A positive duration, or `None` for unset, zero and negative ones (which mean "the default").
fn positive(d: Option<duration::GoDuration>) -> Option<Duration> {
    d.filter(|d| !d.negative && !d.magnitude.is_zero())
        .map(|d| d.magnitude)
}

/// Drops objectives no summary can have (a quantile outside [0, 1], a rank error outside (0, 1)),
/// which statsd_exporter accepts and then misreports; returns a note for each.
fn repair_summary(s: &mut SummarySettings) -> Vec<String> {
    let mut notes = Vec::new();
    s.quantiles.retain(|&(q, e)| {
        let why = if !(0.0..=1.0).contains(&q) {
            format!("quantile {q} is outside [0, 1]")
        } else if !(e > 0.0 && e < 1.0) {
            format!("error {e} of quantile {q} is outside (0, 1)")
        } else {
            return true;
        };
        notes.push(format!("{why}: this objective is left out"));
        false
    });
    notes
}

/// Makes bucket bounds usable: statsd_exporter accepts unsorted or repeated bounds and then crashes
/// at the first observation; here they are sorted, repeats and NaN removed, with a note.
fn repair_buckets(b: &mut Vec<f64>) -> Option<String> {
    let before = b.clone();
    b.retain(|v| !v.is_nan());
    b.sort_by(f64::total_cmp);
    b.dedup();
    (*b != before || before.iter().any(|v| v.is_nan())).then(|| {
        format!(
            "bucket bounds {before:?} must be strictly increasing numbers (statsd_exporter crashes on them at the first observation): using {b:?}"
        )
    })
}

/// What [`resolve_observer`] notes about a rule: the key, the kind, the message.
type Note = (&'static str, WarningKind, String);

/// statsd_exporter's observer resolution for one rule. Returns the observer and notes (deprecated
/// keys, options without effect, repaired values).
fn resolve_observer(
    observer_type: Option<ObserverType>,
    summary: Option<RawSummaryOptions>,
    histogram: Option<RawHistogramOptions>,
    legacy_quantiles: Option<Vec<RawQuantile>>,
    legacy_buckets: Option<Vec<f64>>,
    default_summary: &SummarySettings,
    default_buckets: &[f64],
) -> Result<(Observer, Vec<Note>), (&'static str, ErrorKind, String)> {
    let mut notes: Vec<Note> = Vec::new();
    if legacy_quantiles.is_some() {
        notes.push((
            "quantiles",
            WarningKind::Deprecated,
            "`quantiles` at the top of a rule is deprecated: use `summary_options.quantiles`"
                .into(),
        ));
        if summary.as_ref().is_some_and(|s| s.quantiles.is_some()) {
            return Err((
                "quantiles",
                ErrorKind::Conflict,
                "`quantiles` is set both at the top of the rule and in `summary_options`".into(),
            ));
        }
    }
    if legacy_buckets.is_some() {
        notes.push((
            "buckets",
            WarningKind::Deprecated,
            "`buckets` at the top of a rule is deprecated: use `histogram_options.buckets`".into(),
        ));
        if histogram.as_ref().is_some_and(|h| h.buckets.is_some()) {
            return Err((
                "buckets",
                ErrorKind::Conflict,
                "`buckets` is set both at the top of the rule and in `histogram_options`".into(),
            ));
        }
    }
    match observer_type {
        Some(ObserverType::Histogram) => {
            if summary.is_some() {
                return Err((
                    "summary_options",
                    ErrorKind::Conflict,
                    "`summary_options` on a rule whose observer_type is histogram".into(),
                ));
            }
            let mut buckets = histogram
                .and_then(|h| h.buckets)
                .filter(|b| !b.is_empty())
                .or(legacy_buckets.filter(|b| !b.is_empty()))
                .unwrap_or_else(|| default_buckets.to_vec());
            if let Some(note) = repair_buckets(&mut buckets) {
                notes.push(("histogram_options", WarningKind::Repaired, note));
            }
            Ok((Observer::Histogram(buckets), notes))
        }
        summary_type => {
            if summary_type == Some(ObserverType::Summary) && histogram.is_some() {
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
            let own_quantiles = s
                .quantiles
                .as_deref()
                .filter(|q| !q.is_empty())
                .or(legacy_quantiles.as_deref().filter(|q| !q.is_empty()));
            let mut settings = SummarySettings {
                quantiles: own_quantiles
                    .map(quantiles)
                    .unwrap_or_else(|| default_summary.quantiles.clone()),
                max_age: positive(s.max_age).unwrap_or(default_summary.max_age),
                age_buckets: s
                    .age_buckets
                    .filter(|&b| b > 0)
                    .unwrap_or(default_summary.age_buckets),
            };
            if own_quantiles.is_some() {
                for note in repair_summary(&mut settings) {
                    notes.push(("summary_options", WarningKind::Repaired, note));
                }
            }
            Ok((Observer::Summary(settings), notes))
        }
    }
}

/// A `name` must give a valid metric name: letters, digits and `_` around capture references, not
/// starting with a digit (statsd_exporter's rule, which also allows `${name}` references here).
fn check_name_template(source: &str, template: &Template) -> Result<(), String> {
    if source.is_empty() {
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
