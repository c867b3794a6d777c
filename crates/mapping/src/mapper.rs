//! The compiled mapping: rules, the matchers that find the winning rule, and template expansion.

use std::sync::atomic::{AtomicU64, Ordering};

use regex::Regex;
use statsd_spec::Spec;

use crate::glob::GlobIndex;
use crate::template::Template;
use crate::{Action, LoadError, MatchType, MetricType, Position, Warning};

/// One compiled rule: how it matches, and the route its samples take (action, labels, scale and the
/// [`Spec`] its series are created with), all resolved at load.
#[derive(Debug)]
pub struct Rule {
    /// Index in the file's `mappings`.
    pub index: usize,
    /// `match` as written.
    pub pattern: String,
    /// Glob or regex.
    pub match_type: MatchType,
    /// Map or drop.
    pub action: Action,
    /// Tags win over this rule's labels.
    pub honor_labels: bool,
    /// The sample type this rule is restricted to.
    pub match_metric_type: Option<MetricType>,
    /// Value multiplier.
    pub scale: Option<f64>,
    /// HELP text (statsd_exporter's default when the rule sets none), observer and TTL of its series.
    pub spec: Spec,
    /// Where the rule starts in the file.
    pub position: Position,
    pub(crate) name: Template,
    pub(crate) labels: Vec<(String, Template)>,
}

/// The result of mapping a StatsD name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// Index of the rule that matched.
    pub rule: usize,
    /// The Prometheus name: the expanded template, escaped (empty if the template expanded to nothing,
    /// which the caller counts as `empty_metric_name`).
    pub name: String,
    /// The rule's labels, expanded, sorted by name.
    pub labels: Vec<(String, String)>,
}

/// Regex rules, tried in file order after the globs: `captures` on each in turn, the first hit wins.
///
/// Measured alternatives (community Mastodon mapping, see BENCHMARKS.md): a `RegexSet` finding every
/// candidate in one pass, an `is_match` pre-check before `captures`, and an ASCII-only twin of each
/// regex for ASCII names were all no faster: the cost is the winning rule's capture extraction (the
/// bounded backtracker on `(.+)` groups), which the per-worker cache takes off the hot path.
#[derive(Debug, Default)]
pub(crate) struct RegexIndex {
    /// (rule index, compiled regex), in file order.
    pub(crate) rules: Vec<(usize, Regex)>,
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// A compiled mapping file. Immutable; share it by `Arc` and replace it whole on reload.
#[derive(Debug)]
pub struct Mapper {
    pub(crate) rules: Vec<Rule>,
    pub(crate) glob: GlobIndex,
    pub(crate) regex: RegexIndex,
    pub(crate) unmapped: Spec,
    pub(crate) warnings: Vec<Warning>,
    generation: u64,
    /// The file name given at load (for messages).
    pub(crate) source: String,
}

impl Mapper {
    /// Assembles a mapper with a fresh generation number, which every spec it hands out carries.
    pub(crate) fn assemble(
        mut rules: Vec<Rule>,
        glob: GlobIndex,
        regex: RegexIndex,
        mut unmapped: Spec,
        warnings: Vec<Warning>,
        source: String,
    ) -> Self {
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        for rule in &mut rules {
            rule.spec.generation = generation;
        }
        unmapped.generation = generation;
        Self {
            rules,
            glob,
            regex,
            unmapped,
            warnings,
            generation,
            source,
        }
    }

    /// A mapper without rules: every metric is unmapped (statsd_exporter without a mapping file).
    pub fn empty() -> Self {
        Self::assemble(
            Vec::new(),
            GlobIndex::new(true),
            RegexIndex::default(),
            Spec::default(),
            Vec::new(),
            String::new(),
        )
    }

    /// The compiled rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The spec of unmapped metrics' series (from the file's `defaults`).
    pub fn unmapped(&self) -> &Spec {
        &self.unmapped
    }

    /// Things in the file that statsd_exporter 0.30 accepts and so do we, but that deserve a look
    /// (unknown and duplicate keys, deprecated keys, repaired values, references to missing groups), in
    /// file order, each displayed with file:line:column.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The error `--statsd.mapping-strict` makes of this file's warnings: the first one, naming how
    /// many follow; `None` when there are none.
    pub fn strict_error(&self) -> Option<LoadError> {
        let first = self.warnings.first()?.clone();
        Some(first.into_strict_error(self.warnings.len() - 1))
    }

    /// The file name the mapping was loaded from ("" for [`Mapper::empty`]).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// A number unique to this mapper (caches use it to notice a reload).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Maps a StatsD name of type `ty`: glob rules first, then regex rules, each in their order.
    pub fn map(&self, name: &str, ty: MetricType) -> Option<Mapped> {
        if let Some(m) = self.glob.find(name, ty) {
            let rule = &self.rules[m.rule];
            let group = |i: usize| match i {
                0 => Some(name),
                i => m.captures.get(i - 1).copied(),
            };
            return Some(rule.expand(group));
        }
        for (index, re) in &self.regex.rules {
            let rule = &self.rules[*index];
            if rule.match_metric_type.is_some_and(|t| t != ty) {
                continue;
            }
            // `captures` fails as fast as `is_match` when there is no match (both start with the same
            // DFA scan); a separate `is_match` would scan the winner twice.
            if let Some(caps) = re.captures(name) {
                return Some(rule.expand(|g| caps.get(g).map(|m| m.as_str())));
            }
        }
        None
    }
}

impl Rule {
    fn expand<'a>(&self, group: impl Fn(usize) -> Option<&'a str> + Copy) -> Mapped {
        let mut raw_name = String::new();
        self.name.expand_into(&mut raw_name, group);
        let name = statsd_line::escape_name(&raw_name).into_owned();
        let mut labels: Vec<(String, String)> = self
            .labels
            .iter()
            .map(|(k, t)| (k.clone(), t.expand(group)))
            .collect();
        labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Mapped {
            rule: self.index,
            name,
            labels,
        }
    }
}
