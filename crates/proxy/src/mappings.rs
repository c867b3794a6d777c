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

/// `mapping lint`: the findings for `file` (else the mapping `source` names), one
/// `file:line:column: severity: message [check]` line each, and whether they pass (no error; no warning
/// either under `strict`). A file that does not load is reported as its load error.
pub fn lint_report(
    file: Option<&std::path::Path>,
    source: &MappingSource,
    strict: bool,
) -> (String, bool) {
    use statsd_mapping::lint::{Severity, lint};
    use std::fmt::Write as _;
    let named = match source {
        MappingSource::File(path) => Some(path.as_path()),
        _ => None,
    };
    let (name, text, mapper) = match (file.or(named), source) {
        (Some(path), _) => {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) => return (format!("{}: {e}\n", path.display()), false),
            };
            match Mapper::from_yaml(&text, &path.display().to_string()) {
                Ok(m) => (path.display().to_string(), text, m),
                Err(e) => return (format!("{e}\n"), false),
            }
        }
        (None, MappingSource::EmbeddedMastodon | MappingSource::File(_)) => (
            MASTODON_SOURCE.to_string(),
            MASTODON_YAML.to_string(),
            embedded_mastodon_mapper(),
        ),
        (None, MappingSource::None) => {
            return (
                "no mapping (--statsd.default-mapping=none): nothing to lint\n".into(),
                true,
            );
        }
    };
    let reserved = crate::telemetry::Telemetry::new().names();
    let reserved: Vec<&str> = reserved.iter().map(String::as_str).collect();
    let findings = lint(&mapper, &text, &reserved);
    let mut out = String::new();
    for warning in mapper.warnings() {
        let _ = writeln!(out, "{warning} [load]");
    }
    for f in &findings {
        let _ = writeln!(
            out,
            "{name}:{}:{}: {}: mappings[{}]: {} [{}]",
            f.position.line,
            f.position.column,
            f.severity.as_str(),
            f.rule,
            f.message,
            f.check
        );
    }
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    let (errors, warnings, hints) = (
        count(Severity::Error),
        count(Severity::Warning) + mapper.warnings().len(),
        count(Severity::Hint),
    );
    let _ = writeln!(
        out,
        "{name}: {} rules, {errors} errors, {warnings} warnings, {hints} hints",
        mapper.rules().len()
    );
    (out, errors == 0 && !(strict && warnings > 0))
}
