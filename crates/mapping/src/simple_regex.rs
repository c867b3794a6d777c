//! A fast path for the regex rules mapping files are made of: a sequence of literals, unbounded
//! repetitions of one character class (greedy or lazy), optional literals and alternations of
//! literals, some captured (`^(.+?)\.web\.(.+)\.([^.]+)\.([^.]*)\.status\.([^.]*)$`,
//! `\.\.?([A-Za-z0-9_]+)\.(success|failure)`), optionally anchored with `^` and `$`.
//!
//! The regex crate answers such a rule's `captures` with its general machinery: a forward and a
//! reverse DFA scan to find the match, then a bounded backtracker over the match for the groups —
//! about 1.5 µs a name on the Mastodon mappings. This matcher first rejects a name that lacks one of
//! the pattern's literals (most rules of a file, for most names), then walks the search directly: the
//! leftmost start where the pattern matches (only where its leading literal occurs), each repetition
//! trying its ends in priority order (longest first, or shortest first when lazy; where a literal
//! follows, only that literal's occurrences), exactly the regex crate's leftmost-first semantics
//! (property-tested against it, on random patterns and on both Mastodon mappings). Failed
//! (item, position) pairs are remembered, so the search is linear in `items × name length` whatever the
//! input; names too long for that memory (see [`MEMO_BITS`]) go to the regex crate instead.
//!
//! The pattern is read with `regex-syntax` (the regex crate's own parser), so escapes, classes and
//! flags mean exactly what they mean to the regex that is compiled beside it. A pattern with anything
//! else (nested groups, other bounded repetitions, other look-arounds) is not simple, and is matched
//! by the regex crate only.

use regex_syntax::hir::{Class, Hir, HirKind, Look};
use smallvec::SmallVec;

/// Bits of failure memory on the stack (`(items + 1) × (name length + 1)` must fit).
const MEMO_BITS: usize = 64 * 64;

#[derive(Debug, Clone)]
enum Item {
    Literal(Box<[u8]>),
    Repeat {
        /// Capture group index (the regex crate's numbering), if captured.
        group: Option<usize>,
        class: CharClass,
        min: usize,
        /// Longest first (else shortest first: `+?`, `*?`).
        greedy: bool,
        /// Searchers for the literal that follows, if one does: the repetition's candidate ends are
        /// that literal's occurrences (from the right when greedy, from the left when lazy).
        next: Option<Box<Finders>>,
    },
    /// `lit?`: the literal, or nothing (in that order).
    Optional(Box<[u8]>),
    /// `(a|b|…)`: one of these literals, tried in order.
    OneOf {
        /// Capture group index, if captured.
        group: Option<usize>,
        literals: Box<[Box<[u8]>]>,
    },
    /// `$`: the end of the name.
    End,
}

#[derive(Debug, Clone)]
struct Finders {
    forward: memchr::memmem::Finder<'static>,
    backward: memchr::memmem::FinderRev<'static>,
}

#[derive(Debug, Clone)]
enum CharClass {
    /// `.`: every character but `\n`.
    AnyButNewline,
    /// Sorted, non-overlapping inclusive ranges.
    Ranges(Box<[(char, char)]>),
}

impl CharClass {
    #[inline]
    fn contains(&self, c: char) -> bool {
        match self {
            Self::AnyButNewline => c != '\n',
            Self::Ranges(ranges) => ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi),
        }
    }
}

/// A regex of the simple shape (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct SimpleRegex {
    items: Box<[Item]>,
    /// `^`: only a match at the start counts.
    anchored: bool,
    /// The searcher for the leading literal, if the pattern starts with one.
    leading: Option<memchr::memmem::Finder<'static>>,
    /// Searchers for the other literals, longest first: a name without one of them cannot match,
    /// which rejects most rules before any backtracking.
    required: Box<[memchr::memmem::Finder<'static>]>,
}

/// Capture spans, indexed by group number (0: the whole match).
pub(crate) type Spans = SmallVec<[Option<(usize, usize)>; 8]>;

