//! The StatsD line protocol, parsed without copying.
//!
//! This crate owns the grammar of one StatsD line — `name:value|type[|@rate][|#tags][|c:container][|Ttimestamp]`,
//! several samples per line, DogStatsD extended values, and the four tag dialects (DogStatsD `|#k:v`,
//! InfluxDB `name,k=v`, Librato `name#k=v`, SignalFX `name[k=v]`) — together with name escaping and the
//! exact error reason statsd_exporter gives each malformed input. It knows nothing of mapping, storage or
//! sockets, and it does not allocate on the common path (a plain or DogStatsD-tagged line with at most
//! [`INLINE_TAGS`] tags whose keys need no escaping).
//!
//! Main types: [`Parser`] (configured with [`Dialects`]) turns a line into a [`Line`], whose
//! [`Line::samples`] yields one `Result<`[`Sample`]`, `[`ParseError`]`>` per sample; [`lines`] splits a
//! packet into lines; [`escape_name`] makes Prometheus names.
//!
//! ```
//! use statsd_line::{Parser, SampleKind};
//!
//! let parser = Parser::default();
//! let line = parser.parse(b"api.request:250|ms|@0.5|#env:prod").expect("a valid line");
//! let sample = line.samples().next().expect("one sample").expect("a valid sample");
//! assert_eq!(sample.name, "api.request");
//! assert_eq!(sample.kind, SampleKind::Timer);
//! assert_eq!(sample.observation(), 0.25); // milliseconds become seconds
//! assert_eq!(sample.repeat(), 2); // sampled at 1/2: counts as two observations
//! assert_eq!(sample.tags.get("env"), Some("prod"));
//! ```
//!
//! Where this parser differs from statsd_exporter (each is a crash or a silent drop there):
//! - a SignalFX name with `]` before `[` (`foo]x[:1|c`) crashes statsd_exporter; here it is a tag error and
//!   the name is kept as sent, like any other unbalanced bracket;
//! - a sample rate outside (0, 1] (zero, negative, above 1, NaN, ±Inf) makes statsd_exporter silently
//!   drop timers or scale counters oddly; here it counts `invalid_sample_factor` and the rate is taken as
//!   1, like an unparsable rate; a tiny rate weighs at most [`MAX_SAMPLE_WEIGHT`];
//! - `NaN`/`Inf` values (which would poison a counter or a sum for good) are `malformed_value`;
//! - sampled observations are carried as one sample with a [`Sample::repeat`] weight instead of being
//!   copied `1/rate` times (a rate of `1e-9` cannot stall anything);
//! - set values (`|s`) are kept as text, since set members need not be numbers.

#![forbid(unsafe_code)]

mod escape;
mod grammar;
mod reason;
mod sample;
mod tags;

use std::borrow::Cow;
use std::ops::Range;

pub use escape::{escape_name, escape_name_into};
pub use reason::{ParseError, Reason};
pub use sample::{MAX_SAMPLE_WEIGHT, Sample, SampleKind};
pub use tags::{INLINE_TAGS, Tag, Tags};

use grammar::Component;

/// Most `|`-separated components a sample may have: value, type, rate, DogStatsD tags, container id
/// and timestamp. statsd_exporter 0.30 allows 5 (it has no `|T`); a line with more is
/// `malformed_component`.
pub const MAX_COMPONENTS: usize = 6;

/// Which tag dialects the parser recognises. statsd_exporter enables all four by default; a disabled
/// name dialect leaves its syntax in the metric name, a disabled DogStatsD dialect ignores `|#` sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialects {
    /// DogStatsD `|#key:value,…` (flag `--statsd.parse-dogstatsd-tags`).
    pub dogstatsd: bool,
    /// InfluxDB `name,key=value,…:` (flag `--statsd.parse-influxdb-tags`).
    pub influxdb: bool,
    /// Librato `name#key=value,…:` (flag `--statsd.parse-librato-tags`).
    pub librato: bool,
    /// SignalFX `name[key=value,…]rest:` (flag `--statsd.parse-signalfx-tags`).
    pub signalfx: bool,
}

impl Default for Dialects {
    fn default() -> Self {
        Self {
            dogstatsd: true,
            influxdb: true,
            librato: true,
            signalfx: true,
        }
    }
}

