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
//! - a sample rate outside (0, 1] (negative, above 1, NaN) makes statsd_exporter silently drop timers or
//!   scale counters oddly; here it counts `invalid_sample_factor` and the rate is taken as 1, like an
//!   unparsable rate;
//! - `NaN`/`Inf` values (which would poison a counter or a sum for good) are `malformed_value`;
//! - sampled observations are carried as one sample with a [`Sample::repeat`] weight instead of being
//!   copied `1/rate` times (a rate of `1e-9` cannot stall anything);
//! - set values (`|s`) are kept as text, since set members need not be numbers.

#![forbid(unsafe_code)]

mod escape;
mod grammar;
mod tags;

use std::borrow::Cow;
use std::ops::Range;

pub use escape::{escape_name, escape_name_into, is_valid_metric_name};
pub use tags::{INLINE_TAGS, Tag, Tags};

use grammar::Component;

/// Most `|`-separated components a sample may have (value, type and six more), as in statsd_exporter.
pub const MAX_COMPONENTS: usize = 8;

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

/// Why a line or a sample was refused. The label value of `statsd_exporter_sample_errors_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// No `:`, an empty name, or not UTF-8.
    MalformedLine,
    /// Name tags (InfluxDB, Librato, SignalFX) together with DogStatsD `|#` tags.
    MixedTaggingStyles,
    /// Nothing `|`-separated after the first `:` (`name:1`).
    NotEnoughPartsAfterColon,
    /// Several values (`name:1:2|c`) for a type other than `ms`, `h`, `d`.
    InvalidExtendedAggregateType,
    /// A sample with fewer than 2 or more than 8 `|` parts, or an empty component.
    MalformedComponent,
    /// A value that is not a finite number.
    MalformedValue,
    /// An unparsable or out-of-range rate (the sample is kept, at rate 1), or an unknown component (dropped).
    InvalidSampleFactor,
    /// A `c` component that is not `c:` followed by an id.
    MalformedContainerId,
    /// A `T` component that is not an integer.
    MalformedTimestamp,
    /// An unknown metric type.
    IllegalEvent,
}

impl Reason {
    /// Every reason, for pre-registering counters so they show as 0 before the first error.
    pub const ALL: [Reason; 10] = [
        Reason::MalformedLine,
        Reason::MixedTaggingStyles,
        Reason::NotEnoughPartsAfterColon,
        Reason::InvalidExtendedAggregateType,
        Reason::MalformedComponent,
        Reason::MalformedValue,
        Reason::InvalidSampleFactor,
        Reason::MalformedContainerId,
        Reason::MalformedTimestamp,
        Reason::IllegalEvent,
    ];

    /// The label value statsd_exporter uses for this reason.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::MalformedLine => "malformed_line",
            Reason::MixedTaggingStyles => "mixed_tagging_styles",
            Reason::NotEnoughPartsAfterColon => "not_enough_parts_after_colon",
            Reason::InvalidExtendedAggregateType => "invalid_extended_aggregate_type",
            Reason::MalformedComponent => "malformed_component",
            Reason::MalformedValue => "malformed_value",
            Reason::InvalidSampleFactor => "invalid_sample_factor",
            Reason::MalformedContainerId => "malformed_container_id",
            Reason::MalformedTimestamp => "malformed_timestamp",
            Reason::IllegalEvent => "illegal_event",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused line or sample: the reason and where in the line the offending text is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at bytes {}..{}", span.start, span.end)]
pub struct ParseError {
    /// Why it was refused.
    pub reason: Reason,
    /// Byte range of the offending text within the line (`&line[span]` shows it).
    pub span: Range<usize>,
}

/// The metric type of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleKind {
    /// `c`: a counter increment.
    Counter,
    /// `g`: a gauge value, or a delta when the value starts with `+` or `-`.
    Gauge,
    /// `ms`: a timing in milliseconds (exported in seconds).
    Timer,
    /// `h`: a histogram observation (exported as is).
    Histogram,
    /// `d`: a distribution observation (exported as is).
    Distribution,
    /// `s`: a set member (counted distinct).
    Set,
}

impl SampleKind {
    /// True for the observer types (`ms`, `h`, `d`).
    pub const fn is_observer(self) -> bool {
        matches!(
            self,
            SampleKind::Timer | SampleKind::Histogram | SampleKind::Distribution
        )
    }

