//! statsd_exporter's mapping rules: the YAML file, its validation, and matching.
//!
//! This crate owns the mapping-file schema ([`config`], unknown keys refused), its compilation into an
//! immutable [`Mapper`] (defaults resolved as statsd_exporter resolves them, every error reported with
//! file:line:column and the rule's index, see [`LoadError`]), glob matching ([`glob`]: a segment trie,
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
pub use error::{ErrorKind, LoadError};
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
    warnings: Vec<String>,
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

    fn warn(&self, path: &str, rule: Option<usize>, message: &str) -> String {
        let pos = self.positions.find(path).unwrap_or_default();
        let rule = rule.map(|i| format!("mappings[{i}]: ")).unwrap_or_default();
        format!("{}:{}:{}: {rule}{message}", self.file, pos.line, pos.column)
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
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_yaml::from_str::<Option<RawConfig>>(text)
                .map(Option::unwrap_or_default)
                .map_err(|e| {
                    let position = e
                        .location()
                        .map(|l| Position {
                            line: l.line(),
                            column: l.column(),
                        })
                        .unwrap_or(Position { line: 1, column: 1 });
                    // The position leads the message; drop its repetition inside the text (other
                    // positions, like where a quoted scalar began, stay).
                    let message = e.to_string().replacen(
                        &format!(" at line {} column {}", position.line, position.column),
                        "",
                        1,
                    );
                    LoadError {
                        file: file.to_string(),
                        position,
                        rule: None,
                        message,
                        kind: ErrorKind::Yaml,
                    }
                })?
        };
        Self::compile(raw, &errors)
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
                "`quantiles` is deprecated: use `summary_options.quantiles`",
            ));
            default_quantiles.get_or_insert_with(|| quantiles(legacy));
        }
        let default_summary = SummarySettings {
            quantiles: default_quantiles.unwrap_or_else(|| DEFAULT_QUANTILES.to_vec()),
            max_age: d
                .summary_options
                .as_ref()
                .and_then(|s| s.max_age)
                .filter(|a| !a.is_zero())
                .unwrap_or(DEFAULT_MAX_AGE),
            age_buckets: d
                .summary_options
                .as_ref()
                .and_then(|s| s.age_buckets)
                .filter(|&b| b > 0)
                .unwrap_or(DEFAULT_AGE_BUCKETS),
        };
        check_summary(&default_summary)
            .map_err(|m| errors.at("defaults.summary_options", None, ErrorKind::Range, m))?;
        let mut default_buckets = d
            .histogram_options
            .as_ref()
            .and_then(|h| h.buckets.clone())
            .filter(|b| !b.is_empty());
        if let Some(legacy) = d.buckets.as_ref().filter(|b| !b.is_empty()) {
            warnings.push(errors.warn(
                "defaults.buckets",
                None,
                "`buckets` is deprecated: use `histogram_options.buckets`",
            ));
            default_buckets.get_or_insert_with(|| legacy.clone());
        }
        let default_buckets = default_buckets.unwrap_or_else(|| DEFAULT_BUCKETS.to_vec());
        check_buckets(&default_buckets)
            .map_err(|m| errors.at("defaults.histogram_options", None, ErrorKind::Range, m))?;
        let default_ttl = d.ttl.unwrap_or(Duration::ZERO);
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
                if !valid_label_name(&label) {
                    let why = if label.starts_with("__") {
                        "names starting with `__` are reserved by Prometheus"
                    } else {
                        "label names are letters, digits and `_`, not starting with a digit"
                    };
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
                        &format!("{:?} refers to group {g}, but the match has only {groups}: it expands to \"\"", t.source()),
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
                        "`timer_type` is deprecated: use `observer_type`",
                    ));
                    Some(t)
                }
                (None, None) => None,
            };
            let observer_type = parse_observer_type(observer_type.as_deref())
                .map_err(|m| err("observer_type", ErrorKind::Value, m))?
                .or(default_observer_type);
            let observer = resolve_observer(
                observer_type,
                summary_options,
                histogram_options,
                legacy_quantiles,
                buckets,
                &default_summary,
                &default_buckets,
            )
            .map_err(|(key, kind, m)| err(key, kind, m))?;
            if let Some(note) = observer.1 {
                warnings.push(errors.warn(&at("histogram_options"), Some(i), note));
            }
            for note in observer.2 {
                warnings.push(errors.warn(&at("match"), Some(i), note));
            }
            if let Some(s) = scale
                && !s.is_finite()
            {
                return Err(err(
                    "scale",
                    ErrorKind::Range,
                    format!("scale must be a finite number, not {s}"),
                ));
            }

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
                observer: observer.0,
                ttl: ttl.filter(|t| !t.is_zero()).unwrap_or(default_ttl),
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

    /// Things in the file that work but deserve a look (deprecated keys, references to missing groups),
    /// each prefixed with file:line:column.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
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

