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

fn main() {
    let observations: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let values = statsd_benches::timer_values(10_000);
    let (mut s, at) = statsd_benches::steady_summary(&values);
    for i in 0..observations {
        s.observe(black_box(values[(i % 10_000) as usize]), 1, at);
    }
    let q: f64 = s.quantiles(at).map(|(_, v)| v).sum();
    eprintln!(
        "{observations} observations after 50000 (quantile sum {q}, {} bytes)",
        s.bytes()
    );
}
