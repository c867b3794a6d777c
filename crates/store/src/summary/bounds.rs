//! The targets' rank-error bounds of a CKMS stream (the "invariant"), evaluated per entry by merges
//! and compressions: the hottest arithmetic of a summary, so divisions are done once per merge and
//! a compression's thresholds once per compression.

use smallvec::SmallVec;

/// The targets' rank-error bounds, with their divisions done once per merge rather than per entry.
pub(super) struct Bounds(SmallVec<[(f64, f64, f64); 4]>);

impl Bounds {
    /// For each target `(q, ε)`: `q`, `2ε/q` and `2ε/(1−q)`.
    pub(super) fn new(targets: &[(f64, f64)]) -> Self {
        Self(
            targets
                .iter()
                .map(|&(q, e)| (q, 2.0 * e / q, 2.0 * e / (1.0 - q)))
                .collect(),
        )
    }

    /// The allowed rank uncertainty at rank `r` of `n`: the tightest of the targets' bounds
    /// (`2εr/q` at or above rank `q·n`, `2ε(n−r)/(1−q)` below).
    #[inline]
    pub(super) fn invariant(&self, n: f64, r: f64) -> f64 {
        let mut m = f64::MAX;
        for &(q, above, below) in &self.0 {
            let f = if q * n <= r {
                above * r
            } else {
                below * (n - r)
            };
            // Not `f64::min`: its NaN handling costs instructions, and no bound is NaN.
            if f < m {
                m = f;
            }
        }
        m
    }

    /// [`Bounds::invariant`] for a fixed `n`, its thresholds `q·n` computed once (the same products,
    /// so the same results).
    pub(super) fn at(&self, n: f64) -> FixedN {
        FixedN {
            n,
            targets: self
                .0
                .iter()
                .map(|&(q, above, below)| (q * n, above, below))
                .collect(),
        }
    }
}

/// [`Bounds`] at one `n` (a compression's).
pub(super) struct FixedN {
    n: f64,
    /// For each target: `q·n`, `2ε/q` and `2ε/(1−q)`.
    targets: SmallVec<[(f64, f64, f64); 4]>,
}

impl FixedN {
    /// `Bounds::invariant(n, r)`. The loop is written out again rather than shared through an
    /// iterator: shared, a steady-state observation cost 1 844 instructions instead of 1 748
    /// (`summary_instructions` example under callgrind).
    #[inline]
    pub(super) fn invariant(&self, r: f64) -> f64 {
        let below_r = self.n - r;
        let mut m = f64::MAX;
        for &(qn, above, below) in &self.targets {
            let f = if qn <= r { above * r } else { below * below_r };
            if f < m {
                m = f;
            }
        }
        m
    }
}
