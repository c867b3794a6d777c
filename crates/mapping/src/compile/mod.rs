//! Loading a mapping file: the YAML read non-strictly ([`crate::document`]), the raw structs of
//! [`crate::config`], and their compilation into a [`Mapper`] with every error and warning positioned
//! (each rule in [`rule`]).

mod rule;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use statsd_spec::{DEFAULT_HELP, Spec};

use crate::config::RawConfig;
use crate::glob::GlobIndex;
use crate::mapper::{Mapper, RegexIndex};
use crate::observer::{DefaultObservers, Note, ObserverType, positive, quantiles};
use crate::positions::Positions;
use crate::{ErrorKind, LoadError, MatchType, Position, Warning, WarningKind, document};
use rule::{RuleDefaults, compile_rule};

/// The file being compiled: where its keys are, and the warnings found so far.
struct Ctx<'a> {
    file: &'a str,
    positions: Positions,
    warnings: Vec<Warning>,
}

/// The rule index a dotted path (`mappings.3.ttl`) is in, if any.
fn rule_of(path: &str) -> Option<usize> {
    path.strip_prefix("mappings.")?
        .split('.')
        .next()?
        .parse()
        .ok()
}

impl Ctx<'_> {
    fn error(&self, path: &str, kind: ErrorKind, message: impl Into<String>) -> LoadError {
        LoadError {
            file: self.file.to_string(),
            position: self
                .positions
                .find(path)
                .unwrap_or(Position { line: 1, column: 1 }),
            rule: rule_of(path),
            message: message.into(),
            kind,
        }
    }

    fn warn_at(&mut self, position: Position, path: &str, kind: WarningKind, message: String) {
        self.warnings.push(Warning {
            file: self.file.to_string(),
            position,
            rule: rule_of(path),
            message,
            kind,
        });
    }

    fn warn(&mut self, path: &str, kind: WarningKind, message: impl Into<String>) {
        let position = self.positions.find(path).unwrap_or_default();
        self.warn_at(position, path, kind, message.into());
    }

    /// Records notes about keys under `prefix` (`defaults.` or `mappings.3.`).
    fn notes(&mut self, prefix: &str, notes: Vec<Note>) {
        for (key, kind, message) in notes {
            self.warn(&format!("{prefix}{key}"), kind, message);
        }
    }

    /// A deprecated key and its replacement, as statsd_exporter resolves them: the replacement wins;
    /// the deprecated key is used when the replacement is absent, and is reported either way. With
    /// `conflict`, giving both is an error (statsd_exporter refuses it in a rule, not in `defaults`).
    fn deprecated<T>(
        &mut self,
        prefix: &str,
        (new_key, new): (&str, Option<T>),
        (old_key, old): (&str, Option<T>),
        conflict: bool,
    ) -> Result<Option<T>, LoadError> {
        if old.is_some() {
            if conflict && new.is_some() {
                return Err(self.error(
                    &format!("{prefix}{old_key}"),
                    ErrorKind::Conflict,
                    format!("`{old_key}` and `{new_key}` are both set"),
                ));
            }
            self.warn(
                &format!("{prefix}{old_key}"),
                WarningKind::Deprecated,
                format!("`{old_key}` is deprecated: use `{new_key}`"),
            );
        }
        Ok(new.or(old))
    }
}

impl Mapper {
    /// Reads and compiles a mapping file.
    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| LoadError {
            file: file.clone(),
            position: Position::default(),
            rule: None,
            message: format!("cannot read the mapping file: {e}"),
            kind: ErrorKind::Io,
        })?;
        Self::from_yaml(&text, &file)
    }

    /// Compiles mapping YAML; `file` names it in messages.
    pub fn from_yaml(text: &str, file: &str) -> Result<Self, LoadError> {
        let mut ctx = Ctx {
            file,
            positions: Positions::index(text),
            warnings: Vec::new(),
        };
        let (value, issues) = document::read(text).map_err(|e| LoadError {
            file: file.to_string(),
            position: e.position,
            rule: None,
            message: format!("invalid YAML: {}", e.message),
            kind: ErrorKind::Yaml,
        })?;
        for issue in issues {
            let (kind, message) = match issue.kind {
                document::IssueKind::UnknownKey => (
                    WarningKind::UnknownKey,
                    format!(
                        "unknown key `{}` ignored (statsd_exporter ignores it too)",
                        issue.path
                    ),
                ),
                document::IssueKind::DuplicateKey => (
                    WarningKind::DuplicateKey,
                    format!("duplicate key `{}`: the last value is used", issue.path),
                ),
            };
            ctx.warn_at(issue.position, &issue.path, kind, message);
        }
        let raw: RawConfig = if value.is_null() {
            RawConfig::default()
        } else {
            serde_path_to_error::deserialize(value).map_err(|e| {
                // `mappings[3].ttl` → `mappings.3.ttl`, the form positions are recorded under.
                let path = e.path().to_string();
                let dotted = path.replace('[', ".").replace(']', "");
                ctx.error(
                    &dotted,
                    ErrorKind::Yaml,
                    format!("{path}: {}", e.into_inner()),
                )
            })?
        };
        compile(raw, ctx)
    }
}

