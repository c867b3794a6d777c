//! Updating a series, and creating it (with its family) the first time: the hot path and its checks.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use parking_lot::Mutex;
use smallvec::SmallVec;
use statsd_exposition::{label_set_matches, render_label_set};

use statsd_spec::valid_label_name;

use crate::series::{AtomicF64, Family, FamilyId, Histogram, Key, Members, Series, State};
use crate::{
    Kind, MAX_LABEL_VALUE_BYTES, MAX_LABELS_PER_SERIES, Observer, Refusal, Set, Spec, Store,
    Summary, Update,
};

/// A series an update reached, to update it again without looking it up ([`Store::update_series`]):
/// what a per-worker cache keeps, keyed by whatever identified the series before mapping.
///
/// A reference stays valid as long as the series is in the store. Once the series expires the
/// reference is stale ([`SeriesRef::is_live`] turns false) and the caller must go through
/// [`Store::update_ref`] again, which creates a new series.
#[derive(Debug, Clone)]
pub struct SeriesRef(Arc<Series>);

impl SeriesRef {
    /// The series is still in the store.
    #[inline]
    pub fn is_live(&self) -> bool {
        !self.0.removed.load(Ordering::Relaxed)
    }

    /// The series' kind.
    #[inline]
    pub fn kind(&self) -> Kind {
        self.0.family.kind
    }

    /// The series' metric name.
    pub fn name(&self) -> &str {
        &self.0.family.name
    }
}

/// Refuses updates no series may take: a negative counter increment, a value that is not finite.
#[inline]
fn check(update: &Update<'_>) -> Result<(), Refusal> {
    if let Update::Add(v) = *update
        && v < 0.0
    {
        return Err(Refusal::NegativeCounter);
    }
    if let Update::Add(v) | Update::Set(v) | Update::Delta(v) | Update::Observe { value: v, .. } =
        *update
        && !v.is_finite()
    {
        return Err(Refusal::Overflow);
    }
    Ok(())
}

impl Store {
    /// Applies `update` to the series `name{labels}`, creating it from `spec` if needed. `labels` is
    /// sorted by name in place (names must be unique).
    pub fn update(
        &self,
        name: &str,
        labels: &mut [(&str, &str)],
        update: Update<'_>,
        spec: &Spec,
    ) -> Result<(), Refusal> {
        self.update_inner(name, labels, update, spec, |_| ())
    }

    /// Like [`Store::update`], and returns a reference to the series updated, for
    /// [`Store::update_series`].
    pub fn update_ref(
        &self,
        name: &str,
        labels: &mut [(&str, &str)],
        update: Update<'_>,
        spec: &Spec,
    ) -> Result<SeriesRef, Refusal> {
        self.update_inner(name, labels, update, spec, |s| SeriesRef(Arc::clone(s)))
    }

    /// Applies `update` to a series found before by [`Store::update_ref`] with the same spec and an
    /// update of the same kind (the caller's cache guarantees both), without looking it up. A stale
    /// reference (see [`SeriesRef::is_live`]) updates a series no scrape shows. `now` is the store
    /// clock's time ([`Store::now`]), which summaries and sets need: a caller with many updates at once
    /// (a packet's lines) reads the clock once for all of them.
    #[inline]
    pub fn update_series(
        &self,
        series: &SeriesRef,
        update: Update<'_>,
        now: Instant,
    ) -> Result<(), Refusal> {
        check(&update)?;
        self.apply(&series.0, update, Some(now))
    }

    /// The store clock's time now.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    #[inline]
    fn update_inner<T>(
        &self,
        name: &str,
        labels: &mut [(&str, &str)],
        update: Update<'_>,
        spec: &Spec,
        found: impl FnOnce(&Arc<Series>) -> T,
    ) -> Result<T, Refusal> {
        if name.is_empty() {
            return Err(Refusal::EmptyName);
        }
        check(&update)?;
        let kind = update.kind(spec);
        labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let key = Key { name, labels };
        let hash = self.hasher.hash_one(&key);
        {
            let shard = self
                .series_shard(hash)
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = shard.get(&hash).and_then(|bucket| {
                bucket
                    .iter()
                    .find(|s| *s.family.name == *name && label_set_matches(&s.rendered, labels))
            }) {
                self.apply_existing(series, kind, update, spec)?;
                return Ok(found(series));
            }
        }
        self.create(hash, key, kind, update, spec, found)
    }

    fn apply_existing(
        &self,
        series: &Series,
        kind: Kind,
        update: Update<'_>,
        spec: &Spec,
    ) -> Result<(), Refusal> {
        series.family.accepts(kind, spec)?;
        self.apply(series, update, None)
    }

    #[inline]
    /// Applies `update`; summaries and sets take `now`, or read the clock if not given.
    fn apply(
        &self,
        series: &Series,
        update: Update<'_>,
        now: Option<Instant>,
    ) -> Result<(), Refusal> {
        series
            .last_seen
            .store(self.now_ms.load(Ordering::Relaxed), Ordering::Relaxed);
        match (&series.state, update) {
            (State::Counter(c), Update::Add(v)) => {
                return c.add(v).then_some(()).ok_or(Refusal::Overflow);
            }
            (State::Gauge(g), Update::Set(v)) => g.set(v),
            (State::Gauge(g), Update::Delta(v)) => {
                return g.add(v).then_some(()).ok_or(Refusal::Overflow);
            }
            (State::Summary(s), Update::Observe { value, weight }) => {
                s.lock()
                    .observe(value, weight, now.unwrap_or_else(|| self.clock.now()))
            }
            (State::Histogram(h), Update::Observe { value, weight }) => h.observe(value, weight),
            (State::Set(s), Update::Member(m)) => {
                s.lock().insert(m, now.unwrap_or_else(|| self.clock.now()))
            }
            // Callers check that the family's kind is the update's.
            _ => debug_assert!(false, "update kind does not match series kind"),
        }
        Ok(())
    }

