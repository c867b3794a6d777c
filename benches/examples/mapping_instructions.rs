//! Maps the Mastodon names many times, for counting instructions per name with callgrind (exact and
//! repeatable on a noisy machine; wall-clock figures come from the criterion bench):
//!
//! ```text
//! cargo build --release -p statsd-benches --example mapping_instructions
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/mapping_instructions community uncached 200
//! ```
//! Mappers: `glob10`, `glob100`, `community`; modes: `uncached`, `cached`. Instructions per name =
//! total `Ir` / (rounds × names, printed on stderr); subtract a run with 0 rounds for start-up.

use std::hint::black_box;
use std::sync::Arc;

use statsd_mapping::{Mapper, MappingCache};

const COMMUNITY: &str = include_str!("../../mappings/testdata/ipng-mastodon-mapping.yaml");

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map_or("community", String::as_str);
    let mode = args.get(1).map_or("uncached", String::as_str);
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(200);
    let yaml = match which {
        "glob10" => statsd_benches::glob_mapping(10),
        "glob100" => statsd_benches::glob_mapping(100),
        "community" => COMMUNITY.to_string(),
        other => {
            eprintln!("unknown mapper {other:?}: glob10, glob100 or community");
            std::process::exit(2);
        }
    };
    let mapper = Arc::new(Mapper::from_yaml(&yaml, which).expect("valid mapping"));
    let names = statsd_benches::mastodon_names();
    let mut cache = MappingCache::new(if mode == "cached" { 1000 } else { 0 });
    let mut mapped = 0usize;
    for _ in 0..rounds {
        for (name, ty) in &names {
            mapped += usize::from(cache.map(&mapper, black_box(name), *ty).is_some());
        }
    }
    eprintln!(
        "mapper={which} mode={mode} names={} rounds={rounds} mapped={mapped}",
        names.len()
    );
}