/// Splits a packet into lines: on `\n`, dropping one trailing `\r` per line, skipping empty lines.
///
/// ```
/// let lines: Vec<&[u8]> = statsd_line::lines(b"a:1|c\r\n\nb:2|g\n").collect();
/// assert_eq!(lines, [&b"a:1|c"[..], &b"b:2|g"[..]]);
/// ```
pub fn lines(packet: &[u8]) -> impl Iterator<Item = &[u8]> {
    packet
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

/// The StatsD line parser. Cheap to copy; holds only which dialects are on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parser {
    dialects: Dialects,
}

/// What the components after a value say: the type, the rate, and the first error, if any.
#[derive(Debug, Clone, PartialEq)]
struct Suffix<'a> {
    type_code: &'a str,
    rate: f64,
    invalid_rate: bool,
    /// Too many parts: statsd_exporter checks this before the value.
    too_many: Option<Range<usize>>,
    /// An empty or bad component: checked after the value.
    error: Option<(Reason, Range<usize>)>,
}

/// A parsed line: its name, its tag set (shared by all its samples), and the samples it carries
/// (see [`Line::samples`]). `Line::default()` is an empty line to pass to [`Parser::parse_into`].
#[derive(Debug, Clone, Default)]
pub struct Line<'a> {
    text: &'a str,
    name: Cow<'a, str>,
    tags: Tags<'a>,
    tag_errors: u32,
    /// With a shared suffix, the values before the first `|`; else the whole body.
    values: &'a str,
    /// How the body splits into samples:
    /// - `Some`: `values|suffix`, one or more `:`-separated values sharing one suffix (DogStatsD extended
    ///   values, or one DogStatsD-tagged sample), read once here;
    /// - `None`: `value|suffix:value|suffix…`, independent samples. Their suffixes cannot carry tags (a
    ///   `|#` would have made the suffix shared, a `c:` would have been split at its `:`), so every
    ///   sample of the line has exactly the name tags.
    shared: Option<Suffix<'a>>,
}

/// Splits `s` at the first `sep` (an ASCII byte), like `str::split_once` but without the generic
/// char-pattern machinery. Used on the short body parts (`12.5|ms`), where a plain loop beats both
/// `CharSearcher` and memchr's call and dispatch overhead (both showed in profiles).
#[inline]
fn split_at_byte(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == sep)?;
    // `sep` is ASCII, so `i` and `i + 1` are char boundaries.
    Some((&s[..i], &s[i + 1..]))
}

/// Finds the first `|#` (the start of a DogStatsD tag section) in `body`.
fn has_dogstatsd_tags(body: &str) -> bool {
    body.as_bytes().windows(2).any(|w| w == b"|#")
}

impl Parser {
    /// A parser recognising the given tag dialects.
    pub fn new(dialects: Dialects) -> Self {
        Self { dialects }
    }

    /// The dialects this parser recognises.
    pub fn dialects(&self) -> Dialects {
        self.dialects
    }

