//! Rendering the store in the text format: families sorted by name, series by label set.
//!
//! A scrape renders in pieces ([`Scrape::next_chunk`]), so a server can stream a page of any size
//! through a buffer of a few dozen KiB instead of building it whole: the memory a scrape holds does not
//! grow with the store, and concurrent scrapes cannot pile up page-sized buffers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use statsd_exposition::{ExtraLabelLines, write_header, write_sample};

use crate::Store;
use parking_lot::MutexGuard;

use crate::series::{Family, Members, Series, State};

/// A scrape in progress: the families as they were when it began, sorted by name, and how far it got.
///
/// Series created after the scrape began in a family not yet reached are included; a family created
/// after it began is not. A family larger than one chunk is rendered from a copy of its member list
/// (one pointer per series), taken when its first chunk fills, so the family's lock is never held
/// between chunks and a concurrent sort or insert cannot make the scrape skip or repeat a series.
#[derive(Debug)]
pub struct Scrape {
    families: Vec<Arc<Family>>,
    /// The next family to start.
    next: usize,
    /// The rest of a family that did not fit into the previous chunk.
    rest: Vec<Arc<Series>>,
    rest_family: Option<Arc<Family>>,
    now: Instant,
    /// A series' `quantile` or `le` lines, their label texts rendered once for all series alike.
    lines: ExtraLabelLines,
    /// Protobuf scratch: the family being written, and the metric message reused for each series.
    writer: statsd_exposition::proto::FamilyWriter,
    metric: statsd_exposition::proto::Metric,
}

impl Store {
    /// Appends every series in the text format: families sorted by name, each with one `# HELP` and
    /// `# TYPE`, series sorted by label set.
    pub fn render(&self, out: &mut String) {
        let mut scrape = self.scrape();
        while scrape.next_chunk(out, usize::MAX) {}
    }

    /// Begins a scrape to be rendered in chunks (see [`Scrape::next_chunk`]).
    pub fn scrape(&self) -> Scrape {
        let mut families: Vec<Arc<Family>> = Vec::new();
        for shard in self.families.iter() {
            families.extend(shard.read().values().cloned());
        }
        families.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Scrape {
            families,
            next: 0,
            rest: Vec::new(),
            rest_family: None,
            now: self.clock.now(),
            lines: ExtraLabelLines::default(),
            writer: Default::default(),
            metric: Default::default(),
        }
    }
}

/// Series warmed together before they are written (see [`warm`]).
const WARM_AHEAD: usize = 8;

/// Reads, from each of a few series, the bytes a scrape will read first: the series, its label text
/// and its state's allocation. The reads of different series do not depend on each other, so the
/// processor overlaps their cache misses, which a scrape of a large store (tens of MB, out of cache)
/// otherwise takes one after another: halved the CPU of a 10k-summary scrape (BENCHMARKS.md).
fn warm(list: &[Arc<Series>]) {
    let mut touched = 0usize;
    for series in list {
        touched = touched
            .wrapping_add(
                series
                    .rendered
                    .as_bytes()
                    .first()
                    .map_or(0, |&b| usize::from(b)),
            )
            .wrapping_add(series.state.warm());
    }
    std::hint::black_box(touched);
}

/// `family`'s members, locked and sorted by label set, or `None` if it has none.
fn sorted_members(family: &Family) -> Option<MutexGuard<'_, Members>> {
    let mut members = family.members.lock();
    if members.list.is_empty() {
        return None;
    }
    if !members.sorted {
        members
            .list
            .sort_unstable_by(|a, b| a.rendered.cmp(&b.rendered));
        members.sorted = true;
    }
    Some(members)
}

impl Scrape {
    /// Appends the next series to `out`, stopping at the first series boundary after `out` reached
    /// `budget` bytes (so a chunk overshoots by at most one series). Returns whether anything is
    /// left to render.
    pub fn next_chunk(&mut self, out: &mut String, budget: usize) -> bool {
        if let Some(family) = self.rest_family.take() {
            let rest = std::mem::take(&mut self.rest);
            let done = self.write_series(out, &family, &rest, budget);
            if done < rest.len() {
                self.rest = rest;
                self.rest.drain(..done);
                self.rest_family = Some(family);
                return true;
            }
        }
        while out.len() < budget {
            let Some(family) = self.families.get(self.next).cloned() else {
                return false;
            };
            self.next += 1;
            let Some(members) = sorted_members(&family) else {
                continue;
            };
            let help = family.help.load();
            write_header(out, &family.name, &help.text, family.kind.family_type());
            let done = self.write_series(out, &family, &members.list, budget);
            if done < members.list.len() {
                self.rest = members.list[done..].to_vec();
                drop(members);
                self.rest_family = Some(family);
                return true;
            }
        }
        self.next < self.families.len()
    }

