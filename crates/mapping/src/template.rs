//! Capture templates in `name` and label values, with Go's `regexp.Expand` rules.
//!
//! - `$1`, `${1}`: a numbered capture; `$0` is the whole StatsD name;
//! - `${name}`, `$name`: a named capture (regex rules);
//! - `$$`: a literal `$`;
//! - a reference takes the longest run of letters, digits and `_`, so `$1_x` names the group `1_x`
//!   (which does not exist, so it expands to ""): write `${1}_x`;
//! - a reference to a group that does not exist expands to ""; a `$` not followed by a valid reference
//!   is kept as is.
//!
//! Templates are parsed once, at load, into literal pieces and group indexes.

/// One piece of a compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// A capture group index (0 = whole match).
    Group(usize),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
    /// The source text, for messages.
    source: String,
    /// Named references that name no group (each expands to ""), for `mapping lint`.
    unresolved: Vec<String>,
}

/// A reference as written, before it is resolved against a rule's groups.
enum Reference<'t> {
    Number(usize),
    Name(&'t str),
}

/// Go's `extract`: a name or `{name}` after `$`. Returns the reference and the rest of the text.
fn extract(text: &str) -> Option<(Reference<'_>, &str)> {
    let (braced, body) = match text.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    let rest = if braced {
        body[end..].strip_prefix('}')?
    } else {
        &body[end..]
    };
    let numeric =
        name.bytes().all(|b| b.is_ascii_digit()) && (name.len() == 1 || !name.starts_with('0'));
    let reference = match name.parse::<usize>() {
        // Go caps group numbers at 1e8; beyond that (or with leading zeros) the text is a name.
        Ok(n) if numeric && n < 100_000_000 => Reference::Number(n),
        _ => Reference::Name(name),
    };
    Some((reference, rest))
}

impl Template {
    /// Compiles `source`; `group_index` resolves a named reference to a group index (None: no such
    /// group, which expands to "").
    pub fn compile(source: &str, group_index: impl Fn(&str) -> Option<usize>) -> Self {
        let mut pieces = Vec::new();
        let mut unresolved = Vec::new();
        let mut literal = String::new();
        let mut rest = source;
        while let Some(dollar) = rest.find('$') {
            literal.push_str(&rest[..dollar]);
            rest = &rest[dollar + 1..];
            if let Some(r) = rest.strip_prefix('$') {
                literal.push('$');
                rest = r;
                continue;
            }
            match extract(rest) {
                None => literal.push('$'),
                Some((reference, after)) => {
                    rest = after;
                    let group = match reference {
                        Reference::Number(n) => Some(n),
                        Reference::Name(name) => {
                            let group = group_index(name);
                            if group.is_none() {
                                unresolved.push(name.to_string());
                            }
                            group
                        }
                    };
                    if let Some(g) = group {
                        if !literal.is_empty() {
                            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                        }
                        pieces.push(Piece::Group(g));
                    }
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Self {
            pieces,
            source: source.to_string(),
            unresolved,
        }
    }

    /// Named references that name no group (`$1_x` names the group `1_x`): each expands to "".
    pub fn unresolved(&self) -> &[String] {
        &self.unresolved
    }

    /// The group numbers referenced.
    pub fn groups(&self) -> impl Iterator<Item = usize> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Group(g) => Some(*g),
            Piece::Literal(_) => None,
        })
    }

    /// The highest group number referenced, if any.
    pub fn max_group(&self) -> Option<usize> {
        self.groups().max()
    }

    /// The literal text of the template, with every reference taken as empty.
    pub fn literal_text(&self) -> String {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Literal(l) => Some(l.as_str()),
                Piece::Group(_) => None,
            })
            .collect()
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Appends the expansion to `out`; `group(i)` gives capture `i` (None or out of range: "").
    pub fn expand_into<'a>(&self, out: &mut String, group: impl Fn(usize) -> Option<&'a str>) {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(l) => out.push_str(l),
                Piece::Group(g) => out.push_str(group(*g).unwrap_or("")),
            }
        }
    }

    /// The expansion as a new string (allocated once, at its exact length).
    pub fn expand<'a>(&self, group: impl Fn(usize) -> Option<&'a str> + Copy) -> String {
        let len = self
            .pieces
            .iter()
            .map(|piece| match piece {
                Piece::Literal(l) => l.len(),
                Piece::Group(g) => group(*g).map_or(0, str::len),
            })
            .sum();
        let mut out = String::with_capacity(len);
        self.expand_into(&mut out, group);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expands `template` against groups 0..=2 of a match `whole` = "a.b.c" with captures "b", "c",
    /// and one named group `op` = index 2.
    fn expand(template: &str) -> String {
        let groups = ["a.b.c", "b", "c"];
        Template::compile(template, |name| (name == "op").then_some(2))
            .expand(|i| groups.get(i).copied())
    }

    macro_rules! templates {
        ($($name:ident: $t:expr => $want:expr,)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(expand($t), $want, "template {:?}", $t);
            }
        )*};
    }

    templates! {
        plain_text: "metric_name" => "metric_name",
        numbered: "x_$1" => "x_b",
        braced: "x_${2}_y" => "x_c_y",
        whole_match: "$0" => "a.b.c",
        named: "${op}" => "c",
        named_unbraced: "$op" => "c",
        underscore_extends_the_name: "$1_x" => "",
        braces_end_the_name: "${1}_x" => "b_x",
        out_of_range_is_empty: "a${9}b" => "ab",
        letters_after_digits_extend_the_name: "a$9b" => "a",
        unknown_name_is_empty: "a${nope}b" => "ab",
        dollar_dollar_is_literal: "cost$$" => "cost$",
        lone_dollar_is_literal: "a$" => "a$",
        dollar_before_punctuation_is_literal: "a$.b" => "a$.b",
        unclosed_brace_is_literal: "a${1" => "a${1",
        leading_zero_is_a_name: "$01" => "",
        digits_then_letters: "$2nd" => "",
    }

    #[test]
    fn literal_text_and_max_group() {
        let t = Template::compile("x_${3}_${1}", |_| None);
        assert_eq!(t.max_group(), Some(3));
        assert_eq!(t.literal_text(), "x__");
    }
}
