//! From received bytes to store updates: framing, parsing, naming, accounting.
//!
//! Every line is accounted for: it is counted in `statsd_exporter_lines_total`, and each of its samples
//! either reaches the store (`statsd_exporter_events_total{type}`) or is counted under a reason
//! (`statsd_exporter_sample_errors_total{reason}`, `statsd_exporter_events_error_total{reason}`,
//! `statsd_exporter_events_conflict_total{type,metric_name}`).

use std::sync::Arc;

use smallvec::SmallVec;
use statsd_line::{Line, Parser, Reason, Sample, SampleKind, escape_name_into};
use statsd_store::{Store, Update};

use crate::telemetry::{Tally, Telemetry};

/// Shared, immutable ingest state: the parser configuration, the store and the self-metrics.
#[derive(Debug, Clone)]
pub struct Ingest {
    parser: Parser,
    store: Arc<Store>,
    telemetry: Telemetry,
}

/// Per-task scratch space, reused for every line a receive task handles.
#[derive(Debug, Default)]
pub struct Scratch {
    name: String,
    tally: Tally,
}

impl Ingest {
    /// Ingest into `store` with `parser`'s dialects, counting in `telemetry`.
    pub fn new(parser: Parser, store: Arc<Store>, telemetry: Telemetry) -> Self {
        Self {
            parser,
            store,
            telemetry,
        }
    }

    /// Handles one packet (one or more `\n`-separated lines) and publishes its counts.
    pub fn packet(&self, packet: &[u8], scratch: &mut Scratch) {
        for line in statsd_line::lines(packet) {
            self.line(line, scratch);
        }
        self.telemetry.flush(&mut scratch.tally);
    }

    /// Handles one line (no newline), counting into `scratch` (published by [`Ingest::publish`]).
    pub fn line(&self, line: &[u8], scratch: &mut Scratch) {
        let tally = &mut scratch.tally;
        tally.lines += 1;
        let mut parsed = Line::default();
        match self.parser.parse_into(line, &mut parsed) {
            Ok(()) => {}
            Err(e) => {
                tracing::debug!(reason = %e.reason, line = %String::from_utf8_lossy(line), "bad line");
                tally.error(e.reason);
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
        self.telemetry.flush(&mut scratch.tally);
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
        let (update, events) = match sample.kind {
            SampleKind::Counter => (Update::Add(sample.counter_increment()), 1),
            SampleKind::Gauge if sample.relative => (Update::Delta(sample.value), 1),
            SampleKind::Gauge => (Update::Set(sample.value), 1),
            SampleKind::Timer | SampleKind::Histogram | SampleKind::Distribution => {
                let weight = sample.repeat();
                let update = Update::Observe {
                    value: sample.observation(),
                    weight,
                };
                (update, weight)
            }
            SampleKind::Set => {
                // Sets get a store of their own in a later change; until then they are refused as
                // statsd_exporter refuses them.
                tally.error(Reason::IllegalEvent);
                return;
            }
        };
        escape_name_into(sample.name, &mut scratch.name);
        let mut labels: SmallVec<[(&str, &str); statsd_line::INLINE_TAGS]> = sample
            .tags
            .iter()
            .map(|t| (t.key.as_ref(), t.value))
            .collect();
        match self.store.update(&scratch.name, &mut labels, update) {
            Ok(()) => scratch.tally.events(update.kind(), events),
            Err(refusal) => {
                tracing::debug!(metric = %scratch.name, %refusal, "event refused");
                self.telemetry
                    .refused(refusal, update.kind(), &scratch.name);
            }
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
