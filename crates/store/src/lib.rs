//! Where samples become Prometheus series.
//!
//! This crate owns series identity (metric name + label pairs sorted by name, hashed once per update),
//! the sharded map that holds them, each series' state (counters and gauges as atomic `f64`s, classic
//! histograms as atomic bucket counts, summaries as a sliding-window quantile sketch, see [`summary`],
//! sets as a sliding-window distinct count, see [`set`]), expiry (TTL), cardinality limits, and the
//! checks that keep the exposition valid. It does not parse, map, or do I/O, and has no async
//! dependency.
//!
//! **`/metrics` never breaks.** Everything that would make the text format invalid or ambiguous is
//! refused when the sample arrives, with a [`Refusal`] the caller counts: a second type for a name (the
//! first type seen wins); a name that collides with a sample name another family writes (`x_sum` as a
//! counter while `x` is a summary, and the reverse); a HELP text other than the family's; one of our own
//! self-metric names ([`Store::reserve_names`]); a label name that is invalid or reserved (`__…`,
//! `quantile` on a summary, `le` on a histogram); an empty name. Label-name sets may differ within a
//! family.
//!
//! **Concurrency.** Series live in 64 shards chosen by their hash. Updating an existing series takes its
//! shard's read side and one atomic operation on the series (summaries and sets also lock their own
//! series). The read side is a `crossbeam_utils::sync::ShardedLock`: each thread locks a sub-lock of its
//! own, so readers on different cores never write the same cache line and never wait for each other —
//! only a series *creation* in that shard (which takes all sub-locks) can make them wait. Measured on two
//! cores (BENCHMARKS.md): a plain `RwLock` scaled 1.1× because its lock word bounced between cores; a
//! lock-free map (papaya) scaled but cost 2.8× more per update (entering its epoch guard); this scales
//! 1.6× at the single-thread cost of the `RwLock`. Creating a series locks its family (one mutex per
//! name) and its shard; creating a family also locks the name-collision index.
//!
//! **Rendering.** Each family keeps its series in a list sorted by their pre-rendered label text (sorted
//! again only after it changed), so a scrape sorts the families by name and then writes each series'
//! stored prefix and its value.
//!
//! ```
//! use statsd_store::{Spec, Store, Update};
//!
//! let store = Store::new();
//! let spec = Spec::default(); // statsd_exporter's help text, default summaries, no TTL
//! store.update("foo", &mut [], Update::Add(2.0), &spec).expect("new counter");
//! store.update("bar", &mut [("env", "prod")], Update::Observe { value: 0.25, weight: 1 }, &spec).expect("new summary");
//! let mut out = String::new();
//! store.render(&mut out);
//! assert!(out.contains("\nfoo 2\n"));
//! assert!(out.contains("bar_sum{env=\"prod\"} 0.25\n"));
//! ```

#![forbid(unsafe_code)]

pub mod set;
pub mod summary;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_utils::sync::ShardedLock;
use parking_lot::{Mutex, RwLock};
use smallvec::SmallVec;
use statsd_exposition::{MetricType, render_label_set, write_header, write_sample, write_value};

pub use set::{DEFAULT_SET_WINDOW, Set};
pub use statsd_spec::{DEFAULT_HELP, Observer, Spec, SummaryOptions};
pub use summary::Summary;
/// Default cap on the number of series in the store (`--statsd.max-series`).
pub const DEFAULT_MAX_SERIES: usize = 100_000;
/// Default cap on the number of series of one metric name (`--statsd.max-series-per-metric`).
pub const DEFAULT_MAX_SERIES_PER_METRIC: usize = 20_000;
/// Number of series shards: a power of two well above the number of cores, so creations (which lock a
/// shard's writers' side) rarely stall updates of other series.
pub const SERIES_SHARDS: usize = 64;
/// Number of family-table shards.
pub const FAMILY_SHARDS: usize = 16;

