//! Summaries: quantiles over a sliding time window, plus cumulative sum and count.
//!
//! The algorithm is the one statsd_exporter gets from the Go client library, so that our quantiles match
//! theirs for the same input: each window is a *targeted* CKMS stream (Cormode, Korn, Muthukrishnan,
//! Srivastava, "Effective Computation of Biased Quantiles over Data Streams", ICDE 2005) whose error
//! bound is per quantile (`0.99` within rank error `0.001`, …); the window slides by keeping
//! `age_buckets` streams started `max_age / age_buckets` apart, every observation going into all of
//! them and queries reading the oldest. Small streams (fewer than [`BUF_CAP`] observations since the
//! last rotation) answer exactly from their buffer.
//!
//! Unlike the Go client, observations carry a weight: a timer sampled at `@0.01` is one entry of weight
//! 100, not 100 copies, so a tiny sample rate costs nothing extra.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Observations buffered per stream before they are merged into its compressed form (as in the Go client).
pub const BUF_CAP: usize = 500;

/// Default quantile objectives: (quantile, allowed rank error), statsd_exporter's defaults.
pub const DEFAULT_QUANTILES: [(f64, f64); 3] = [(0.5, 0.05), (0.9, 0.01), (0.99, 0.001)];
/// Default window length.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);
/// Default number of streams the window is split into.
pub const DEFAULT_AGE_BUCKETS: u32 = 5;

/// How a summary is computed. Shared (by `Arc`) between all series of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryOptions {
    /// (quantile, rank error) pairs, each quantile in [0, 1] and error in (0, 1).
    pub quantiles: Vec<(f64, f64)>,
    /// Observations older than this leave the quantiles (sum and count are cumulative).
    pub max_age: Duration,
    /// Streams the window is split into (at least 1).
    pub age_buckets: u32,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        Self {
            quantiles: DEFAULT_QUANTILES.to_vec(),
            max_age: DEFAULT_MAX_AGE,
            age_buckets: DEFAULT_AGE_BUCKETS,
        }
    }
}

/// One compressed entry: a value, how many observations it stands for, and its rank uncertainty.
#[derive(Debug, Clone, Copy)]
struct Entry {
    value: f64,
    width: f64,
    delta: f64,
}

/// A targeted CKMS stream.
#[derive(Debug)]
struct Stream {
    /// Total weight merged into `entries`.
    n: f64,
    entries: Vec<Entry>,
    /// Not yet merged: (value, weight).
    pending: Vec<(f64, f64)>,
}

impl Stream {
    fn new() -> Self {
        Self {
            n: 0.0,
            entries: Vec::new(),
            pending: Vec::new(),
        }
    }

    fn reset(&mut self) {
        self.n = 0.0;
        self.entries.clear();
        self.pending.clear();
    }

    fn is_empty(&self) -> bool {
        self.n == 0.0 && self.pending.is_empty()
    }

    /// The allowed rank uncertainty at rank `r`: the tightest of the targets' bounds.
    fn invariant(targets: &[(f64, f64)], n: f64, r: f64) -> f64 {
        let mut m = f64::MAX;
        for &(q, e) in targets {
            let f = if q * n <= r {
                2.0 * e * r / q
            } else {
                2.0 * e * (n - r) / (1.0 - q)
            };
            m = m.min(f);
        }
        m
    }

    fn insert(&mut self, targets: &[(f64, f64)], value: f64, weight: f64) {
        self.pending.push((value, weight));
        if self.pending.len() >= BUF_CAP {
            self.flush(targets);
        }
    }

    fn flush(&mut self, targets: &[(f64, f64)]) {
        if self.pending.is_empty() {
            return;
        }
        self.pending.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut r = 0.0;
        let mut i = 0;
        let pending = std::mem::take(&mut self.pending);
        for &(value, width) in &pending {
            let mut inserted = false;
            while i < self.entries.len() {
                let c = self.entries[i];
                if c.value > value {
                    let delta = (Self::invariant(targets, self.n, r).floor() - 1.0).max(0.0);
                    self.entries.insert(
                        i,
                        Entry {
                            value,
                            width,
                            delta,
                        },
                    );
                    i += 1;
                    inserted = true;
                    break;
                }
                r += c.width;
                i += 1;
            }
            if !inserted {
                self.entries.push(Entry {
                    value,
                    width,
                    delta: 0.0,
                });
                i += 1;
            }
            self.n += width;
            r += width;
        }
        self.pending = pending;
        self.pending.clear();
        self.compress(targets);
    }

