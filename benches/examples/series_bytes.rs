//! Bytes of heap per series, counted by a wrapping global allocator (exact, not RSS):
//! `cargo run --release -p statsd-benches --example series_bytes`.
//!
//! For each kind, 100 000 series are created in 100 families with two labels each (Mastodon's
//! controller shape) and updated as given; the heap growth divided by the number of series is printed.
//! A last line does the same with one family per series (a flood of distinct names).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

use statsd_store::{Config, Limits, Observer, Spec, Store, SystemClock, Update};

struct Counting;
static HEAP: AtomicIsize = AtomicIsize::new(0);

#[allow(unsafe_code)]
// SAFETY: forwards every call to `System` unchanged and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HEAP.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SERIES: usize = 100_000;

fn measure(label: &str, families: usize, spec: &Spec, updates: &[Update<'_>]) {
    let config = Config {
        limits: Limits {
            max_series: 0,
            max_series_per_metric: 0,
        },
        ..Config::default()
    };
    let names: Vec<String> = (0..families).map(|f| format!("metric_{f}")).collect();
    let labels: Vec<(String, String)> = (0..SERIES)
        .map(|i| {
            (
                format!("Api.V1.Controller{}", i / 700),
                format!("action{}", i % 7),
            )
        })
        .collect();
    let before = HEAP.load(Ordering::Relaxed);
    let store = Store::with_config(config, Arc::new(SystemClock));
    for (i, (c, a)) in labels.iter().enumerate() {
        for u in updates {
            store
                .update(
                    &names[i % families],
                    &mut [("controller", c), ("action", a)],
                    *u,
                    spec,
                )
                .expect("no limits");
        }
    }
    let after = HEAP.load(Ordering::Relaxed);
    println!(
        "{label:<40} {:>6} bytes per series",
        (after - before) / SERIES as isize
    );
    drop(store);
}

fn main() {
    let counter = Spec::default();
    measure("counter", 100, &counter, &[Update::Add(1.0)]);
    let classic = Spec {
        observer: Observer::Histogram(Arc::new(statsd_mapping::HistogramOptions {
            buckets: statsd_mapping::DEFAULT_BUCKETS.to_vec(),
            native: None,
        })),
        ..Spec::default()
    };
    measure(
        "histogram (11 buckets, no native)",
        100,
        &classic,
        &[Update::Observe {
            value: 0.3,
            weight: 1,
        }],
    );
    let histogram = Spec {
        observer: Observer::Histogram(Arc::new(
            statsd_mapping::HistogramOptions::with_default_native(
                statsd_mapping::DEFAULT_BUCKETS.to_vec(),
            ),
        )),
        ..Spec::default()
    };
    measure(
        "histogram (11 buckets, native, 1 obs.)",
        100,
        &histogram,
        &[Update::Observe {
            value: 0.3,
            weight: 1,
        }],
    );
    // Latencies from 1 ms to 10 s: the native part at its widest for that range (~106 buckets at
    // schema 3).
    let spread: Vec<Update<'_>> = (0..2000)
        .map(|i| Update::Observe {
            value: 0.001 * 10f64.powf(f64::from(i) / 500.0),
            weight: 1,
        })
        .collect();
    measure("histogram (native, 1 ms .. 10 s)", 100, &histogram, &spread);
    let one = [Update::Observe {
        value: 0.3,
        weight: 1,
    }];
    measure("summary, 1 observation", 100, &counter, &one);
    let many: Vec<Update<'_>> = (0..1000)
        .map(|i| Update::Observe {
            value: f64::from(i) / 1000.0,
            weight: 1,
        })
        .collect();
    measure("summary, 1000 observations", 100, &counter, &many);
    measure(
        "counter, one family per series",
        SERIES,
        &counter,
        &[Update::Add(1.0)],
    );
}