fn compile(raw: RawConfig, mut ctx: Ctx<'_>) -> Result<Mapper, LoadError> {
    let d = raw.defaults;
    let observer_type = ctx.deprecated(
        "defaults.",
        ("observer_type", d.observer_type),
        ("timer_type", d.timer_type),
        false,
    )?;
    let observer_type = ObserverType::parse(observer_type.as_deref())
        .map_err(|m| ctx.error("defaults.observer_type", ErrorKind::Value, m))?;
    let default_match_type = parse_match_type(d.match_type.as_deref(), MatchType::Glob)
        .map_err(|m| ctx.error("defaults.match_type", ErrorKind::Value, m))?;
    let summary_quantiles = d
        .summary_options
        .as_ref()
        .and_then(|s| s.quantiles.as_deref())
        .filter(|q| !q.is_empty())
        .map(quantiles);
    let legacy_quantiles = d
        .quantiles
        .as_deref()
        .filter(|q| !q.is_empty())
        .map(quantiles);
    let default_quantiles = ctx.deprecated(
        "defaults.",
        ("summary_options.quantiles", summary_quantiles),
        ("quantiles", legacy_quantiles),
        false,
    )?;
    let histogram_buckets = d
        .histogram_options
        .as_ref()
        .and_then(|h| h.buckets.clone())
        .filter(|b| !b.is_empty());
    let legacy_buckets = d.buckets.filter(|b| !b.is_empty());
    let default_buckets = ctx.deprecated(
        "defaults.",
        ("histogram_options.buckets", histogram_buckets),
        ("buckets", legacy_buckets),
        false,
    )?;
    let mut notes = Vec::new();
    let defaults = DefaultObservers::resolve(
        observer_type,
        d.summary_options.as_ref(),
        d.histogram_options.as_ref(),
        default_quantiles,
        default_buckets,
        &mut notes,
    );
    ctx.notes("defaults.", notes);
    if let Some(bad) = d.ttl.filter(|t| t.negative) {
        ctx.warn(
            "defaults.ttl",
            WarningKind::Repaired,
            format!(
                "negative ttl -{:?}: unmapped series never expire (statsd_exporter deletes them at its next sweep, within a second of each update)",
                bad.magnitude
            ),
        );
    }
    let default_ttl = positive(d.ttl).unwrap_or(Duration::ZERO);
    let unmapped = Spec {
        ttl: default_ttl,
        observer: defaults.observer(),
        ..Spec::default()
    };

    let mut glob = GlobIndex::new(!d.glob_disable_ordering);
    let mut regex = RegexIndex::default();
    let mut rules = Vec::with_capacity(raw.mappings.len());
    let default_help: Arc<str> = Arc::from(DEFAULT_HELP);
    for (i, m) in raw.mappings.into_iter().enumerate() {
        let settings = RuleDefaults {
            match_type: default_match_type,
            observers: &defaults,
            ttl: default_ttl,
            help: &default_help,
        };
        let (rule, matcher) = compile_rule(&mut ctx, i, m, &settings)?;
        match matcher {
            None => {
                glob.add(&rule.pattern, i, rule.match_metric_type);
            }
            Some(re) => regex.push(i, re),
        }
        rules.push(rule);
    }
    let mut warnings = ctx.warnings;
    warnings.sort_by_key(|w| (w.position.line, w.position.column));
    Ok(Mapper::assemble(
        rules,
        glob,
        regex,
        unmapped,
        warnings,
        ctx.file.to_string(),
    ))
}

pub(super) fn parse_match_type(
    text: Option<&str>,
    default: MatchType,
) -> Result<MatchType, String> {
    match text {
        None | Some("") => Ok(default),
        Some("glob") => Ok(MatchType::Glob),
        Some("regex") => Ok(MatchType::Regex),
        Some(other) => Err(format!(
            "unknown match_type {other:?} (expected `glob` or `regex`)"
        )),
    }
}
