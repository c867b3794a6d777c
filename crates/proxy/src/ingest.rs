//! From received bytes to store updates: framing, parsing, naming, accounting.
//!
//! Every line is accounted for: it is counted in `statsd_exporter_lines_total`, and each of its samples
//! either reaches the store (`statsd_exporter_events_total{type}`) or is counted under a reason
//! (`statsd_exporter_sample_errors_total{reason}`, `statsd_exporter_events_error_total{reason}`,
//! `statsd_exporter_events_conflict_total{type,metric_name}`).

use std::sync::Arc;

use arc_swap::ArcSwap;

use statsd_line::{Line, Parser, Reason, Sample};
use statsd_mapping::{Mapper, MappingCache};
use statsd_store::Store;

use crate::relay::RelayQueue;
use crate::route::{self, Labels, Route, metric_type};
use crate::series_cache::{SeriesCache, Target};
use crate::telemetry::{Tally, Telemetry};

/// Shared, immutable ingest state: the parser configuration, the mapping, the store and the
/// self-metrics.
#[derive(Debug, Clone)]
pub struct Ingest {
    parser: Parser,
    /// Swapped whole on reload; each line reads the current one.
    mapper: Arc<ArcSwap<Mapper>>,
    relay: Option<RelayQueue>,
    store: Arc<Store>,
    telemetry: Telemetry,
    cache_size: usize,
    series_cache_size: usize,
}

/// Per-task scratch space, reused for every line a receive task handles: the escaped-name buffer,
/// the task's series and mapping caches (so a cache hit takes no lock), and the counts not yet
/// published.
#[derive(Debug)]
pub struct Scratch {
    name: String,
    series: SeriesCache,
    cache: MappingCache,
    tally: Tally,
    /// Lines to relay, `\n`-terminated, handed over at [`Ingest::publish`].
    relay: Vec<u8>,
    relay_lines: u64,
    /// `statsd_metric_mapper_cache_length`, and how much of it is this cache's (taken back on drop).
    cache_length: prometheus::IntGauge,
    cache_length_published: i64,
    /// `statsd_proxy_series_cache_length`, and how much of it is this cache's.
    series_cache_length: prometheus::IntGauge,
    series_cache_length_published: i64,
    /// The store clock's time for this packet's updates, read at its first cached update.
    now: Option<std::time::Instant>,
}

impl Scratch {
    /// Scratch space with a series cache of `series_cache_size` entries and a mapping cache of
    /// `cache_size` results (0: no cache).
    fn new(series_cache_size: usize, cache_size: usize, telemetry: &Telemetry) -> Self {
        Self {
            name: String::new(),
            series: SeriesCache::new(series_cache_size),
            cache: MappingCache::new(cache_size),
            tally: Tally::default(),
            relay: Vec::new(),
            relay_lines: 0,
            cache_length: telemetry.cache_length.clone(),
            cache_length_published: 0,
            series_cache_length: telemetry.series_cache_length.clone(),
            series_cache_length_published: 0,
            now: None,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.cache_length.sub(self.cache_length_published);
        self.series_cache_length
            .sub(self.series_cache_length_published);
    }
}

/// Moves `gauge` by how much `length` differs from what was `published`.
fn publish_length(gauge: &prometheus::IntGauge, published: &mut i64, length: usize) {
    let length = i64::try_from(length).unwrap_or(i64::MAX);
    if length != *published {
        gauge.add(length - *published);
        *published = length;
    }
}

impl Ingest {
    /// Ingest into `store` through `mapper` (swapped on reload), with `parser`'s dialects, counting in
    /// `telemetry`; each receive task caches up to `cache_size` mapping results, and each worker (see
    /// [`Ingest::worker_scratch`]) up to `series_cache_size` series.
    pub fn new(
        parser: Parser,
        mapper: Arc<ArcSwap<Mapper>>,
        store: Arc<Store>,
        telemetry: Telemetry,
        cache_size: usize,
        series_cache_size: usize,
        relay: Option<RelayQueue>,
    ) -> Self {
        Self {
            parser,
            mapper,
            relay,
            store,
            telemetry,
            cache_size,
            series_cache_size,
        }
    }

    /// Scratch space for a receive task of which there may be many (a TCP connection): its series
    /// cache holds as many entries as its mapping cache.
    pub fn scratch(&self) -> Scratch {
        Scratch::new(self.cache_size, self.cache_size, &self.telemetry)
    }

    /// Scratch space for one of the few long-lived workers (UDP, unixgram), whose series cache may
    /// grow to the whole live name set.
    pub fn worker_scratch(&self) -> Scratch {
        Scratch::new(self.series_cache_size, self.cache_size, &self.telemetry)
    }

    /// Handles one packet (one or more `\n`-separated lines) and publishes its counts.
    pub fn packet(&self, packet: &[u8], scratch: &mut Scratch) {
        self.lines_of(packet, scratch);
        self.publish(scratch);
    }

    /// Handles the lines of one packet, counting into `scratch` (see [`Ingest::publish`]).
    pub fn lines_of(&self, packet: &[u8], scratch: &mut Scratch) {
        // One mapping for the whole packet (a reload between two of its lines changes nothing).
        let mapper = self.mapper.load();
        for line in statsd_line::lines(packet) {
            self.line_with(line, scratch, &mapper);
        }
    }

    /// Handles one line (no newline), counting into `scratch` (published by [`Ingest::publish`]).
    pub fn line(&self, line: &[u8], scratch: &mut Scratch) {
        self.line_with(line, scratch, &self.mapper.load());
    }

