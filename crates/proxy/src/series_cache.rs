//! The per-worker series cache: from what identifies a sample before mapping (its name, type and tags,
//! as received) straight to what the sample does — the series it updates (with the rule's `scale`), or
//! a drop by a rule. A hit costs one hash of those bytes and one compare: no mapping, no label merge,
//! no store lookup.
//!
//! Entries belong to one mapping load ([`Mapper::generation`]): the first lookup under a new load
//! empties the cache. A series that expired leaves a stale reference ([`SeriesRef::is_live`]), which
//! counts as a miss and is replaced. Refused samples are not cached (they go the whole way each time,
//! and are counted each time). Memory: the cache starts empty, grows with the names seen, and holds
//! at most `capacity` entries (the least recently used goes first). Measured end to end: 18,800 live
//! names (the 200-instance `loadgen` traffic) took the proxy's RSS from 55 to 65 MiB (BENCHMARKS.md).
//!
//! [`Mapper::generation`]: statsd_mapping::Mapper::generation

use std::num::NonZeroUsize;

use lru::LruCache;
use statsd_line::{Sample, SampleKind};
use statsd_store::SeriesRef;

/// What a cached sample does.
#[derive(Debug)]
pub enum Target {
    /// A rule with `action: drop` matched.
    Dropped,
    /// A rule matched but its name expanded to nothing.
    EmptyName,
    /// It updates this series.
    Series {
        /// The series.
        series: SeriesRef,
        /// The rule's `scale`.
        scale: Option<f64>,
        /// A rule matched (else: unmapped).
        mapped: bool,
    },
}

/// See the module documentation.
#[derive(Debug)]
pub struct SeriesCache {
    entries: Option<LruCache<Box<[u8]>, Target, foldhash::fast::RandomState>>,
    /// The key of the last lookup (reused buffer).
    key: Vec<u8>,
    generation: u64,
    lookups: u64,
    hits: u64,
}

impl SeriesCache {
    /// A cache of up to `capacity` entries (0: none), grown on demand.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: NonZeroUsize::new(capacity).map(|cap| {
                let mut lru =
                    LruCache::unbounded_with_hasher(foldhash::fast::RandomState::default());
                lru.resize(cap);
                lru
            }),
            key: Vec::new(),
            generation: 0,
            lookups: 0,
            hits: 0,
        }
    }

    /// What `sample` does under the mapping load `generation`, if cached. Remembers the sample's key
    /// for [`SeriesCache::insert`].
    #[inline]
    pub fn get(&mut self, generation: u64, sample: &Sample<'_, '_>) -> Option<&Target> {
        let entries = self.entries.as_mut()?;
        if generation != self.generation {
            entries.clear();
            self.generation = generation;
        }
        self.key.clear();
        self.key.push(kind_byte(sample.kind));
        self.key.extend_from_slice(sample.name.as_bytes());
        for tag in sample.tags {
            // 0xFF never occurs in UTF-8: the separators keep the encoding unambiguous.
            self.key.push(0xFF);
            self.key.extend_from_slice(tag.key.as_bytes());
            self.key.push(0xFF);
            self.key.extend_from_slice(tag.value.as_bytes());
        }
        self.lookups += 1;
        let hit = entries
            .get(self.key.as_slice())
            .filter(|target| match target {
                Target::Series { series, .. } => series.is_live(),
                Target::Dropped | Target::EmptyName => true,
            });
        self.hits += u64::from(hit.is_some());
        hit
    }

    /// Caches what the sample of the last [`SeriesCache::get`] does.
    pub fn insert(&mut self, target: Target) {
        if let Some(entries) = &mut self.entries {
            entries.put(self.key.as_slice().into(), target);
        }
    }

    /// Lookups and hits since the last call.
    pub fn take_stats(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.lookups),
            std::mem::take(&mut self.hits),
        )
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, LruCache::len)
    }

    /// No entries held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn kind_byte(kind: SampleKind) -> u8 {
    match kind {
        SampleKind::Counter => b'c',
        SampleKind::Gauge => b'g',
        SampleKind::Timer => b't',
        SampleKind::Histogram => b'h',
        SampleKind::Distribution => b'd',
        SampleKind::Set => b's',
    }
}
