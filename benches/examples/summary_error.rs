//! How far summary quantiles land from their targets, against the exact ranks of what the window
//! holds: `cargo run --release -p statsd-benches --example summary_error`.
//!
//! Six traffic shapes, 300 random windows each (100–30 000 observations spread over 1–18 minutes,
//! read at a random time after the last, default objectives and a 10-minute window of 5 age buckets).
//! For each quantile the error is the distance from `q·n` to the estimate's rank interval, divided by
//! the configured `ε·n`: at most 1 is within the nominal bound. Printed: the worst per quantile, and how
//! many of the 900 estimates exceed 1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use statsd_store::{Summary, SummaryOptions};

/// xorshift64: deterministic, so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Errors (in units of ε·n) of each default quantile after observing `values` at `times` (ms).
fn errors(values: &[f64], times: &[u64], end: u64) -> [f64; 3] {
    let options = Arc::new(SummaryOptions::default());
    let start = Instant::now();
    let mut summary = Summary::new(Arc::clone(&options), start);
    for (v, t) in values.iter().zip(times) {
        summary.observe(*v, 1, start + Duration::from_millis(*t));
    }
    let bucket = u64::try_from((options.max_age / options.age_buckets).as_millis())
        .expect("an age bucket lasts less than u64::MAX ms");
    let first = (end / bucket + 1).saturating_sub(u64::from(options.age_buckets));
    let mut window: Vec<f64> = values
        .iter()
        .zip(times)
        .filter(|(_, t)| **t / bucket >= first)
        .map(|(v, _)| *v)
        .collect();
    window.sort_by(f64::total_cmp);
    let n = window.len() as f64;
    let mut out = [0.0; 3];
    if window.is_empty() {
        return out;
    }
    let estimates: Vec<_> = summary
        .quantiles(start + Duration::from_millis(end))
        .collect();
    for (i, ((q, v), (_, eps))) in estimates.iter().zip(&options.quantiles).enumerate() {
        let first_rank = window.partition_point(|x| x < v) as f64 + 1.0;
        let last_rank = window.partition_point(|x| x <= v) as f64;
        let target = q * n;
        let off = if target < first_rank {
            first_rank - target
        } else {
            (target - last_rank).max(0.0)
        };
        out[i] = off / (eps * n).max(1.0);
    }
    out
}

fn main() {
    const RUNS: usize = 300;
    const SLICE_MS: u64 = 120_000;
    for shape in [
        "stationary",
        "drifting upwards",
        "a regime per age bucket",
        "old low, newest high",
        "old high, newest low",
        "bursts",
    ] {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut worst = [0.0f64; 3];
        let mut over = 0;
        for _ in 0..RUNS {
            let n = 100 + (rng.next() % 30_000) as usize;
            let span = 60_000 + rng.next() % 1_000_000;
            let mut times: Vec<u64> = (0..n).map(|_| rng.next() % span).collect();
            if shape == "bursts" {
                for t in &mut times {
                    *t = (*t / 20_000) * 20_000 + *t % 500;
                }
            }
            times.sort_unstable();
            let values: Vec<f64> = times
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    let u = rng.unit();
                    let newest = t + SLICE_MS >= span;
                    match shape {
                        "stationary" => (u * 10.0).exp(),
                        "drifting upwards" => u * 1000.0 + i as f64 * 0.1,
                        "a regime per age bucket" => {
                            let s = t / SLICE_MS;
                            (s % 3) as f64 * 1000.0 + u * 10.0 * (1 + s % 5) as f64
                        }
                        "old low, newest high" => u + if newest { 1000.0 } else { 0.0 },
                        "old high, newest low" => u + if newest { 0.0 } else { 1000.0 },
                        _ => (u * 5.0).exp() + if rng.next() % 10 == 0 { 1000.0 } else { 0.0 },
                    }
                })
                .collect();
            let end = span + rng.next() % 60_000;
            let e = errors(&values, &times, end);
            for i in 0..3 {
                worst[i] = worst[i].max(e[i]);
                over += usize::from(e[i] > 1.0);
            }
        }
        println!(
            "{shape:24} worst error / ε for 0.5, 0.9, 0.99: {:.2} {:.2} {:.2}; beyond ε: {over} of {}",
            worst[0],
            worst[1],
            worst[2],
            RUNS * 3
        );
    }
}
