//! The ingest hot path allocates nothing once series exist and their names are in the mapping cache:
//! counters, gauges and tagged lines at once; timers once their summaries have grown (a stream
//! allocates only when its compressed size reaches a new maximum, logarithmic in the observations). Counted with a wrapping global allocator, per
//! thread (tests run in parallel); this file is its own test binary.
#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;

use arc_swap::ArcSwap;
use statsd_line::Parser;
use statsd_mapping::Mapper;
use statsd_proxy::ingest::Ingest;
use statsd_proxy::telemetry::Telemetry;
use statsd_store::Store;

struct Counting;

thread_local! {
    /// Allocations made by this thread (a const-initialised Cell: reading it never allocates).
    static ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.with(std::cell::Cell::get)
}

// SAFETY: forwards to `System` unchanged and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: during thread teardown the counter may be gone; such allocations are not ours.
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn ingest() -> Ingest {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../mappings/testdata/ipng-mastodon-mapping.yaml");
    let mapper = Mapper::from_file(&path).expect("community mapping");
    Ingest::new(
        Parser::default(),
        Arc::new(ArcSwap::from_pointee(mapper)),
        Arc::new(Store::new()),
        Telemetry::new(),
        Default::default(),
        1000,
        100_000,
        None,
    )
}

fn allocations_for(ingest: &Ingest, packets: &[&[u8]], warmup: usize, rounds: usize) -> usize {
    let mut scratch = ingest.scratch();
    // Warm up: create the series, fill the mapping cache, grow every buffer to its working size.
    for _ in 0..warmup {
        for p in packets {
            ingest.packet(p, &mut scratch);
        }
    }
    let before = allocations();
    for _ in 0..rounds {
        for p in packets {
            ingest.packet(p, &mut scratch);
        }
    }
    allocations() - before
}

#[test]
fn counters_gauges_and_tagged_lines_allocate_nothing() {
    let ingest = ingest();
    let packets: [&[u8]; 6] = [
        b"Mastodon.production.web.HomeController.index.html.status.200:1|c",
        b"Mastodon.production.sidekiq.LinkCrawlWorker.success:1|c",
        b"Mastodon.production.sidekiq.queues.default.enqueued:3|g",
        b"Mastodon.production.sidekiq.dead_size:7|g",
        b"app.requests:1|c|#env:prod,route:/home,method:GET",
        b"unmapped.gauge:-2|g\nunmapped.counter:4|c",
    ];
    assert_eq!(allocations_for(&ingest, &packets, 100, 1000), 0);
}

#[test]
fn timers_allocate_nothing_once_their_summaries_are_grown() {
    let ingest = ingest();
    let packets: [&[u8]; 2] = [
        b"Mastodon.production.web.Api.V1.TimelinesController.home.json.total_duration:12.5|ms",
        b"Mastodon.production.db.tables.statuses.queries.select.duration:0.4|ms",
    ];
    let rounds = 3200;
    // Summaries merge their buffer into their streams every 32 observations in a per-thread buffer; a
    // stream allocates only when its compressed size reaches a new maximum, which grows
    // logarithmically: after 20 000 observations per series, none over the next 6 400 lines (a young
    // series allocates about once per 40 observations while it grows).
    assert_eq!(allocations_for(&ingest, &packets, 20_000, rounds), 0);
}