    /// Parses one line (no `\n`; see [`lines`]).
    ///
    /// ```text
    /// line       = name-part ":" body
    /// name-part  = name [ "[" name-tags "]" name ]          ; SignalFX
    ///            | name [ ( "," / "#" ) name-tags ]         ; InfluxDB / Librato, whichever comes first
    /// name-tags  = tag *( "," tag ) [ "," ]                  ; tag = key "=" value
    /// body       = values "|" type *( "|" component )       ; values = value *( ":" value ), only ms/h/d
    ///            | sample *( ":" sample )                   ; when no value list and no "|#"
    /// sample     = value "|" type *( "|" component )         ; 2..=8 parts in all
    /// type       = "c" / "g" / "ms" / "h" / "d" / "s"
    /// component  = "@" rate / "#" dog-tags / "c:" container-id / "T" timestamp
    /// dog-tags   = ["#"] key ":" value *( "," ["#"] key ":" value ) [ "," ]
    /// ```
    ///
    /// A line-level error (`malformed_line`, `mixed_tagging_styles`, `not_enough_parts_after_colon`,
    /// `invalid_extended_aggregate_type`) refuses the whole line; sample-level errors come out of
    /// [`Line::samples`] one per bad sample, the other samples of the line still counting.
    pub fn parse<'a>(&self, line: &'a [u8]) -> Result<Line<'a>, ParseError> {
        let mut parsed = Line::default();
        self.parse_into(line, &mut parsed)?;
        Ok(parsed)
    }

    /// [`Parser::parse`] into a caller's [`Line`], which is overwritten. This is the receive loops'
    /// path: the tag list is filled where it lies instead of being moved out in the result (a ~330-byte
    /// copy per line that showed in profiles).
    pub fn parse_into<'a>(&self, line: &'a [u8], out: &mut Line<'a>) -> Result<(), ParseError> {
        let whole = 0..line.len();
        let malformed = |span| ParseError {
            reason: Reason::MalformedLine,
            span,
        };
        out.tags.clear();
        out.tag_errors = 0;
        out.shared = None;
        // SIMD validation (simdutf8) on the hot path; std's, for the error's position, on a bad line.
        let text = match simdutf8::basic::from_utf8(line) {
            Ok(text) => text,
            Err(_) => {
                std::str::from_utf8(line).map_err(|e| malformed(e.valid_up_to()..line.len()))?
            }
        };
        out.text = text;
        let (raw_name, body) = grammar::name_and_body(text).ok_or(malformed(whole.clone()))?;
        if raw_name.is_empty() {
            return Err(malformed(whole));
        }
        let (name, tag_errors) = self.name_and_tags(raw_name, &mut out.tags);
        out.name = name;
        out.tag_errors = tag_errors;

        let uses_dogstatsd_tags = has_dogstatsd_tags(body);
        if uses_dogstatsd_tags && !out.tags.is_empty() {
            return Err(ParseError {
                reason: Reason::MixedTaggingStyles,
                span: whole,
            });
        }
        let Some((values, suffix)) = split_at_byte(body, b'|') else {
            return Err(ParseError {
                reason: Reason::NotEnoughPartsAfterColon,
                span: span_of(text, body),
            });
        };
        let extended = values.bytes().any(|b| b == b':');
        if extended {
            let type_code = split_at_byte(suffix, b'|').map_or(suffix, |(t, _)| t);
            if !matches!(type_code, "ms" | "h" | "d") {
                return Err(ParseError {
                    reason: Reason::InvalidExtendedAggregateType,
                    span: span_of(text, type_code),
                });
            }
        }
        // DogStatsD tags may hold `:`, so a tagged body is one sample and is not split on `:`.
        if extended || uses_dogstatsd_tags {
            out.values = values;
            out.shared = Some(self.suffix(text, suffix, &mut out.tags, &mut out.tag_errors));
        } else {
            out.values = body;
        }
        Ok(())
    }

    /// `name-part`: strips name tags of the enabled dialects into `tags`, returning the bare name and the
    /// number of malformed tags.
    fn name_and_tags<'a>(&self, raw: &'a str, tags: &mut Tags<'a>) -> (Cow<'a, str>, u32) {
        let bytes = raw.as_bytes();
        // Most names carry no tag syntax at all: find that out with two vectorised scans (a byte loop
        // cost ~8 instructions per name byte, measured with callgrind).
        let tag_syntax = memchr::memchr3(b'[', b']', b'#', bytes).is_some()
            || memchr::memchr(b',', bytes).is_some();
        if !tag_syntax {
            return (Cow::Borrowed(raw), 0);
        }
        if self.dialects.signalfx {
            match (memchr::memchr(b'[', bytes), memchr::memchr(b']', bytes)) {
                (Some(open), Some(close)) if open < close => {
                    let errors = tags::parse_tag_list(&raw[open + 1..close], '=', false, tags);
                    let (head, tail) = (&raw[..open], &raw[close + 1..]);
                    let name = if tail.is_empty() {
                        Cow::Borrowed(head)
                    } else if head.is_empty() {
                        Cow::Borrowed(tail)
                    } else {
                        Cow::Owned(format!("{head}{tail}"))
                    };
                    return (name, errors);
                }
                // One bracket, or `]` before `[` (which crashes statsd_exporter): not SignalFX tags.
                // The name is kept as sent and one tag error counted.
                (Some(_), _) | (_, Some(_)) => return (Cow::Borrowed(raw), 1),
                (None, None) => {}
            }
        }
        let start = match (self.dialects.librato, self.dialects.influxdb) {
            (true, true) => memchr::memchr2(b'#', b',', bytes),
            (true, false) => memchr::memchr(b'#', bytes),
            (false, true) => memchr::memchr(b',', bytes),
            (false, false) => None,
        };
        if let Some(i) = start {
            let errors = tags::parse_tag_list(&raw[i + 1..], '=', false, tags);
            return (Cow::Borrowed(&raw[..i]), errors);
        }
        (Cow::Borrowed(raw), 0)
    }

    /// The components after a value (`type|comp|…`). DogStatsD tags and a container id go into `tags`
    /// (only reachable for a shared suffix; see [`Line`]).
    fn suffix<'a>(
        &self,
        text: &'a str,
        suffix: &'a str,
        tags: &mut Tags<'a>,
        tag_errors: &mut u32,
    ) -> Suffix<'a> {
        let mut out = Suffix {
            type_code: suffix,
            rate: 1.0,
            invalid_rate: false,
            too_many: None,
            error: None,
        };
        // value + type + the components after it.
        let parts = 2 + suffix.bytes().filter(|&b| b == b'|').count();
        if parts > MAX_COMPONENTS {
            out.too_many = Some(span_of(text, suffix));
            return out;
        }
        let Some((type_code, components)) = split_at_byte(suffix, b'|') else {
            return out;
        };
        out.type_code = type_code;
        if let Some(empty) = components.split('|').find(|c| c.is_empty()) {
            out.error = Some((Reason::MalformedComponent, span_of(text, empty)));
            return out;
        }
        for part in components.split('|') {
            let fail = |reason| Some((reason, span_of(text, part)));
            match grammar::component(part) {
                // One rule for every rate outside (0, 1] — zero, negative, above one, NaN, ±Inf, or
                // not a number: the sample is kept at rate 1 and `invalid_sample_factor` is counted.
                Component::Rate(r) => match r.parse::<f64>() {
                    Ok(r) if r > 0.0 && r <= 1.0 => out.rate = r,
                    _ => {
                        out.rate = 1.0;
                        out.invalid_rate = true;
                    }
                },
                Component::Tags(list) => {
                    if self.dialects.dogstatsd {
                        *tag_errors += tags::parse_tag_list(list, ':', true, tags);
                    }
                }
                Component::Container(id) => tags.insert(Cow::Borrowed("container_id"), id),
                Component::BadContainer => out.error = fail(Reason::MalformedContainerId),
                Component::Timestamp => {}
                Component::BadTimestamp => out.error = fail(Reason::MalformedTimestamp),
                Component::Unknown => out.error = fail(Reason::InvalidSampleFactor),
            }
            if out.error.is_some() {
                break;
            }
        }
        out
    }

    /// `sample`: one value with its (parsed) suffix, in statsd_exporter's order of checks: part count,
    /// value, components, type.
    fn sample<'l, 'a>(
        line: &'l Line<'a>,
        value_text: &'a str,
        suffix: &Suffix<'a>,
    ) -> Result<Sample<'l, 'a>, ParseError> {
        let text = line.text;
        if let Some(span) = &suffix.too_many {
            return Err(ParseError {
                reason: Reason::MalformedComponent,
                span: span.clone(),
            });
        }
        let kind = SampleKind::from_code(suffix.type_code);
        let value = if kind == Some(SampleKind::Set) {
            0.0
        } else {
            match parse_value(value_text) {
                Some(v) if v.is_finite() => v,
                _ => {
                    return Err(ParseError {
                        reason: Reason::MalformedValue,
                        span: span_of(text, value_text),
                    });
                }
            }
        };
        if let Some((reason, span)) = &suffix.error {
            return Err(ParseError {
                reason: *reason,
                span: span.clone(),
            });
        }
        let Some(kind) = kind else {
            return Err(ParseError {
                reason: Reason::IllegalEvent,
                span: span_of(text, suffix.type_code),
            });
        };
        Ok(Sample {
            name: &line.name,
            kind,
            value,
            raw_value: value_text,
            relative: matches!(value_text.as_bytes().first(), Some(b'+' | b'-')),
            // Gauges ignore the rate (an invalid one is still reported).
            rate: if kind == SampleKind::Gauge {
                1.0
            } else {
                suffix.rate
            },
            invalid_rate: suffix.invalid_rate,
            tags: &line.tags,
        })
    }
}

