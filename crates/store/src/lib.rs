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

mod census;
mod clock;
mod expire;
mod kind;
mod native;
mod render;
mod series;
pub mod set;
pub mod summary;
mod update;

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crossbeam_utils::sync::ShardedLock;
use parking_lot::{Mutex, RwLock};

pub use census::{Census, FamilySize};
pub use clock::{Clock, ManualClock, SystemClock};
pub use kind::{Config, Kind, Limits, Refusal, Update};
pub use render::Scrape;
use series::{FamilyMap, ShardMap};
pub use update::SeriesRef;

pub use set::{DEFAULT_SET_WINDOW, Set};
pub use statsd_spec::{
    DEFAULT_HELP, HistogramOptions, NativeOptions, Observer, Spec, SummaryOptions,
};
pub use summary::Summary;
/// Default cap on the number of series in the store (`--statsd.max-series`).
pub const DEFAULT_MAX_SERIES: usize = 100_000;
/// Default cap on the number of series of one metric name (`--statsd.max-series-per-metric`).
pub const DEFAULT_MAX_SERIES_PER_METRIC: usize = 20_000;
/// Most labels a series may have: a sample with more is refused (counted), whatever its source, so one
/// datagram cannot create a series of thousands of labels.
pub const MAX_LABELS_PER_SERIES: usize = 64;
/// Longest label value, in bytes: a sample with a longer one is refused (counted).
pub const MAX_LABEL_VALUE_BYTES: usize = 1024;
/// Number of series shards: a power of two well above the number of cores, so creations (which lock a
/// shard's writers' side) rarely stall updates of other series.
pub const SERIES_SHARDS: usize = 64;
/// Number of family-table shards.
pub const FAMILY_SHARDS: usize = 16;

/// The series store. Share it by `Arc`; every method takes `&self`.
pub struct Store {
    pub(crate) shards: Box<[ShardedLock<ShardMap>]>,
    pub(crate) families: Box<[RwLock<FamilyMap>]>,
    /// Every sample name written (family names and their suffixed names) and our own metric names, to
    /// refuse collisions.
    pub(crate) names: Mutex<HashSet<Box<str>, foldhash::fast::FixedState>>,
    pub(crate) hasher: foldhash::fast::FixedState,
    pub(crate) clock: Arc<dyn Clock>,
    epoch: Instant,
    /// Coarse store time in milliseconds since `epoch`, advanced by [`Store::tick`].
    pub(crate) now_ms: AtomicU64,
    pub(crate) config: Config,
    pub(crate) series: AtomicUsize,
    pub(crate) by_kind: [AtomicUsize; 5],
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

    pub(crate) fn series_shard(&self, hash: u64) -> &ShardedLock<ShardMap> {
        &self.shards[(hash as usize) % self.shards.len()]
    }

    pub(crate) fn family_shard(&self, name: &str) -> &RwLock<FamilyMap> {
        &self.families[(self.hasher.hash_one(name) as usize) % self.families.len()]
    }
}
