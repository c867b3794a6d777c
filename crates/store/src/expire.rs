//! Expiry: series not updated within their TTL are removed, and families left without series.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use crate::Store;
use crate::series::Family;

impl Store {
    /// Removes series not updated within their TTL, and families left without series (their type is
    /// then forgotten). Returns how many series were removed.
    pub fn expire(&self) -> usize {
        let now = self.now_ms.load(Ordering::Relaxed);
        let mut removed = 0;
        let families: Vec<Arc<Family>> = self
            .families
            .iter()
            .flat_map(|shard| shard.read().values().cloned().collect::<Vec<_>>())
            .collect();
        let mut emptied = Vec::new();
        for family in families {
            let mut members = family.members.lock();
            if members.has_ttl {
                let (keep, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut members.list)
                    .into_iter()
                    .partition(|s| {
                        s.ttl_ms == 0
                            || now.saturating_sub(s.last_seen.load(Ordering::Relaxed)) < s.ttl_ms
                    });
                members.list = keep;
                for series in &gone {
                    series.removed.store(true, Ordering::Relaxed);
                    let mut shard = self
                        .series_shard(series.hash)
                        .write()
                        .unwrap_or_else(PoisonError::into_inner);
                    if let Some(bucket) = shard.get_mut(&series.hash) {
                        bucket.retain(|s| !Arc::ptr_eq(s, series));
                        if bucket.is_empty() {
                            shard.remove(&series.hash);
                        }
                    }
                }
                removed += gone.len();
                self.series.fetch_sub(gone.len(), Ordering::Relaxed);
                self.by_kind[family.kind.index()].fetch_sub(gone.len(), Ordering::Relaxed);
                members.has_ttl = members.list.iter().any(|s| s.ttl_ms > 0);
            }
            if members.list.is_empty() {
                emptied.push(Arc::clone(&family));
            }
        }
        for family in emptied {
            // Lock order: family shard, members, name index.
            let mut table = self.family_shard(&family.name).write();
            let mut members = family.members.lock();
            if !members.list.is_empty() || members.removed {
                continue;
            }
            members.removed = true;
            table.remove(&*family.name);
            let mut names = self.names.lock();
            names.remove(&*family.name);
            for s in family.kind.suffixes() {
                names.remove(format!("{}{s}", family.name).as_str());
            }
        }
        removed
    }
}
