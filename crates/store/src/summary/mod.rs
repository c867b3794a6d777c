//! Summaries: quantiles over a sliding time window, plus cumulative sum and count.
//!
//! The algorithm is the one statsd_exporter gets from the Go client library, so that our quantiles match
//! theirs for the same input: each window is a *targeted* CKMS stream (Cormode, Korn, Muthukrishnan,
//! Srivastava, "Effective Computation of Biased Quantiles over Data Streams", ICDE 2005) whose error
//! bound is per quantile (`0.99` within rank error `0.001`, …); the window slides by keeping
//! `age_buckets` streams started `max_age / age_buckets` apart, every observation going into all of
//! them and queries reading the oldest. Observations are first gathered in one buffer per summary (as in
//! the Go client) and merged into every stream when it fills, before a rotation, or at a scrape; a window
//! whose observations all still sit in that buffer answers exactly.
//!
//! Memory: about 40 compressed entries per stream for the default objectives (16 bytes each), five
//! streams, and a buffer grown on demand up to [`BUF_CAP`] entries: under 4 KiB per series (measured
//! in BENCHMARKS.md). Identical streams are kept once (see [`Summary`]): a series younger than one
//! age bucket, or one that sees traffic in bursts, holds about a fifth of that.
//!
//! Weighted observations are runs of equal values that a query does not skip (see `Entry`).
//!
//! Unlike the Go client, observations carry a weight: a timer sampled at `@0.01` is one entry of weight
//! 100, not 100 copies, so a tiny sample rate costs nothing extra.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use bounds::Bounds;

mod bounds;

/// Observations buffered before they are merged into the streams. The Go client buffers 500 per stream
/// (and so answers exactly up to 500 observations per window); one small shared buffer keeps a summary
/// series under 4 KiB, and merging 32 at a time into ~40 compressed entries costs little. Windows of up
/// to 32 observations are answered exactly; beyond, within the configured rank error.
pub const BUF_CAP: usize = 32;

pub use statsd_spec::{DEFAULT_AGE_BUCKETS, DEFAULT_MAX_AGE, DEFAULT_QUANTILES, SummaryOptions};

