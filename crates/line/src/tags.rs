//! Tag lists: the labels a StatsD line carries, borrowed from the line.

use std::borrow::Cow;

use smallvec::SmallVec;

use crate::escape::escape_name;

/// How many tags a line may carry before the list spills to the heap. Mastodon sends none;
/// DogStatsD clients typically send 1–6.
pub const INLINE_TAGS: usize = 8;

/// One tag: an escaped key and its value, verbatim from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag<'a> {
    /// The key, escaped like a metric name (`http.method` → `http_method`). Borrowed unless escaping changed it.
    pub key: Cow<'a, str>,
    /// The value exactly as sent (Prometheus label values may hold any UTF-8).
    pub value: &'a str,
}

/// The tags of one sample, in arrival order, keys unique (a repeated key keeps its last value,
/// like the map statsd_exporter fills).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags<'a> {
    items: SmallVec<[Tag<'a>; INLINE_TAGS]>,
}

impl<'a> Tags<'a> {
    /// An empty list (no allocation).
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces the tag `key` (already escaped).
    pub fn insert(&mut self, key: Cow<'a, str>, value: &'a str) {
        match self.items.iter_mut().find(|t| t.key == key) {
            Some(existing) => existing.value = value,
            None => self.items.push(Tag { key, value }),
        }
    }

    /// Removes every tag (keeps the allocation, if the list ever spilled).
    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are no tags.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The tags in arrival order.
    pub fn iter(&self) -> std::slice::Iter<'_, Tag<'a>> {
        self.items.iter()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.items.iter().find(|t| t.key == key).map(|t| t.value)
    }
}

impl<'s, 'a> IntoIterator for &'s Tags<'a> {
    type Item = &'s Tag<'a>;
    type IntoIter = std::slice::Iter<'s, Tag<'a>>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// Parses a comma-separated tag list into `tags`, returning how many tags were malformed.
///
/// `separator` is `=` for the name dialects (InfluxDB, Librato, SignalFX) and `:` for DogStatsD, which
/// also tolerates one leading `#` per tag. A trailing comma is ignored; an empty tag, an empty key or
/// value, or a missing separator counts as one error and skips that tag only.
pub(crate) fn parse_tag_list<'a>(
    list: &'a str,
    separator: char,
    trim_hash: bool,
    tags: &mut Tags<'a>,
) -> u32 {
    let mut errors = 0;
    let mut one = |raw: &'a str| {
        let tag = if trim_hash {
            raw.strip_prefix('#').unwrap_or(raw)
        } else {
            raw
        };
        match crate::grammar::tag(tag, separator) {
            Some((key, value)) => tags.insert(escape_name(key), value),
            None => errors += 1,
        }
    };
    // Every comma ends the tag before it (so `,` alone is one empty, bad tag); what follows the
    // last comma is a tag only when non-empty (so a trailing comma is harmless), as in statsd_exporter.
    let last = match list.rfind(',') {
        Some(i) => {
            list[..i].split(',').for_each(&mut one);
            &list[i + 1..]
        }
        None => list,
    };
    if !last.is_empty() {
        one(last);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &str, sep: char, hash: bool) -> (Vec<(String, String)>, u32) {
        let mut tags = Tags::new();
        let errors = parse_tag_list(list, sep, hash, &mut tags);
        let pairs = tags
            .iter()
            .map(|t| (t.key.to_string(), t.value.to_string()))
            .collect();
        (pairs, errors)
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dogstatsd_value_splits_at_first_colon() {
        assert_eq!(
            parse("url:http://x", ':', true),
            (pairs(&[("url", "http://x")]), 0)
        );
    }

    #[test]
    fn one_leading_hash_per_tag_is_tolerated() {
        assert_eq!(
            parse("#a:1,#b:2", ':', true),
            (pairs(&[("a", "1"), ("b", "2")]), 0)
        );
        // Only one: the second `#` is part of the key and escaped.
        assert_eq!(parse("##a:1", ':', true), (pairs(&[("_a", "1")]), 0));
    }

    #[test]
    fn trailing_comma_is_ignored_but_empty_tags_are_errors() {
        assert_eq!(parse("a:1,", ':', true), (pairs(&[("a", "1")]), 0));
        assert_eq!(parse(",a:1", ':', true), (pairs(&[("a", "1")]), 1));
        assert_eq!(parse("a:1,,b:2", ':', true).1, 1);
        assert_eq!(parse(",", ':', true), (vec![], 1));
        assert_eq!(parse("", ':', true), (vec![], 0));
    }

    #[test]
    fn empty_key_value_or_missing_separator_are_errors() {
        assert_eq!(parse(":v", ':', true), (vec![], 1));
        assert_eq!(parse("k:", ':', true), (vec![], 1));
        assert_eq!(parse("novalue", ':', true), (vec![], 1));
        assert_eq!(parse("k=v", ':', true), (vec![], 1));
        assert_eq!(parse("k=v,x", '=', false), (pairs(&[("k", "v")]), 1));
    }

    #[test]
    fn keys_are_escaped_values_verbatim() {
        assert_eq!(
            parse("http.method=GET /x,9k=a\"b", '=', false),
            (pairs(&[("http_method", "GET /x"), ("_9k", "a\"b")]), 0)
        );
    }

    #[test]
    fn repeated_key_keeps_last_value() {
        assert_eq!(parse("a:1,a:2", ':', true), (pairs(&[("a", "2")]), 0));
    }

    #[test]
    fn many_tags_spill_without_loss() {
        let list: Vec<String> = (0..20).map(|i| format!("k{i}:v{i}")).collect();
        let joined = list.join(",");
        let (got, errors) = parse(&joined, ':', true);
        assert_eq!(errors, 0);
        assert_eq!(got.len(), 20);
        assert_eq!(got[19], ("k19".to_string(), "v19".to_string()));
    }
}