impl SimpleRegex {
    /// The simple form of `pattern`, if it has one.
    pub(crate) fn new(pattern: &str) -> Option<Self> {
        let hir = regex_syntax::parse(pattern).ok()?;
        let parts: &[Hir] = match hir.kind() {
            HirKind::Concat(parts) => parts,
            _ => std::slice::from_ref(&hir),
        };
        let mut items = Vec::new();
        let mut anchored = false;
        for (i, part) in parts.iter().enumerate() {
            match part.kind() {
                HirKind::Look(Look::Start) if i == 0 => anchored = true,
                HirKind::Look(Look::End) if i == parts.len() - 1 => items.push(Item::End),
                HirKind::Literal(lit) => items.push(Item::Literal(lit.0.clone())),
                HirKind::Repetition(_) => items.push(repeat(part, None)?),
                HirKind::Alternation(_) => items.push(one_of(part, None)?),
                HirKind::Capture(cap) => {
                    let group = Some(usize::try_from(cap.index).ok()?);
                    items.push(match cap.sub.kind() {
                        HirKind::Alternation(_) => one_of(&cap.sub, group)?,
                        _ => repeat(&cap.sub, group)?,
                    })
                }
                _ => return None,
            }
        }
        for i in 1..items.len() {
            let following = match &items[i] {
                Item::Literal(lit) => Some(Box::new(Finders {
                    forward: memchr::memmem::Finder::new(&**lit).into_owned(),
                    backward: memchr::memmem::FinderRev::new(&**lit).into_owned(),
                })),
                _ => None,
            };
            if let Item::Repeat { next, .. } = &mut items[i - 1] {
                *next = following;
            }
        }
        let leading = match items.first() {
            Some(Item::Literal(lit)) => Some(memchr::memmem::Finder::new(&**lit).into_owned()),
            _ => None,
        };
        let mut others: Vec<&[u8]> = items
            .iter()
            .skip(usize::from(leading.is_some()))
            .filter_map(|item| match item {
                Item::Literal(lit) => Some(&**lit),
                _ => None,
            })
            .collect();
        others.sort_by_key(|lit| std::cmp::Reverse(lit.len()));
        let required = others
            .into_iter()
            .map(|lit| memchr::memmem::Finder::new(lit).into_owned())
            .collect();
        Some(Self {
            items: items.into_boxed_slice(),
            anchored,
            leading,
            required,
        })
    }

    /// The leftmost-first match in `hay`, its group spans written to `spans` (group 0: the whole
    /// match; `groups` groups after it): `None` if there is none, `Some(Err(()))` if `hay` is too long
    /// for this matcher (ask the regex crate).
    pub(crate) fn captures(
        &self,
        hay: &str,
        groups: usize,
        spans: &mut Spans,
    ) -> Option<Result<(), ()>> {
        let states = (self.items.len() + 1) * (hay.len() + 1);
        if states > MEMO_BITS {
            return Some(Err(()));
        }
        if self
            .required
            .iter()
            .any(|finder| finder.find(hay.as_bytes()).is_none())
        {
            return None;
        }
        spans.clear();
        spans.resize(groups + 1, None);
        let mut search = Search {
            items: &self.items,
            hay,
            failed: None,
            spans,
        };
        let starts: &mut dyn Iterator<Item = usize> = match (&self.leading, self.anchored) {
            (_, true) => &mut std::iter::once(0),
            // Every occurrence of the leading literal, overlapping ones included (a literal begins
            // with a UTF-8 lead byte, so each is at a character boundary).
            (Some(finder), false) => {
                let mut from = 0;
                &mut std::iter::from_fn(move || {
                    let at = from + finder.find(hay.as_bytes().get(from..)?)?;
                    from = at + 1;
                    Some(at)
                })
            }
            _ => &mut hay.char_indices().map(|(i, _)| i).chain([hay.len()]),
        };
        for start in starts {
            if let Some(end) = search.at(0, start) {
                search.spans[0] = Some((start, end));
                return Some(Ok(()));
            }
        }
        None
    }
}