thread_local! {
    /// Where streams merge a batch before compressing (one per thread, reused).
    static MERGE_BUFFER: std::cell::RefCell<Vec<Entry>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One compressed entry: a value, how many observations it stands for, and its rank uncertainty.
/// Widths and deltas are counts; `u32` keeps an entry at 16 bytes (they saturate, far beyond any window).
///
/// A *run* is one weighted observation (a sampled timer's `1/rate`, say 100) that nothing has been
/// folded into: all of its width is that one value. CKMS bounds an entry's width by the invariant,
/// which a run may exceed; a query must then not skip the run (below).
#[derive(Debug, Clone, Copy)]
struct Entry {
    value: f64,
    width: u32,
    /// The rank uncertainty, and [`RUN`].
    meta: u32,
}

/// The bit of [`Entry::meta`] that marks a run; the others are the rank uncertainty.
const RUN: u32 = 1 << 31;

impl Entry {
    fn new(value: f64, width: u32, delta: u32, run: bool) -> Self {
        Self {
            value,
            width,
            meta: delta.min(RUN - 1) | if run { RUN } else { 0 },
        }
    }

    fn delta(self) -> u32 {
        self.meta & !RUN
    }

    fn is_run(self) -> bool {
        self.meta & RUN != 0
    }
}

fn count(x: f64) -> u32 {
    // `as` saturates: a width beyond u32::MAX observations is not a realistic window.
    x.max(0.0) as u32
}

/// A targeted CKMS stream.
#[derive(Debug)]
struct Stream {
    /// Total weight merged into `entries`.
    n: f64,
    entries: Vec<Entry>,
    /// The index of the stream that holds this one's state: itself, or an identical stream whose
    /// `n` and `entries` stand for this one's (which are then unused and empty). See [`Summary`].
    same_as: u32,
}

impl Stream {
    fn new(same_as: usize) -> Self {
        Self {
            n: 0.0,
            entries: Vec::new(),
            same_as: same_as as u32,
        }
    }

    /// Merges a batch sorted by value, then compresses. The merge happens in a per-thread buffer and
    /// only the compressed result is copied back, so a stream keeps no merge slack, and merging
    /// allocates only when the compressed size reaches a new maximum.
    fn merge(&mut self, bounds: &Bounds, batch: &[(f64, f64)]) {
        if batch.is_empty() {
            return;
        }
        MERGE_BUFFER.with_borrow_mut(|merged| {
            merged.clear();
            let mut old = self.entries.iter().copied().peekable();
            let mut r = 0.0;
            for &(value, weight) in batch {
                while let Some(c) = old.next_if(|c| c.value <= value) {
                    r += f64::from(c.width);
                    merged.push(c);
                }
                // An entry inserted between existing ones inherits their rank uncertainty.
                let delta = if old.peek().is_some() {
                    // ⌊invariant⌋ − 1, at least 0 (the invariant is never negative).
                    count(bounds.invariant(self.n, r)).saturating_sub(1)
                } else {
                    0
                };
                merged.push(Entry::new(value, count(weight), delta, weight >= 2.0));
                self.n += weight;
                r += weight;
            }
            merged.extend(old);
            Self::compress(bounds, self.n, merged);
            self.entries.clear();
            // Exact growth: a stream holds no spare capacity, and allocates only when its compressed
            // size reaches a new maximum (which grows logarithmically with the observations).
            self.entries.reserve_exact(merged.len());
            self.entries.extend_from_slice(merged);
        });
    }

    /// CKMS compression of `entries` (sorted, `n` observations in all), in place, in one pass: from the
    /// highest entry down, each entry is folded into the kept one above it when the invariant allows,
    /// else kept; kept entries are packed towards the end and the folded ones dropped in one move at
    /// the end (removing each in place made a compression quadratic in the stream's size).
    fn compress(bounds: &Bounds, n: f64, entries: &mut Vec<Entry>) {
        if entries.len() < 2 {
            return;
        }
        // `x` is the kept entry the next lower one may fold into, to be stored at `entries[w]`;
        // `entries[w + 1..]` are kept.
        let bounds = bounds.at(n);
        let mut w = entries.len() - 1;
        let mut x = entries[w];
        let mut r = n - 1.0 - f64::from(x.width);
        for i in (0..entries.len() - 1).rev() {
            let c = entries[i];
            let merged = f64::from(c.width) + f64::from(x.width) + f64::from(x.delta());
            if merged <= bounds.invariant(r) {
                // Lower values folded in: no longer a run.
                x = Entry::new(x.value, x.width.saturating_add(c.width), x.delta(), false);
            } else {
                entries[w] = x;
                w -= 1;
                x = c;
            }
            r -= f64::from(c.width);
        }
        entries[w] = x;
        entries.drain(..w);
    }

    /// The estimate for quantile `q` (the stream must not be empty).
    ///
    /// The threshold is CKMS's `q·n + f(q·n)/2`. The Go implementation (perks) rounds both terms up,
    /// which over small streams lands one rank too high: with 100 observations its p99 is the maximum,
    /// a rank error of 0.01 where 0.001 is configured.
    fn query(&self, bounds: &Bounds, q: f64) -> f64 {
        let qn = q * self.n;
        let t = qn + bounds.invariant(self.n, qn) / 2.0;
        let mut p = self.entries[0];
        let mut r = 0.0;
        for &c in &self.entries[1..] {
            r += f64::from(p.width);
            let delta = f64::from(c.delta());
            if r + f64::from(c.width) + delta > t {
                // A run is that many equal observations at ranks r+1 ..= r+width (each uncertain by
                // delta): if its first could be at or below the threshold, the answer is its value (as
                // it would be from that many single entries; skipping it answered p99 of one 7 and
                // ten thousand 1000s with 7).
                if c.is_run() && r + 1.0 + delta <= t {
                    return c.value;
                }
                return p.value;
            }
            p = c;
        }
        p.value
    }
}

/// Exact nearest-rank quantile (rank ⌈q·n⌉, at least 1) of weighted observations sorted by value.
fn exact(sorted: &[(f64, f64)], q: f64) -> f64 {
    let total: f64 = sorted.iter().map(|p| p.1).sum();
    let rank = (q * total).ceil().max(1.0);
    let mut seen = 0.0;
    for &(value, weight) in sorted {
        seen += weight;
        if seen >= rank {
            return value;
        }
    }
    sorted.last().map_or(f64::NAN, |p| p.0)
}

/// What a flush keeps of the buffer.
#[derive(Clone, Copy)]
enum Keep {
    Buffer,
    Nothing,
}

/// The state of one summary series.
///
/// Streams that have seen the same observations since they were last reset are identical, and are
/// kept once: merged once, stored once, the others pointing at it (`Stream::same_as`). All of them
/// are, while a series is younger than one age bucket; streams reset during the same idle spell are,
/// as are the older streams that saw a burst between such spells — the usual life of the many
/// Mastodon series that see traffic now and then. Under steady traffic every stream differs and
/// each is merged, as in the Go client.
///
/// `repr(C)` keeps the fields a scrape of an idle series reads (validity, answers, sum, count, when
/// the head stream expires) first, in the cache lines next to the series' lock.
#[derive(Debug)]
#[repr(C)]
pub struct Summary {
    /// Whether `answers` are current.
    answered: bool,
    head: usize,
    head_expires: Instant,
    sum: f64,
    count: u64,
    /// The last answers to [`Summary::quantiles`], valid until the window changes (an observation, a
    /// merge or a rotation): a series idle between scrapes is answered without walking its stream.
    answers: SmallVec<[f64; 4]>,
    options: Arc<SummaryOptions>,
    /// Observations not yet merged into the streams: (value, weight).
    pending: Vec<(f64, f64)>,
    /// Inline for the default five age buckets: one pointer fewer to follow than a `Vec`.
    streams: SmallVec<[Stream; 5]>,
}

impl Summary {
    /// An empty summary whose window starts at `now`.
    pub fn new(options: Arc<SummaryOptions>, now: Instant) -> Self {
        let buckets = options.age_buckets.max(1) as usize;
        // Empty, so all alike: one stream stands for the others.
        let streams = (0..buckets).map(|_| Stream::new(0)).collect();
        let head_expires = now + Self::stream_duration(&options);
        Self {
            options,
            streams,
            answers: SmallVec::new(),
            answered: false,
            pending: Vec::new(),
            head: 0,
            head_expires,
            sum: 0.0,
            count: 0,
        }
    }

    fn stream_duration(options: &SummaryOptions) -> Duration {
        let d = options.max_age / options.age_buckets.max(1);
        d.max(Duration::from_millis(1))
    }

    /// Merges the buffered observations into every stream.
    ///
    /// `Keep::Buffer` when more observations are arriving (the buffer was full); otherwise the buffer
    /// is released: a series idle after a scrape or rotation holds no empty buffer (512 bytes, an
    /// eighth of a busy summary), and a busy one allocates it again at most once per scrape.
    fn flush(&mut self, keep: Keep) {
        if self.pending.is_empty() {
            return;
        }
        self.pending.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let bounds = Bounds::new(&self.options.quantiles);
        for (i, stream) in self.streams.iter_mut().enumerate() {
            if stream.same_as as usize == i {
                stream.merge(&bounds, &self.pending);
            }
        }
        match keep {
            Keep::Buffer => self.pending.clear(),
            Keep::Nothing => self.pending = Vec::new(),
        }
    }

    /// Rotates out streams whose window has passed (the head stream is reset and becomes the newest).
    /// Buffered observations are merged first: they belong to every stream's window.
    fn rotate(&mut self, now: Instant) {
        if now < self.head_expires {
            return;
        }
        self.flush(Keep::Nothing);
        self.answered = false;
        let step = Self::stream_duration(&self.options);
        let mut turns = 0;
        while now >= self.head_expires {
            if turns < self.streams.len() {
                self.reset(self.head);
                self.head = (self.head + 1) % self.streams.len();
            }
            turns += 1;
            self.head_expires += step;
            if turns > self.streams.len() {
                // Idle for longer than the whole window: every stream is already empty; jump ahead.
                let behind = now.duration_since(self.head_expires);
                let skip = (behind.as_nanos() / step.as_nanos().max(1)) as u32;
                self.head_expires += step * skip;
            }
        }
    }

    /// The stream that holds stream `i`'s state.
    fn stream(&self, i: usize) -> &Stream {
        &self.streams[self.streams[i].same_as as usize]
    }

    /// Empties stream `i`. If others were kept as it, the first of them takes its state over for the
    /// rest; and an emptied stream is kept as another empty one, if there is one.
    fn reset(&mut self, i: usize) {
        let len = self.streams.len();
        if self.streams[i].same_as as usize == i
            && let Some(heir) = (0..len).find(|&d| d != i && self.streams[d].same_as as usize == i)
        {
            let state = std::mem::replace(&mut self.streams[i], Stream::new(i));
            self.streams[heir] = Stream {
                same_as: heir as u32,
                ..state
            };
            for d in 0..len {
                if d != heir && self.streams[d].same_as as usize == i {
                    self.streams[d].same_as = heir as u32;
                }
            }
        }
        self.streams[i] = Stream::new(i);
        let empty = (0..len).find(|&e| {
            let stream = &self.streams[e];
            e != i && stream.same_as as usize == e && stream.n == 0.0 && stream.entries.is_empty()
        });
        if let Some(e) = empty {
            self.streams[i].same_as = e as u32;
        }
    }

    /// Records `value` observed `weight` times (weight ≥ 1; a sampled timer's `floor(1/rate)`).
    pub fn observe(&mut self, value: f64, weight: u64, now: Instant) {
        self.rotate(now);
        let w = weight.max(1) as f64;
        if self.pending.len() >= BUF_CAP {
            self.flush(Keep::Buffer);
        }
        if self.pending.len() == self.pending.capacity() {
            // Grown on demand (4, 8, 16, 32): most series see few observations per window.
            let want = (self.pending.capacity() * 2).clamp(4, BUF_CAP);
            self.pending.reserve_exact(want - self.pending.len());
        }
        self.pending.push((value, w));
        self.answered = false;
        self.sum += value * w;
        self.count = self.count.saturating_add(weight.max(1));
    }

    /// Cumulative sum of all observations.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Cumulative count of all observations.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The configured objectives.
    pub fn options(&self) -> &SummaryOptions {
        &self.options
    }

    /// The estimate of each configured quantile over the window, in configuration order (NaN when the
    /// window holds no observation).
    pub fn quantiles(&mut self, now: Instant) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.rotate(now);
        if !self.answered {
            self.answer();
        }
        let targets = &self.options.quantiles;
        targets
            .iter()
            .zip(&self.answers)
            .map(|(&(q, _), &v)| (q, v))
    }

    /// Computes the answers to the configured quantiles into `answers`.
    fn answer(&mut self) {
        // A window whose observations all still sit in the buffer answers exactly from it.
        let exact_window = self.stream(self.head).entries.is_empty();
        if exact_window {
            self.pending.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        } else {
            self.flush(Keep::Nothing);
        }
        let targets = &self.options.quantiles;
        let bounds = Bounds::new(targets);
        let head = &self.streams[self.streams[self.head].same_as as usize];
        let pending = &self.pending;
        self.answers.clear();
        self.answers.extend(targets.iter().map(|&(q, _)| {
            if exact_window {
                if pending.is_empty() {
                    f64::NAN
                } else {
                    exact(pending, q)
                }
            } else {
                head.query(&bounds, q)
            }
        }));
        self.answered = true;
    }

    /// Bytes held by this summary: the struct itself (a series boxes it) and its heap buffers and
    /// compressed entries.
    pub fn bytes(&self) -> usize {
        let streams = if self.streams.spilled() {
            self.streams.capacity() * std::mem::size_of::<Stream>()
        } else {
            0
        };
        let answers = if self.answers.spilled() {
            self.answers.capacity() * std::mem::size_of::<f64>()
        } else {
            0
        };
        std::mem::size_of::<Self>()
            + streams
            + answers
            + self
                .streams
                .iter()
                .map(|s| s.entries.capacity() * std::mem::size_of::<Entry>())
                .sum::<usize>()
            + self.pending.capacity() * std::mem::size_of::<(f64, f64)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Just;

    /// The rank error configured for quantile `q` by default.
    fn configured_error(q: f64) -> f64 {
        DEFAULT_QUANTILES
            .iter()
            .find(|t| t.0 == q)
            .map(|t| t.1)
            .expect("a default quantile")
    }

    fn summary() -> (Summary, Instant) {
        let now = Instant::now();
        (Summary::new(Arc::new(SummaryOptions::default()), now), now)
    }

    #[test]
    fn single_observation_is_every_quantile() {
        let (mut s, now) = summary();
        s.observe(0.25, 1, now);
        let qs: Vec<_> = s.quantiles(now).collect();
        assert_eq!(qs, vec![(0.5, 0.25), (0.9, 0.25), (0.99, 0.25)]);
        assert_eq!((s.sum(), s.count()), (0.25, 1));
    }

    #[test]
    fn empty_window_is_nan() {
        let (mut s, now) = summary();
        assert!(s.quantiles(now).all(|(_, v)| v.is_nan()));
    }

    #[test]
    fn weighted_observation_counts_its_weight() {
        let (mut s, now) = summary();
        s.observe(1.0, 1, now);
        s.observe(2.0, 10, now);
        assert_eq!((s.sum(), s.count()), (21.0, 11));
        let qs: Vec<_> = s.quantiles(now).collect();
        // 11 observations: rank ⌈0.5·11⌉ = 6 is among the ten 2.0s.
        assert_eq!(qs[0], (0.5, 2.0));
    }

    #[test]
    fn small_windows_are_exact() {
        let (mut s, now) = summary();
        for v in 1..=BUF_CAP as u32 {
            s.observe(f64::from(v), 1, now);
        }
        let qs: Vec<_> = s.quantiles(now).collect();
        assert_eq!(qs, vec![(0.5, 16.0), (0.9, 29.0), (0.99, 32.0)]);
    }

    #[test]
    fn hundred_observations_stay_within_the_configured_rank_error() {
        let (mut s, now) = summary();
        for v in 1..=100 {
            s.observe(f64::from(v), 1, now);
        }
        for (q, v) in s.quantiles(now).collect::<Vec<_>>() {
            let err = configured_error(q);
            // Rank of v is v (values 1..=100); allowed: |rank/n − q| ≤ err, plus one rank of rounding.
            assert!((v / 100.0 - q).abs() <= err + 0.01, "q={q}: {v}");
        }
    }

    #[test]
    fn large_sets_stay_within_rank_error() {
        let (mut s, now) = summary();
        let n = 100_000u64;
        // A deterministic permutation of 1..=n (multiplicative hashing by a unit modulo a prime > n).
        let p = 100_003u64;
        for i in 1..=n {
            let v = (i * 7919) % p;
            s.observe(v as f64, 1, now);
        }
        // Values are a permutation of 1..p-1 minus a few; rank of v ≈ v.
        assert!(s.bytes() < 4096, "summary holds {} bytes", s.bytes());
        for (q, v) in s.quantiles(now).collect::<Vec<_>>() {
            let err = configured_error(q);
            let rank = v / p as f64;
            assert!(
                (rank - q).abs() <= err + 1e-4,
                "q={q} estimate {v} rank {rank} beyond ±{err}"
            );
        }
    }

    /// Observes `values[i]` at `start + times[i]` (times ascending), then checks each quantile at `end`
    /// against the observations the window holds then (those since the head stream's last reset: the
    /// last `age_buckets` stream durations, the current one begun): the estimate's rank among them is
    /// within the configured error, plus two ranks (one of rounding; one because the query's threshold
    /// takes the invariant at `q·n`, not at the returned entry's rank). Returns how many observations
    /// the window holds and the summary's bytes.
    fn check_window(
        values: &[f64],
        times: &[Duration],
        end: Duration,
        tolerance: f64,
    ) -> (usize, usize) {
        let (mut s, start) = summary();
        for (v, t) in values.iter().zip(times) {
            s.observe(*v, 1, start + *t);
        }
        let slice = Summary::stream_duration(&SummaryOptions::default());
        let buckets = u128::from(SummaryOptions::default().age_buckets);
        let current = end.as_nanos() / slice.as_nanos();
        let first = (current + 1).saturating_sub(buckets);
        let mut window: Vec<f64> = values
            .iter()
            .zip(times)
            .filter(|(_, t)| t.as_nanos() / slice.as_nanos() >= first)
            .map(|(v, _)| *v)
            .collect();
        window.sort_by(f64::total_cmp);
        let n = window.len() as f64;
        for (q, v) in s.quantiles(start + end).collect::<Vec<_>>() {
            if window.is_empty() {
                assert!(v.is_nan());
                continue;
            }
            let below = window.partition_point(|x| *x < v) as f64;
            let through = window.partition_point(|x| *x <= v) as f64;
            let allowed = tolerance * configured_error(q) * n + 2.0;
            assert!(
                through >= q * n - allowed && below + 1.0 <= q * n + allowed,
                "q={q}: estimate {v} has ranks {}..={through} of {n}, want {} ± {allowed}",
                below + 1.0,
                q * n
            );
        }
        (window.len(), s.bytes())
    }

    /// 60,000 observations over 15 minutes (one every 15 ms) of `value(i)`, checked at several times,
    /// across rotations; returns the most bytes seen.
    fn check_over_time(value: impl Fn(u32) -> f64) -> usize {
        let n = 60_000u32;
        let values: Vec<f64> = (0..n).map(value).collect();
        let times: Vec<Duration> = (0..n)
            .map(|i| Duration::from_millis(u64::from(i) * 15))
            .collect();
        let mut most = 0;
        for end_secs in [60, 299, 301, 600, 899] {
            let end = Duration::from_secs(end_secs);
            let upto = times.partition_point(|t| *t <= end);
            let (held, bytes) = check_window(&values[..upto], &times[..upto], end, 1.0);
            assert!(held > 0, "the window at {end_secs}s holds observations");
            most = most.max(bytes);
        }
        most
    }

    #[test]
    fn a_window_across_rotations_stays_within_rank_error_and_4_kib() {
        // Latency-like: values in no particular order.
        let bytes = check_over_time(|i| f64::from((i * 7919) % 100_003));
        assert!(bytes < 4096, "{bytes} bytes");
    }

    #[test]
    fn values_that_drift_upwards_stay_within_rank_error() {
        // A sawtooth drifting upwards: most observations land above everything before them, which
        // CKMS compresses least well: up to 10.2 KiB here (five streams of ~120 entries), which is why
        // the 4 KiB figure is stated for values in no particular order.
        let bytes = check_over_time(|i| f64::from((i * 7919) % 1000) + f64::from(i) / 10.0);
        assert!(bytes < 12 * 1024, "{bytes} bytes");
    }

    proptest::proptest! {
        /// Any values at any times (bursts, gaps, rotations): every quantile near its target over what
        /// the window holds. Not within the nominal error: CKMS as statsd_exporter runs it (the
        /// targeted invariant of the 2005 paper, which has no proof of its bound) exceeds it now and
        /// then, by up to 1.19× in 5,400 random windows (`cargo run --release -p statsd-benches
        /// --example summary_error`); a broken window would be off by far more than the 1.5× allowed.
        #[test]
        fn any_window_stays_near_its_rank_error(
            mut events in proptest::collection::vec((0u64..1_200_000, -1e6f64..1e6), 1..3000),
            extra in 0u64..300_000,
        ) {
            events.sort_by_key(|e| e.0);
            let times: Vec<Duration> = events.iter().map(|e| Duration::from_millis(e.0)).collect();
            let values: Vec<f64> = events.iter().map(|e| e.1).collect();
            let end = *times.last().unwrap() + Duration::from_millis(extra);
            check_window(&values, &times, end, 1.5);
        }

        /// Weighted observations (sampled timers: a weight of `1/rate`, up to 1000 here) are as
        /// accurate as that many single ones: ranks counted with the weights.
        #[test]
        fn weighted_observations_stay_near_their_rank_error(
            observations in proptest::collection::vec((0u32..1000, 1u64..=1000), 1..400),
        ) {
            let (mut s, now) = summary();
            for &(v, w) in &observations {
                s.observe(f64::from(v), w, now);
            }
            let weight = |keep: &dyn Fn(f64) -> bool| -> f64 {
                observations.iter().filter(|o| keep(f64::from(o.0))).map(|o| o.1 as f64).sum()
            };
            let n = weight(&|_| true);
            for (q, v) in s.quantiles(now).collect::<Vec<_>>() {
                let below = weight(&|x| x < v);
                let through = weight(&|x| x <= v);
                let allowed = 1.5 * configured_error(q) * n + 2.0;
                proptest::prop_assert!(
                    through >= q * n - allowed && below + 1.0 <= q * n + allowed,
                    "q={q}: estimate {v} has ranks {}..={through} of {n}, want {} ± {allowed}",
                    below + 1.0,
                    q * n
                );
            }
        }

        /// The bound, general and at a fixed `n`, is bit for bit CKMS's definition, the edge
        /// quantiles 0 and 1 included (whose coefficients are infinite).
        #[test]
        fn the_bound_at_a_fixed_n_is_the_bound(
            targets in proptest::collection::vec(
                (proptest::prop_oneof![Just(0.0), Just(1.0), 0.0f64..=1.0], 1e-4f64..0.5), 1..5),
            n in 0.0f64..1e9,
            at in 0.0f64..=1.0,
        ) {
            let bounds = Bounds::new(&targets);
            let r = (n * at).floor();
            // CKMS's definition, written out plainly (as it was before the bound was optimised).
            let reference = targets.iter().fold(f64::MAX, |m, &(q, e)| {
                let f = if q * n <= r {
                    2.0 * e / q * r
                } else {
                    2.0 * e / (1.0 - q) * (n - r)
                };
                m.min(f)
            });
            for optimised in [bounds.invariant(n, r), bounds.at(n).invariant(r)] {
                proptest::prop_assert_eq!(reference.to_bits(), optimised.to_bits(), "n={} r={}", n, r);
            }
        }
    }

    /// Streams that saw the same observations since their reset are kept once: all five while the
    /// series is young; one more per age bucket under steady traffic; those reset during a silent
    /// spell, as one, after it. Answers stay those of five separate streams (the property tests
    /// check every window against exact ranks).
    #[test]
    fn identical_streams_are_kept_once() {
        let (mut s, start) = summary();
        let step = DEFAULT_MAX_AGE / DEFAULT_AGE_BUCKETS;
        let traffic = |s: &mut Summary, at: Instant| {
            for i in 0..200 {
                s.observe(f64::from(i), 1, at);
            }
            s.quantiles(at).count()
        };
        let held = |s: &Summary| s.streams.iter().filter(|x| !x.entries.is_empty()).count();
        traffic(&mut s, start);
        assert_eq!(held(&s), 1, "young: one stream for five");
        for k in 1..=4 {
            traffic(&mut s, start + step * k);
            assert_eq!(held(&s), k as usize + 1, "steady traffic, {k} rotations");
        }
        // Three age buckets of silence reset three streams; then traffic again.
        traffic(&mut s, start + step * 7);
        assert_eq!(held(&s), 3, "the three reset while idle are one");
        let distinct = (0..5)
            .filter(|&i| s.streams[i].same_as as usize == i)
            .count();
        assert_eq!(distinct, 3);
        // The window (the head stream) holds the traffic of buckets 2, 3, 4 and 7: 800 values, four
        // of each of 0..200; p90 is 179, within ε = 0.01 (8 ranks: two values either side).
        let p90 = s
            .quantiles(start + step * 7)
            .nth(1)
            .map_or(f64::NAN, |q| q.1);
        assert!((177.0..=181.0).contains(&p90), "{p90}");
    }

    /// The answers kept between scrapes follow every change of the window: an observation (buffered
    /// or merged), and a rotation that drops the oldest observations.
    #[test]
    fn kept_answers_follow_observations_and_rotations() {
        let (mut s, start) = summary();
        let p99 = |s: &mut Summary, now| s.quantiles(now).nth(2).map(|(_, v)| v);
        assert!(p99(&mut s, start).is_some_and(f64::is_nan));
        s.observe(5.0, 1, start);
        assert_eq!(p99(&mut s, start), Some(5.0));
        assert_eq!(p99(&mut s, start), Some(5.0), "asked twice, same answer");
        s.observe(7.0, 1, start);
        assert_eq!(p99(&mut s, start), Some(7.0), "a buffered observation");
        // Past the buffer: observations are merged into the streams.
        for i in 0..(4 * BUF_CAP) {
            s.observe(i as f64 / 100.0, 1, start);
        }
        // 130 observations: p99 is the 129th (5) or, within the rank error, a neighbour.
        let merged = p99(&mut s, start).unwrap_or(f64::NAN);
        assert!((1.27..=7.0).contains(&merged), "{merged}");
        s.observe(1000.0, 10_000, start);
        assert_eq!(
            p99(&mut s, start),
            Some(1000.0),
            "a heavy observation after a query"
        );
        // One age bucket later the first stream (holding everything) still answers; once the window
        // has passed, only what came after it counts.
        let step = DEFAULT_MAX_AGE / DEFAULT_AGE_BUCKETS;
        assert_eq!(p99(&mut s, start + step), Some(1000.0));
        let later = start + DEFAULT_MAX_AGE + step;
        assert!(p99(&mut s, later).is_some_and(f64::is_nan), "rotated out");
        s.observe(3.0, 1, later);
        assert_eq!(p99(&mut s, later), Some(3.0));
    }

    #[test]
    fn window_slides_out_old_observations() {
        let (mut s, start) = summary();
        s.observe(100.0, 1, start);
        // After the full max age, the old observation is gone from quantiles but not from sum/count.
        let later = start + DEFAULT_MAX_AGE + Duration::from_secs(1);
        s.observe(1.0, 1, later);
        let qs: Vec<_> = s.quantiles(later).collect();
        assert_eq!(qs[2], (0.99, 1.0));
        assert_eq!((s.sum(), s.count()), (101.0, 2));
        // An hour of silence empties the window without looping per bucket.
        let much_later = later + Duration::from_secs(3600);
        assert!(s.quantiles(much_later).all(|(_, v)| v.is_nan()));
    }

    #[test]
    fn window_keeps_recent_observations_across_one_rotation() {
        let (mut s, start) = summary();
        s.observe(5.0, 1, start + Duration::from_secs(100));
        // 3 minutes later one stream rotated (every 2 minutes), but the head still holds the value.
        let q: Vec<_> = s.quantiles(start + Duration::from_secs(180)).collect();
        assert_eq!(q[0], (0.5, 5.0));
    }
}