/// The byte range of `part` within `whole`; `part` must be a subslice of `whole` (all callers pass one).
fn span_of(whole: &str, part: &str) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    let start = start.min(whole.len());
    start..(start + part.len()).min(whole.len())
}

impl<'a> Line<'a> {
    /// The StatsD name (tag syntax removed, not escaped).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tags every sample of this line carries.
    pub fn tags(&self) -> &Tags<'a> {
        &self.tags
    }

    /// Malformed tags on this line (name tags and DogStatsD tags), each skipped and to be counted.
    /// Counted once per line, even when several extended values share the bad tag section.
    pub fn tag_errors(&self) -> u32 {
        self.tag_errors
    }

    /// The whole line as text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The samples of this line, each a [`Sample`] or the [`ParseError`] that refused it.
    pub fn samples(&self) -> Samples<'_, 'a> {
        Samples {
            line: self,
            values: self.values.split(':'),
        }
    }
}

/// Iterator over the samples of a [`Line`].
#[derive(Debug, Clone)]
pub struct Samples<'l, 'a> {
    line: &'l Line<'a>,
    values: std::str::Split<'a, char>,
}

impl<'l, 'a> Iterator for Samples<'l, 'a> {
    type Item = Result<Sample<'l, 'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let piece = self.values.next()?;
        let line = self.line;
        Some(match &line.shared {
            Some(shared) => Parser::sample(line, piece, shared),
            None => match split_at_byte(piece, b'|') {
                Some((value, suffix)) => {
                    // Multi-form suffixes hold no tag section (see `Line::shared`), so the dialects
                    // do not matter here and the scratch tag list stays empty.
                    let mut none = Tags::new();
                    let mut no_errors = 0;
                    let parsed =
                        Parser::default().suffix(line.text, suffix, &mut none, &mut no_errors);
                    Parser::sample(line, value, &parsed)
                }
                None => Err(ParseError {
                    reason: Reason::MalformedComponent,
                    span: span_of(line.text, piece),
                }),
            },
        })
    }
}

