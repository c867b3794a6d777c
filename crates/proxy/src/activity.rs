//! What the status page knows about traffic beyond the self-metrics: hits per mapping rule, the most
//! frequent unmapped names, line and sample rates over the last minute, and the last mapping load.
//!
//! Cost on the hot path: a mapped sample adds one to its rule's slot in the receive task's own array;
//! the touched slots reach the shared counters when the task publishes its counts (per packet, like
//! the self-metrics). An unmapped sample that hits the series cache adds one to that cache entry;
//! once a second ([`Activity::tick`]) each receive task collects those counts (only when it saw
//! unmapped samples) into its own top-K sketch, and merges that into the shared one. Names that miss
//! the series cache go to the task's sketch directly (that path maps and creates series anyway).
//!
//! Memory is fixed: one counter per rule of the current mapping (and rules that left it are
//! forgotten at the next load), [`TOP_K`] names per sketch (each name cut at [`MAX_NAME_BYTES`]),
//! [`RATE_POINTS`] rate samples.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use parking_lot::Mutex;
use statsd_mapping::Mapper;

/// Names a top-K sketch holds (the status page shows the first 50).
pub const TOP_K: usize = 100;
/// Longest unmapped name kept, in bytes; longer ones are cut (at a character boundary) and marked.
pub const MAX_NAME_BYTES: usize = 256;
/// Rate samples kept: one a second, a minute's worth.
pub const RATE_POINTS: usize = 61;

/// A space-saving top-K sketch (Metwally et al.): at most [`TOP_K`] names, each with a count that
/// over-estimates its true count by at most its `error`; every name whose true count exceeds the
/// total divided by K is in it.
#[derive(Debug, Default, Clone)]
pub struct TopK {
    index: HashMap<Box<str>, usize, foldhash::fast::RandomState>,
    entries: Vec<TopEntry>,
}

/// One name of a [`TopK`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopEntry {
    /// The name (cut at [`MAX_NAME_BYTES`], then ending in `…`).
    pub name: Box<str>,
    /// Its estimated count.
    pub count: u64,
    /// How much of `count` may belong to names it replaced.
    pub error: u64,
}

impl TopK {
    /// Adds `count` occurrences of `name` (`error` of which may be over-estimated already).
    pub fn offer(&mut self, name: &str, count: u64, error: u64) {
        if count == 0 {
            return;
        }
        let name = bounded(name);
        if let Some(&i) = self.index.get(name.as_ref()) {
            let e = &mut self.entries[i];
            e.count = e.count.saturating_add(count);
            e.error = e.error.saturating_add(error);
            return;
        }
        let name: Box<str> = name.into();
        if self.entries.len() < TOP_K {
            self.index.insert(name.clone(), self.entries.len());
            self.entries.push(TopEntry { name, count, error });
            return;
        }
        // Replace the least counted: the newcomer inherits its count as error.
        let (i, min) = self
            .entries
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| e.count)
            .map(|(i, e)| (i, e.count))
            .expect("the sketch is full, so not empty");
        self.index.remove(&self.entries[i].name);
        self.index.insert(name.clone(), i);
        self.entries[i] = TopEntry {
            name,
            count: min.saturating_add(count),
            error: min.saturating_add(error),
        };
    }

    /// Moves everything in `other` into this sketch.
    pub fn merge_from(&mut self, other: &mut TopK) {
        for e in other.entries.drain(..) {
            self.offer(&e.name, e.count, e.error);
        }
        other.index.clear();
    }

    /// The `n` most counted names, most first (ties by name).
    pub fn top(&self, n: usize) -> Vec<TopEntry> {
        let mut v = self.entries.clone();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        v.truncate(n);
        v
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `name`, cut at [`MAX_NAME_BYTES`] (on a character boundary) and marked with `…` if longer.
fn bounded(name: &str) -> std::borrow::Cow<'_, str> {
    if name.len() <= MAX_NAME_BYTES {
        return name.into();
    }
    let mut end = MAX_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &name[..end]).into()
}

/// Hit counters of one mapping load's rules, in file order. A rule that stays the same across a
/// reload ([`statsd_spec::Spec::origin`]) keeps its counter.
#[derive(Debug)]
pub struct RuleHits {
    generation: u64,
    hits: Vec<Arc<AtomicU64>>,
}

impl RuleHits {
    /// Each rule's hits, in file order.
    pub fn counts(&self) -> Vec<u64> {
        self.hits
            .iter()
            .map(|h| h.load(Ordering::Relaxed))
            .collect()
    }
}

/// The last mapping load (at start or by reload).
#[derive(Debug, Clone)]
pub struct LoadRecord {
    /// When it happened.
    pub at: SystemTime,
    /// Its error (with file:line:column), or `None` when it succeeded.
    pub error: Option<String>,
}

