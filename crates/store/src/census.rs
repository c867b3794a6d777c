//! A count of what the store holds, for the status page: live series by the rule that created them,
//! and the biggest metrics. One pass over the families, each locked briefly (as a scrape does).

use std::collections::HashMap;
use std::sync::Arc;

use crate::{Kind, Store};

/// One metric and how many series it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilySize {
    /// The metric name.
    pub name: Arc<str>,
    /// Its type.
    pub kind: Kind,
    /// Its series.
    pub series: usize,
}

/// What [`Store::census`] found.
#[derive(Debug, Clone, Default)]
pub struct Census {
    /// Live series by [`crate::Spec::origin`] (0: unmapped).
    pub by_origin: HashMap<u64, usize>,
    /// The metrics with the most series, biggest first (ties by name).
    pub biggest: Vec<FamilySize>,
    /// Metrics held.
    pub families: usize,
}

impl Store {
    /// Counts live series by origin and keeps the `top` biggest metrics. Memory: one entry per rule
    /// and `top` metrics, whatever the store holds.
    pub fn census(&self, top: usize) -> Census {
        let mut census = Census::default();
        let mut biggest: Vec<FamilySize> = Vec::with_capacity(top + 1);
        for shard in self.families.iter() {
            let families: Vec<_> = shard.read().values().cloned().collect();
            for family in families {
                let members = family.members.lock();
                if members.list.is_empty() {
                    continue;
                }
                census.families += 1;
                for series in &members.list {
                    *census.by_origin.entry(series.origin).or_default() += 1;
                }
                let size = members.list.len();
                drop(members);
                let smaller = biggest.last().is_some_and(|last| {
                    (last.series, std::cmp::Reverse(&last.name))
                        >= (size, std::cmp::Reverse(&family.name))
                });
                if top == 0 || (biggest.len() == top && smaller) {
                    continue;
                }
                biggest.push(FamilySize {
                    name: Arc::clone(&family.name),
                    kind: family.kind,
                    series: size,
                });
                biggest.sort_by(|a, b| b.series.cmp(&a.series).then_with(|| a.name.cmp(&b.name)));
                biggest.truncate(top);
            }
        }
        census.biggest = biggest;
        census
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Spec, Update};

    #[test]
    fn counts_series_by_origin_and_keeps_the_biggest_metrics() {
        let store = Store::new();
        let rule = Spec {
            origin: 7,
            ..Spec::default()
        };
        for i in 0..5 {
            let v = i.to_string();
            store
                .update("big", &mut [("i", v.as_str())], Update::Add(1.0), &rule)
                .unwrap();
        }
        for name in ["small_a", "small_b"] {
            store
                .update(name, &mut [], Update::Add(1.0), &Spec::default())
                .unwrap();
        }
        let c = store.census(2);
        assert_eq!(c.by_origin.get(&7), Some(&5));
        assert_eq!(c.by_origin.get(&0), Some(&2));
        assert_eq!(c.families, 3);
        let names: Vec<_> = c.biggest.iter().map(|f| (&*f.name, f.series)).collect();
        assert_eq!(names, [("big", 5), ("small_a", 1)]);
        assert!(store.census(0).biggest.is_empty());
    }
}
