//! The compiled mapping: rules, the matchers that find the winning rule, and template expansion.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use regex::Regex;
use statsd_spec::Spec;

use crate::glob::GlobIndex;
use crate::simple_regex::{SimpleRegex, Spans};
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
    /// Label templates, sorted by name (read from a map ordered by key). Names are shared with every
    /// [`Mapped`] result (no copy per mapped name).
    pub(crate) labels: Vec<(Arc<str>, Template)>,
}

/// The result of mapping a StatsD name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// Index of the rule that matched.
    pub rule: usize,
    /// The Prometheus name: the expanded template, escaped (empty if the template expanded to nothing,
    /// which the caller counts as `empty_metric_name`).
    pub name: String,
    /// The rule's labels (name, expanded value), sorted by name.
    pub labels: Vec<(Arc<str>, String)>,
}

/// Regex rules, tried in file order after the globs, the first hit wins. A rule of the simple shape
/// mapping files are made of (literals and greedy repetitions, see [`SimpleRegex`]) is matched by
/// that fast path; others by the regex crate's `captures`.
///
/// Measured (community Mastodon mapping, see BENCHMARKS.md): `captures` in turn cost 1.6 µs a name,
/// mostly the winner's capture extraction (a reverse scan and the bounded backtracker on `(.+)`
/// groups); the fast path, which rejects most rules by a missing literal before any backtracking,
/// 0.32 µs. A `RegexSet` finding every candidate rule in one pass cost more than it saved, before the
/// fast path and after it (0.51 µs with it); so did an `is_match` pre-check and ASCII-only twins.
#[derive(Debug, Default)]
pub(crate) struct RegexIndex {
    /// (rule index, compiled regex, its simple form if it has one), in file order.
    pub(crate) rules: Vec<(usize, Regex, Option<SimpleRegex>)>,
}

impl RegexIndex {
    /// Adds rule `index`'s regex.
    pub(crate) fn push(&mut self, index: usize, re: Regex) {
        let simple = SimpleRegex::new(re.as_str());
        self.rules.push((index, re, simple));
    }
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
        let mut seen = std::collections::HashMap::new();
        for rule in &mut rules {
            rule.spec.generation = generation;
            let key = rule.identity();
            let occurrence = seen.entry(key).or_insert(0u64);
            rule.spec.origin = origin(key, *occurrence);
            *occurrence += 1;
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
        self.map_with(name, ty, true)
    }

    /// [`Mapper::map`] with every regex rule matched by the regex crate (no fast path): the reference
    /// the fast path is fuzzed against.
    #[doc(hidden)]
    pub fn map_by_regex_crate(&self, name: &str, ty: MetricType) -> Option<Mapped> {
        self.map_with(name, ty, false)
    }

    fn map_with(&self, name: &str, ty: MetricType, fast: bool) -> Option<Mapped> {
        if let Some(m) = self.glob.find(name, ty) {
            let rule = &self.rules[m.rule];
            let group = |i: usize| match i {
                0 => Some(name),
                i => m.captures.get(i - 1).copied(),
            };
            return Some(rule.expand(group));
        }
        let mut spans = Spans::new();
        for (index, re, simple) in &self.regex.rules {
            let rule = &self.rules[*index];
            if rule.match_metric_type.is_some_and(|t| t != ty) {
                continue;
            }
            match simple
                .as_ref()
                .filter(|_| fast)
                .map(|s| s.captures(name, re.captures_len() - 1, &mut spans))
            {
                Some(None) => continue,
                Some(Some(Ok(()))) => {
                    return Some(
                        rule.expand(|g| spans.get(g).copied().flatten().map(|(a, b)| &name[a..b])),
                    );
                }
                // Not simple, or the name is too long for the fast path.
                None | Some(Some(Err(()))) => {
                    // `captures` fails as fast as `is_match` when there is no match (both start
                    // with the same DFA scan); a separate `is_match` would scan the winner twice.
                    if let Some(caps) = re.captures(name) {
                        return Some(rule.expand(|g| caps.get(g).map(|m| m.as_str())));
                    }
                }
            }
        }
        None
    }
}

/// A rule's [`Spec::origin`]: its identity hashed with how many identical rules precede it; never 0.
fn origin(identity: u64, occurrence: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (identity, occurrence).hash(&mut h);
    h.finish() | 1
}

impl Rule {
    /// The name template as written.
    pub fn name_template(&self) -> &str {
        self.name.source()
    }

    /// A hash of what the rule matches and what it makes of a match (match, types, action, name and
    /// label templates), the same in every load of the same text: not its place in the file (a reload
    /// that adds a rule above keeps the others' identities), nor its help, observer, TTL or scale (an
    /// edit of those keeps the rule's counts on the status page).
    fn identity(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        self.pattern.hash(&mut h);
        format!(
            "{:?}{:?}{:?}",
            self.match_type, self.match_metric_type, self.action
        )
        .hash(&mut h);
        self.name.source().hash(&mut h);
        for (k, v) in &self.labels {
            k.hash(&mut h);
            v.source().hash(&mut h);
        }
        h.finish()
    }

    fn expand<'a>(&self, group: impl Fn(usize) -> Option<&'a str> + Copy) -> Mapped {
        let mut raw_name = String::with_capacity(64);
        self.name.expand_into(&mut raw_name, group);
        // Most names need no escaping: keep the expanded text then, rather than copy it.
        let escaped = match statsd_line::escape_name(&raw_name) {
            std::borrow::Cow::Owned(escaped) => Some(escaped),
            std::borrow::Cow::Borrowed(_) => None,
        };
        let name = escaped.unwrap_or(raw_name);
        // Sorted by name already: the rule's labels come from a map ordered by key.
        let labels: Vec<(Arc<str>, String)> = self
            .labels
            .iter()
            .map(|(k, t)| (Arc::clone(k), t.expand(group)))
            .collect();
        debug_assert!(labels.is_sorted_by(|a, b| a.0 <= b.0));
        Mapped {
            rule: self.index,
            name,
            labels,
        }
    }
}
