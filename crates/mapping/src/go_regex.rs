//! Go's regex syntax (RE2, `regexp/syntax`) written for the `regex` crate.
//!
//! Both are RE2's syntax, and a regex rule means the same in both, except where the `regex` crate gives
//! meaning to what Go reads as literal text, or lacks what Go has. A mapping file written for
//! statsd_exporter must load and match the same here, so a rule's regex is rewritten before it is
//! compiled:
//! - `\Q…\E` (Go: the text between, literally; the `regex` crate has no such quoting) becomes the
//!   escaped text (to the end of the pattern when `\E` is missing, as in Go);
//! - `\<` and `\>` (Go: the characters `<` and `>`; the `regex` crate: word boundaries) become `<`, `>`;
//! - `\b{` (Go: a word boundary, then `{`; the `regex` crate: `\b{start}` and its kin) becomes `\b\{`;
//! - in a bracket class, `[` that does not open `[:name:]` (Go: the character; the `regex` crate: a
//!   nested class) becomes `\[`, and `&&`, `--`, `~~` (Go: the characters; the `regex` crate:
//!   intersection, difference, symmetric difference) lose their meaning the same way.
//!
//! Everything else is passed through unchanged (`Cow::Borrowed` when there is nothing to rewrite).

use std::borrow::Cow;

/// `pattern` (Go's syntax) in the `regex` crate's syntax, with the same meaning.
pub(crate) fn translate(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains(['\\', '[']) {
        return Cow::Borrowed(pattern);
    }
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.char_indices().peekable();
    // Inside a bracket class: where its content starts (after `[` and a `^`).
    let mut class: Option<usize> = None;
    while let Some((i, c)) = chars.next() {
        match (c, class) {
            ('\\', _) => {
                let Some((_, next)) = chars.next() else {
                    // A trailing backslash: an error in both; left for the regex crate to report.
                    out.push('\\');
                    break;
                };
                match next {
                    'Q' if class.is_none() => {
                        let rest = &pattern[i + 2..];
                        let (quoted, after) = match rest.find("\\E") {
                            Some(end) => (&rest[..end], end + 2),
                            None => (rest, rest.len()),
                        };
                        out.push_str(&regex::escape(quoted));
                        // Skip what was quoted (and its `\E`).
                        let skip_to = i + 2 + after;
                        while chars.peek().is_some_and(|&(j, _)| j < skip_to) {
                            chars.next();
                        }
                    }
                    '<' | '>' => out.push(next),
                    'b' | 'B'
                        if class.is_none() && chars.peek().is_some_and(|&(_, n)| n == '{') =>
                    {
                        out.push('\\');
                        out.push(next);
                        out.push('\\');
                    }
                    _ => {
                        out.push('\\');
                        out.push(next);
                    }
                }
            }
            ('[', None) => {
                out.push('[');
                if let Some(&(_, '^')) = chars.peek() {
                    chars.next();
                    out.push('^');
                }
                // A `]` right at the start is a member, not the end.
                if let Some(&(_, ']')) = chars.peek() {
                    chars.next();
                    out.push_str("\\]");
                }
                class = Some(out.len());
            }
            ('[', Some(_)) => {
                let rest = &pattern[i..];
                match rest.strip_prefix("[:").and_then(|r| r.find(":]")) {
                    // `[:alpha:]` and `[:^alpha:]`: the same in both.
                    Some(end) => {
                        out.push_str(&rest[..end + 4]);
                        let skip_to = i + end + 4;
                        while chars.peek().is_some_and(|&(j, _)| j < skip_to) {
                            chars.next();
                        }
                    }
                    None => out.push_str("\\["),
                }
            }
            (']', Some(_)) => {
                out.push(']');
                class = None;
            }
            ('&' | '-' | '~', Some(_)) if chars.peek().is_some_and(|&(_, n)| n == c) => {
                // A doubled operator character: the second one escaped keeps both literal. (Go
                // reads `a--z` as a range from `a` to `-`, which fails in both.)
                chars.next();
                out.push(c);
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(go_pattern: &str, text: &str) -> bool {
        regex::Regex::new(&translate(go_pattern))
            .unwrap_or_else(|e| panic!("{go_pattern:?} -> {:?}: {e}", translate(go_pattern)))
            .is_match(text)
    }

    #[test]
    fn ordinary_patterns_are_untouched() {
        for p in [
            r"^Mastodon\.production\.web\.(.+)\.(.+)\.total_duration$",
            r"a\.b[^.]+(\d+)",
            "[[:alpha:]_]+",
            "x{2,3}",
        ] {
            assert_eq!(translate(p), p);
        }
    }

    #[test]
    fn go_quoting_and_literal_escapes_mean_what_they_mean_in_go() {
        // \Q…\E: literal text.
        assert!(matches(r"^a\Q.*+\Eb$", "a.*+b"));
        assert!(!matches(r"^a\Q.*+\Eb$", "axxb"));
        assert!(matches(r"^\Q(x)", "(x)"));
        // \< and \>: the characters.
        assert!(matches(r"^a\<b\>$", "a<b>"));
        // \b{: a boundary, then `{`.
        assert!(matches(r"x\b{", "x{"));
        // In classes: `[` is a member, doubled operators are characters.
        assert!(matches(r"^[[]x$", "[x"));
        assert!(matches(r"^[a&&b]$", "&"));
        assert!(matches(r"^[a~~b]$", "~"));
        assert!(matches(r"^[+--]$", ","));
        assert!(matches(r"^[]a]$", "]"));
        assert!(matches(r"^[^]a]$", "b"));
        assert!(!matches(r"^[^]a]$", "]"));
        assert!(matches(r"^[[:digit:]x]+$", "1x2"));
    }
}