/// A sample's value, as `str::parse::<f64>` reads it. The usual shapes — an optional sign, up to 15
/// digits, an optional point and up to 15 more — take Clinger's fast path: the digits as an integer
/// below 2^53 and a power of ten up to 10^22 are both exact, and IEEE division rounds their quotient
/// correctly, which is what the standard parser returns too. Anything else (exponents, `inf`, long
/// mantissas) goes to the standard parser.
#[inline]
pub fn parse_value(text: &str) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let mut mantissa: u64 = 0;
    let mut count = 0;
    let mut fraction: Option<usize> = None;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                count += 1;
                if let Some(f) = &mut fraction {
                    *f += 1;
                }
            }
            b'.' if fraction.is_none() => fraction = Some(0),
            _ => return text.parse().ok(),
        }
        if count > 15 {
            return text.parse().ok();
        }
    }
    if count == 0 {
        return text.parse().ok();
    }
    // At most 15 digits: below 10^15 < 2^53, exact.
    let value = mantissa as f64 / POW10[fraction.unwrap_or(0)];
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod value_tests {
    use super::parse_value;

    /// The fast path returns exactly what the standard parser does, bit for bit, on every shape it
    /// takes and on the shapes it hands over.
    #[test]
    fn values_parse_as_the_standard_parser_parses_them() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let alphabet = b"0123456789012345678901234567890123456789.+-e";
        for _ in 0..300_000 {
            let len = 1 + (next() % 24) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                .collect();
            let want = text.parse::<f64>().ok().map(f64::to_bits);
            assert_eq!(parse_value(&text).map(f64::to_bits), want, "{text:?}");
        }
        for text in [
            "0",
            "-0",
            "+0",
            "1",
            "42",
            "0.25",
            ".5",
            "1.",
            "-3.75",
            "999999999999999",
            "9999999999999999",
            "0.000000000000001",
            "123456789.012345",
            "4.0e-05",
            "inf",
            "NaN",
            "",
            ".",
            "+",
            "-",
            "1.2.3",
            "1,5",
            " 1",
        ] {
            let want = text.parse::<f64>().ok().map(f64::to_bits);
            assert_eq!(parse_value(text).map(f64::to_bits), want, "{text:?}");
        }
    }
}
