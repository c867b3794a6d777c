//! Series state and the maps that hold it: atomics for counters and gauges, the classic histogram,
//! families and their members, and the series key hashed on every update.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::native::Native;
use crate::{HistogramOptions, Kind, Refusal, Set, Spec, Summary};

/// A lock-free `f64` cell.
#[derive(Debug, Default)]
pub(crate) struct AtomicF64(AtomicU64);

impl AtomicF64 {
    pub(crate) fn new(v: f64) -> Self {
        Self(AtomicU64::new(v.to_bits()))
    }
    pub(crate) fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    pub(crate) fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    /// Adds `v` unless the sum would not be finite (then nothing changes and false is returned): a
    /// value stuck at ±Inf or NaN would poison the series for good.
    pub(crate) fn add(&self, v: f64) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let sum = f64::from_bits(bits) + v;
                sum.is_finite().then_some(sum.to_bits())
            })
            .is_ok()
    }
}

/// A classic histogram: per-bucket counts (not cumulative; made cumulative when rendered), sum, count.
/// Every field is atomic, so observing takes no lock. A scrape racing an observation may see the new
/// count before the new sum; the next scrape is consistent again.
///
/// With a native histogram beside it, an observation updates both under the native part's lock, which a
/// protobuf scrape also takes: the native buckets it reads always add up to the count it reads
/// (Prometheus refuses a native histogram whose buckets exceed its count).
#[derive(Debug)]
pub(crate) struct Histogram {
    pub(crate) options: Arc<HistogramOptions>,
    /// One per bound, plus the `+Inf` bucket.
    pub(crate) counts: Box<[AtomicU64]>,
    pub(crate) sum: AtomicF64,
    pub(crate) count: AtomicU64,
    pub(crate) native: Option<Mutex<Native>>,
}

impl Histogram {
    pub(crate) fn new(options: Arc<HistogramOptions>) -> Self {
        let counts = (0..=options.buckets.len())
            .map(|_| AtomicU64::new(0))
            .collect();
        Self {
            native: options.native.map(|n| Mutex::new(Native::new(n))),
            options,
            counts,
            sum: AtomicF64::new(0.0),
            count: AtomicU64::new(0),
        }
    }

    /// The classic bucket bounds.
    pub(crate) fn bounds(&self) -> &[f64] {
        &self.options.buckets
    }

    pub(crate) fn observe(&self, value: f64, weight: u64) {
        let _native = self.native.as_ref().map(|n| {
            let mut n = n.lock();
            n.observe(value, weight);
            n
        });
        // First bucket whose upper bound is ≥ value (`le` is inclusive); NaN goes to +Inf.
        let i = self.bounds().partition_point(|&b| b < value);
        saturating_add(&self.counts[i], weight);
        self.sum.add(value * weight as f64);
        saturating_add(&self.count, weight);
    }
}

/// Series state. The large states are boxed so that a counter series stays small.
#[derive(Debug)]
pub(crate) enum State {
    Counter(AtomicF64),
    Gauge(AtomicF64),
    Summary(Box<Mutex<Summary>>),
    Histogram(Box<Histogram>),
    Set(Box<Mutex<Set>>),
}

impl State {
    /// Reads a byte of the state's own allocation (see `render::warm`); no lock is taken.
    pub(crate) fn warm(&self) -> usize {
        match self {
            State::Counter(_) | State::Gauge(_) => 0,
            State::Summary(s) => usize::from(s.is_locked()),
            State::Histogram(h) => h.counts.len(),
            State::Set(s) => usize::from(s.is_locked()),
        }
    }
}

/// One series: its family's identity (not the family itself, which lists its series: no `Arc` cycle),
/// its label set pre-rendered for the exposition (also its identity), its state and when it was last
/// updated.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) family: Arc<FamilyId>,
    /// `k="v",…` as written between braces, rendered once at creation.
    pub(crate) rendered: Box<str>,
    pub(crate) hash: u64,
    pub(crate) state: State,
    /// Store-clock milliseconds of the last update.
    pub(crate) last_seen: AtomicU64,
    /// Milliseconds of inactivity after which the series is removed (0: never).
    pub(crate) ttl_ms: u64,
    /// Set once the series has left the store (expired): a [`crate::SeriesRef`] to it is stale.
    pub(crate) removed: AtomicBool,
    /// The [`Spec::origin`] of the rule that created it (0: unmapped).
    pub(crate) origin: u64,
}