fn check_summary(s: &SummarySettings) -> Result<(), String> {
    for &(q, e) in &s.quantiles {
        if !(0.0..=1.0).contains(&q) {
            return Err(format!("quantile {q} is outside [0, 1]"));
        }
        if !(e > 0.0 && e < 1.0) {
            return Err(format!("error {e} of quantile {q} is outside (0, 1)"));
        }
    }
    Ok(())
}

fn check_buckets(b: &[f64]) -> Result<(), String> {
    if let Some(bad) = b.iter().find(|v| v.is_nan()) {
        return Err(format!("bucket bound {bad} is not a number"));
    }
    if let Some(w) = b.windows(2).find(|w| w[0] >= w[1]) {
        return Err(format!(
            "buckets must be strictly increasing ({} then {}); statsd_exporter crashes on this at the first observation",
            w[0], w[1]
        ));
    }
    Ok(())
}

type Resolved = (Observer, Option<&'static str>, Vec<&'static str>);

/// statsd_exporter's observer resolution for one rule. Returns the observer, a note when histogram
/// options are given to a summary rule (accepted, without effect), and deprecation notes.
fn resolve_observer(
    observer_type: Option<ObserverType>,
    summary: Option<RawSummaryOptions>,
    histogram: Option<RawHistogramOptions>,
    legacy_quantiles: Option<Vec<RawQuantile>>,
    legacy_buckets: Option<Vec<f64>>,
    default_summary: &SummarySettings,
    default_buckets: &[f64],
) -> Result<Resolved, (&'static str, ErrorKind, String)> {
    let mut notes = Vec::new();
    if legacy_quantiles.is_some() {
        notes.push(
            "`quantiles` at the top of a rule is deprecated: use `summary_options.quantiles`",
        );
        if summary.as_ref().is_some_and(|s| s.quantiles.is_some()) {
            return Err((
                "quantiles",
                ErrorKind::Conflict,
                "`quantiles` is set both at the top of the rule and in `summary_options`".into(),
            ));
        }
    }
    if legacy_buckets.is_some() {
        notes.push("`buckets` at the top of a rule is deprecated: use `histogram_options.buckets`");
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
            let buckets = histogram
                .and_then(|h| h.buckets)
                .filter(|b| !b.is_empty())
                .or(legacy_buckets.filter(|b| !b.is_empty()))
                .unwrap_or_else(|| default_buckets.to_vec());
            check_buckets(&buckets).map_err(|m| ("histogram_options", ErrorKind::Range, m))?;
            Ok((Observer::Histogram(buckets), None, notes))
        }
        summary_type => {
            if summary_type == Some(ObserverType::Summary) && histogram.is_some() {
                return Err((
                    "histogram_options",
                    ErrorKind::Conflict,
                    "`histogram_options` on a rule whose observer_type is summary".into(),
                ));
            }
            let note = histogram.is_some().then_some(
                "`histogram_options` has no effect: this rule's observers are summaries (set `observer_type: histogram`)",
            );
            let s = summary.unwrap_or_default();
            let settings = SummarySettings {
                quantiles: s
                    .quantiles
                    .as_deref()
                    .filter(|q| !q.is_empty())
                    .map(quantiles)
                    .or(legacy_quantiles
                        .as_deref()
                        .filter(|q| !q.is_empty())
                        .map(quantiles))
                    .unwrap_or_else(|| default_summary.quantiles.clone()),
                max_age: s
                    .max_age
                    .filter(|a| !a.is_zero())
                    .unwrap_or(default_summary.max_age),
                age_buckets: s
                    .age_buckets
                    .filter(|&b| b > 0)
                    .unwrap_or(default_summary.age_buckets),
            };
            check_summary(&settings).map_err(|m| ("summary_options", ErrorKind::Range, m))?;
            Ok((Observer::Summary(settings), note, notes))
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