#[derive(Debug, Default)]
struct Rules {
    /// Counters by rule origin, for the rules of the current mapping.
    by_origin: HashMap<u64, Arc<AtomicU64>>,
    current: Option<Arc<RuleHits>>,
}

/// The shared side (see the module documentation).
#[derive(Debug)]
pub struct Activity {
    /// Bumped by [`Activity::tick`]: receive tasks collect their unmapped counts when it moved.
    epoch: AtomicU64,
    rules: Mutex<Rules>,
    unmapped: Mutex<TopK>,
    /// (time, lines, samples), oldest first.
    rates: Mutex<VecDeque<(Instant, u64, u64)>>,
    load: Mutex<LoadRecord>,
    started: Instant,
    started_at: SystemTime,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            epoch: AtomicU64::new(0),
            rules: Mutex::default(),
            unmapped: Mutex::default(),
            rates: Mutex::default(),
            load: Mutex::new(LoadRecord {
                at: SystemTime::now(),
                error: None,
            }),
            started: Instant::now(),
            started_at: SystemTime::now(),
        }
    }
}

impl Activity {
    /// Once a second: records the line and sample totals for the rates, and asks receive tasks to
    /// collect their unmapped counts.
    pub fn tick(&self, lines: u64, samples: u64) {
        self.record(Instant::now(), lines, samples);
    }

    fn record(&self, now: Instant, lines: u64, samples: u64) {
        let mut rates = self.rates.lock();
        if rates.len() == RATE_POINTS {
            rates.pop_front();
        }
        rates.push_back((now, lines, samples));
        drop(rates);
        self.epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// Lines and samples per second over the last minute (or since start, if shorter); `None` before
    /// two ticks.
    pub fn rates(&self) -> Option<(f64, f64)> {
        let rates = self.rates.lock();
        let (first, last) = (rates.front()?, rates.back()?);
        let secs = last.0.duration_since(first.0).as_secs_f64();
        (secs > 0.0).then(|| {
            (
                last.1.saturating_sub(first.1) as f64 / secs,
                last.2.saturating_sub(first.2) as f64 / secs,
            )
        })
    }

    /// The counters of `mapper`'s rules (made on first use of a load; rules unchanged since the
    /// previous load keep theirs, the others' are forgotten).
    pub fn rule_hits(&self, mapper: &Mapper) -> Arc<RuleHits> {
        let mut rules = self.rules.lock();
        if let Some(current) = &rules.current
            && current.generation == mapper.generation()
        {
            return Arc::clone(current);
        }
        let mut by_origin = HashMap::with_capacity(mapper.rules().len());
        let hits = mapper
            .rules()
            .iter()
            .map(|r| {
                let counter = rules
                    .by_origin
                    .get(&r.spec.origin)
                    .cloned()
                    .unwrap_or_default();
                by_origin.insert(r.spec.origin, Arc::clone(&counter));
                counter
            })
            .collect();
        let current = Arc::new(RuleHits {
            generation: mapper.generation(),
            hits,
        });
        rules.by_origin = by_origin;
        rules.current = Some(Arc::clone(&current));
        current
    }

    /// Merges a receive task's sketch into the shared one.
    pub fn merge_unmapped(&self, local: &mut TopK) {
        if !local.is_empty() {
            self.unmapped.lock().merge_from(local);
        }
    }

    /// The `n` most frequent unmapped names.
    pub fn top_unmapped(&self, n: usize) -> Vec<TopEntry> {
        self.unmapped.lock().top(n)
    }

    /// Records a mapping load's outcome.
    pub fn loaded(&self, error: Option<String>) {
        *self.load.lock() = LoadRecord {
            at: SystemTime::now(),
            error,
        };
    }

    /// The last mapping load.
    pub fn last_load(&self) -> LoadRecord {
        self.load.lock().clone()
    }

    /// Since when the proxy runs.
    pub fn started(&self) -> (Instant, SystemTime) {
        (self.started, self.started_at)
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }
}

/// A receive task's side: its rule counts not yet published, its unmapped sketch, and the tick it
/// last collected at.
#[derive(Debug)]
pub struct ActivityScratch {
    activity: Arc<Activity>,
    hits: Option<Arc<RuleHits>>,
    local: Vec<u64>,
    touched: Vec<u32>,
    /// Unmapped names seen since the last collection.
    pub unmapped: TopK,
    /// The series cache holds unmapped counts to collect.
    pub unmapped_pending: bool,
    epoch: u64,
}

impl ActivityScratch {
    /// A receive task's side of `activity`.
    pub fn new(activity: &Arc<Activity>) -> Self {
        Self {
            activity: Arc::clone(activity),
            hits: None,
            local: Vec::new(),
            touched: Vec::new(),
            unmapped: TopK::default(),
            unmapped_pending: false,
            epoch: activity.epoch(),
        }
    }

