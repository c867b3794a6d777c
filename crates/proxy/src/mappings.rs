//! Choosing and loading the mapping: one [`load`] for start, reload and the `mapping` tools.

use statsd_mapping::{LoadError, Mapper};

use crate::config::MappingSource;

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

/// Compiles the mapping `source` names, warnings and all (the `mapping` tools print them).
pub fn compile(source: &MappingSource) -> Result<Mapper, LoadError> {
    match source {
        MappingSource::None => Ok(Mapper::empty()),
        MappingSource::EmbeddedMastodon => Ok(embedded_mastodon_mapper()),
        MappingSource::File(path) => Mapper::from_file(path),
    }
}

/// `mapper`, or under `strict` (`--statsd.mapping-strict`) its first warning as the error.
pub fn strictly(mapper: Mapper, strict: bool) -> Result<Mapper, LoadError> {
    match mapper.strict_error() {
        Some(error) if strict => Err(error),
        _ => Ok(mapper),
    }
}

/// Loads the mapping `source` names for the running proxy (at start and on every reload): logs each
/// warning and what was loaded, then applies `strict`.
pub fn load(source: &MappingSource, strict: bool) -> Result<Mapper, LoadError> {
    let mapper = compile(source)?;
    for warning in mapper.warnings() {
        tracing::warn!("mapping: {warning}");
    }
    let (rules, warnings) = (mapper.rules().len(), mapper.warnings().len());
    match source {
        MappingSource::File(path) => {
            tracing::info!(file = %path.display(), rules, warnings, "loaded mapping file");
        }
        MappingSource::EmbeddedMastodon => tracing::info!(
            rules,
            "no --statsd.mapping-config: using the embedded Mastodon mapping \
             (--statsd.default-mapping=none exposes every metric unmapped instead)"
        ),
        MappingSource::None => {}
    }
    strictly(mapper, strict)
}