/// A source of time, injectable so that time-dependent behaviour is tested without sleeping.
pub trait Clock: std::fmt::Debug + Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock for tests: starts at the instant it is made and moves only when told.
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    offset_ms: AtomicU64,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            offset_ms: AtomicU64::new(0),
        }
    }
}

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + Duration::from_millis(self.offset_ms.load(Ordering::SeqCst))
    }
}

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

    fn metric_type(self) -> MetricType {
        match self {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge | Kind::Set => MetricType::Gauge,
            Kind::Summary => MetricType::Summary,
            Kind::Histogram => MetricType::Histogram,
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

    fn index(self) -> usize {
        self as usize
    }

    /// The sample names a family of this kind writes besides its own name.
    fn suffixes(self) -> &'static [&'static str] {
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
    /// The metric name is empty.
    #[error("empty metric name")]
    EmptyName,
    /// A label name is reserved: `__…`, `quantile` on a summary, `le` on a histogram.
    #[error("reserved label name")]
    ReservedLabel,
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("invalid label name")]
    InvalidLabel,
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

/// A lock-free `f64` cell.
#[derive(Debug, Default)]
struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn new(v: f64) -> Self {
        Self(AtomicU64::new(v.to_bits()))
    }
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    fn add(&self, v: f64) {
        // The closure always returns Some, so fetch_update cannot fail.
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }
}

/// A classic histogram: per-bucket counts (not cumulative; made cumulative when rendered), sum, count.
/// Every field is atomic, so observing takes no lock. A scrape racing an observation may see the new
/// count before the new sum; the next scrape is consistent again.
#[derive(Debug)]
struct Histogram {
    bounds: Arc<[f64]>,
    /// One per bound, plus the `+Inf` bucket.
    counts: Box<[AtomicU64]>,
    sum: AtomicF64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: Arc<[f64]>) -> Self {
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self {
            bounds,
            counts,
            sum: AtomicF64::new(0.0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: f64, weight: u64) {
        // First bucket whose upper bound is ≥ value (`le` is inclusive); NaN goes to +Inf.
        let i = self.bounds.partition_point(|&b| b < value);
        self.counts[i].fetch_add(weight, Ordering::Relaxed);
        self.sum.add(value * weight as f64);
        self.count.fetch_add(weight, Ordering::Relaxed);
    }
}

/// Series state. The large states are boxed so that a counter series stays small.
#[derive(Debug)]
enum State {
    Counter(AtomicF64),
    Gauge(AtomicF64),
    Summary(Box<Mutex<Summary>>),
    Histogram(Box<Histogram>),
    Set(Box<Mutex<Set>>),
}

/// One series: its family, its label set pre-rendered for the exposition (also its identity), its state
/// and when it was last updated.
#[derive(Debug)]
struct Series {
    family: Arc<Family>,
    /// `k="v",…` as written between braces, rendered once at creation.
    rendered: Box<str>,
    hash: u64,
    state: State,
    /// Store-clock milliseconds of the last update.
    last_seen: AtomicU64,
    /// Milliseconds of inactivity after which the series is removed (0: never).
    ttl_ms: u64,
}

/// Does the rendered label text `k="v",…` hold exactly `labels` (sorted), value escapes included?
fn rendered_matches(rendered: &str, labels: &[(&str, &str)]) -> bool {
    let mut rest = rendered.as_bytes();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            let Some(r) = rest.strip_prefix(b",") else {
                return false;
            };
            rest = r;
        }
        let Some(r) = rest.strip_prefix(k.as_bytes()) else {
            return false;
        };
        let Some(r) = r.strip_prefix(b"=\"") else {
            return false;
        };
        rest = r;
        let mut value = v.as_bytes();
        // Compare runs without escapes directly; escaped bytes one by one.
        while !value.is_empty() {
            let run = value
                .iter()
                .position(|b| matches!(b, b'\\' | b'"' | b'\n'))
                .unwrap_or(value.len());
            let Some(r) = rest.strip_prefix(&value[..run]) else {
                return false;
            };
            rest = r;
            value = &value[run..];
            if let Some((&b, tail)) = value.split_first() {
                let escaped: &[u8] = match b {
                    b'\\' => b"\\\\",
                    b'"' => b"\\\"",
                    _ => b"\\n",
                };
                let Some(r) = rest.strip_prefix(escaped) else {
                    return false;
                };
                rest = r;
                value = tail;
            }
        }
        let Some(r) = rest.strip_prefix(b"\"") else {
            return false;
        };
        rest = r;
    }
    rest.is_empty()
}

