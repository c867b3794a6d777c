//! The loaded mapping: the compiled [`Mapper`] plus, for each rule, the store [`Spec`] its series are
//! created with, built once at load so that the hot path converts nothing.

use std::path::Path;
use std::sync::Arc;

use statsd_mapping::{LoadError, Mapper, Observer as MappingObserver};
use statsd_store::{DEFAULT_HELP, Observer, Spec, SummaryOptions};

/// A mapping file, compiled and ready for ingest.
#[derive(Debug)]
pub struct Mappings {
    /// The rules.
    pub mapper: Arc<Mapper>,
    /// `specs[i]` is rule `i`'s series spec.
    specs: Vec<Spec>,
    /// For unmapped metrics.
    unmapped: Spec,
}

fn observer(o: &MappingObserver) -> Observer {
    match o {
        MappingObserver::Summary(s) => Observer::Summary(Arc::new(SummaryOptions {
            quantiles: s.quantiles.clone(),
            max_age: s.max_age,
            age_buckets: s.age_buckets,
        })),
        MappingObserver::Histogram(b) => Observer::Histogram(Arc::from(b.as_slice())),
    }
}

impl Mappings {
    /// Prepares `mapper` for ingest.
    pub fn new(mapper: Mapper) -> Self {
        let default_help: Arc<str> = Arc::from(DEFAULT_HELP);
        let specs = mapper
            .rules()
            .iter()
            .map(|rule| Spec {
                help: rule
                    .help
                    .as_deref()
                    .map_or_else(|| Arc::clone(&default_help), Arc::from),
                observer: observer(&rule.observer),
                ttl: rule.ttl,
            })
            .collect();
        let unmapped = Spec {
            help: default_help,
            observer: observer(&mapper.defaults().observer),
            ttl: mapper.defaults().ttl,
        };
        Self {
            mapper: Arc::new(mapper),
            specs,
            unmapped,
        }
    }

    /// No mapping file: every metric unmapped, statsd_exporter's defaults.
    pub fn none() -> Self {
        Self::new(Mapper::empty())
    }

    /// The Mastodon mapping shipped in the binary (`mappings/mastodon.yaml`).
    pub fn embedded_mastodon() -> Self {
        Self::new(embedded_mastodon_mapper())
    }

    /// Loads `path`, logging each of the file's warnings; with `strict` (`--statsd.mapping-strict`) a
    /// file with warnings is refused.
    pub fn load(path: &Path, strict: bool) -> Result<Self, LoadError> {
        Ok(Self::new(load_mapper(path, strict)?))
    }

    /// The spec of rule `rule`.
    pub fn spec(&self, rule: usize) -> &Spec {
        self.specs.get(rule).unwrap_or(&self.unmapped)
    }

    /// The spec of unmapped metrics.
    pub fn unmapped(&self) -> &Spec {
        &self.unmapped
    }
}

/// Loads and compiles `path`, logging each warning; under `strict` the first warning becomes the error.
pub fn load_mapper(path: &Path, strict: bool) -> Result<Mapper, LoadError> {
    let mapper = Mapper::from_file(path)?;
    for warning in mapper.warnings() {
        tracing::warn!("mapping: {warning}");
    }
    match mapper.strict_error() {
        Some(error) if strict => Err(error),
        _ => Ok(mapper),
    }
}

/// The text of `mappings/mastodon.yaml`, compiled into the binary.
pub const MASTODON_YAML: &str = include_str!("../../../mappings/mastodon.yaml");
/// How the embedded mapping is named in messages.
pub const MASTODON_SOURCE: &str = "<embedded mappings/mastodon.yaml>";

/// Compiles the embedded Mastodon mapping.
pub fn embedded_mastodon_mapper() -> Mapper {
    // Tested: the shipped file compiles without warnings (crates/proxy/tests/mastodon.rs).
    Mapper::from_yaml(MASTODON_YAML, MASTODON_SOURCE)
        .expect("the shipped mappings/mastodon.yaml is valid (checked by the test suite)")
}