    /// Makes the counters follow `mapper` (once per packet: a compare unless it was reloaded).
    #[inline]
    pub fn follow(&mut self, mapper: &Mapper) {
        if self
            .hits
            .as_ref()
            .is_some_and(|h| h.generation == mapper.generation())
        {
            return;
        }
        self.publish_hits();
        let hits = self.activity.rule_hits(mapper);
        self.local = vec![0; hits.hits.len()];
        self.hits = Some(hits);
    }

    /// Counts a sample of rule `rule` (of the mapping last followed).
    #[inline]
    pub fn hit(&mut self, rule: usize) {
        if let Some(c) = self.local.get_mut(rule) {
            if *c == 0 {
                self.touched.push(rule as u32);
            }
            *c += 1;
        }
    }

    /// Adds the rule counts to the shared counters.
    pub fn publish_hits(&mut self) {
        if let Some(hits) = &self.hits {
            for &i in &self.touched {
                let n = std::mem::take(&mut self.local[i as usize]);
                hits.hits[i as usize].fetch_add(n, Ordering::Relaxed);
            }
        }
        self.touched.clear();
    }

    /// A tick passed since the last collection: unmapped counts are due.
    #[inline]
    pub fn collection_due(&self) -> bool {
        self.epoch != self.activity.epoch()
    }

    /// Merges the task's unmapped sketch into the shared one (the caller moved the series cache's
    /// counts into it first).
    pub fn collected(&mut self) {
        self.epoch = self.activity.epoch();
        self.unmapped_pending = false;
        self.activity.merge_unmapped(&mut self.unmapped);
    }
}

impl Drop for ActivityScratch {
    fn drop(&mut self) {
        self.publish_hits();
        self.activity.merge_unmapped(&mut self.unmapped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sketch_keeps_heavy_names_within_fixed_memory() {
        let mut k = TopK::default();
        // 10,000 names once each, and two heavy ones throughout.
        for i in 0..10_000 {
            k.offer(&format!("noise.{i}"), 1, 0);
            if i % 10 == 0 {
                k.offer("heavy.a", 1, 0);
            }
            if i % 20 == 0 {
                k.offer("heavy.b", 1, 0);
            }
        }
        assert_eq!(k.entries.len(), TOP_K);
        let top = k.top(2);
        assert_eq!(&*top[0].name, "heavy.a");
        assert_eq!(&*top[1].name, "heavy.b");
        // Counts over-estimate by at most their error.
        assert!(top[0].count - top[0].error <= 1000 && top[0].count >= 1000);
        assert!(top[1].count - top[1].error <= 500 && top[1].count >= 500);
    }

    #[test]
    fn merged_sketches_add_up_and_long_names_are_cut() {
        let mut a = TopK::default();
        let mut b = TopK::default();
        a.offer("x", 3, 0);
        b.offer("x", 4, 1);
        b.offer(&"y".repeat(1000), 2, 0);
        a.merge_from(&mut b);
        assert!(b.is_empty());
        let top = a.top(10);
        assert_eq!((&*top[0].name, top[0].count, top[0].error), ("x", 7, 1));
        assert_eq!(top[1].name.len(), MAX_NAME_BYTES + "…".len());
        assert!(top[1].name.ends_with('…'));
    }

    #[test]
    fn unchanged_rules_keep_their_counts_across_loads() {
        let activity = Arc::new(Activity::default());
        let one = Mapper::from_yaml(
            "mappings:\n  - match: a.*\n    name: a\n  - match: b.*\n    name: b\n",
            "m.yaml",
        )
        .unwrap();
        let mut scratch = ActivityScratch::new(&activity);
        scratch.follow(&one);
        scratch.hit(0);
        scratch.hit(1);
        scratch.hit(1);
        scratch.publish_hits();
        assert_eq!(activity.rule_hits(&one).counts(), [1, 2]);
        // Rule b moves up, a rule is added, rule a changes its name.
        let two = Mapper::from_yaml(
            "mappings:\n  - match: b.*\n    name: b\n  - match: c.*\n    name: c\n  - match: a.*\n    name: a2\n",
            "m.yaml",
        )
        .unwrap();
        scratch.follow(&two);
        scratch.hit(1);
        drop(scratch);
        assert_eq!(activity.rule_hits(&two).counts(), [2, 1, 0]);
    }

    #[test]
    fn rates_come_from_the_oldest_and_newest_ticks() {
        let activity = Activity::default();
        assert_eq!(activity.rates(), None);
        let t0 = Instant::now();
        activity.record(t0, 100, 200);
        assert_eq!(activity.rates(), None, "one point is no rate");
        for s in 1..=100 {
            activity.record(
                t0 + std::time::Duration::from_secs(s),
                100 + 10 * s,
                200 + 30 * s,
            );
        }
        // The oldest kept point is 60 s before the newest.
        assert_eq!(activity.rates(), Some((10.0, 30.0)));
    }
}
