//! The per-worker series cache: from what identifies a sample before mapping (its name, type and tags,
//! as received) straight to what the sample does — the series it updates (with the rule's `scale`), or
//! a drop by a rule. A hit costs one hash of those bytes and one compare: no mapping, no label merge,
//! no store lookup.
//!
//! Entries belong to one mapping load ([`Mapper::generation`]): the first lookup under a new load
//! empties the cache. A series that expired leaves a stale reference ([`SeriesRef::is_live`]), which
//! counts as a miss and is replaced. Refused samples are not cached (they go the whole way each time,
//! and are counted each time), nor are samples longer than [`MAX_CACHED_KEY`]. Memory: the cache
//! starts empty, grows with the names seen, and holds at most `capacity` entries of at most
//! [`MAX_CACHED_KEY`] bytes of key each (the least recently used goes first). Measured end to end: 18,800 live
//! names (the 200-instance `loadgen` traffic) took the proxy's RSS from 55 to 65 MiB (BENCHMARKS.md).
//!
//! [`Mapper::generation`]: statsd_mapping::Mapper::generation

use std::num::NonZeroUsize;

use lru::LruCache;
use statsd_line::{Sample, SampleKind};
use statsd_store::SeriesRef;

use crate::activity::TopK;

/// [`Target::Series::rule`] of an unmapped sample.
pub const UNMAPPED: u32 = u32::MAX;

/// Longest key (a sample's type, name and tags, as received) that is cached: longer samples go the
/// whole way each time, so that `capacity` entries stay small whatever clients send — a catch-all
/// `action: drop` rule would otherwise cache every distinct name it drops, however long. Mastodon's
/// names are under 150 bytes; tagged lines of a few tags are well under the bound.
pub const MAX_CACHED_KEY: usize = 512;

/// What a cached sample does.
#[derive(Debug)]
pub enum Target {
    /// A rule with `action: drop` matched.
    Dropped {
        /// The rule's index.
        rule: u32,
    },
    /// A rule matched but its name expanded to nothing.
    EmptyName {
        /// The rule's index.
        rule: u32,
    },
    /// It updates this series.
    Series {
        /// The series.
        series: SeriesRef,
        /// The rule's `scale`.
        scale: Option<f64>,
        /// The index of the rule that matched, or [`UNMAPPED`].
        rule: u32,
        /// Unmapped samples that hit this entry since the status page's last collection.
        unmapped_hits: u32,
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
    /// for [`SeriesCache::insert`]. A new load empties the cache (its unmapped counts go to
    /// `unmapped`).
    #[inline]
    pub fn get(
        &mut self,
        generation: u64,
        sample: &Sample<'_, '_>,
        unmapped: &mut TopK,
    ) -> Option<&mut Target> {
        if generation != self.generation {
            self.collect_unmapped(unmapped);
            if let Some(entries) = &mut self.entries {
                entries.clear();
            }
            self.generation = generation;
        }
        let entries = self.entries.as_mut()?;
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
        if self.key.len() > MAX_CACHED_KEY {
            // Never cached: no lookup to make.
            return None;
        }
        self.lookups += 1;
        let hit = entries
            .get_mut(self.key.as_slice())
            .filter(|target| match target {
                Target::Series { series, .. } => series.is_live(),
                Target::Dropped { .. } | Target::EmptyName { .. } => true,
            });
        self.hits += u64::from(hit.is_some());
        hit
    }

    /// Caches what the sample of the last [`SeriesCache::get`] does; an entry pushed out hands its
    /// unmapped count to `unmapped`. False when it is not cached: there is no cache, or the sample's
    /// name and tags are longer than [`MAX_CACHED_KEY`].
    pub fn insert(&mut self, target: Target, unmapped: &mut TopK) -> bool {
        let Some(entries) = &mut self.entries else {
            return false;
        };
        if self.key.len() > MAX_CACHED_KEY {
            return false;
        }
        if let Some((key, evicted)) = entries.push(self.key.as_slice().into(), target) {
            offer(&key, &evicted, unmapped);
        }
        true
    }

    /// Moves every entry's unmapped count into `unmapped`.
    pub fn collect_unmapped(&mut self, unmapped: &mut TopK) {
        if let Some(entries) = &mut self.entries {
            for (key, target) in entries.iter_mut() {
                offer(key, target, unmapped);
                if let Target::Series { unmapped_hits, .. } = target {
                    *unmapped_hits = 0;
                }
            }
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

/// Offers an entry's unmapped count under its StatsD name (the key's bytes after the type byte, up to
/// the first tag).
fn offer(key: &[u8], target: &Target, unmapped: &mut TopK) {
    if let Target::Series {
        rule: UNMAPPED,
        unmapped_hits,
        ..
    } = target
        && *unmapped_hits > 0
    {
        let name = &key[1..];
        let name = &name[..name.iter().position(|&b| b == 0xFF).unwrap_or(name.len())];
        // The key was made from a `&str` name: always UTF-8.
        if let Ok(name) = std::str::from_utf8(name) {
            unmapped.offer(name, u64::from(*unmapped_hits), 0);
        }
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