    fn compress(&mut self, targets: &[(f64, f64)]) {
        if self.entries.len() < 2 {
            return;
        }
        let mut xi = self.entries.len() - 1;
        let mut x = self.entries[xi];
        let mut r = self.n - 1.0 - x.width;
        let mut i = self.entries.len() - 1;
        while i > 0 {
            i -= 1;
            let c = self.entries[i];
            if c.width + x.width + x.delta <= Self::invariant(targets, self.n, r) {
                x.width += c.width;
                self.entries[xi] = x;
                self.entries.remove(i);
                xi -= 1;
            } else {
                x = c;
                xi = i;
            }
            r -= c.width;
        }
    }

    /// The estimate for quantile `q`, or NaN for an empty stream.
    fn query(&mut self, targets: &[(f64, f64)], q: f64) -> f64 {
        if self.entries.is_empty() {
            // Never compressed: exact, from the buffer (rank ⌈q·n⌉, at least 1).
            if self.pending.is_empty() {
                return f64::NAN;
            }
            self.pending.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            let total: f64 = self.pending.iter().map(|p| p.1).sum();
            let rank = (q * total).ceil().max(1.0);
            let mut seen = 0.0;
            for &(value, weight) in &self.pending {
                seen += weight;
                if seen >= rank {
                    return value;
                }
            }
            return self.pending.last().map_or(f64::NAN, |p| p.0);
        }
        self.flush(targets);
        let mut t = (q * self.n).ceil();
        t += (Self::invariant(targets, self.n, t) / 2.0).ceil();
        let mut p = self.entries[0];
        let mut r = 0.0;
        for &c in &self.entries[1..] {
            r += p.width;
            if r + c.width + c.delta > t {
                return p.value;
            }
            p = c;
        }
        p.value
    }
}

/// The state of one summary series.
#[derive(Debug)]
pub struct Summary {
    options: Arc<SummaryOptions>,
    streams: Vec<Stream>,
    head: usize,
    head_expires: Instant,
    sum: f64,
    count: u64,
}

impl Summary {
    /// An empty summary whose window starts at `now`.
    pub fn new(options: Arc<SummaryOptions>, now: Instant) -> Self {
        let buckets = options.age_buckets.max(1) as usize;
        let streams = (0..buckets).map(|_| Stream::new()).collect();
        let head_expires = now + Self::stream_duration(&options);
        Self {
            options,
            streams,
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

    /// Rotates out streams whose window has passed (the head stream is reset and becomes the newest).
    fn rotate(&mut self, now: Instant) {
        let step = Self::stream_duration(&self.options);
        let mut turns = 0;
        while now >= self.head_expires {
            if turns < self.streams.len() {
                self.streams[self.head].reset();
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

    /// Records `value` observed `weight` times (weight ≥ 1; a sampled timer's `floor(1/rate)`).
    pub fn observe(&mut self, value: f64, weight: u64, now: Instant) {
        self.rotate(now);
        let w = weight.max(1) as f64;
        for stream in &mut self.streams {
            stream.insert(&self.options.quantiles, value, w);
        }
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
        let targets = &self.options.quantiles;
        let head = &mut self.streams[self.head];
        let empty = head.is_empty();
        targets.iter().map(move |&(q, _)| {
            let v = if empty {
                f64::NAN
            } else {
                head.query(targets, q)
            };
            (q, v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn small_sets_are_exact() {
        let (mut s, now) = summary();
        for v in 1..=100 {
            s.observe(f64::from(v), 1, now);
        }
        let qs: Vec<_> = s.quantiles(now).collect();
        assert_eq!(qs, vec![(0.5, 50.0), (0.9, 90.0), (0.99, 99.0)]);
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
        for (q, v) in s.quantiles(now).collect::<Vec<_>>() {
            let err = DEFAULT_QUANTILES
                .iter()
                .find(|t| t.0 == q)
                .map(|t| t.1)
                .expect("configured");
            let rank = v / p as f64;
            assert!(
                (rank - q).abs() <= err + 1e-4,
                "q={q} estimate {v} rank {rank} beyond ±{err}"
            );
        }
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