    /// The StatsD type code (`c`, `g`, `ms`, `h`, `d`, `s`).
    pub const fn code(self) -> &'static str {
        match self {
            SampleKind::Counter => "c",
            SampleKind::Gauge => "g",
            SampleKind::Timer => "ms",
            SampleKind::Histogram => "h",
            SampleKind::Distribution => "d",
            SampleKind::Set => "s",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "c" => SampleKind::Counter,
            "g" => SampleKind::Gauge,
            "ms" => SampleKind::Timer,
            "h" => SampleKind::Histogram,
            "d" => SampleKind::Distribution,
            "s" => SampleKind::Set,
            _ => return None,
        })
    }
}

/// One sample of a line, borrowing from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The StatsD name as sent, tag syntax removed, not escaped (`Mastodon.production.web.…`).
    /// Borrowed from the line, except for a SignalFX name with text after its `]`.
    pub name: Cow<'a, str>,
    /// The metric type.
    pub kind: SampleKind,
    /// The value as sent (`0.0` for sets, whose members are text).
    pub value: f64,
    /// The value's text as sent (the member, for sets).
    pub raw_value: &'a str,
    /// The value started with `+` or `-`: for gauges, a delta.
    pub relative: bool,
    /// The sample rate in (0, 1]; 1 when absent, zero or invalid.
    pub rate: f64,
    /// An `@rate` component was unparsable or outside (0, 1]: count `invalid_sample_factor` (the sample is kept).
    pub invalid_rate: bool,
    /// Name tags or DogStatsD tags (never both), plus `container_id` from a `c:` component.
    pub tags: Tags<'a>,
    /// Malformed DogStatsD tags in this sample (each skipped and to be counted).
    pub tag_errors: u32,
}

