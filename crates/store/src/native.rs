//! Native (exponential) histograms, as client_golang keeps them for statsd_exporter: buckets whose
//! boundaries are powers of `2^(2^-schema)`, a zero bucket for values within [`ZERO_THRESHOLD`] of zero,
//! and at most `max_buckets` populated buckets — beyond, the schema is lowered by one and neighbouring
//! buckets merge in pairs (client_golang's strategy when, as in statsd_exporter, neither a reset
//! interval nor a maximum zero threshold is configured), down to schema -4.
//!
//! Bucket `k` holds the values in `(base^(k-1), base^k]` (the upper bound inclusive), negative values
//! by their magnitude in a bucket set of their own. Keys are found as client_golang finds them: the
//! value's binary exponent and mantissa (`frexp`), and for positive schemas the mantissa's place among
//! the schema's `2^schema` sub-bounds.
//!
//! Memory: populated buckets only, 16 bytes each, sorted by key: at most `max_buckets` + 1 (4 KiB at the
//! default 256).

use std::sync::LazyLock;

use statsd_spec::NativeOptions;

/// client_golang's default zero threshold, `2^-128`: observations whose magnitude is at most this
/// count in the zero bucket.
pub(crate) const ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// The lowest schema (buckets growing by a factor of 65 536).
const MIN_SCHEMA: i32 = -4;

/// For each positive schema `s`: the `2^s` mantissa bounds `2^(i/2^s) / 2`.
static BOUNDS: LazyLock<Vec<Vec<f64>>> = LazyLock::new(|| {
    (0..=8)
        .map(|schema: u32| {
            let n = 1u32 << schema;
            (0..n)
                .map(|i| (f64::from(i) / f64::from(n)).exp2() / 2.0)
                .collect()
        })
        .collect()
});

/// `frexp` for a positive, normal, finite `v`: `v = frac · 2^exp` with `frac` in [0.5, 1).
fn frexp(v: f64) -> (f64, i32) {
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1022;
    let frac = f64::from_bits((bits & 0x800f_ffff_ffff_ffff) | (1022u64 << 52));
    (frac, exp)
}

/// The bucket of a magnitude above the zero threshold, at `schema`.
fn key(magnitude: f64, schema: i32) -> i32 {
    let (frac, exp) = frexp(magnitude);
    if schema > 0 {
        let bounds = &BOUNDS[schema as usize];
        let index = bounds.partition_point(|&b| b < frac) as i32;
        index + (exp - 1) * bounds.len() as i32
    } else {
        let mut key = exp;
        if frac == 0.5 {
            key -= 1;
        }
        let offset = (1 << -schema) - 1;
        (key + offset) >> -schema
    }
}

/// One native histogram's buckets (sum and count are the classic histogram's, shared).
#[derive(Debug, Clone)]
pub(crate) struct Native {
    pub(crate) schema: i32,
    max_buckets: u32,
    pub(crate) zero_count: u64,
    /// (key, count), sorted by key.
    pub(crate) positive: Vec<(i32, u64)>,
    pub(crate) negative: Vec<(i32, u64)>,
}

impl Native {
    pub(crate) fn new(options: NativeOptions) -> Self {
        Self {
            schema: options.schema,
            max_buckets: options.max_buckets,
            zero_count: 0,
            positive: Vec::new(),
            negative: Vec::new(),
        }
    }

    /// Counts `value` `weight` times (`value` is finite: the parser refuses NaN and infinities).
    pub(crate) fn observe(&mut self, value: f64, weight: u64) {
        let magnitude = value.abs();
        if magnitude <= ZERO_THRESHOLD || value.is_nan() {
            self.zero_count = self.zero_count.saturating_add(weight);
            return;
        }
        let k = key(magnitude, self.schema);
        let side = if value > 0.0 {
            &mut self.positive
        } else {
            &mut self.negative
        };
        match side.binary_search_by_key(&k, |b| b.0) {
            Ok(i) => side[i].1 = side[i].1.saturating_add(weight),
            Err(i) => {
                side.insert(i, (k, weight));
                while self.max_buckets > 0
                    && self.positive.len() + self.negative.len() > self.max_buckets as usize
                    && self.schema > MIN_SCHEMA
                {
                    self.halve_resolution();
                }
            }
        }
    }

