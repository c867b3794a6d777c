//! The token-level rules of the line grammar, one nom function per rule.
//!
//! The structural splitting (on `:` and `|`) follows statsd_exporter's split-based reading exactly and
//! lives in `lib.rs`; these rules recognise the pieces. All of them borrow from their input.

use nom::{
    IResult, Parser as _,
    bytes::complete::{tag as literal, take_till1},
    character::complete::{char, i64 as integer},
    combinator::{all_consuming, rest},
    sequence::{preceded, terminated},
};

/// `line = name ":" body` — the name runs to the first `:`, the body is everything after it.
///
/// This is the one rule on every line's path that scans the whole name, so it uses a vectorised byte
/// search instead of nom's char-by-char `take_till` (which cost ~12% of a Mastodon line's parse time).
pub(crate) fn name_and_body(line: &str) -> Option<(&str, &str)> {
    let colon = memchr::memchr(b':', line.as_bytes())?;
    // `:` is ASCII, so both sides are on char boundaries.
    Some((&line[..colon], &line[colon + 1..]))
}

/// `tag = key SEP value`, key and value both non-empty; the value runs to the end (it may hold `SEP`).
///
/// Read over bytes (`SEP` is ASCII, so the split falls on a char boundary).
pub(crate) fn tag(input: &str, separator: char) -> Option<(&str, &str)> {
    let sep = u8::try_from(separator).ok()?;
    let parsed: IResult<&[u8], &[u8]> =
        terminated(take_till1(|b| b == sep), byte_char(sep)).parse(input.as_bytes());
    match parsed {
        Ok((value, key)) if !value.is_empty() => {
            Some((&input[..key.len()], &input[key.len() + 1..]))
        }
        _ => None,
    }
}

/// Matches one ASCII byte.
fn byte_char(b: u8) -> impl Fn(&[u8]) -> IResult<&[u8], u8> {
    move |input: &[u8]| match input.first() {
        Some(&c) if c == b => Ok((&input[1..], c)),
        _ => Err(nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::Char,
        ))),
    }
}

/// One `|`-separated component after the type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Component<'a> {
    /// `@rate` (the text after `@`, not yet a number).
    Rate(&'a str),
    /// `#k:v,k2:v2` (DogStatsD tags, the text after `#`).
    Tags(&'a str),
    /// `c:id` (DogStatsD 1.2 container id, non-empty).
    Container(&'a str),
    /// `c…` that is not `c:` followed by an id.
    BadContainer,
    /// `T1656581400` (DogStatsD 1.3 timestamp, a valid i64).
    Timestamp,
    /// `T…` that is not an i64.
    BadTimestamp,
    /// Anything else (statsd_exporter calls it an invalid sample factor).
    Unknown,
}

/// `component = "@" rate | "#" tags | "c:" container-id | "T" timestamp`
pub(crate) fn component(input: &str) -> Component<'_> {
    let rate = preceded(char('@'), rest).map(Component::Rate);
    let tags = preceded(char('#'), rest).map(Component::Tags);
    let container = preceded(literal("c:"), take_till1(|_| false)).map(Component::Container);
    let timestamp = preceded(char('T'), integer).map(|_| Component::Timestamp);
    let mut known = all_consuming(nom::branch::alt((rate, tags, container, timestamp)));
    let parsed: IResult<&str, Component<'_>> = known.parse(input);
    match parsed {
        Ok((_, c)) => c,
        Err(_) => match input.as_bytes().first() {
            Some(b'c') => Component::BadContainer,
            Some(b'T') => Component::BadTimestamp,
            _ => Component::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_body_split_at_first_colon() {
        assert_eq!(name_and_body("a:1:2|ms"), Some(("a", "1:2|ms")));
        assert_eq!(name_and_body(":1|c"), Some(("", "1|c")));
        assert_eq!(name_and_body("no colon"), None);
    }

    #[test]
    fn components_are_recognised() {
        assert_eq!(component("@0.5"), Component::Rate("0.5"));
        assert_eq!(component("#a:b"), Component::Tags("a:b"));
        assert_eq!(component("c:abc"), Component::Container("abc"));
        assert_eq!(component("c:"), Component::BadContainer);
        assert_eq!(component("cx"), Component::BadContainer);
        assert_eq!(component("T1656581400"), Component::Timestamp);
        assert_eq!(component("T-5"), Component::Timestamp);
        assert_eq!(component("T12a"), Component::BadTimestamp);
        assert_eq!(component("T"), Component::BadTimestamp);
        assert_eq!(component("T99999999999999999999"), Component::BadTimestamp);
        assert_eq!(component("x"), Component::Unknown);
    }
}
