//! The series store: updates of existing series (1 and 2 threads; shared, disjoint and one hot
//! series), scrape rendering (10k, 100k, 1M series) and summary observations. `cargo bench -p statsd-benches --bench store`; see BENCHMARKS.md for the figures.
//!
//! Series shape: counters in 100 families (`metric_0` … `metric_99`), two labels each
//! (`controller`, `action`), the shape of Mastodon's controller metrics.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use statsd_store::{Config, Limits, Spec, Store, SystemClock, Update};

const FAMILIES: usize = 100;

fn label_values(i: usize) -> (String, String) {
    (
        format!("Api.V1.Controller{}", i / 7),
        format!("action{}", i % 7),
    )
}

fn filled(series: usize) -> Store {
    filled_with(series, |_| Update::Add(1.0))
}

fn filled_with(series: usize, update: impl Fn(usize) -> Update<'static>) -> Store {
    let config = Config {
        limits: Limits {
            max_series: 0,
            max_series_per_metric: 0,
        },
        ..Config::default()
    };
    let store = Store::with_config(config, Arc::new(SystemClock));
    let spec = Spec::default();
    for i in 0..series {
        let (c, a) = label_values(i / FAMILIES);
        let name = format!("metric_{}", i % FAMILIES);
        store
            .update(
                &name,
                &mut [("controller", &c), ("action", &a)],
                update(i),
                &spec,
            )
            .expect("within limits");
    }
    store
}

/// Updates `n` times, cycling over `keys`, and returns the time taken.
fn run(store: &Store, keys: &[(String, String, String)], n: usize, spec: &Spec) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        let (name, c, a) = &keys[i % keys.len()];
        let _ = store.update(
            black_box(name),
            &mut [("controller", c), ("action", a)],
            Update::Add(1.0),
            spec,
        );
    }
    start.elapsed()
}

fn updates(c: &mut Criterion) {
    let store = Arc::new(filled(10_000));
    let keys: Arc<Vec<(String, String, String)>> = Arc::new(
        (0..10_000)
            .map(|i| {
                let (c, a) = label_values(i / FAMILIES);
                (format!("metric_{}", i % FAMILIES), c, a)
            })
            .collect(),
    );
    let mut group = c.benchmark_group("store_update");
    // Which series each thread updates: all of them from a different offset ("shared"), its own half
    // ("disjoint"), or one and the same series ("one_series", the worst case of a hot counter).
    for (case, threads) in [
        ("existing_counter", 1usize),
        ("existing_counter", 2),
        ("disjoint", 2),
        ("one_series", 2),
    ] {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_function(BenchmarkId::new(case, format!("{threads}_threads")), |b| {
            b.iter_custom(|iters| {
                let per_thread = iters as usize;
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let store = Arc::clone(&store);
                        let keys = Arc::clone(&keys);
                        std::thread::spawn(move || {
                            let mine: Vec<_> = match case {
                                "disjoint" => {
                                    keys.iter().skip(t).step_by(threads).cloned().collect()
                                }
                                "one_series" => vec![keys[0].clone()],
                                _ => keys
                                    .iter()
                                    .cycle()
                                    .skip(t * 5000)
                                    .take(keys.len())
                                    .cloned()
                                    .collect(),
                            };
                            run(&store, &mine, per_thread, &Spec::default())
                        })
                    })
                    .collect();
                // Wall time of the slowest thread: `threads` updates happen per iteration.
                handles
                    .into_iter()
                    .map(|h| h.join().expect("bench thread"))
                    .max()
                    .unwrap_or_default()
            })
        });
    }
    group.finish();
}

/// The cached path: updates through a [`statsd_store::SeriesRef`] (what a worker's series cache holds),
/// no lookup at all.
fn updates_by_ref(c: &mut Criterion) {
    let store = filled(10_000);
    let spec = Spec::default();
    let refs: Vec<statsd_store::SeriesRef> = (0..10_000)
        .map(|i| {
            let (c, a) = label_values(i / FAMILIES);
            store
                .update_ref(
                    &format!("metric_{}", i % FAMILIES),
                    &mut [("controller", &c), ("action", &a)],
                    Update::Add(1.0),
                    &spec,
                )
                .expect("within limits")
        })
        .collect();
    let mut group = c.benchmark_group("store_update");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    let now = store.now();
    group.bench_function(BenchmarkId::new("by_ref", "1_threads"), |b| {
        b.iter(|| {
            i = (i + 1) % refs.len();
            store.update_series(black_box(&refs[i]), Update::Add(1.0), now)
        })
    });
    group.finish();
}

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_render");
    group.sample_size(10);
    for series in [10_000usize, 100_000, 1_000_000] {
        let store = filled(series);
        let mut out = String::with_capacity(series * 80);
        store.render(&mut out); // sorts each family once
        group.throughput(Throughput::Elements(series as u64));
        group.bench_function(BenchmarkId::from_parameter(series), |b| {
            b.iter(|| {
                out.clear();
                store.render(&mut out);
                out.len()
            })
        });
    }
    // Fractional values take the general float-formatting path (integers below 1e6 have a fast one).
    let series = 100_000;
    let store = filled_with(series, |i| Update::Set(0.25 + i as f64 * 1e-3));
    let mut out = String::with_capacity(series * 80);
    store.render(&mut out);
    group.throughput(Throughput::Elements(series as u64));
    group.bench_function("100000_fractional_gauges", |b| {
        b.iter(|| {
            out.clear();
            store.render(&mut out);
            out.len()
        })
    });
    // The protobuf format, the same counters.
    for series in [10_000usize, 100_000] {
        let store = filled(series);
        let mut out = Vec::with_capacity(series * 80);
        group.throughput(Throughput::Elements(series as u64));
        group.bench_function(BenchmarkId::new("protobuf", series), |b| {
            b.iter(|| {
                out.clear();
                let mut scrape = store.scrape();
                while scrape.next_family_proto(&mut out) {}
                out.len()
            })
        });
    }
    group.finish();
}

/// Timer observations into one summary (default objectives and window): the cost per observation,
/// buffering and merging into the age-bucket streams included.
fn summary(c: &mut Criterion) {
    let mut group = c.benchmark_group("summary");
    const N: u64 = 10_000;
    group.throughput(Throughput::Elements(N));
    let values = statsd_benches::timer_values(N);
    let now = Instant::now();
    // A young summary (all its observations in one age bucket: its five streams are alike).
    let mut s = statsd_store::Summary::new(Arc::new(statsd_store::SummaryOptions::default()), now);
    group.bench_function("observe", |b| {
        b.iter(|| {
            for &v in &values {
                s.observe(black_box(v), 1, now);
            }
        })
    });
    // Steady traffic: observations in each of the five age buckets first, so every stream differs
    // and each observation is merged into all five (as in statsd_exporter).
    let (mut s, at) = statsd_benches::steady_summary(&values);
    group.bench_function("observe_steady", |b| {
        b.iter(|| {
            for &v in &values {
                s.observe(black_box(v), 1, at);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, updates, updates_by_ref, render, summary);
criterion_main!(benches);
