//! Glob rules: a trie over dot-separated segments.
//!
//! A glob is literal segments and `*` segments; `*` matches exactly one segment, possibly empty, and a
//! name matches only a glob with as many segments. Each trie node has literal children (hashed), one
//! wildcard child, and the rules that end there (with their `match_metric_type`).
//!
//! Which rule wins when several match:
//! - by default the first in file order: the search explores literal and wildcard branches, skipping
//!   any subtree whose best (lowest) rule index cannot beat the best match found so far;
//! - with `glob_disable_ordering`, the most specific: a depth-first search that prefers the literal
//!   branch at every segment and backtracks to `*` only when the literal branch fails.
//!
//! Every rule is reachable: statsd_exporter's FSM loses a rule that is a strict prefix of an earlier
//! one (`a.b` after `a.b.c`); here it matches.

use std::collections::HashMap;

use smallvec::SmallVec;

use crate::MetricType;

/// Rule index and the metric type it is restricted to.
#[derive(Debug, Clone, Copy)]
struct Final {
    rule: u32,
    only: Option<MetricType>,
}

#[derive(Debug, Default)]
struct Node {
    literal: HashMap<Box<str>, u32, foldhash::fast::FixedState>,
    wildcard: Option<u32>,
    finals: Vec<Final>,
    /// Lowest rule index ending anywhere in this subtree (for pruning).
    best_below: u32,
}

/// A match: the winning rule and the text of each `*`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobMatch<'n> {
    /// Index of the rule in the mapping file.
    pub rule: usize,
    /// What each `*` matched.
    pub captures: Vec<&'n str>,
}

/// All glob rules of a mapping file.
#[derive(Debug)]
pub struct GlobIndex {
    nodes: Vec<Node>,
    ordered: bool,
    rules: usize,
}

/// Is `segment` a valid literal glob segment? statsd_exporter's rule (since its PR #365, in 0.30):
/// letters, digits, `_` and `-`, where the first segment starts with a letter or `_` and later
/// segments start with a letter, digit or `_` (never `-`). Dashes are free after the first byte
/// (`a--b`, `port-`).
fn valid_literal(segment: &str, first: bool) -> bool {
    let b = segment.as_bytes();
    let Some((&lead, rest)) = b.split_first() else {
        return false;
    };
    let lead_ok = lead.is_ascii_alphabetic() || lead == b'_' || (!first && lead.is_ascii_digit());
    lead_ok
        && rest
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// Checks a glob pattern, returning the reason it is invalid.
pub fn validate(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("empty glob".into());
    }
    for (i, segment) in pattern.split('.').enumerate() {
        if segment == "*" {
            continue;
        }
        if segment.contains('*') {
            return Err(format!(
                "segment {} ({segment:?}): `*` must be a whole segment (a glob cannot match part of a segment; use a regex rule)",
                i + 1
            ));
        }
        if !valid_literal(segment, i == 0) {
            let lead = if i == 0 {
                "starting with a letter or `_`"
            } else {
                "starting with a letter, digit or `_`"
            };
            return Err(format!(
                "segment {} ({segment:?}) is not `*` or a name of letters, digits, `_` and `-` ({lead})",
                i + 1
            ));
        }
    }
    Ok(())
}

impl GlobIndex {
    /// First match in file order (else the most specific: `glob_disable_ordering`).
    pub(crate) fn ordered(&self) -> bool {
        self.ordered
    }

    /// An empty index; `ordered` is the inverse of `glob_disable_ordering`.
    pub fn new(ordered: bool) -> Self {
        Self {
            nodes: vec![Node {
                best_below: u32::MAX,
                ..Node::default()
            }],
            ordered,
            rules: 0,
        }
    }

    /// Number of glob rules.
    pub fn len(&self) -> usize {
        self.rules
    }

    /// True when there are no glob rules.
    pub fn is_empty(&self) -> bool {
        self.rules == 0
    }

