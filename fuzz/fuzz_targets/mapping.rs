//! Fuzzes mapping files: no text may make loading panic, and a loaded mapping must map any name of any
//! type without panicking, with an escaped (possibly empty) metric name and valid label names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use statsd_mapping::{Mapper, MetricType};

fuzz_target!(|data: &[u8]| {
    // The first line is a StatsD name to map; the rest is the mapping file.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (name, yaml) = text.split_once('\n').unwrap_or(("a.b.c", text));
    match Mapper::from_yaml(yaml, "fuzz.yaml") {
        Err(e) => {
            let _ = e.to_string();
        }
        Ok(mapper) => {
            for ty in [MetricType::Counter, MetricType::Gauge, MetricType::Observer] {
                if let Some(m) = mapper.map(name, ty) {
                    assert!(m.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{:?}", m.name);
                    assert!(m.labels.windows(2).all(|w| w[0].0 <= w[1].0), "labels sorted");
                }
            }
        }
    }
});