    fn line_with(&self, line: &[u8], scratch: &mut Scratch, mapper: &Arc<Mapper>) {
        if self.relay.is_some() {
            scratch.relay.extend_from_slice(line);
            scratch.relay.push(b'\n');
            scratch.relay_lines += 1;
        }
        let tally = &mut scratch.tally;
        tally.lines += 1;
        let mut parsed = Line::default();
        match self.parser.parse_into(line, &mut parsed) {
            Ok(()) => {}
            Err(e) => {
                tracing::debug!(reason = %e.reason, line = %String::from_utf8_lossy(line), "bad line");
                tally.error(e.reason);
                // Name tags are read before the line is refused (mixed styles, missing type, …);
                // their errors count, as in statsd_exporter.
                tally.tag_errors += u64::from(parsed.tag_errors());
                return;
            }
        }
        tally.tag_errors += u64::from(parsed.tag_errors());
        for sample in parsed.samples() {
            let tally = &mut scratch.tally;
            tally.samples += 1;
            match sample {
                Ok(sample) => self.sample(&sample, scratch, mapper),
                Err(e) => {
                    tracing::debug!(reason = %e.reason, line = %parsed.text(), "bad sample");
                    tally.error(e.reason);
                }
            }
        }
    }

    /// Publishes the counts gathered in `scratch` (TCP calls this per read, UDP per packet).
    pub fn publish(&self, scratch: &mut Scratch) {
        scratch.now = None;
        // statsd_exporter's `statsd_metric_mapper_cache_*` count a lookup of every sample's mapping: here
        // a series-cache hit found it too (the mapping cache is asked on a series-cache miss only).
        let (gets, hits) = scratch.cache.take_stats();
        let (lookups, series_hits) = scratch.series.take_stats();
        scratch.tally.cache_gets += gets + series_hits;
        scratch.tally.cache_hits += hits + series_hits;
        scratch.tally.series_cache_lookups += lookups;
        scratch.tally.series_cache_hits += series_hits;
        publish_length(
            &scratch.cache_length,
            &mut scratch.cache_length_published,
            scratch.cache.len(),
        );
        publish_length(
            &scratch.series_cache_length,
            &mut scratch.series_cache_length_published,
            scratch.series.len(),
        );
        self.telemetry.flush(&mut scratch.tally);
        if let Some(relay) = &self.relay
            && scratch.relay_lines > 0
        {
            // One chunk per batch; the relay task splits it into datagrams.
            let chunk = std::mem::take(&mut scratch.relay);
            relay.push(chunk, std::mem::take(&mut scratch.relay_lines));
        }
    }

    fn sample(&self, sample: &Sample<'_, '_>, scratch: &mut Scratch, mapper: &Arc<Mapper>) {
        let tally = &mut scratch.tally;
        if sample.invalid_rate {
            // Kept at rate 1, but counted, as statsd_exporter does.
            tally.error(Reason::InvalidSampleFactor);
        }
        if !sample.tags.is_empty() {
            tally.tags += 1;
        }
        let Scratch {
            name,
            series: series_cache,
            cache,
            tally,
            now,
            ..
        } = scratch;
        if let Some(target) = series_cache.get(mapper.generation(), sample) {
            match target {
                Target::Dropped => tally.actions_drop += 1,
                Target::EmptyName => self.telemetry.empty_metric_name(),
                Target::Series {
                    series,
                    scale,
                    mapped,
                } => {
                    if *mapped {
                        tally.actions_map += 1;
                    } else {
                        tally.unmapped += 1;
                    }
                    let (update, events) = route::update_for(sample, *scale);
                    let kind = series.kind();
                    // One clock read per packet (or TCP read), cleared at publish.
                    let now = *now.get_or_insert_with(|| self.store.now());
                    match self.store.update_series(series, update, now) {
                        Ok(()) => tally.events(kind, events),
                        Err(refusal) => {
                            let name = series.name();
                            tracing::debug!(metric = %name, %refusal, "event refused");
                            self.telemetry.refused(refusal, kind, name);
                        }
                    }
                }
            }
            return;
        }
        let mut labels: Labels<'_> = sample
            .tags
            .iter()
            .map(|t| (t.key.as_ref(), t.value))
            .collect();
        let mapped = cache.map(mapper, sample.name, metric_type(sample.kind));
        match route::resolve(mapper, mapped, sample, &mut labels, name) {
            Route::Dropped { .. } => {
                tally.actions_drop += 1;
                series_cache.insert(Target::Dropped);
            }
            Route::EmptyName { .. } => {
                self.telemetry.empty_metric_name();
                series_cache.insert(Target::EmptyName);
            }
            Route::Series(series) => {
                let mapped = series.rule.is_some();
                if mapped {
                    tally.actions_map += 1;
                } else {
                    tally.unmapped += 1;
                }
                let kind = series.update.kind(series.spec);
                let scale = series.rule.and_then(|r| r.scale);
                match self
                    .store
                    .update_ref(series.name, &mut labels, series.update, series.spec)
                {
                    Ok(reference) => {
                        tally.events(kind, series.events);
                        series_cache.insert(Target::Series {
                            series: reference,
                            scale,
                            mapped,
                        });
                    }
                    Err(refusal) => {
                        tracing::debug!(metric = %series.name, %refusal, "event refused");
                        self.telemetry.refused(refusal, kind, series.name);
                    }
                }
            }
        }
    }
}