    /// Adds rule `rule` (its index in the file; rules are added in file order) for a validated pattern.
    /// Returns the number of `*` segments.
    pub fn add(&mut self, pattern: &str, rule: usize, only: Option<MetricType>) -> usize {
        let rule = u32::try_from(rule).unwrap_or(u32::MAX);
        let mut node = 0usize;
        let mut wildcards = 0;
        self.nodes[0].best_below = self.nodes[0].best_below.min(rule);
        for segment in pattern.split('.') {
            let next = if segment == "*" {
                wildcards += 1;
                match self.nodes[node].wildcard {
                    Some(n) => n as usize,
                    None => {
                        let n = self.push_node();
                        self.nodes[node].wildcard = Some(n as u32);
                        n
                    }
                }
            } else {
                match self.nodes[node].literal.get(segment) {
                    Some(&n) => n as usize,
                    None => {
                        let n = self.push_node();
                        self.nodes[node].literal.insert(segment.into(), n as u32);
                        n
                    }
                }
            };
            node = next;
            self.nodes[node].best_below = self.nodes[node].best_below.min(rule);
        }
        self.nodes[node].finals.push(Final { rule, only });
        self.rules += 1;
        wildcards
    }

    fn push_node(&mut self) -> usize {
        self.nodes.push(Node {
            best_below: u32::MAX,
            ..Node::default()
        });
        self.nodes.len() - 1
    }

    /// The winning rule for `name` (a StatsD name) of type `ty`, with its captures.
    pub fn find<'n>(&self, name: &'n str, ty: MetricType) -> Option<GlobMatch<'n>> {
        if self.rules == 0 {
            return None;
        }
        // Up to 32 segments inline (Mastodon names have 6–12), so matching allocates nothing.
        let segments: SmallVec<[&'n str; 32]> = name.split('.').collect();
        let mut search = Search {
            index: self,
            segments: &segments,
            ty,
            captures: Vec::with_capacity(8),
            best: None,
        };
        search.walk(0, 0);
        search.best.map(|(rule, captures)| GlobMatch {
            rule: rule as usize,
            captures,
        })
    }
}

struct Search<'i, 's, 'n> {
    index: &'i GlobIndex,
    segments: &'s [&'n str],
    ty: MetricType,
    captures: Vec<&'n str>,
    best: Option<(u32, Vec<&'n str>)>,
}

impl<'n> Search<'_, '_, 'n> {
    fn best_rule(&self) -> u32 {
        self.best.as_ref().map_or(u32::MAX, |b| b.0)
    }