/// An unbounded repetition of one character class, or `lit?`, or `None` if `hir` is anything else.
fn repeat(hir: &Hir, group: Option<usize>) -> Option<Item> {
    let HirKind::Repetition(rep) = hir.kind() else {
        return None;
    };
    if let (0, Some(1), true, None, HirKind::Literal(lit)) =
        (rep.min, rep.max, rep.greedy, group, rep.sub.kind())
    {
        return Some(Item::Optional(lit.0.clone()));
    }
    if rep.max.is_some() {
        return None;
    }
    let ranges: Vec<(char, char)> = match rep.sub.kind() {
        HirKind::Class(Class::Unicode(class)) => class
            .ranges()
            .iter()
            .map(|r| (r.start(), r.end()))
            .collect(),
        // One character repeated (`b*`).
        HirKind::Literal(lit) => {
            let s = std::str::from_utf8(&lit.0).ok()?;
            let mut chars = s.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return None;
            };
            vec![(c, c)]
        }
        _ => return None,
    };
    let class = if ranges == [('\0', '\t'), ('\u{b}', char::MAX)] {
        CharClass::AnyButNewline
    } else {
        CharClass::Ranges(ranges.into_boxed_slice())
    };
    Some(Item::Repeat {
        group,
        class,
        min: usize::try_from(rep.min).ok()?,
        greedy: rep.greedy,
        next: None,
    })
}

