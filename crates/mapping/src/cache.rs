//! A bounded LRU cache of mapping results, one per receive worker.
//!
//! Matching a Mastodon name against the community mapping's regexes costs around a microsecond; the
//! same few hundred names arrive over and over, so each worker keeps the last `capacity` results,
//! keyed by (StatsD name, metric type). A worker owns its cache, so a hit takes no lock and returns a
//! reference, not a copy. Results are identical with and without the cache (tested); a cache belongs to
//! one [`Mapper`] and is emptied when it sees another (a reload).

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;

use crate::{Mapped, Mapper, MetricType};

/// Longest StatsD name whose result is cached: a longer one is mapped every time, so that a cache of
/// `capacity` entries stays small whatever names clients send (Mastodon's are under 150 bytes).
pub(crate) const MAX_CACHED_NAME: usize = 512;

/// statsd_exporter's default `--statsd.cache-size`.
pub const DEFAULT_CACHE_SIZE: usize = 1000;

/// The per-worker cache.
pub struct MappingCache {
    /// Key: one byte for the metric type, then the name (built in `key` without allocating per lookup).
    entries: Option<LruCache<String, Option<Mapped>, foldhash::fast::RandomState>>,
    key: String,
    /// With caching disabled, the last result (so that `map` can still return a reference).
    last: Option<Mapped>,
    /// Generation of the mapper the entries came from (0: none yet; generations start at 1).
    mapper: u64,
    /// Lookups and hits since the last [`MappingCache::take_stats`].
    gets: u64,
    hits: u64,
}

impl std::fmt::Debug for MappingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappingCache")
            .field(
                "capacity",
                &self.entries.as_ref().map_or(0, |e| e.cap().get()),
            )
            .field("len", &self.entries.as_ref().map_or(0, |e| e.len()))
            .finish()
    }
}

fn type_tag(ty: MetricType) -> char {
    match ty {
        MetricType::Counter => 'c',
        MetricType::Gauge => 'g',
        MetricType::Observer => 'o',
    }
}

impl MappingCache {
    /// A cache of `capacity` results; 0 disables caching.
    pub fn new(capacity: usize) -> Self {
        Self {
            // Grown on demand up to `capacity`: an idle connection's cache holds nothing.
            entries: NonZeroUsize::new(capacity).map(|cap| {
                let mut lru =
                    LruCache::unbounded_with_hasher(foldhash::fast::RandomState::default());
                lru.resize(cap);
                lru
            }),
            key: String::new(),
            last: None,
            mapper: 0,
            gets: 0,
            hits: 0,
        }
    }

    /// The result of mapping `name` of type `ty` with `mapper`, from the cache when present.
    pub fn map<'c>(
        &'c mut self,
        mapper: &Arc<Mapper>,
        name: &str,
        ty: MetricType,
    ) -> Option<&'c Mapped> {
        let Self {
            entries,
            key,
            last,
            mapper: seen,
            gets,
            hits,
        } = self;
        let Some(entries) = entries.as_mut().filter(|_| name.len() <= MAX_CACHED_NAME) else {
            // No cache, or a name too long to keep (a cache of such names would hold megabytes).
            *last = mapper.map(name, ty);
            return last.as_ref();
        };
        // A generation number, not the Arc's address: a reloaded mapper may reuse a freed address.
        if mapper.generation() != *seen {
            entries.clear();
            *seen = mapper.generation();
        }
        key.clear();
        key.push(type_tag(ty));
        key.push_str(name);
        // One hash lookup on a hit; the key is copied into the cache only on a miss.
        *gets += 1;
        *hits += 1;
        entries
            .get_or_insert_ref(key.as_str(), || {
                *hits -= 1;
                mapper.map(name, ty)
            })
            .as_ref()
    }

    /// Lookups and hits since the last call (statsd_exporter's `statsd_metric_mapper_cache_gets_total`
    /// and `_hits_total`); a disabled cache counts none.
    pub fn take_stats(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.gets),
            std::mem::take(&mut self.hits),
        )
    }

    /// Number of cached results.
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, LruCache::len)
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
