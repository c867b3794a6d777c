//! From received bytes to store updates: framing, parsing, naming, accounting.
//!
//! Every line is accounted for: it is counted in `statsd_exporter_lines_total`, and each of its samples
//! either reaches the store (`statsd_exporter_events_total{type}`) or is counted under a reason
//! (`statsd_exporter_sample_errors_total{reason}`, `statsd_exporter_events_error_total{reason}`,
//! `statsd_exporter_events_conflict_total{type,metric_name}`).

use std::sync::Arc;

use arc_swap::ArcSwap;

use smallvec::SmallVec;
use statsd_line::{Line, Parser, Reason, Sample, SampleKind, escape_name_into};
use statsd_mapping::{Action, MappingCache, MetricType};
use statsd_store::{Store, Update};

use crate::mappings::Mappings;
use crate::relay::RelayQueue;
use crate::telemetry::{Tally, Telemetry};

/// Labels of one sample: tags and mapping labels merged, on the stack for up to 8.
pub type Labels<'a> = SmallVec<[(&'a str, &'a str); statsd_line::INLINE_TAGS]>;

/// Shared, immutable ingest state: the parser configuration, the mapping, the store and the
/// self-metrics.
#[derive(Debug, Clone)]
pub struct Ingest {
    parser: Parser,
    /// Swapped whole on reload; each line reads the current one.
    mappings: Arc<ArcSwap<Mappings>>,
    relay: Option<RelayQueue>,
    store: Arc<Store>,
    telemetry: Telemetry,
    cache_size: usize,
}

/// Per-task scratch space, reused for every line a receive task handles: the escaped-name buffer,
/// the task's mapping cache (so a cache hit takes no lock), and the counts not yet published.
#[derive(Debug)]
pub struct Scratch {
    name: String,
    cache: MappingCache,
    tally: Tally,
    /// Lines to relay, `\n`-terminated, handed over at [`Ingest::publish`].
    relay: Vec<u8>,
    relay_lines: u64,
    /// `statsd_metric_mapper_cache_length`, and how much of it is this cache's (taken back on drop).
    cache_length: prometheus::IntGauge,
    cache_length_published: i64,
}

impl Scratch {
    /// Scratch space with a mapping cache of `cache_size` results (0: no cache).
    fn new(cache_size: usize, cache_length: prometheus::IntGauge) -> Self {
        Self {
            name: String::new(),
            cache: MappingCache::new(cache_size),
            tally: Tally::default(),
            relay: Vec::new(),
            relay_lines: 0,
            cache_length,
            cache_length_published: 0,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.cache_length.sub(self.cache_length_published);
    }
}

impl Ingest {
    /// Ingest into `store` through `mappings`, with `parser`'s dialects, counting in `telemetry`;
    /// each receive task caches up to `cache_size` mapping results.
    pub fn new(
        parser: Parser,
        mappings: Arc<ArcSwap<Mappings>>,
        store: Arc<Store>,
        telemetry: Telemetry,
        cache_size: usize,
        relay: Option<RelayQueue>,
    ) -> Self {
        Self {
            parser,
            mappings,
            relay,
            store,
            telemetry,
            cache_size,
        }
    }

    /// Scratch space for one receive task (its own mapping cache).
    pub fn scratch(&self) -> Scratch {
        Scratch::new(self.cache_size, self.telemetry.cache_length.clone())
    }

    /// Handles one packet (one or more `\n`-separated lines) and publishes its counts.
    pub fn packet(&self, packet: &[u8], scratch: &mut Scratch) {
        self.lines_of(packet, scratch);
        self.publish(scratch);
    }

    /// Handles the lines of one packet, counting into `scratch` (see [`Ingest::publish`]).
    pub fn lines_of(&self, packet: &[u8], scratch: &mut Scratch) {
        for line in statsd_line::lines(packet) {
            self.line(line, scratch);
        }
    }