/// The series of one family, in render order once sorted.
#[derive(Debug, Default)]
struct Members {
    list: Vec<Arc<Series>>,
    sorted: bool,
    /// The family has been removed from the table: creators must look it up again.
    removed: bool,
    /// Some series has a TTL (the sweeper skips families without).
    has_ttl: bool,
}

/// A metric family: name, type, help, and its series.
#[derive(Debug)]
struct Family {
    name: Arc<str>,
    kind: Kind,
    help: Arc<str>,
    members: Mutex<Members>,
}

impl Family {
    /// Refuses an update of another type, or from a rule with another HELP text.
    fn accepts(&self, kind: Kind, spec: &Spec) -> Result<(), Refusal> {
        if self.kind != kind {
            Err(Refusal::TypeConflict {
                existing: self.kind,
            })
        } else if !Arc::ptr_eq(&self.help, &spec.help) && *self.help != *spec.help {
            Err(Refusal::HelpConflict)
        } else {
            Ok(())
        }
    }
}

/// Identity of a series being looked up, borrowed from the sample.
struct Key<'k> {
    name: &'k str,
    labels: &'k [(&'k str, &'k str)],
}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write(self.name.as_bytes());
        for (k, v) in self.labels {
            // 0xFF never occurs in UTF-8, so the separators make the encoding unambiguous.
            h.write_u8(0xFF);
            h.write(k.as_bytes());
            h.write_u8(0xFF);
            h.write(v.as_bytes());
        }
    }
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type ShardMap = HashMap<u64, SmallVec<[Arc<Series>; 1]>, BuildHasherDefault<IdentityHasher>>;
type FamilyMap = HashMap<Arc<str>, Arc<Family>, foldhash::fast::FixedState>;

/// The series store. Share it by `Arc`; every method takes `&self`.
pub struct Store {
    shards: Box<[ShardedLock<ShardMap>]>,
    families: Box<[RwLock<FamilyMap>]>,
    /// Every sample name written (family names and their suffixed names) and our own metric names, to
    /// refuse collisions.
    names: Mutex<HashSet<Box<str>, foldhash::fast::FixedState>>,
    hasher: foldhash::fast::FixedState,
    clock: Arc<dyn Clock>,
    epoch: Instant,
    /// Coarse store time in milliseconds since `epoch`, advanced by [`Store::tick`].
    now_ms: AtomicU64,
    config: Config,
    series: AtomicUsize,
    by_kind: [AtomicUsize; 5],
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("series", &self.len())
            .field("config", &self.config)
            .finish()
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Series point to their family and families list their series: break the cycles.
        for shard in self.families.iter() {
            for family in shard.read().values() {
                family.members.lock().list.clear();
            }
        }
    }
}

