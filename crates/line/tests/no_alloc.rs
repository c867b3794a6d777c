//! The common path allocates nothing: a Mastodon line or a DogStatsD-tagged line is parsed, and all
//! its samples and tags read, without touching the heap. Counted with a wrapping global allocator,
//! per thread: libtest's main thread allocates while it waits for the test (its first blocking
//! channel receive), and under load that can fall inside the measured window.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use statsd_line::Parser;

struct Counting;

thread_local! {
    /// Allocations made by this thread (a const-initialised Cell: reading it never allocates).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY-free: the wrapper only forwards to `System` and counts; no unsafe code of ours beyond the
// trait's required `unsafe fn` signatures, which delegate unchanged.
#[allow(unsafe_code)]
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

fn allocations_while<F: FnOnce()>(f: F) -> usize {
    let before = allocations();
    f();
    allocations() - before
}

#[test]
fn common_lines_parse_without_allocating() {
    let parser = Parser::default();
    let lines: [&[u8]; 5] = [
        b"Mastodon.production.web.Api.V1.TimelinesController.home.json.total_duration:12.5|ms",
        b"Mastodon.production.db.tables.statuses.queries.select.duration:0.41|ms",
        b"Mastodon.production.sidekiq.queues.default.enqueued:3|g",
        b"api.request.duration:250|ms|@0.5|#env:prod,service:web,region:eu-west-1,host:web-01",
        b"page.views:1|c|#env:prod,route:/home|c:83c0a99c0a54c0c187f461c7980e9b57f3f6a8b0c918c8d93df19a9de6f3fe1d",
    ];
    let mut checksum = 0.0;
    let mut tags = 0;
    let n = allocations_while(|| {
        for _ in 0..100 {
            for raw in lines {
                let line = parser.parse(raw).expect("valid line");
                for sample in line.samples() {
                    let sample = sample.expect("valid sample");
                    checksum += sample.observation();
                    tags += sample.tags.iter().count();
                }
            }
        }
    });
    assert_eq!(n, 0, "the common path allocated {n} times");
    assert!(checksum > 0.0);
    assert_eq!(tags, 100 * (4 + 3));
}