    /// Writes series of `family` until `out` reaches `budget` bytes; returns how many it wrote.
    fn write_series(
        &mut self,
        out: &mut String,
        family: &Family,
        list: &[Arc<Series>],
        budget: usize,
    ) -> usize {
        let name: &str = &family.name;
        for (i, series) in list.iter().enumerate() {
            if out.len() >= budget {
                return i;
            }
            if i % WARM_AHEAD == 0 {
                warm(&list[i..list.len().min(i + WARM_AHEAD)]);
            }
            let labels: &str = &series.rendered;
            match &series.state {
                State::Counter(v) | State::Gauge(v) => {
                    write_sample(out, name, "", labels, None, v.get())
                }
                State::Summary(s) => {
                    let mut s = s.lock();
                    let quantiles = s.options().quantiles.iter().map(|&(q, _)| q);
                    self.lines.begin(name, "", labels, "quantile", quantiles);
                    for (i, (_, v)) in s.quantiles(self.now).enumerate() {
                        self.lines.write(out, i, v);
                    }
                    write_sample(out, name, "_sum", labels, None, s.sum());
                    write_sample(out, name, "_count", labels, None, s.count() as f64);
                }
                State::Histogram(h) => {
                    let mut cumulative = 0u64;
                    let bounds = h.bounds();
                    self.lines
                        .begin(name, "_bucket", labels, "le", bounds.iter().copied());
                    for (i, count) in h.counts.iter().enumerate() {
                        cumulative = cumulative.saturating_add(count.load(Ordering::Relaxed));
                        if i < bounds.len() {
                            self.lines.write(out, i, cumulative as f64);
                        } else {
                            self.lines.write_inf(out, cumulative as f64);
                        }
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
                    let n = s.lock().count(self.now);
                    write_sample(out, name, "", labels, None, n as f64);
                }
            }
        }
        list.len()
    }
}

impl Scrape {
    /// Appends the next family whole, as a length-delimited protobuf `MetricFamily` (see
    /// [`statsd_exposition::proto`]), skipping empty ones. Returns whether anything is left. A scrape
    /// is rendered in one format: this and [`Scrape::next_chunk`] do not mix.
    pub fn next_family_proto(&mut self, out: &mut Vec<u8>) -> bool {
        use crate::native::{ZERO_THRESHOLD, spans_and_deltas};
        use statsd_exposition::proto::{
            Bucket, BucketSpan, Counter, Gauge, Histogram, MetricType, Quantile,
            Summary as ProtoSummary, fill_label_pairs,
        };
        while let Some(family) = self.families.get(self.next).cloned() {
            self.next += 1;
            let Some(members) = sorted_members(&family) else {
                continue;
            };
            let kind = MetricType::from(family.kind.family_type());
            let writer = &mut self.writer;
            writer.begin(&family.name, &family.help.load().text, kind);
            // One message reused for every series (its label strings too).
            let metric = &mut self.metric;
            for series in &members.list {
                fill_label_pairs(&series.rendered, &mut metric.label);
                metric.counter = None;
                metric.gauge = None;
                metric.summary = None;
                metric.histogram = None;
                match &series.state {
                    State::Counter(v) => {
                        metric.counter = Some(Counter {
                            value: Some(v.get()),
                        })
                    }
                    State::Gauge(v) => {
                        metric.gauge = Some(Gauge {
                            value: Some(v.get()),
                        })
                    }
                    State::Set(s) => {
                        let n = s.lock().count(self.now);
                        metric.gauge = Some(Gauge {
                            value: Some(n as f64),
                        });
                    }
                    State::Summary(s) => {
                        let mut s = s.lock();
                        let quantile = s
                            .quantiles(self.now)
                            .map(|(q, v)| Quantile {
                                quantile: Some(q),
                                value: Some(v),
                            })
                            .collect();
                        metric.summary = Some(ProtoSummary {
                            sample_count: Some(s.count()),
                            sample_sum: Some(s.sum()),
                            quantile,
                        });
                    }
                    State::Histogram(h) => {
                        // With a native part, read everything under its lock (see `Histogram`).
                        let native = h.native.as_ref().map(|n| n.lock());
                        let mut cumulative = 0u64;
                        let bucket = h
                            .bounds()
                            .iter()
                            .zip(h.counts.iter())
                            .map(|(&bound, count)| {
                                cumulative =
                                    cumulative.saturating_add(count.load(Ordering::Relaxed));
                                Bucket {
                                    cumulative_count: Some(cumulative),
                                    upper_bound: Some(bound),
                                }
                            })
                            .collect();
                        let mut histogram = Histogram {
                            sample_count: Some(h.count.load(Ordering::Relaxed)),
                            sample_sum: Some(h.sum.get()),
                            bucket,
                            ..Histogram::default()
                        };
                        if let Some(n) = native {
                            let encode = |buckets: &[(i32, u64)]| {
                                let (spans, deltas) = spans_and_deltas(buckets);
                                let spans = spans
                                    .into_iter()
                                    .map(|(offset, length)| BucketSpan {
                                        offset: Some(offset),
                                        length: Some(length),
                                    })
                                    .collect::<Vec<_>>();
                                (spans, deltas)
                            };
                            let (positive_span, positive_delta) = encode(&n.positive);
                            let (negative_span, negative_delta) = encode(&n.negative);
                            histogram.schema = Some(n.schema);
                            histogram.zero_threshold = Some(ZERO_THRESHOLD);
                            histogram.zero_count = Some(n.zero_count);
                            histogram.positive_span = positive_span;
                            histogram.positive_delta = positive_delta;
                            histogram.negative_span = negative_span;
                            histogram.negative_delta = negative_delta;
                            if histogram.positive_span.is_empty()
                                && histogram.negative_span.is_empty()
                            {
                                // As client_golang: an empty span marks a native histogram with
                                // no populated bucket.
                                histogram.positive_span.push(BucketSpan {
                                    offset: Some(0),
                                    length: Some(0),
                                });
                            }
                        }
                        metric.histogram = Some(histogram);
                    }
                }
                writer.push(metric);
            }
            drop(members);
            writer.finish(out);
            return self.next < self.families.len();
        }
        false
    }
}