fn valid_label_name(name: &str) -> bool {
    let mut b = name.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

impl Store {
    /// A store with default limits on the system clock.
    pub fn new() -> Self {
        Self::with_config(Config::default(), Arc::new(SystemClock))
    }

    /// A store with `config`, reading time from `clock`.
    pub fn with_config(config: Config, clock: Arc<dyn Clock>) -> Self {
        let epoch = clock.now();
        Self {
            shards: (0..SERIES_SHARDS)
                .map(|_| ShardedLock::new(ShardMap::default()))
                .collect(),
            families: (0..FAMILY_SHARDS)
                .map(|_| RwLock::new(FamilyMap::default()))
                .collect(),
            names: Mutex::new(HashSet::default()),
            hasher: foldhash::fast::FixedState::with_seed(0x5eed_57a7_5d00_0001),
            clock,
            epoch,
            now_ms: AtomicU64::new(0),
            config,
            series: AtomicUsize::new(0),
            by_kind: Default::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> Config {
        self.config
    }

    /// Refuses these names (our own metrics) to StatsD series, so a scrape never holds two families of
    /// one name.
    pub fn reserve_names<S: Into<Box<str>>>(&self, names: impl IntoIterator<Item = S>) {
        let mut index = self.names.lock();
        for n in names {
            index.insert(n.into());
        }
    }

    /// Number of series held.
    pub fn len(&self) -> usize {
        self.series.load(Ordering::Relaxed)
    }

    /// True when no series is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Series held, by kind.
    pub fn len_by_kind(&self) -> [(Kind, usize); 5] {
        Kind::ALL.map(|k| (k, self.by_kind[k.index()].load(Ordering::Relaxed)))
    }

    /// Advances the store's coarse clock (used for TTLs) to the clock's now. The server calls this
    /// every second, before [`Store::expire`].
    pub fn tick(&self) {
        let ms = self
            .clock
            .now()
            .saturating_duration_since(self.epoch)
            .as_millis();
        self.now_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn series_shard(&self, hash: u64) -> &ShardedLock<ShardMap> {
        &self.shards[(hash as usize) % self.shards.len()]
    }

    fn family_shard(&self, name: &str) -> &RwLock<FamilyMap> {
        &self.families[(self.hasher.hash_one(name) as usize) % self.families.len()]
    }

    /// Applies `update` to the series `name{labels}`, creating it from `spec` if needed. `labels` is
    /// sorted by name in place (names must be unique).
    pub fn update(
        &self,
        name: &str,
        labels: &mut [(&str, &str)],
        update: Update<'_>,
        spec: &Spec,
    ) -> Result<(), Refusal> {
        if name.is_empty() {
            return Err(Refusal::EmptyName);
        }
        if let Update::Add(v) = update
            && v < 0.0
        {
            return Err(Refusal::NegativeCounter);
        }
        let kind = update.kind(spec);
        labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let key = Key { name, labels };
        let hash = self.hasher.hash_one(&key);
        {
            let shard = self
                .series_shard(hash)
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = shard.get(&hash).and_then(|bucket| {
                bucket
                    .iter()
                    .find(|s| *s.family.name == *name && rendered_matches(&s.rendered, labels))
            }) {
                return self.apply_existing(series, kind, update, spec);
            }
        }
        self.create(hash, key, kind, update, spec)
    }

    fn apply_existing(
        &self,
        series: &Series,
        kind: Kind,
        update: Update<'_>,
        spec: &Spec,
    ) -> Result<(), Refusal> {
        series.family.accepts(kind, spec)?;
        self.apply(series, update);
        Ok(())
    }

    fn apply(&self, series: &Series, update: Update<'_>) {
        series
            .last_seen
            .store(self.now_ms.load(Ordering::Relaxed), Ordering::Relaxed);
        match (&series.state, update) {
            (State::Counter(c), Update::Add(v)) => c.add(v),
            (State::Gauge(g), Update::Set(v)) => g.set(v),
            (State::Gauge(g), Update::Delta(v)) => g.add(v),
            (State::Summary(s), Update::Observe { value, weight }) => {
                s.lock().observe(value, weight, self.clock.now())
            }
            (State::Histogram(h), Update::Observe { value, weight }) => h.observe(value, weight),
            (State::Set(s), Update::Member(m)) => s.lock().insert(m, self.clock.now()),
            // Callers check that the family's kind is the update's.
            _ => debug_assert!(false, "update kind does not match series kind"),
        }
    }

    /// The family `name` of `kind`, created if new. Refuses type, help and name collisions, and a new
    /// name when the store is full.
    fn family(&self, name: &str, kind: Kind, spec: &Spec) -> Result<Arc<Family>, Refusal> {
        let shard = self.family_shard(name);
        if let Some(f) = shard.read().get(name) {
            f.accepts(kind, spec)?;
            return Ok(Arc::clone(f));
        }
        let max = self.config.limits.max_series;
        if max > 0 && self.len() >= max {
            return Err(Refusal::SeriesLimit {
                family_exists: false,
            });
        }
        // Lock order: family shard, then the name index.
        let mut table = shard.write();
        if let Some(f) = table.get(name) {
            f.accepts(kind, spec)?;
            return Ok(Arc::clone(f));
        }
        let mut names = self.names.lock();
        let suffixed: SmallVec<[String; 3]> = kind
            .suffixes()
            .iter()
            .map(|s| format!("{name}{s}"))
            .collect();
        let taken = std::iter::once(name)
            .chain(suffixed.iter().map(String::as_str))
            .any(|n| names.contains(n));
        if taken {
            return Err(Refusal::NameCollision);
        }
        let family_name: Arc<str> = Arc::from(name);
        for n in std::iter::once(name.to_string()).chain(suffixed) {
            names.insert(n.into_boxed_str());
        }
        let family = Arc::new(Family {
            name: Arc::clone(&family_name),
            kind,
            help: Arc::clone(&spec.help),
            members: Mutex::new(Members::default()),
        });
        table.insert(family_name, Arc::clone(&family));
        Ok(family)
    }

    /// The slow path: a series seen for the first time.
    fn create(
        &self,
        hash: u64,
        key: Key<'_>,
        kind: Kind,
        update: Update<'_>,
        spec: &Spec,
    ) -> Result<(), Refusal> {
        for (k, _) in key.labels {
            if !valid_label_name(k) {
                return Err(Refusal::InvalidLabel);
            }
            if k.starts_with("__")
                || (kind == Kind::Summary && *k == "quantile")
                || (kind == Kind::Histogram && *k == "le")
            {
                return Err(Refusal::ReservedLabel);
            }
        }
        loop {
            let family = self.family(key.name, kind, spec)?;
            // Lock order: family members, then the series shard (the sweeper takes them in this order).
            let mut members = family.members.lock();
            if members.removed {
                // The sweeper removed this (empty) family since we looked it up: look again.
                continue;
            }
            let mut shard = self
                .series_shard(hash)
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let bucket = shard.entry(hash).or_default();
            if let Some(series) = bucket
                .iter()
                .find(|s| *s.family.name == *key.name && rendered_matches(&s.rendered, key.labels))
            {
                // Created by another thread since our read.
                let series = Arc::clone(series);
                drop(shard);
                drop(members);
                return self.apply_existing(&series, kind, update, spec);
            }
            let per_metric = self.config.limits.max_series_per_metric;
            if per_metric > 0 && members.list.len() >= per_metric {
                return Err(Refusal::SeriesLimit {
                    family_exists: true,
                });
            }
            let max = self.config.limits.max_series;
            let reserved = self
                .series
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (max == 0 || n < max).then_some(n + 1)
                })
                .is_ok();
            if !reserved {
                return Err(Refusal::SeriesLimit {
                    family_exists: !members.list.is_empty(),
                });
            }
            self.by_kind[kind.index()].fetch_add(1, Ordering::Relaxed);
            let now = self.clock.now();
            let state = match (kind, &spec.observer) {
                (Kind::Counter, _) => State::Counter(AtomicF64::new(0.0)),
                (Kind::Gauge, _) => State::Gauge(AtomicF64::new(0.0)),
                (Kind::Set, _) => {
                    State::Set(Box::new(Mutex::new(Set::new(self.config.set_window, now))))
                }
                (_, Observer::Summary(options)) => {
                    State::Summary(Box::new(Mutex::new(Summary::new(Arc::clone(options), now))))
                }
                (_, Observer::Histogram(bounds)) => {
                    State::Histogram(Box::new(Histogram::new(Arc::clone(bounds))))
                }
            };
            let rendered = render_label_set(key.labels.iter().copied());
            let ttl_ms = u64::try_from(spec.ttl.as_millis()).unwrap_or(u64::MAX);
            let series = Arc::new(Series {
                family: Arc::clone(&family),
                rendered: rendered.into_boxed_str(),
                hash,
                state,
                last_seen: AtomicU64::new(0),
                ttl_ms,
            });
            self.apply(&series, update);
            bucket.push(Arc::clone(&series));
            drop(shard);
            members.list.push(series);
            members.sorted = false;
            members.has_ttl |= ttl_ms > 0;
            return Ok(());
        }
    }

    /// Removes series not updated within their TTL, and families left without series (their type is
    /// then forgotten). Returns how many series were removed.
    pub fn expire(&self) -> usize {
        let now = self.now_ms.load(Ordering::Relaxed);
        let mut removed = 0;
        let families: Vec<Arc<Family>> = self
            .families
            .iter()
            .flat_map(|shard| shard.read().values().cloned().collect::<Vec<_>>())
            .collect();
        let mut emptied = Vec::new();
        for family in families {
            let mut members = family.members.lock();
            if members.has_ttl {
                let (keep, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut members.list)
                    .into_iter()
                    .partition(|s| {
                        s.ttl_ms == 0
                            || now.saturating_sub(s.last_seen.load(Ordering::Relaxed)) < s.ttl_ms
                    });
                members.list = keep;
                for series in &gone {
                    let mut shard = self
                        .series_shard(series.hash)
                        .write()
                        .unwrap_or_else(PoisonError::into_inner);
                    if let Some(bucket) = shard.get_mut(&series.hash) {
                        bucket.retain(|s| !Arc::ptr_eq(s, series));
                        if bucket.is_empty() {
                            shard.remove(&series.hash);
                        }
                    }
                }
                removed += gone.len();
                self.series.fetch_sub(gone.len(), Ordering::Relaxed);
                self.by_kind[family.kind.index()].fetch_sub(gone.len(), Ordering::Relaxed);
                members.has_ttl = members.list.iter().any(|s| s.ttl_ms > 0);
            }
            if members.list.is_empty() {
                emptied.push(Arc::clone(&family));
            }
        }
        for family in emptied {
            // Lock order: family shard, members, name index.
            let mut table = self.family_shard(&family.name).write();
            let mut members = family.members.lock();
            if !members.list.is_empty() || members.removed {
                continue;
            }
            members.removed = true;
            table.remove(&*family.name);
            let mut names = self.names.lock();
            names.remove(&*family.name);
            for s in family.kind.suffixes() {
                names.remove(format!("{}{s}", family.name).as_str());
            }
        }
        removed
    }

    /// Appends every series in the text format: families sorted by name, each with one `# HELP` and
    /// `# TYPE`, series sorted by label set.
    pub fn render(&self, out: &mut String) {
        let mut families: Vec<Arc<Family>> = Vec::new();
        for shard in self.families.iter() {
            families.extend(shard.read().values().cloned());
        }
        families.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let now = self.clock.now();
        let mut text = String::new();
        for family in &families {
            let mut members = family.members.lock();
            if members.list.is_empty() {
                continue;
            }
            if !members.sorted {
                members
                    .list
                    .sort_unstable_by(|a, b| a.rendered.cmp(&b.rendered));
                members.sorted = true;
            }
            let name: &str = &family.name;
            write_header(out, name, &family.help, family.kind.metric_type());
            for series in &members.list {
                let labels: &str = &series.rendered;
                match &series.state {
                    State::Counter(v) | State::Gauge(v) => {
                        write_sample(out, name, "", labels, None, v.get())
                    }
                    State::Summary(s) => {
                        let mut s = s.lock();
                        for (q, v) in s.quantiles(now) {
                            text.clear();
                            write_value(&mut text, q);
                            write_sample(out, name, "", labels, Some(("quantile", &text)), v);
                        }
                        write_sample(out, name, "_sum", labels, None, s.sum());
                        write_sample(out, name, "_count", labels, None, s.count() as f64);
                    }
                    State::Histogram(h) => {
                        let mut cumulative = 0u64;
                        for (i, count) in h.counts.iter().enumerate() {
                            cumulative += count.load(Ordering::Relaxed);
                            text.clear();
                            match h.bounds.get(i) {
                                Some(&b) => write_value(&mut text, b),
                                None => text.push_str("+Inf"),
                            }
                            write_sample(
                                out,
                                name,
                                "_bucket",
                                labels,
                                Some(("le", &text)),
                                cumulative as f64,
                            );
                        }
                        write_sample(out, name, "_sum", labels, None, h.sum.get());
                        write_sample(
                            out,
                            name,
                            "_count",
                            labels,
                            None,
                            h.count.load(Ordering::Relaxed) as f64,
                        );
                    }
                    State::Set(s) => {
                        let n = s.lock().count(now);
                        write_sample(out, name, "", labels, None, n as f64);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_label_text_is_the_identity() {
        let text = "a=\"x\\\"y\\\\z\\nw\",b=\"\"";
        assert!(rendered_matches(text, &[("a", "x\"y\\z\nw"), ("b", "")]));
        assert!(!rendered_matches(text, &[("a", "x\"y\\z\nw")]));
        assert!(!rendered_matches(text, &[("a", "x\"y\\z\nw"), ("b", "1")]));
        assert!(!rendered_matches(text, &[("a", "x"), ("b", "")]));
        assert!(rendered_matches("", &[]));
        assert!(!rendered_matches("a=\"1\"", &[]));
    }
}