    /// Lowers the schema by one: bucket `k` becomes `ceil(k / 2)`, neighbours merging.
    fn halve_resolution(&mut self) {
        self.schema -= 1;
        for side in [&mut self.positive, &mut self.negative] {
            let mut merged: Vec<(i32, u64)> = Vec::with_capacity(side.len());
            for &(k, n) in side.iter() {
                let k = k.div_euclid(2) + k.rem_euclid(2);
                match merged.last_mut() {
                    Some(last) if last.0 == k => last.1 = last.1.saturating_add(n),
                    _ => merged.push((k, n)),
                }
            }
            merged.shrink_to_fit();
            *side = merged;
        }
    }
}

/// Spans and deltas of sorted buckets, as the protobuf format encodes them: runs of consecutive keys
/// (`offset` the gap before the run, the first run's offset its first key), and each bucket's count
/// minus the previous bucket's.
pub(crate) fn spans_and_deltas(buckets: &[(i32, u64)]) -> (Vec<(i32, u32)>, Vec<i64>) {
    let mut spans: Vec<(i32, u32)> = Vec::new();
    let mut deltas = Vec::with_capacity(buckets.len());
    let mut previous_key: Option<i32> = None;
    let mut previous_count = 0i64;
    for &(k, n) in buckets {
        match previous_key {
            Some(p) if k == p + 1 => {
                if let Some(last) = spans.last_mut() {
                    last.1 += 1;
                }
            }
            Some(p) => spans.push((k - p - 1, 1)),
            None => spans.push((k, 1)),
        }
        let count = i64::try_from(n).unwrap_or(i64::MAX);
        deltas.push(count.saturating_sub(previous_count));
        previous_count = count;
        previous_key = Some(k);
    }
    (spans, deltas)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bucket `k` at `schema` holds `(base^(k-1), base^k]`.
    fn bounds_of(k: i32, schema: i32) -> (f64, f64) {
        let base = 2f64.powf(2f64.powi(-schema));
        (base.powi(k - 1), base.powi(k))
    }

    #[test]
    fn keys_follow_client_golang() {
        // Powers of two sit at the top of their bucket.
        assert_eq!(key(1.0, 3), 0);
        assert_eq!(key(2.0, 3), 8);
        assert_eq!(key(2.0, 0), 1);
        assert_eq!(key(1.0, 0), 0);
        assert_eq!(key(0.5, 0), -1);
        assert_eq!(key(3.0, 0), 2);
        assert_eq!(key(4.0, -1), 1);
        assert_eq!(key(5.0, -1), 2);
        for schema in [-4, -2, 0, 1, 3, 8] {
            for v in [
                1e-30, 0.001, 0.1, 0.7, 1.0, 1.5, 3.0, 100.0, 12345.678, 1e30,
            ] {
                let k = key(v, schema);
                let (lo, hi) = bounds_of(k, schema);
                assert!(
                    lo * (1.0 - 1e-12) < v && v <= hi * (1.0 + 1e-12),
                    "schema {schema}: {v} in bucket {k} = ({lo}, {hi}]"
                );
            }
        }
    }

    #[test]
    fn the_zero_bucket_and_negative_values() {
        let mut n = Native::new(NativeOptions {
            schema: 3,
            max_buckets: 0,
        });
        n.observe(0.0, 2);
        n.observe(-1.0, 1);
        n.observe(1.0, 3);
        assert_eq!(n.zero_count, 2);
        assert_eq!(n.negative, [(0, 1)]);
        assert_eq!(n.positive, [(0, 3)]);
    }

    #[test]
    fn too_many_buckets_halve_the_resolution() {
        let mut n = Native::new(NativeOptions {
            schema: 3,
            max_buckets: 8,
        });
        // 1 .. 1000: at schema 3 that spans ~80 buckets.
        for i in 1..=1000 {
            n.observe(f64::from(i), 1);
        }
        assert!(n.positive.len() <= 8, "{:?}", n.positive);
        assert!(n.schema < 3);
        let total: u64 = n.positive.iter().map(|b| b.1).sum();
        assert_eq!(total, 1000);
        // Every value is still in the bucket that covers it at the final schema.
        for i in [1.0, 7.0, 64.0, 999.0] {
            let k = key(i, n.schema);
            assert!(n.positive.iter().any(|b| b.0 == k));
        }
    }

    #[test]
    fn spans_and_deltas_encode_runs() {
        let (spans, deltas) = spans_and_deltas(&[(-2, 1), (-1, 3), (0, 2), (4, 5), (5, 5)]);
        assert_eq!(spans, [(-2, 3), (3, 2)]);
        assert_eq!(deltas, [1, 2, -1, 3, 0]);
        assert_eq!(spans_and_deltas(&[]), (vec![], vec![]));
    }
}
