//! Mapping cost per StatsD name: glob rules (10 and 100), the community Mastodon mapping's 12 regex
//! rules, the shipped `mappings/mastodon.yaml` (its regex rules and globs), each uncached
//! (`Mapper::map`) and through the per-worker cache (`MappingCache`, warm).
//!
//! `cargo bench -p statsd-benches --bench mapping`; per-name medians are the iteration medians divided
//! by the number of names (94 Mastodon names), see BENCHMARKS.md.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use statsd_mapping::{Mapper, MappingCache, MetricType};

const COMMUNITY: &str = include_str!("../../mappings/testdata/ipng-mastodon-mapping.yaml");
const SHIPPED: &str = include_str!("../../mappings/mastodon.yaml");

fn bench(c: &mut Criterion) {
    let names = statsd_benches::mastodon_names();
    let mappers = [
        (
            "glob10",
            Mapper::from_yaml(&statsd_benches::glob_mapping(10), "glob10").expect("valid"),
        ),
        (
            "glob100",
            Mapper::from_yaml(&statsd_benches::glob_mapping(100), "glob100").expect("valid"),
        ),
        (
            "community_regex",
            Mapper::from_yaml(COMMUNITY, "community").expect("valid"),
        ),
        (
            "shipped_mastodon",
            Mapper::from_yaml(SHIPPED, "mastodon.yaml").expect("valid"),
        ),
    ];
    let mut group = c.benchmark_group("mapping");
    group.throughput(Throughput::Elements(names.len() as u64));
    for (label, mapper) in mappers {
        let mapper = Arc::new(mapper);
        let hits = names
            .iter()
            .filter(|(n, t)| mapper.map(n, *t).is_some())
            .count();
        eprintln!("{label}: {hits} of {} names mapped", names.len());
        group.bench_function(format!("{label}/uncached"), |b| {
            b.iter(|| {
                let mut mapped = 0;
                for (name, ty) in &names {
                    mapped += usize::from(mapper.map(black_box(name), *ty).is_some());
                }
                mapped
            })
        });
        let mut cache = MappingCache::new(statsd_mapping::DEFAULT_CACHE_SIZE);
        group.bench_function(format!("{label}/cached"), |b| {
            b.iter(|| {
                let mut mapped = 0;
                for (name, ty) in &names {
                    mapped += usize::from(cache.map(&mapper, black_box(name), *ty).is_some());
                }
                mapped
            })
        });
    }
    let _ = MetricType::Counter;
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