    /// Returns true when the search is over (a match was found and ordering is off).
    fn walk(&mut self, node: usize, depth: usize) -> bool {
        let n = &self.index.nodes[node];
        if self.index.ordered && n.best_below >= self.best_rule() {
            return false;
        }
        if depth == self.segments.len() {
            let hit = n
                .finals
                .iter()
                .filter(|f| f.only.is_none_or(|t| t == self.ty))
                .map(|f| f.rule)
                .min();
            if let Some(rule) = hit
                && rule < self.best_rule()
            {
                self.best = Some((rule, self.captures.clone()));
                return !self.index.ordered;
            }
            return false;
        }
        let segment = self.segments[depth];
        if let Some(&child) = n.literal.get(segment)
            && self.walk(child as usize, depth + 1)
        {
            return true;
        }
        if let Some(child) = n.wildcard {
            self.captures.push(segment);
            let done = self.walk(child as usize, depth + 1);
            self.captures.pop();
            if done {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(patterns: &[(&str, Option<MetricType>)], ordered: bool) -> GlobIndex {
        let mut g = GlobIndex::new(ordered);
        for (i, (p, only)) in patterns.iter().enumerate() {
            validate(p).expect("valid test glob");
            g.add(p, i, *only);
        }
        g
    }

    fn find(g: &GlobIndex, name: &str) -> Option<(usize, Vec<String>)> {
        g.find(name, MetricType::Counter)
            .map(|m| (m.rule, m.captures.iter().map(|c| c.to_string()).collect()))
    }

    fn caps(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn first_rule_in_file_order_wins() {
        let g = index(&[("a.*.c", None), ("a.b.c", None)], true);
        assert_eq!(find(&g, "a.b.c"), Some((0, caps(&["b"]))));
    }

    #[test]
    fn most_specific_wins_without_ordering() {
        let g = index(&[("a.*.c", None), ("a.b.c", None)], false);
        assert_eq!(find(&g, "a.b.c"), Some((1, vec![])));
        assert_eq!(find(&g, "a.x.c"), Some((0, caps(&["x"]))));
    }

    #[test]
    fn segment_counts_must_agree() {
        let g = index(&[("a.*", None)], true);
        assert_eq!(find(&g, "a.b.c"), None);
        assert_eq!(find(&g, "a"), None);
        assert_eq!(find(&g, "a.b"), Some((0, caps(&["b"]))));
    }

    #[test]
    fn wildcard_matches_an_empty_segment() {
        let g = index(&[("a.*.c", None)], true);
        assert_eq!(find(&g, "a..c"), Some((0, caps(&[""]))));
    }

    #[test]
    fn captures_come_from_the_winning_rule_after_backtracking() {
        // The literal branch `a.b.*.d` is tried first and fails at `x`; the winner is `a.*.x.*`.
        let g = index(&[("a.b.*.d", None), ("a.*.x.*", None)], true);
        assert_eq!(find(&g, "a.b.x.e"), Some((1, caps(&["b", "e"]))));
        let g = index(&[("a.b.*.d", None), ("a.*.x.*", None)], false);
        assert_eq!(find(&g, "a.b.x.e"), Some((1, caps(&["b", "e"]))));
    }

    #[test]
    fn prefix_of_an_earlier_rule_still_matches() {
        let g = index(&[("a.b.c", None), ("a.b", None)], true);
        assert_eq!(find(&g, "a.b"), Some((1, vec![])));
        assert_eq!(find(&g, "a.b.c"), Some((0, vec![])));
    }

    #[test]
    fn metric_type_restriction_splits_one_name() {
        let g = index(
            &[
                ("a.b", Some(MetricType::Observer)),
                ("a.b", Some(MetricType::Counter)),
            ],
            true,
        );
        assert_eq!(g.find("a.b", MetricType::Counter).map(|m| m.rule), Some(1));
        assert_eq!(g.find("a.b", MetricType::Observer).map(|m| m.rule), Some(0));
        assert_eq!(g.find("a.b", MetricType::Gauge).map(|m| m.rule), None);
    }

    #[test]
    fn ordering_prunes_but_finds_the_earliest_rule() {
        // Later literal rule and earlier wildcard rule: the earlier one wins, found via the `*` branch.
        let g = index(&[("*.b.*", None), ("a.b.c", None), ("a.*.c", None)], true);
        assert_eq!(find(&g, "a.b.c"), Some((0, caps(&["a", "c"]))));
    }

    #[test]
    fn many_segments_spill_without_loss() {
        let pattern = vec!["*"; 40].join(".");
        let name: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
        let g = index(&[(&pattern, None)], true);
        let (rule, captures) = find(&g, &name.join(".")).expect("matches");
        assert_eq!(rule, 0);
        assert_eq!(captures.len(), 40);
        assert_eq!(captures[39], "s39");
    }

    #[test]
    fn glob_validation() {
        // statsd_exporter 0.30's boundaries: only the first segment must start with a letter or `_`;
        // later segments may start with a digit; dashes are free except as a segment's first byte.
        for good in [
            "a.*.b-c",
            "*",
            "_x.y9",
            "test.99.myapp.*",
            "test.99test.myapp.*",
            "http.*.200",
            "foo--bar.*",
            "a.b-",
            "a.b--c",
            "kafka.server.brokerPort.9092.1MinuteRate.gauge",
            "*.9",
            "_.0",
        ] {
            assert!(validate(good).is_ok(), "{good:?} should be accepted");
        }
        for bad in [
            "", "a..b", "a.b*", "9a.b", "-a.b", "a.-b", "a.(x)", "a.b.", ".a", "a.b c", "a.é",
        ] {
            assert!(validate(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