    /// Handles one line (no newline), counting into `scratch` (published by [`Ingest::publish`]).
    pub fn line(&self, line: &[u8], scratch: &mut Scratch) {
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
                Ok(sample) => self.sample(&sample, scratch),
                Err(e) => {
                    tracing::debug!(reason = %e.reason, line = %parsed.text(), "bad sample");
                    tally.error(e.reason);
                }
            }
        }
    }

    /// Publishes the counts gathered in `scratch` (TCP calls this per read, UDP per packet).
    pub fn publish(&self, scratch: &mut Scratch) {
        let (gets, hits) = scratch.cache.take_stats();
        scratch.tally.cache_gets += gets;
        scratch.tally.cache_hits += hits;
        let length = i64::try_from(scratch.cache.len()).unwrap_or(i64::MAX);
        if length != scratch.cache_length_published {
            scratch
                .cache_length
                .add(length - scratch.cache_length_published);
            scratch.cache_length_published = length;
        }
        self.telemetry.flush(&mut scratch.tally);
        if let Some(relay) = &self.relay
            && scratch.relay_lines > 0
        {
            // One chunk per batch; the relay task splits it into datagrams.
            let chunk = std::mem::take(&mut scratch.relay);
            relay.push(chunk, std::mem::take(&mut scratch.relay_lines));
        }
    }

    fn sample(&self, sample: &Sample<'_, '_>, scratch: &mut Scratch) {
        let tally = &mut scratch.tally;
        if sample.invalid_rate {
            // Kept at rate 1, but counted, as statsd_exporter does.
            tally.error(Reason::InvalidSampleFactor);
        }
        if !sample.tags.is_empty() {
            tally.tags += 1;
        }
        let ty = metric_type(sample.kind);
        let mappings = self.mappings.load();
        let mappings = &**mappings;
        let Scratch {
            name, cache, tally, ..
        } = scratch;
        let mut labels: Labels<'_> = sample
            .tags
            .iter()
            .map(|t| (t.key.as_ref(), t.value))
            .collect();
        let (metric, spec, scale) = match cache.map(&mappings.mapper, sample.name, ty) {
            Some(mapped) => {
                let rule = &mappings.mapper.rules()[mapped.rule];
                if rule.action == Action::Drop {
                    tally.actions_drop += 1;
                    return;
                }
                if mapped.name.is_empty() {
                    self.telemetry.empty_metric_name();
                    return;
                }
                tally.actions_map += 1;
                merge_labels(&mut labels, &mapped.labels, rule.honor_labels);
                (mapped.name.as_str(), mappings.spec(mapped.rule), rule.scale)
            }
            None => {
                tally.unmapped += 1;
                escape_name_into(sample.name, name);
                (name.as_str(), mappings.unmapped(), None)
            }
        };
        let (update, events) = update_for(sample, scale);
        match self.store.update(metric, &mut labels, update, spec) {
            Ok(()) => tally.events(update.kind(spec), events),
            Err(refusal) => {
                tracing::debug!(%metric, %refusal, "event refused");
                self.telemetry.refused(refusal, update.kind(spec), metric);
            }
        }
    }
}

/// The mapping type of a sample kind: sets are exposed as gauges, and mapping rules see them as such.
pub fn metric_type(kind: SampleKind) -> MetricType {
    match kind {
        SampleKind::Counter => MetricType::Counter,
        SampleKind::Gauge | SampleKind::Set => MetricType::Gauge,
        SampleKind::Timer | SampleKind::Histogram | SampleKind::Distribution => {
            MetricType::Observer
        }
    }
}

/// The store update a sample makes (values multiplied by the rule's `scale`), and how many events it
/// stands for (a sampled observation counts `floor(1/rate)` times).
pub fn update_for<'a>(sample: &Sample<'_, 'a>, scale: Option<f64>) -> (Update<'a>, u64) {
    let scaled = |v: f64| scale.map_or(v, |s| v * s);
    match sample.kind {
        SampleKind::Counter => (Update::Add(scaled(sample.counter_increment())), 1),
        SampleKind::Gauge if sample.relative => (Update::Delta(scaled(sample.value)), 1),
        SampleKind::Gauge => (Update::Set(scaled(sample.value)), 1),
        SampleKind::Set => (Update::Member(sample.raw_value), 1),
        SampleKind::Timer | SampleKind::Histogram | SampleKind::Distribution => {
            let weight = sample.repeat();
            let update = Update::Observe {
                value: scaled(sample.observation()),
                weight,
            };
            (update, weight)
        }
    }
}

