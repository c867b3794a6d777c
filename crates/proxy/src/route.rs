//! The routing decision, in one place: what a parsed sample becomes once mapped. Ingest and
//! `mapping explain` both call [`resolve`], so what explain shows is what the proxy does.
//!
//! Given the sample, its tags and the mapping result (from the per-worker cache or the mapper), it
//! decides: dropped by a rule, refused for an empty name, or a series (name, labels merged as
//! statsd_exporter merges them, the [`Spec`] it is created with, the store update with the rule's
//! `scale` applied, and how many events it stands for). It does no I/O and counts nothing.

use std::sync::Arc;

use smallvec::SmallVec;
use statsd_line::{Sample, SampleKind, escape_name_into};
use statsd_mapping::{Action, Mapped, Mapper, MetricType, Rule};
use statsd_store::{Spec, Update};

/// Labels of one sample: tags and mapping labels merged, on the stack for up to 8.
pub type Labels<'a> = SmallVec<[(&'a str, &'a str); statsd_line::INLINE_TAGS]>;

/// Where a sample goes: `'m` borrows the mapping (and the labels' strings), `'s` the received text.
#[derive(Debug)]
pub enum Route<'m, 's> {
    /// A rule with `action: drop` matched.
    Dropped {
        /// The rule.
        rule: &'m Rule,
    },
    /// A rule matched but its name template expanded to nothing (`empty_metric_name`).
    EmptyName {
        /// The rule.
        rule: &'m Rule,
    },
    /// A series to update.
    Series(Series<'m, 's>),
}

/// A resolved series update.
#[derive(Debug)]
pub struct Series<'m, 's> {
    /// The rule that matched (`None`: unmapped).
    pub rule: Option<&'m Rule>,
    /// The Prometheus name.
    pub name: &'m str,
    /// What the series is created with.
    pub spec: &'m Spec,
    /// The update, `scale` applied.
    pub update: Update<'s>,
    /// How many events it stands for (a sampled observation counts `floor(1/rate)` times).
    pub events: u64,
}

/// The mapping type of a sample kind: sets are exposed as gauges, and mapping rules see them as such.
pub fn metric_type(kind: SampleKind) -> MetricType {
    match kind {
        SampleKind::Counter => MetricType::Counter,
        SampleKind::Gauge | SampleKind::Set => MetricType::Gauge,
        SampleKind::Timer | SampleKind::Histogram | SampleKind::Distribution => {
            MetricType::Observer
        }
    }
}

/// Resolves `sample` (whose tags are already in `labels`) given what the mapper made of its name:
/// merges the rule's labels into `labels`, and for an unmapped sample writes its escaped name into
/// `unmapped_name`.
// Always inlined: returned through memory, the route cost ingest ~3% per line (BENCHMARKS.md).
#[inline(always)]
pub fn resolve<'m, 's>(
    mapper: &'m Mapper,
    mapped: Option<&'m Mapped>,
    sample: &Sample<'_, 's>,
    labels: &mut Labels<'m>,
    unmapped_name: &'m mut String,
) -> Route<'m, 's> {
    let (rule, name, spec, scale) = match mapped {
        Some(mapped) => {
            let rule = &mapper.rules()[mapped.rule];
            if rule.action == Action::Drop {
                return Route::Dropped { rule };
            }
            if mapped.name.is_empty() {
                return Route::EmptyName { rule };
            }
            merge_labels(labels, &mapped.labels, rule.honor_labels);
            (Some(rule), mapped.name.as_str(), &rule.spec, rule.scale)
        }
        None => {
            escape_name_into(sample.name, unmapped_name);
            (None, unmapped_name.as_str(), mapper.unmapped(), None)
        }
    };
    let (update, events) = update_for(sample, scale);
    Route::Series(Series {
        rule,
        name,
        spec,
        update,
        events,
    })
}

/// The store update a sample makes (values multiplied by the rule's `scale`), and how many events it
/// stands for (a sampled observation counts `floor(1/rate)` times).
#[inline]
pub fn update_for<'a>(sample: &Sample<'_, 'a>, scale: Option<f64>) -> (Update<'a>, u64) {
    let scaled = |v: f64| scale.map_or(v, |s| v * s);
    match sample.kind {
        SampleKind::Counter => (Update::Add(scaled(sample.counter_increment())), 1),
        SampleKind::Gauge if sample.relative => (Update::Delta(scaled(sample.value)), 1),
        SampleKind::Gauge => (Update::Set(scaled(sample.value)), 1),
        SampleKind::Set => (Update::Member(sample.raw_value), 1),
        SampleKind::Timer | SampleKind::Histogram | SampleKind::Distribution => {
            let weight = sample.repeat();
            let update = Update::Observe {
                value: scaled(sample.observation()),
                weight,
            };
            (update, weight)
        }
    }
}

/// Adds a rule's labels to a sample's tags: the rule's value wins for a name both have, unless the rule
/// says `honor_labels` (then the tag's value stays), as statsd_exporter does.
fn merge_labels<'a>(
    labels: &mut Labels<'a>,
    rule_labels: &'a [(Arc<str>, String)],
    honor_labels: bool,
) {
    for (k, v) in rule_labels {
        match labels.iter_mut().find(|(tk, _)| *tk == &**k) {
            Some(existing) if !honor_labels => existing.1 = v.as_str(),
            Some(_) => {}
            None => labels.push((&**k, v.as_str())),
        }
    }
}
