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

use crate::activity::{Activity, ActivityScratch};
use crate::relay::RelayQueue;
use crate::route::{self, Labels, Route, metric_type};
use crate::series_cache::{SeriesCache, Target, UNMAPPED};
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
    activity: Arc<Activity>,
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
    /// Rule hits and unmapped names for the status page.
    activity: ActivityScratch,
}

impl Scratch {
    /// Scratch space with a series cache of `series_cache_size` entries and a mapping cache of
    /// `cache_size` results (0: no cache).
    fn new(
        series_cache_size: usize,
        cache_size: usize,
        telemetry: &Telemetry,
        activity: &Arc<Activity>,
    ) -> Self {
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
            activity: ActivityScratch::new(activity),
        }
    }
}

impl Scratch {
    /// Unmapped names counted here that the status page has not received yet.
    pub fn owes_activity(&self) -> bool {
        self.activity.unmapped_pending || !self.activity.unmapped.is_empty()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.series.collect_unmapped(&mut self.activity.unmapped);
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
    /// `telemetry` and `activity`; each receive task caches up to `cache_size` mapping results, and
    /// each worker (see [`Ingest::worker_scratch`]) up to `series_cache_size` series.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        parser: Parser,
        mapper: Arc<ArcSwap<Mapper>>,
        store: Arc<Store>,
        telemetry: Telemetry,
        activity: Arc<Activity>,
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
            activity,
            cache_size,
            series_cache_size,
        }
    }

    /// Scratch space for a receive task of which there may be many (a TCP connection): its series
    /// cache holds as many entries as its mapping cache.
    pub fn scratch(&self) -> Scratch {
        Scratch::new(
            self.cache_size,
            self.cache_size,
            &self.telemetry,
            &self.activity,
        )
    }

    /// Scratch space for one of the few long-lived workers (UDP, unixgram), whose series cache may
    /// grow to the whole live name set.
    pub fn worker_scratch(&self) -> Scratch {
        Scratch::new(
            self.series_cache_size,
            self.cache_size,
            &self.telemetry,
            &self.activity,
        )
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
        scratch.activity.follow(&mapper);
        for line in statsd_line::lines(packet) {
            self.line_with(line, scratch, &mapper);
        }
    }

    /// Handles one line (no newline), counting into `scratch` (published by [`Ingest::publish`]).
    pub fn line(&self, line: &[u8], scratch: &mut Scratch) {
        let mapper = self.mapper.load();
        scratch.activity.follow(&mapper);
        self.line_with(line, scratch, &mapper);
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
        self.collect_activity(scratch);
        if let Some(relay) = &self.relay
            && scratch.relay_lines > 0
        {
            // One chunk per batch; the relay task splits it into datagrams.
            let chunk = std::mem::take(&mut scratch.relay);
            relay.push(chunk, std::mem::take(&mut scratch.relay_lines));
        }
    }

    /// Publishes the rule hits, and once a tick passed, the unmapped names (a receive worker with
    /// nothing to read calls this too, so what it counted reaches the status page).
    pub fn collect_activity(&self, scratch: &mut Scratch) {
        let activity = &mut scratch.activity;
        activity.publish_hits();
        if activity.collection_due() {
            if activity.unmapped_pending {
                scratch.series.collect_unmapped(&mut activity.unmapped);
            }
            activity.collected();
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
            activity,
            ..
        } = scratch;
        if let Some(target) = series_cache.get(mapper.generation(), sample, &mut activity.unmapped)
        {
            match target {
                Target::Dropped { rule } => {
                    tally.actions_drop += 1;
                    activity.hit(*rule as usize);
                }
                Target::EmptyName { rule } => {
                    self.telemetry.empty_metric_name();
                    activity.hit(*rule as usize);
                }
                Target::Series {
                    series,
                    scale,
                    rule,
                    unmapped_hits,
                } => {
                    if *rule == UNMAPPED {
                        tally.unmapped += 1;
                        *unmapped_hits = unmapped_hits.saturating_add(1);
                        activity.unmapped_pending = true;
                    } else {
                        tally.actions_map += 1;
                        activity.hit(*rule as usize);
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
            Route::Dropped { rule } => {
                tally.actions_drop += 1;
                activity.hit(rule.index);
                let rule = rule.index as u32;
                series_cache.insert(Target::Dropped { rule }, &mut activity.unmapped);
            }
            Route::EmptyName { rule } => {
                self.telemetry.empty_metric_name();
                activity.hit(rule.index);
                let rule = rule.index as u32;
                series_cache.insert(Target::EmptyName { rule }, &mut activity.unmapped);
            }
            Route::Series(series) => {
                let rule = match series.rule {
                    Some(rule) => {
                        tally.actions_map += 1;
                        activity.hit(rule.index);
                        rule.index as u32
                    }
                    None => {
                        tally.unmapped += 1;
                        UNMAPPED
                    }
                };
                let kind = series.update.kind(series.spec);
                let scale = series.rule.and_then(|r| r.scale);
                match self
                    .store
                    .update_ref(series.name, &mut labels, series.update, series.spec)
                {
                    Ok(reference) => {
                        tally.events(kind, series.events);
                        let unmapped = rule == UNMAPPED;
                        let target = Target::Series {
                            series: reference,
                            scale,
                            rule,
                            unmapped_hits: u32::from(unmapped),
                        };
                        if series_cache.insert(target, &mut activity.unmapped) {
                            activity.unmapped_pending |= unmapped;
                        } else if unmapped {
                            activity.unmapped.offer(sample.name, 1, 0);
                        }
                    }
                    Err(refusal) => {
                        if rule == UNMAPPED {
                            activity.unmapped.offer(sample.name, 1, 0);
                        }
                        tracing::debug!(metric = %series.name, %refusal, "event refused");
                        self.telemetry.refused(refusal, kind, series.name);
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
    fn unmapped_names_reach_the_status_page_once_each() {
        let activity = Arc::new(Activity::default());
        let ingest = Ingest::new(
            Parser::default(),
            Arc::new(ArcSwap::from_pointee(Mapper::empty())),
            Arc::new(Store::new()),
            Telemetry::new(),
            Arc::clone(&activity),
            1000,
            1000,
            None,
        );
        let mut scratch = ingest.worker_scratch();
        for _ in 0..3 {
            ingest.packet(b"a.b:1|c", &mut scratch);
        }
        ingest.packet(b"a.b:1|g", &mut scratch);
        activity.tick(0, 0);
        ingest.collect_activity(&mut scratch);
        let top = activity.top_unmapped(10);
        assert_eq!(top.len(), 1);
        assert_eq!((&*top[0].name, top[0].count), ("a.b", 4));
        // Nothing more is owed: a second collection adds nothing.
        activity.tick(0, 0);
        ingest.collect_activity(&mut scratch);
        drop(scratch);
        assert_eq!(activity.top_unmapped(10)[0].count, 4);
    }

    #[test]
    fn long_samples_are_handled_but_not_cached() {
        let mapper =
            Mapper::from_yaml("mappings:\n  - match: drop.*\n    action: drop\n", "m.yaml")
                .unwrap();
        let store = Arc::new(Store::new());
        let ingest = Ingest::new(
            Parser::default(),
            Arc::new(ArcSwap::from_pointee(mapper)),
            Arc::clone(&store),
            Telemetry::new(),
            Arc::new(Activity::default()),
            1000,
            1000,
            None,
        );
        let mut scratch = ingest.worker_scratch();
        let long = "x".repeat(crate::series_cache::MAX_CACHED_KEY);
        for i in 0..50 {
            ingest.packet(format!("drop.{long}{i}:1|c").as_bytes(), &mut scratch);
            ingest.packet(format!("keep.{long}:1|c").as_bytes(), &mut scratch);
        }
        ingest.packet(b"drop.short:1|c\nkeep.short:1|c", &mut scratch);
        // Only the two short samples are cached; the long ones were still dropped and counted.
        assert_eq!(scratch.series.len(), 2);
        assert_eq!(scratch.cache.len(), 2);
        assert_eq!(store.len(), 2, "keep.<long> and keep.short");
    }
}