/// An alternation of literals, or `None` if `hir` is anything else.
fn one_of(hir: &Hir, group: Option<usize>) -> Option<Item> {
    let HirKind::Alternation(branches) = hir.kind() else {
        return None;
    };
    let literals = branches
        .iter()
        .map(|b| match b.kind() {
            HirKind::Literal(lit) => Some(lit.0.clone()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Item::OneOf {
        group,
        literals: literals.into_boxed_slice(),
    })
}

struct Search<'a> {
    items: &'a [Item],
    hay: &'a str,
    /// Bit `item × (len + 1) + pos`: matching `items[item..]` from `pos` failed before. Set up at
    /// the first failure (most rules fail before any: their leading literal is not in the name).
    failed: Option<[u64; MEMO_BITS / 64]>,
    spans: &'a mut Spans,
}

impl Search<'_> {
    /// Matches `items[i..]` at `pos`, in priority order; returns where the match ends.
    fn at(&mut self, i: usize, pos: usize) -> Option<usize> {
        let bit = i * (self.hay.len() + 1) + pos;
        if let Some(failed) = &self.failed
            && failed[bit / 64] & (1 << (bit % 64)) != 0
        {
            return None;
        }
        let found = self.step(i, pos);
        if found.is_none() {
            self.failed.get_or_insert([0; MEMO_BITS / 64])[bit / 64] |= 1 << (bit % 64);
        }
        found
    }

    fn step(&mut self, i: usize, pos: usize) -> Option<usize> {
        let Some(item) = self.items.get(i) else {
            return Some(pos);
        };
        match item {
            Item::Literal(lit) => {
                if self.hay.as_bytes()[pos..].starts_with(lit) {
                    self.at(i + 1, pos + lit.len())
                } else {
                    None
                }
            }
            Item::End => (pos == self.hay.len()).then_some(pos),
            Item::Optional(lit) => {
                if self.hay.as_bytes()[pos..].starts_with(lit)
                    && let Some(done) = self.at(i + 1, pos + lit.len())
                {
                    return Some(done);
                }
                self.at(i + 1, pos)
            }
            Item::OneOf { group, literals } => {
                for lit in literals {
                    if self.hay.as_bytes()[pos..].starts_with(lit)
                        && let Some(done) = self.at(i + 1, pos + lit.len())
                    {
                        if let Some(g) = *group {
                            self.spans[g] = Some((pos, pos + lit.len()));
                        }
                        return Some(done);
                    }
                }
                None
            }
            Item::Repeat {
                group,
                class,
                min,
                greedy,
                next,
            } => {
                let rest = &self.hay[pos..];
                // The repetition's reach: up to the first character outside its class.
                let reach = match class {
                    CharClass::AnyButNewline => memchr::memchr(b'\n', rest.as_bytes()),
                    CharClass::Ranges(_) => rest
                        .char_indices()
                        .find(|&(_, c)| !class.contains(c))
                        .map(|(at, _)| at),
                }
                .map_or(self.hay.len(), |at| pos + at);
                // Its shortest end: `min` characters on (or no match).
                let shortest = match *min {
                    0 => pos,
                    n => match rest.char_indices().nth(n - 1) {
                        Some((at, c)) if pos + at + c.len_utf8() <= reach => {
                            pos + at + c.len_utf8()
                        }
                        _ => return None,
                    },
                };
                let found = match (next, self.items.get(i + 1)) {
                    // Followed by a literal: the ends are its occurrences, the last one first.
                    (Some(finders), Some(Item::Literal(lit))) if *greedy => {
                        let bytes = self.hay.as_bytes();
                        let mut window_end = (reach + lit.len()).min(bytes.len());
                        let mut found = None;
                        while let Some(at) = finders.backward.rfind(&bytes[shortest..window_end]) {
                            let end = shortest + at;
                            if let Some(done) = self.at(i + 1, end) {
                                found = Some((end, done));
                                break;
                            }
                            // Occurrences starting before this one (overlapping ones included).
                            window_end = end + lit.len() - 1;
                        }
                        found
                    }
                    // Lazy: the first occurrence first.
                    (Some(finders), Some(Item::Literal(lit))) => {
                        let bytes = self.hay.as_bytes();
                        let window_end = (reach + lit.len()).min(bytes.len());
                        let mut from = shortest;
                        let mut found = None;
                        while let Some(at) = bytes
                            .get(from..window_end)
                            .and_then(|w| finders.forward.find(w))
                        {
                            let end = from + at;
                            if let Some(done) = self.at(i + 1, end) {
                                found = Some((end, done));
                                break;
                            }
                            from = end + 1;
                        }
                        found
                    }
                    // Before `$`: only the longest end can do.
                    (_, Some(Item::End)) => self.at(i + 1, reach).map(|done| (reach, done)),
                    // Last: the longest end, or the shortest when lazy.
                    (_, None) => {
                        let end = if *greedy { reach } else { shortest };
                        self.at(i + 1, end).map(|done| (end, done))
                    }
                    // Before anything else, lazy: every character boundary, the shortest first.
                    _ if !*greedy => {
                        let mut found = None;
                        let mut end = shortest;
                        loop {
                            if let Some(done) = self.at(i + 1, end) {
                                found = Some((end, done));
                                break;
                            }
                            if end >= reach {
                                break;
                            }
                            end += 1;
                            while !self.hay.is_char_boundary(end) {
                                end += 1;
                            }
                        }
                        found
                    }
                    // Before anything else: every character boundary, the longest first.
                    _ => {
                        let mut found = None;
                        let mut end = reach;
                        loop {
                            if let Some(done) = self.at(i + 1, end) {
                                found = Some((end, done));
                                break;
                            }
                            if end <= shortest {
                                break;
                            }
                            end -= 1;
                            while !self.hay.is_char_boundary(end) {
                                end -= 1;
                            }
                        }
                        found
                    }
                };
                let (end, done) = found?;
                if let Some(g) = *group {
                    self.spans[g] = Some((pos, end));
                }
                Some(done)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    /// Our spans, or the regex crate's, as (start, end) per group.
    fn ours(pattern: &str, hay: &str) -> Option<Vec<Option<(usize, usize)>>> {
        let re = Regex::new(pattern).unwrap();
        let simple = SimpleRegex::new(pattern).expect("simple");
        let mut spans = Spans::new();
        match simple.captures(hay, re.captures_len() - 1, &mut spans)? {
            Ok(()) => Some(spans.to_vec()),
            Err(()) => panic!("too long"),
        }
    }

    fn theirs(pattern: &str, hay: &str) -> Option<Vec<Option<(usize, usize)>>> {
        let re = Regex::new(pattern).unwrap();
        re.captures(hay).map(|c| {
            (0..re.captures_len())
                .map(|g| c.get(g).map(|m| (m.start(), m.end())))
                .collect()
        })
    }

    const PATTERNS: &[&str] = &[
        r"Mastodon\.production\.web\.(.+)\.(.+)\.(.+)\.status\.(.+)",
        r"Mastodon\.production\.sidekiq\.(.+)",
        r"^(.+?)\.web\.(.+)\.([^.]+)\.([^.]*)\.total_duration$",
        r"a\.(.+)\.b",
        r"^a(.*)b$",
        r"(.+)\.x\.(.*)",
        r"([^.]+)\.([a-z]+)",
        r"x.*y",
        r"(é+)\.(.)",
        r"^(.+?)\.a\.(.+)\.([^.]+)\.([^.]*)\.b$",
        r"^(.+?)\.x\.([a-b]+)\.\.?([a-b]+)\.(a|b|ab)$",
        r"(.*?)x(.+?)",
    ];

    #[test]
    fn which_patterns_are_simple() {
        assert!(SimpleRegex::new(r"Mastodon\.production\.web\.(.+)\.(.+)").is_some());
        assert!(SimpleRegex::new(r"^a(.*)b$").is_some());
        assert!(SimpleRegex::new(r"a|b").is_none());
        assert!(SimpleRegex::new(r"(a.+)").is_none());
        assert!(SimpleRegex::new(r"a(.+?)").is_some());
        assert!(SimpleRegex::new(r"a\.?(x|yz)").is_some());
        assert!(SimpleRegex::new(r"a(?:b\.)+").is_none());
        assert!(SimpleRegex::new(r"a(x|y.)").is_none());
        assert!(SimpleRegex::new(r"a(.{2,5})").is_none());
        assert!(SimpleRegex::new(r"\ba").is_none());
    }

    #[test]
    fn agrees_with_the_regex_crate_on_examples() {
        for hay in [
            "Mastodon.production.web.Api.V1.TimelinesController.home.json.status.200",
            "Mastodon.production.web.a.b.c.status.",
            "Mastodon.production.web.a.status.b.status.c.status.d",
            "xx.Mastodon.production.sidekiq.Foo.processing_time",
            "Mastodon.production.web.HomeController.index.html.total_duration",
            "a.b.c.b",
            "a..b",
            "ab",
            "a\nb",
            "1.x.",
            "é.x",
            "éé.x",
            "",
        ] {
            for p in PATTERNS {
                if SimpleRegex::new(p).is_none() {
                    continue;
                }
                assert_eq!(ours(p, hay), theirs(p, hay), "{p} on {hay:?}");
            }
        }
    }

    #[test]
    fn long_names_are_left_to_the_regex_crate() {
        let simple = SimpleRegex::new(r"a\.(.+)\.b").unwrap();
        let long = "a.".to_string() + &"x".repeat(MEMO_BITS) + ".b";
        assert_eq!(simple.captures(&long, 1, &mut Spans::new()), Some(Err(())));
    }

    #[test]
    fn hostile_names_stay_linear() {
        // Many separators and no match: without the failure memory this is O(n⁴).
        let simple = SimpleRegex::new(r"(.+)\.(.+)\.(.+)\.(.+)\.z").unwrap();
        let hay = "a.".repeat(150);
        assert!(
            simple
                .captures(&hay[..hay.len() - 1], 4, &mut Spans::new())
                .is_none()
        );
    }

    /// The regex rules of the shipped and the community Mastodon mappings.
    fn mastodon_patterns() -> Vec<String> {
        let mut patterns = Vec::new();
        for yaml in [
            include_str!("../../../mappings/mastodon.yaml"),
            include_str!("../../../mappings/testdata/ipng-mastodon-mapping.yaml"),
        ] {
            let doc: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
            let file_regex = doc["defaults"]["match_type"].as_str() == Some("regex");
            for rule in doc["mappings"].as_sequence().unwrap() {
                let regex = rule["match_type"]
                    .as_str()
                    .map_or(file_regex, |t| t == "regex");
                if regex {
                    patterns.push(rule["match"].as_str().unwrap().to_string());
                }
            }
        }
        patterns
    }

    #[test]
    fn the_mastodon_mappings_are_mostly_simple() {
        let patterns = mastodon_patterns();
        let simple = patterns
            .iter()
            .filter(|p| SimpleRegex::new(p).is_some())
            .count();
        assert!(patterns.len() >= 30, "{patterns:?}");
        // All but the two `(?:…){4,}` Sidekiq rules of the shipped mapping.
        assert_eq!(simple, patterns.len() - 2, "{patterns:#?}");
    }

    #[test]
    fn agrees_on_mastodon_names() {
        let names = [
            "Mastodon.production.web.Api.V1.TimelinesController.home.json.total_duration",
            "Mastodon.production.web.Api.V1.Timelines.PublicController.show.json.status.200",
            "Mastodon.production.web.HomeController.index.html.db_time",
            "Mastodon.production.web.HomeController.index..view_time",
            "Mastodon.production.db.tables.statuses.queries.select.duration",
            "Mastodon.production.cache.read_hit.duration",
            "Mastodon.production.sidekiq.queues.default.enqueued",
            "Mastodon.production.sidekiq.queues.push.latency",
            "Mastodon.production.sidekiq.processed",
            "Mastodon.production.sidekiq.LinkCrawlWorker.processing_time",
            "Mastodon.production.sidekiq.ActivityPub.DeliveryWorker.success",
            "Mastodon.production.sidekiq.ActiveJob..QueueAdapters.SidekiqAdapter.JobWrapper.processing_time",
            "Mastodon.instance7.web.A.b.c.total_duration",
            "x.web.y.total_duration",
            "Mastodon.production.sidekiq.Scheduler.Accounts.failure",
        ];
        for pattern in mastodon_patterns() {
            if SimpleRegex::new(&pattern).is_none() {
                continue;
            }
            for name in names {
                assert_eq!(
                    ours(&pattern, name),
                    theirs(&pattern, name),
                    "{pattern} on {name}"
                );
            }
        }
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn agrees_with_the_regex_crate(hay in "[ab.xé\n]{0,24}", p in 0..PATTERNS.len()) {
            let pattern = PATTERNS[p];
            if SimpleRegex::new(pattern).is_none() {
                return Ok(());
            }
            prop_assert_eq!(ours(pattern, &hay), theirs(pattern, &hay));
        }

        #[test]
        fn agrees_on_mastodon_patterns(
            segments in proptest::collection::vec(
                "(Mastodon|production|web|sidekiq|queues|status|total_duration|processing_time|success|[A-Za-z0-9_]{0,6})",
                1..9,
            ),
            p in 0..64usize,
        ) {
            let patterns = mastodon_patterns();
            let pattern = &patterns[p % patterns.len()];
            let hay = segments.join(".");
            if SimpleRegex::new(pattern).is_some() {
                prop_assert_eq!(ours(pattern, &hay), theirs(pattern, &hay), "{} on {}", pattern, hay);
            }
        }

        #[test]
        fn agrees_on_random_simple_patterns(
            parts in proptest::collection::vec(0..10usize, 1..7),
            anchored in any::<bool>(),
            hay in "[ab.]{0,16}",
        ) {
            let mut pattern = String::from(if anchored { "^" } else { "" });
            for part in parts {
                pattern.push_str(
                    ["a", r"\.", "(.+)", "(.*)", "([^.]+)", "b*", "(.+?)", r"\.?", "(a|ab|b)", ".*?"][part],
                );
            }
            prop_assert_eq!(ours(&pattern, &hay), theirs(&pattern, &hay), "{}", pattern);
        }
    }
}
