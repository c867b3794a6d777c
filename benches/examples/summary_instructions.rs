//! Observes timer values into one summary in steady state (observations in every age bucket, so no
//! stream is shared and each observation is merged into all five), for counting instructions per
//! observation, which is exact and repeatable on a noisy shared machine (wall-clock numbers come
//! from `cargo bench --bench store -- summary`):
//!
//! ```text
//! cargo build --release -p statsd-benches --example summary_instructions
//! perf stat -e instructions:u target/release/examples/summary_instructions 1000000
//! ```
//! Instructions per observation ≈ `instructions:u` / the observations printed on stderr (the set-up,
//! 50 000 observations, is included; use two counts and take the difference for the exact figure).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use statsd_store::{Summary, SummaryOptions};

fn main() {
    let observations: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    // The criterion bench's values: latency-like, three orders of magnitude.
    let values: Vec<f64> = (0..10_000u64)
        .map(|i| 0.001 * (1.0 + ((i * 7919) % 1000) as f64))
        .collect();
    let options = SummaryOptions::default();
    let step = options.max_age / options.age_buckets;
    let now = Instant::now();
    let mut s = Summary::new(Arc::new(options), now);
    let mut at = now;
    for _ in 0..5 {
        for &v in &values {
            s.observe(v, 1, at);
        }
        at += step;
    }
    let at = at - step;
    for i in 0..observations {
        s.observe(black_box(values[(i % 10_000) as usize]), 1, at);
    }
    let q: f64 = s.quantiles(at).map(|(_, v)| v).sum();
    eprintln!(
        "{observations} observations after 50000 (quantile sum {q}, {} bytes)",
        s.bytes()
    );
}
