//! Fuzzes the whole receive path: any datagram goes through ingest (parsing, the embedded Mastodon
//! mapping, the route, the store) and the store then renders. Nothing may panic, and the rendered
//! text must stay well-formed: every sample line has a name, balanced braces and a number.
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
        16,
        None,
    );
    let mut scratch = ingest.scratch();
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
});