    /// The family `name` of `kind`, created if new. Refuses type, help and name collisions, and a new
    /// name when the store is full.
    fn family(&self, name: &str, kind: Kind, spec: &Spec) -> Result<Arc<Family>, Refusal> {
        let shard = self.family_shard(name);
        if let Some(f) = shard.read().get(name) {
            f.accepts(kind, spec)?;
            return Ok(Arc::clone(f));
        }
        let max = self.config.limits.max_series;
        if max > 0 && self.len() >= max {
            return Err(Refusal::SeriesLimit {
                family_exists: false,
            });
        }
        // Lock order: family shard, then the name index.
        let mut table = shard.write();
        if let Some(f) = table.get(name) {
            f.accepts(kind, spec)?;
            return Ok(Arc::clone(f));
        }
        let mut names = self.names.lock();
        let suffixed: SmallVec<[String; 3]> = kind
            .suffixes()
            .iter()
            .map(|s| format!("{name}{s}"))
            .collect();
        let taken = std::iter::once(name)
            .chain(suffixed.iter().map(String::as_str))
            .any(|n| names.contains(n));
        if taken {
            return Err(Refusal::NameCollision);
        }
        let family_name: Arc<str> = Arc::from(name);
        for n in std::iter::once(name.to_string()).chain(suffixed) {
            names.insert(n.into_boxed_str());
        }
        let family = Arc::new(Family {
            id: Arc::new(FamilyId::new(Arc::clone(&family_name), kind, spec)),
            members: Mutex::new(Members::default()),
        });
        table.insert(family_name, Arc::clone(&family));
        Ok(family)
    }

    /// The slow path: a series seen for the first time.
    fn create<T>(
        &self,
        hash: u64,
        key: Key<'_>,
        kind: Kind,
        update: Update<'_>,
        spec: &Spec,
        found: impl FnOnce(&Arc<Series>) -> T,
    ) -> Result<T, Refusal> {
        if key.labels.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(Refusal::DuplicateLabel);
        }
        if key.labels.len() > MAX_LABELS_PER_SERIES {
            return Err(Refusal::TooManyLabels);
        }
        if key
            .labels
            .iter()
            .any(|(_, v)| v.len() > MAX_LABEL_VALUE_BYTES)
        {
            return Err(Refusal::LabelValueTooLong);
        }
        for (k, _) in key.labels {
            if !valid_label_name(k) {
                return Err(Refusal::InvalidLabel);
            }
            if k.starts_with("__")
                || (kind == Kind::Summary && *k == "quantile")
                || (kind == Kind::Histogram && *k == "le")
            {
                return Err(Refusal::ReservedLabel);
            }
        }
        loop {
            let family = self.family(key.name, kind, spec)?;
            // Lock order: family members, then the series shard (the sweeper takes them in this order).
            let mut members = family.members.lock();
            if members.removed {
                // The sweeper removed this (empty) family since we looked it up: look again.
                continue;
            }
            let mut shard = self
                .series_shard(hash)
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let bucket = shard.entry(hash).or_default();
            if let Some(series) = bucket
                .iter()
                .find(|s| *s.family.name == *key.name && label_set_matches(&s.rendered, key.labels))
            {
                // Created by another thread since our read.
                let series = Arc::clone(series);
                drop(shard);
                drop(members);
                self.apply_existing(&series, kind, update, spec)?;
                return Ok(found(&series));
            }
            let per_metric = self.config.limits.max_series_per_metric;
            if per_metric > 0 && members.list.len() >= per_metric {
                return Err(Refusal::SeriesLimit {
                    family_exists: true,
                });
            }
            let max = self.config.limits.max_series;
            let reserved = self
                .series
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (max == 0 || n < max).then_some(n + 1)
                })
                .is_ok();
            if !reserved {
                return Err(Refusal::SeriesLimit {
                    family_exists: !members.list.is_empty(),
                });
            }
            self.by_kind[kind.index()].fetch_add(1, Ordering::Relaxed);
            let now = self.clock.now();
            let state = match (kind, &spec.observer) {
                (Kind::Counter, _) => State::Counter(AtomicF64::new(0.0)),
                (Kind::Gauge, _) => State::Gauge(AtomicF64::new(0.0)),
                (Kind::Set, _) => {
                    State::Set(Box::new(Mutex::new(Set::new(self.config.set_window, now))))
                }
                (_, Observer::Summary(options)) => {
                    State::Summary(Box::new(Mutex::new(Summary::new(Arc::clone(options), now))))
                }
                (_, Observer::Histogram(options)) => {
                    State::Histogram(Box::new(Histogram::new(Arc::clone(options))))
                }
            };
            let rendered = render_label_set(key.labels.iter().copied());
            let ttl_ms = u64::try_from(spec.ttl.as_millis()).unwrap_or(u64::MAX);
            let series = Arc::new(Series {
                family: Arc::clone(&family.id),
                rendered: rendered.into_boxed_str(),
                hash,
                state,
                last_seen: AtomicU64::new(0),
                ttl_ms,
                removed: AtomicBool::new(false),
                origin: spec.origin,
            });
            // A new series starts at zero: adding a finite value cannot overflow.
            let _ = self.apply(&series, update, Some(now));
            bucket.push(Arc::clone(&series));
            drop(shard);
            let result = found(&series);
            members.list.push(series);
            members.sorted = false;
            members.has_ttl |= ttl_ms > 0;
            return Ok(result);
        }
    }
}
