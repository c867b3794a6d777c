//! StatsD sets (`user:alice|s`): how many distinct members were seen in a sliding window, as a gauge.
//!
//! statsd_exporter refuses sets (its issue #183). Here the window (default [`DEFAULT_SET_WINDOW`]) is cut
//! into [`SET_AGE_BUCKETS`] sub-windows; each holds the members seen during its own slice in a
//! `cardinality_estimator::CardinalityEstimator` (Cloudflare's: exact up to small cardinalities, then
//! HyperLogLog++ with 4096 registers: 1.6% standard error), and a scrape merges the sub-windows. Memory
//! is bounded whatever the number of members: a few words for a handful, at most ~3 KiB per sub-window.

use std::time::{Duration, Instant};

use cardinality_estimator::CardinalityEstimator;

/// Default length of a set's sliding window.
pub const DEFAULT_SET_WINDOW: Duration = Duration::from_secs(60);
/// Sub-windows a set's window is cut into.
pub const SET_AGE_BUCKETS: usize = 6;

/// The state of one set series.
#[derive(Debug)]
pub struct Set {
    buckets: Vec<CardinalityEstimator<str>>,
    /// The sub-window receiving members now.
    current: usize,
    current_ends: Instant,
    step: Duration,
}

impl Set {
    /// An empty set whose window (of `window`) starts at `now`.
    pub fn new(window: Duration, now: Instant) -> Self {
        let step = (window / SET_AGE_BUCKETS as u32).max(Duration::from_millis(1));
        Self {
            buckets: (0..SET_AGE_BUCKETS)
                .map(|_| CardinalityEstimator::new())
                .collect(),
            current: 0,
            current_ends: now + step,
            step,
        }
    }

    fn rotate(&mut self, now: Instant) {
        let mut turns = 0;
        while now >= self.current_ends {
            if turns < SET_AGE_BUCKETS {
                self.current = (self.current + 1) % SET_AGE_BUCKETS;
                self.buckets[self.current] = CardinalityEstimator::new();
            }
            turns += 1;
            self.current_ends += self.step;
            if turns > SET_AGE_BUCKETS {
                // Idle for longer than the window: everything is already cleared; jump ahead.
                let behind = now.duration_since(self.current_ends);
                let skip = (behind.as_nanos() / self.step.as_nanos().max(1)) as u32;
                self.current_ends += self.step * skip;
            }
        }
    }

    /// Records `member` at `now`.
    pub fn insert(&mut self, member: &str, now: Instant) {
        self.rotate(now);
        self.buckets[self.current].insert(member);
    }

    /// Distinct members seen in the window ending at `now`.
    pub fn count(&mut self, now: Instant) -> usize {
        self.rotate(now);
        let mut all = CardinalityEstimator::<str>::new();
        for b in &self.buckets {
            all.merge(b);
        }
        all.estimate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_members() {
        let now = Instant::now();
        let mut s = Set::new(DEFAULT_SET_WINDOW, now);
        for m in ["alice", "bob", "alice", "carol", "bob"] {
            s.insert(m, now);
        }
        assert_eq!(s.count(now), 3);
    }

    #[test]
    fn window_slides() {
        let start = Instant::now();
        let mut s = Set::new(Duration::from_secs(60), start);
        s.insert("old", start);
        s.insert("both", start);
        let later = start + Duration::from_secs(45);
        s.insert("new", later);
        s.insert("both", later);
        assert_eq!(s.count(later), 3);
        // 61 s after the start the first sub-window has left the window.
        let after = start + Duration::from_secs(61);
        assert_eq!(s.count(after), 2);
        assert_eq!(s.count(start + Duration::from_secs(3600)), 0);
    }

    #[test]
    fn large_sets_are_estimated_within_three_standard_errors() {
        let now = Instant::now();
        let mut s = Set::new(DEFAULT_SET_WINDOW, now);
        for i in 0..100_000 {
            s.insert(&format!("user-{i}"), now);
        }
        let n = s.count(now) as f64;
        // 1.04/√4096 = 1.6% standard error; 3σ = 4.9%.
        assert!((n - 100_000.0).abs() / 100_000.0 < 0.049, "estimate {n}");
    }
}