impl Sample<'_> {
    /// A counter's increment: the value divided by the sample rate.
    pub fn counter_increment(&self) -> f64 {
        self.value / self.rate
    }

    /// An observer's observation: milliseconds become seconds for `ms`; `h` and `d` are kept as sent.
    pub fn observation(&self) -> f64 {
        match self.kind {
            SampleKind::Timer => self.value / 1000.0,
            _ => self.value,
        }
    }

    /// How many observations this sample stands for: `floor(1/rate)` for observers, else 1.
    pub fn repeat(&self) -> u64 {
        if self.kind.is_observer() {
            // rate ∈ (0, 1], so this is ≥ 1; `as` saturates for absurdly small rates.
            ((1.0 / self.rate).floor() as u64).max(1)
        } else {
            1
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

/// How the body after the first `:` splits into samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `values|suffix`: one or more `:`-separated values sharing one suffix (DogStatsD extended values,
    /// or a single DogStatsD-tagged sample).
    SharedSuffix,
    /// `value|suffix:value|suffix…`: independent samples.
    Multi,
}

/// A parsed line: its name and name tags, and the samples it carries (see [`Line::samples`]).
#[derive(Debug, Clone)]
pub struct Line<'a> {
    parser: Parser,
    text: &'a str,
    name: Cow<'a, str>,
    name_tags: Tags<'a>,
    name_tag_errors: u32,
    /// `SharedSuffix`: the values (before the first `|`); `Multi`: the whole body.
    values: &'a str,
    /// `SharedSuffix`: everything after the first `|` of the body.
    suffix: &'a str,
    form: Form,
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
        let whole = 0..line.len();
        let malformed = |span| ParseError {
            reason: Reason::MalformedLine,
            span,
        };
        let text = std::str::from_utf8(line).map_err(|e| malformed(e.valid_up_to()..line.len()))?;
        let (raw_name, body) = grammar::name_and_body(text).ok_or(malformed(whole.clone()))?;
        if raw_name.is_empty() {
            return Err(malformed(whole));
        }
        let mut name_tags = Tags::new();
        let (name, name_tag_errors) = self.name_and_tags(raw_name, &mut name_tags);

        let body_span = span_of(text, body);
        let uses_dogstatsd_tags = body.contains("|#");
        if uses_dogstatsd_tags && !name_tags.is_empty() {
            return Err(ParseError {
                reason: Reason::MixedTaggingStyles,
                span: whole,
            });
        }
        let Some((values, suffix)) = body.split_once('|') else {
            return Err(ParseError {
                reason: Reason::NotEnoughPartsAfterColon,
                span: body_span,
            });
        };
        let form = if values.contains(':') {
            let type_code = suffix.split('|').next().unwrap_or_default();
            if !matches!(type_code, "ms" | "h" | "d") {
                return Err(ParseError {
                    reason: Reason::InvalidExtendedAggregateType,
                    span: span_of(text, type_code),
                });
            }
            Form::SharedSuffix
        } else if uses_dogstatsd_tags {
            // DogStatsD tags may hold `:`, so the body is one sample and is not split on `:`.
            Form::SharedSuffix
        } else {
            Form::Multi
        };
        let (values, suffix) = match form {
            Form::SharedSuffix => (values, suffix),
            Form::Multi => (body, ""),
        };
        Ok(Line {
            parser: *self,
            text,
            name,
            name_tags,
            name_tag_errors,
            values,
            suffix,
            form,
        })
    }

    /// `name-part`: strips name tags of the enabled dialects into `tags`, returning the bare name and the
    /// number of malformed tags.
    fn name_and_tags<'a>(&self, raw: &'a str, tags: &mut Tags<'a>) -> (Cow<'a, str>, u32) {
        if self.dialects.signalfx {
            match (raw.find('['), raw.find(']')) {
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
        let librato = self.dialects.librato;
        let influx = self.dialects.influxdb;
        if librato || influx {
            let start = raw.find(|c| (c == '#' && librato) || (c == ',' && influx));
            if let Some(i) = start {
                let errors = tags::parse_tag_list(&raw[i + 1..], '=', false, tags);
                return (Cow::Borrowed(&raw[..i]), errors);
            }
        }
        (Cow::Borrowed(raw), 0)
    }

    /// `sample`: checks one sample, given its value text and the `|`-separated rest (`type|comp|…`).
    fn sample<'a>(
        &self,
        line: &Line<'a>,
        value_text: &'a str,
        suffix: Option<&'a str>,
    ) -> Result<Sample<'a>, ParseError> {
        let text = line.text;
        let error = |reason, part: &str| ParseError {
            reason,
            span: span_of(text, part),
        };
        let Some(suffix) = suffix else {
            return Err(error(Reason::MalformedComponent, value_text));
        };
        // value + type + the components after it.
        let parts = 2 + suffix.bytes().filter(|&b| b == b'|').count();
        if parts > MAX_COMPONENTS {
            return Err(error(Reason::MalformedComponent, suffix));
        }
        let mut components = suffix.split('|');
        let type_code = components.next().unwrap_or_default();
        let kind = SampleKind::from_code(type_code);
        let value = if kind == Some(SampleKind::Set) {
            0.0
        } else {
            match value_text.parse::<f64>() {
                Ok(v) if v.is_finite() => v,
                _ => return Err(error(Reason::MalformedValue, value_text)),
            }
        };
        if let Some(empty) = components.clone().find(|c| c.is_empty()) {
            return Err(error(Reason::MalformedComponent, empty));
        }

        let mut tags = line.name_tags.clone();
        let mut tag_errors = 0;
        let mut rate = 1.0;
        let mut invalid_rate = false;
        for part in components {
            match grammar::component(part) {
                Component::Rate(r) => match r.parse::<f64>() {
                    Ok(0.0) => rate = 1.0,
                    Ok(r) if r > 0.0 && r <= 1.0 => rate = r,
                    _ => {
                        rate = 1.0;
                        invalid_rate = true;
                    }
                },
                Component::Tags(list) => {
                    if self.dialects.dogstatsd {
                        tag_errors += tags::parse_tag_list(list, ':', true, &mut tags);
                    }
                }
                Component::Container(id) => tags.insert(Cow::Borrowed("container_id"), id),
                Component::BadContainer => return Err(error(Reason::MalformedContainerId, part)),
                Component::Timestamp => {}
                Component::BadTimestamp => return Err(error(Reason::MalformedTimestamp, part)),
                Component::Unknown => return Err(error(Reason::InvalidSampleFactor, part)),
            }
        }
        let Some(kind) = kind else {
            return Err(error(Reason::IllegalEvent, type_code));
        };
        if kind == SampleKind::Gauge {
            // Gauges ignore the rate (an invalid one is still counted).
            rate = 1.0;
        }
        Ok(Sample {
            name: line.name.clone(),
            kind,
            value,
            raw_value: value_text,
            relative: value_text.starts_with(['+', '-']),
            rate,
            invalid_rate,
            tags,
            tag_errors,
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

    /// Malformed name tags (InfluxDB, Librato, SignalFX) on this line, each skipped and to be counted once.
    pub fn name_tag_errors(&self) -> u32 {
        self.name_tag_errors
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

impl<'a> Iterator for Samples<'_, 'a> {
    type Item = Result<Sample<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let piece = self.values.next()?;
        let parser = self.line.parser;
        Some(match self.line.form {
            Form::SharedSuffix => parser.sample(self.line, piece, Some(self.line.suffix)),
            Form::Multi => match piece.split_once('|') {
                Some((value, suffix)) => parser.sample(self.line, value, Some(suffix)),
                None => parser.sample(self.line, piece, None),
            },
        })
    }
}