/// Adds a rule's labels to a sample's tags: the rule's value wins for a name both have, unless the rule
/// says `honor_labels` (then the tag's value stays), as statsd_exporter does.
pub fn merge_labels<'a>(
    labels: &mut Labels<'a>,
    rule_labels: &'a [(String, String)],
    honor_labels: bool,
) {
    for (k, v) in rule_labels {
        match labels.iter_mut().find(|(tk, _)| *tk == k.as_str()) {
            Some(existing) if !honor_labels => existing.1 = v.as_str(),
            Some(_) => {}
            None => labels.push((k.as_str(), v.as_str())),
        }
    }
}

/// Splits a TCP byte stream into lines of bounded length.
///
/// Bytes are appended with [`LineFramer::push`]; complete lines come out through a callback. A line
/// longer than the limit is discarded up to its newline and reported once, without closing the
/// connection. A `\r` before the `\n` is dropped (by [`statsd_line::lines`]' rule, applied per line).
#[derive(Debug)]
pub struct LineFramer {
    buf: Vec<u8>,
    max_line: usize,
    discarding: bool,
}

impl LineFramer {
    /// A framer refusing lines longer than `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        Self {
            buf: Vec::with_capacity(max_line.min(64 * 1024)),
            max_line,
            discarding: false,
        }
    }

    /// Feeds received bytes; calls `line` for each complete line and `too_long` for each line dropped
    /// for its length.
    pub fn push(
        &mut self,
        mut data: &[u8],
        mut line: impl FnMut(&[u8]),
        mut too_long: impl FnMut(),
    ) {
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if self.discarding {
                        self.discarding = false;
                    } else if self.buf.len() + i > self.max_line {
                        too_long();
                    } else if self.buf.is_empty() {
                        line(&data[..i]);
                    } else {
                        self.buf.extend_from_slice(&data[..i]);
                        line(&self.buf);
                    }
                    self.buf.clear();
                    data = &data[i + 1..];
                }
                None => {
                    if !self.discarding {
                        if self.buf.len() + data.len() > self.max_line {
                            too_long();
                            self.buf.clear();
                            self.discarding = true;
                        } else {
                            self.buf.extend_from_slice(data);
                        }
                    }
                    data = &[];
                }
            }
        }
    }

    /// At end of stream: the unterminated last line, if any (statsd_exporter processes it too).
    pub fn finish(&mut self, line: impl FnOnce(&[u8])) {
        if !self.discarding && !self.buf.is_empty() {
            line(&self.buf);
        }
        self.buf.clear();
        self.discarding = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(chunks: &[&[u8]], max: usize) -> (Vec<String>, usize) {
        let mut f = LineFramer::new(max);
        let mut lines = Vec::new();
        let mut long = 0;
        for c in chunks {
            f.push(
                c,
                |l| lines.push(String::from_utf8_lossy(l).into_owned()),
                || long += 1,
            );
        }
        f.finish(|l| lines.push(String::from_utf8_lossy(l).into_owned()));
        (lines, long)
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let (lines, long) = frame(&[b"foo:1", b"|c\nbar:2|g\nba", b"z:3|c\n"], 100);
        assert_eq!(lines, ["foo:1|c", "bar:2|g", "baz:3|c"]);
        assert_eq!(long, 0);
    }

    #[test]
    fn too_long_lines_are_skipped_and_the_stream_goes_on() {
        let (lines, long) = frame(&[b"ok:1|c\n", b"0123456789", b"0123456789\nnext:1|c\n"], 12);
        assert_eq!(lines, ["ok:1|c", "next:1|c"]);
        assert_eq!(long, 1);
        let (lines, long) = frame(&[b"0123456789012345\nnext:1|c"], 12);
        assert_eq!(lines, ["next:1|c"]);
        assert_eq!(long, 1);
    }

    #[test]
    fn unterminated_last_line_is_kept() {
        assert_eq!(frame(&[b"a:1|c"], 100).0, ["a:1|c"]);
    }
}
