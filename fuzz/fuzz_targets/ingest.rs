//! Fuzzes the whole receive path: any datagram goes through ingest (parsing, the embedded Mastodon
//! mapping, the route, the series cache, the store) and the store then renders, in both formats.
//! Nothing may panic; the rendered text must stay well-formed (every sample line has a name, balanced
//! braces and a number), and the protobuf rendering must decode to the same families.
#![no_main]

use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use libfuzzer_sys::fuzz_target;
use statsd_line::Parser;
use statsd_proxy::ingest::Ingest;
use statsd_proxy::telemetry::Telemetry;
use statsd_store::{Config, Limits, Store, SystemClock};

/// The mapping and our metrics, made once; the store is new for every input, so that each input is
/// judged on its own and a run stays fast.
fn shared() -> &'static (Arc<ArcSwap<statsd_mapping::Mapper>>, Telemetry) {
    static SHARED: OnceLock<(Arc<ArcSwap<statsd_mapping::Mapper>>, Telemetry)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let mapper = statsd_proxy::mappings::embedded_mastodon_mapper();
        (Arc::new(ArcSwap::from_pointee(mapper)), Telemetry::new())
    })
}

fuzz_target!(|data: &[u8]| {
    let (mapper, telemetry) = shared();
    let config = Config {
        limits: Limits { max_series: 200, max_series_per_metric: 50 },
        ..Config::default()
    };
    let store = Arc::new(Store::with_config(config, Arc::new(SystemClock)));
    let ingest = Ingest::new(
        Parser::default(),
        Arc::clone(mapper),
        Arc::clone(&store),
        telemetry.clone(),
        Default::default(),
        16,
        16,
        None,
    );
    let mut scratch = ingest.scratch();
    // Twice: the second pass goes through the series cache.
    ingest.packet(data, &mut scratch);
    ingest.packet(data, &mut scratch);
    let mut out = String::new();
    store.render(&mut out);
    for line in out.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("a sample line has a value");
        assert!(!series.is_empty(), "{line:?}");
        assert!(
            matches!(value, "+Inf" | "-Inf" | "NaN") || value.parse::<f64>().is_ok(),
            "{line:?}"
        );
        if let Some((name, labels)) = series.split_once('{') {
            assert!(!name.is_empty() && labels.ends_with('}'), "{line:?}");
        }
    }
    // The protobuf format: decodes, one message per family, the text's families.
    let mut bytes = Vec::new();
    let mut scrape = store.scrape();
    while scrape.next_family_proto(&mut bytes) {}
    let mut buf = bytes.as_slice();
    let mut names = Vec::new();
    while !buf.is_empty() {
        let family: statsd_exposition::proto::MetricFamily =
            prost::Message::decode_length_delimited(&mut buf).expect("a delimited family");
        assert!(!family.metric.is_empty());
        names.push(family.name.expect("a family name"));
    }
    let text_names: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(names, text_names);
});