/// The series of one family, in render order once sorted.
#[derive(Debug, Default)]
pub(crate) struct Members {
    pub(crate) list: Vec<Arc<Series>>,
    pub(crate) sorted: bool,
    /// The family has been removed from the table: creators must look it up again.
    pub(crate) removed: bool,
    /// Some series has a TTL (the sweeper skips families without).
    pub(crate) has_ttl: bool,
}

/// What identifies a family and what its series check on every update: name and type (immutable),
/// and its HELP text, which a newer mapping load may replace.
#[derive(Debug)]
pub(crate) struct FamilyId {
    pub(crate) name: Arc<str>,
    pub(crate) kind: Kind,
    /// Address of the current help text's allocation: equal to a spec's `help` pointer exactly when it
    /// is the same `Arc` (the family holds that `Arc`, so no other text can live there). The common
    /// path reads only this.
    help_addr: AtomicUsize,
    pub(crate) help: ArcSwap<Help>,
}

/// A family's HELP text and the mapping load it came from ([`Spec::generation`]).
#[derive(Debug)]
pub(crate) struct Help {
    pub(crate) text: Arc<str>,
    pub(crate) generation: u64,
}

impl Help {
    fn of(spec: &Spec) -> Self {
        Self {
            text: Arc::clone(&spec.help),
            generation: spec.generation,
        }
    }
}

fn addr(text: &Arc<str>) -> usize {
    Arc::as_ptr(text).cast::<u8>() as usize
}

/// A metric family: its identity and its series.
#[derive(Debug)]
pub(crate) struct Family {
    pub(crate) id: Arc<FamilyId>,
    pub(crate) members: Mutex<Members>,
}

impl std::ops::Deref for Family {
    type Target = FamilyId;
    fn deref(&self) -> &FamilyId {
        &self.id
    }
}

impl FamilyId {
    /// Refuses an update of another type, or from a rule of the same mapping load with another HELP
    /// text. A newer load's spec (a reload) takes over the family's help: its text is served from now
    /// on, and its `Arc` makes the pointer comparison of the common path hit again.
    pub(crate) fn accepts(&self, kind: Kind, spec: &Spec) -> Result<(), Refusal> {
        if self.kind != kind {
            return Err(Refusal::TypeConflict {
                existing: self.kind,
            });
        }
        if self.help_addr.load(Ordering::Relaxed) == addr(&spec.help) {
            return Ok(());
        }
        // Another `Arc`: the same text (another rule of this load, or unmapped samples), or a newer
        // load's text, which the family adopts. `ArcSwap` reads take no shared lock.
        let help = self.help.load();
        if spec.generation > help.generation {
            let adopted = Arc::new(Help::of(spec));
            self.help_addr.store(addr(&adopted.text), Ordering::Relaxed);
            self.help.store(adopted);
            Ok(())
        } else if *help.text == *spec.help {
            Ok(())
        } else {
            Err(Refusal::HelpConflict)
        }
    }

    /// A new family's identity, its help from `spec`.
    pub(crate) fn new(name: Arc<str>, kind: Kind, spec: &Spec) -> Self {
        let help = Help::of(spec);
        Self {
            name,
            kind,
            help_addr: AtomicUsize::new(addr(&help.text)),
            help: ArcSwap::from_pointee(help),
        }
    }
}

/// Identity of a series being looked up, borrowed from the sample.
pub(crate) struct Key<'k> {
    pub(crate) name: &'k str,
    pub(crate) labels: &'k [(&'k str, &'k str)],
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
pub(crate) struct IdentityHasher(u64);

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

pub(crate) type ShardMap =
    HashMap<u64, SmallVec<[Arc<Series>; 1]>, BuildHasherDefault<IdentityHasher>>;
pub(crate) type FamilyMap = HashMap<Arc<str>, Arc<Family>, foldhash::fast::FixedState>;

/// Adds to a count without ever wrapping around (a count that went backwards would look like a reset).
fn saturating_add(count: &AtomicU64, n: u64) {
    let _ = count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
        Some(c.saturating_add(n))
    });
}
