//! Fuzzes mapping files: no text may make loading panic, and a loaded mapping must map any name of any
//! type without panicking, with an escaped (possibly empty) metric name and valid label names, the
//! same through the regex fast path as through the regex crate alone; `mapping lint` must not panic.
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
            let _ = statsd_mapping::lint::lint(&mapper, yaml, &["statsd_exporter_lines_total"]);
            for ty in [MetricType::Counter, MetricType::Gauge, MetricType::Observer] {
                let mapped = mapper.map(name, ty);
                if let Some(m) = &mapped {
                    assert!(m.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{:?}", m.name);
                    assert!(m.labels.windows(2).all(|w| w[0].0 <= w[1].0), "labels sorted");
                }
                // The regex fast path answers exactly what the regex crate answers.
                assert_eq!(mapped, mapper.map_by_regex_crate(name, ty), "{name:?} with {yaml:?}");
            }
        }
    }
});
