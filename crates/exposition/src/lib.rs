//! Writing the Prometheus text exposition format, version 0.0.4 (and, in [`proto`], the protobuf format
//! and the choice between them).
//!
//! This crate owns the byte-level format: family headers (`# HELP`, `# TYPE`), label-set rendering with
//! value escaping, sample lines, and number formatting identical to Go's client library (`1e+06`,
//! `+Inf`, `NaN`), so our output diffs cleanly against statsd_exporter's. It holds no state and knows
//! nothing about series storage; the store renders each series' label set once with
//! [`render_label_set`] and reuses it at every scrape through [`write_sample`].
//!
//! ```
//! use statsd_exposition::{FamilyType, render_label_set, write_header, write_sample};
//!
//! let labels = render_label_set([("env", "prod"), ("path", "/a\"b")]);
//! let mut out = String::new();
//! write_header(&mut out, "http_seconds", "Request time.", FamilyType::Summary);
//! write_sample(&mut out, "http_seconds", "_sum", &labels, None, 0.25);
//! write_sample(&mut out, "http_seconds", "", &labels, Some(("quantile", "0.5")), 1e6);
//! assert_eq!(out, "# HELP http_seconds Request time.\n# TYPE http_seconds summary\n\
//!     http_seconds_sum{env=\"prod\",path=\"/a\\\"b\"} 0.25\n\
//!     http_seconds{env=\"prod\",path=\"/a\\\"b\",quantile=\"0.5\"} 1e+06\n");
//! ```

#![forbid(unsafe_code)]

pub mod proto;

use std::fmt::Write as _;

/// The `Content-Type` of a text-format scrape response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The type of a metric family, as written on its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FamilyType {
    /// A monotonically increasing value.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Quantiles over a sliding window, plus `_sum` and `_count`.
    Summary,
    /// Cumulative `_bucket{le}` counts, plus `_sum` and `_count`.
    Histogram,
}

impl FamilyType {
    /// The keyword on the `# TYPE` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            FamilyType::Counter => "counter",
            FamilyType::Gauge => "gauge",
            FamilyType::Summary => "summary",
            FamilyType::Histogram => "histogram",
        }
    }
}

/// Writes `# HELP name help` and `# TYPE name type`, escaping the help text (`\` and newline).
pub fn write_header(out: &mut String, name: &str, help: &str, kind: FamilyType) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind.as_str());
    out.push('\n');
}

/// Appends `value` escaped for a label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub fn escape_label_value(out: &mut String, value: &str) {
    let mut start = 0;
    for (i, &b) in value.as_bytes().iter().enumerate() {
        if let Some(escape) = escape_of(b) {
            out.push_str(&value[start..i]);
            out.push_str(escape);
            start = i + 1;
        }
    }
    out.push_str(&value[start..]);
}

/// The escape of a byte of a label value, if it needs one: `\\`, `\"`, `\n`. The one definition of
/// label-value escaping: writing ([`escape_label_value`]) and matching ([`label_set_matches`]) use it.
#[inline]
fn escape_of(b: u8) -> Option<&'static str> {
    match b {
        b'\\' => Some("\\\\"),
        b'"' => Some("\\\""),
        b'\n' => Some("\\n"),
        _ => None,
    }
}

/// Does `rendered` (a label set as [`render_label_set`] writes it) hold exactly `labels`, in this
/// order? Compares without rendering: a series lookup costs no allocation.
#[inline]
pub fn label_set_matches(rendered: &str, labels: &[(&str, &str)]) -> bool {
    fn strip<'r>(rest: &'r [u8], prefix: &[u8]) -> Option<&'r [u8]> {
        rest.strip_prefix(prefix)
    }
    let mut rest = rendered.as_bytes();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            let Some(r) = strip(rest, b",") else {
                return false;
            };
            rest = r;
        }
        let Some(r) = strip(rest, k.as_bytes()).and_then(|r| strip(r, b"=\"")) else {
            return false;
        };
        rest = r;
        let mut value = v.as_bytes();
        // Runs without escapes compare directly; escaped bytes one by one.
        loop {
            let run = value
                .iter()
                .position(|&b| escape_of(b).is_some())
                .unwrap_or(value.len());
            let Some(r) = strip(rest, &value[..run]) else {
                return false;
            };
            rest = r;
            let Some((&b, tail)) = value[run..].split_first() else {
                break;
            };
            let Some(r) = escape_of(b).and_then(|e| strip(rest, e.as_bytes())) else {
                return false;
            };
            rest = r;
            value = tail;
        }
        let Some(r) = strip(rest, b"\"") else {
            return false;
        };
        rest = r;
    }
    rest.is_empty()
}

/// Renders a label set as the text between the braces: `k="v",k2="v2"` (empty for no labels).
/// Pairs are written in the order given; callers pass them sorted by name.
pub fn render_label_set<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (i, (k, v)) in labels.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(&mut out, v);
        out.push('"');
    }
    out
}

/// Writes one sample line: `name` + `suffix`, the pre-rendered `labels` plus an optional extra label
/// (`quantile`, `le`) appended last, and the value.
pub fn write_sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &str,
    extra: Option<(&str, &str)>,
    value: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some((k, v)) = extra {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    write_value(out, value);
    out.push('\n');
}

/// The pieces of a series' lines that carry an extra label (`quantile`, `le`), written once per series
/// and reused for every line: the head `name{labels,` (or `name{`), then per line a pre-rendered
/// `quantile="0.5"} ` and the value. Cuts the copies per line from eight to three; the bytes are
/// exactly [`write_sample`]'s.
#[derive(Debug, Default)]
pub struct ExtraLabelLines {
    head: String,
    /// The values the texts were rendered for, and the texts (`key="value"} `).
    key: &'static str,
    values: Vec<f64>,
    texts: Vec<String>,
}

impl ExtraLabelLines {
    /// Prepares the head for a series (`name` + `suffix`, its rendered `labels`) whose extra label is
    /// `key` with these `values` (rendered once and kept while the next series asks for the same).
    pub fn begin<I>(&mut self, name: &str, suffix: &str, labels: &str, key: &'static str, values: I)
    where
        I: IntoIterator<Item = f64>,
        I::IntoIter: Clone + ExactSizeIterator,
    {
        let values = values.into_iter();
        self.head.clear();
        self.head.push_str(name);
        self.head.push_str(suffix);
        self.head.push('{');
        if !labels.is_empty() {
            self.head.push_str(labels);
            self.head.push(',');
        }
        let same = self.key == key
            && self.values.len() == values.len()
            && self
                .values
                .iter()
                .zip(values.clone())
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            self.key = key;
            self.values.clear();
            self.values.extend(values.clone());
            self.texts.clear();
            let mut value = String::new();
            for v in values {
                value.clear();
                write_value(&mut value, v);
                let mut text = String::with_capacity(key.len() + value.len() + 5);
                text.push_str(key);
                text.push_str("=\"");
                escape_label_value(&mut text, &value);
                text.push_str("\"} ");
                self.texts.push(text);
            }
        }
    }

    /// Writes the line of the `i`-th extra label value (as passed to [`Self::begin`]) with `value`.
    pub fn write(&self, out: &mut String, i: usize, value: f64) {
        out.push_str(&self.head);
        if let Some(text) = self.texts.get(i) {
            out.push_str(text);
        }
        write_value(out, value);
        out.push('\n');
    }

    /// Writes the line for `+Inf` (a histogram's last bucket, which has no bound in the values).
    pub fn write_inf(&self, out: &mut String, value: f64) {
        out.push_str(&self.head);
        out.push_str(self.key);
        out.push_str("=\"+Inf\"} ");
        write_value(out, value);
        out.push('\n');
    }
}

/// The shortest decimal digits that round-trip `v` (finite, non-zero, positive), without leading or
/// trailing zeros, and the decimal exponent of the first: `1234.5` → (`12345`, 3). From `ryu`'s
/// rendering, which writes plain decimals (`1234.5`, `0.00012`, `100.0`) or `d.ddde±x`.
fn shortest_digits(v: f64, digits: &mut [u8; 17]) -> (usize, i32) {
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(v).as_bytes();
    let (mantissa, exp) = match text.iter().position(|&b| b == b'e') {
        Some(e) => {
            let exp = std::str::from_utf8(&text[e + 1..])
                .ok()
                .and_then(|x| x.parse::<i32>().ok())
                .unwrap_or(0);
            (&text[..e], Some(exp))
        }
        None => (text, None),
    };
    let point = mantissa
        .iter()
        .position(|&b| b == b'.')
        .unwrap_or(mantissa.len());
    let mut len = 0;
    let mut first: Option<usize> = None;
    for (i, &b) in mantissa.iter().enumerate() {
        if b == b'.' || (first.is_none() && b == b'0') {
            continue;
        }
        first.get_or_insert(i);
        if len < digits.len() {
            digits[len] = b;
            len += 1;
        }
    }
    while len > 1 && digits[len - 1] == b'0' {
        len -= 1;
    }
    let first = first.unwrap_or(0);
    let exp = match exp {
        // `d.ddde±x`: the first digit is the one before the point.
        Some(exp) => exp,
        // Plain: the first digit's position relative to the point.
        None if first < point => (point - first) as i32 - 1,
        None => point as i32 - first as i32,
    };
    (len.max(1), exp)
}

/// Appends `v` exactly as Go's `strconv.FormatFloat(v, 'g', -1, 64)` does, which is what Prometheus
/// client libraries write: the shortest digits that round-trip, in `%e` form when the decimal exponent
/// is below -4 or at least 6 (`1e+06`, `1.5e-05`), else plain (`123456`, `0.0001`); `+Inf`, `-Inf`, `NaN`.
pub fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v == 0.0 {
        // -0 too, as Go's `writeFloat` (its `f == 0` holds for both zeros).
        out.push('0');
        return;
    }
    if v < 0.0 {
        out.push('-');
    }
    let v = v.abs();
    // Fast path: an integer below 1e6 is written as plain digits by Go's %g too (the exponent form
    // starts at 1e+06). Counters and counts are mostly such integers.
    if v.fract() == 0.0 && v < 1e6 {
        let mut n = v as u32;
        let mut digits = [0u8; 7];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        // The bytes are ASCII digits.
        out.push_str(std::str::from_utf8(&digits[i..]).unwrap_or("0"));
        return;
    }
    // Between 1e-4 and 1e6 Go writes plain decimals, and so does ryu, digit for digit: its text is
    // Go's (an integer would end in `.0` there, but integers took the path above).
    if (1e-4..1e6).contains(&v) {
        let mut buffer = ryu::Buffer::new();
        let text = buffer.format_finite(v);
        if !text.contains('e') {
            out.push_str(text);
            return;
        }
    }
    let mut buf = [0u8; 17];
    let (len, exp) = shortest_digits(v, &mut buf);
    // ASCII digits.
    let digits = std::str::from_utf8(&buf[..len]).unwrap_or("0");
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if len > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        let _ = write!(out, "{e}");
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        // 0 ≤ exp < 6: the first exp+1 digits are the integer part.
        let int_len = exp as usize + 1;
        if len <= int_len {
            out.push_str(digits);
            for _ in len..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
}

/// Whether a response is gzipped, given the request's `Accept-Encoding` header values: client_golang's
/// choice (its vendored `httputil.NegotiateContentEncoding`, offers `identity` then `gzip`), so that
/// the same request gets the same encoding from us as from statsd_exporter. gzip only when it, or `*`,
/// has a q-value strictly above every match for `identity` before it; codings compare case-sensitively
/// and an element with a parameter other than `q=` ends its header value, as there. (Where every match
/// has q=0, client_golang fails the scrape with a 500; plain text is served here.)
pub fn accepts_gzip<'a>(accept_encoding: impl IntoIterator<Item = &'a str>) -> bool {
    let specs: Vec<(&str, f64)> = accept_encoding
        .into_iter()
        .flat_map(parse_accept_encoding)
        .collect();
    let mut best = ("identity", -1.0);
    for offer in ["identity", "gzip"] {
        for &(coding, q) in &specs {
            if q > best.1 && (coding == "*" || coding == offer) {
                best = (offer, q);
            }
        }
    }
    best.0 == "gzip" && best.1 != 0.0
}

/// One `Accept-Encoding` value's (coding, q) elements, as Go's `header.ParseAccept` reads them.
fn parse_accept_encoding(value: &str) -> Vec<(&str, f64)> {
    fn token_end(s: &str) -> usize {
        s.bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b)))
            .unwrap_or(s.len())
    }
    fn skip_space(s: &str) -> &str {
        s.trim_start_matches([' ', '\t'])
    }
    // Go's `expectQuality`: `0` or `1`, then optionally `.` and digits.
    fn quality(s: &str) -> Option<(f64, &str)> {
        let q = match s.as_bytes().first()? {
            b'0' => 0.0,
            b'1' => 1.0,
            _ => return None,
        };
        let Some(rest) = s[1..].strip_prefix('.') else {
            return Some((q, &s[1..]));
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (mut n, mut d) = (0f64, 1f64);
        for b in rest[..digits].bytes() {
            n = n * 10.0 + f64::from(b - b'0');
            d *= 10.0;
        }
        Some((q + n / d, &rest[digits..]))
    }
    let mut specs = Vec::new();
    let mut s = value;
    loop {
        let end = token_end(s);
        let coding = &s[..end];
        if coding.is_empty() {
            break;
        }
        s = skip_space(&s[end..]);
        let mut q = 1.0;
        if let Some(rest) = s.strip_prefix(';') {
            let Some(rest) = skip_space(rest).strip_prefix("q=") else {
                break;
            };
            let Some((parsed, rest)) = quality(rest) else {
                break;
            };
            q = parsed;
            s = rest;
        }
        specs.push((coding, q));
        s = skip_space(s);
        let Some(rest) = s.strip_prefix(',') else {
            break;
        };
        s = skip_space(rest);
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_label_set_matches_exactly_its_labels() {
        let labels = [("a", "x\"y\\z\nw"), ("b", "")];
        let text = render_label_set(labels);
        assert_eq!(text, "a=\"x\\\"y\\\\z\\nw\",b=\"\"");
        assert!(label_set_matches(&text, &labels));
        assert!(!label_set_matches(&text, &labels[..1]));
        assert!(!label_set_matches(&text, &[labels[0], ("b", "1")]));
        assert!(!label_set_matches(&text, &[("a", "x"), ("b", "")]));
        assert!(!label_set_matches(
            &text,
            &[("a", "x\"y\\z\nw\\"), ("b", "")]
        ));
        assert!(label_set_matches("", &[]));
        assert!(!label_set_matches("a=\"1\"", &[]));
    }

    fn fmt(v: f64) -> String {
        let mut s = String::new();
        write_value(&mut s, v);
        s
    }

    macro_rules! values {
        ($($name:ident: $v:expr => $want:expr,)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(fmt($v), $want);
            }
        )*};
    }

    // Expected strings are what Go's strconv.FormatFloat(v, 'g', -1, 64) prints.
    values! {
        integer: 2.0 => "2",
        largest_plain_integer: 999999.0 => "999999",
        negative_integer: -42.0 => "-42",
        integer_at_exponent_boundary: 1000000.0 => "1e+06",
        integer_above_boundary: 1234567.0 => "1.234567e+06",
        fraction: 0.25 => "0.25",
        negative: -1.5 => "-1.5",
        hundred: 100.0 => "100",
        six_digits_plain: 123456.0 => "123456",
        million_is_exponent: 1e6 => "1e+06",
        seven_digits_exponent: 1234567.0 => "1.234567e+06",
        ten_thousandth_plain: 0.0001 => "0.0001",
        hundred_thousandth_exponent: 0.00001 => "1e-05",
        tiny: 4e-8 => "4e-08",
        small_with_digits: 1.5e-5 => "1.5e-05",
        huge: 1e100 => "1e+100",
        shortest_round_trip: 0.1 + 0.2 => "0.30000000000000004",
        fraction_above_one: 12.5 => "12.5",
        large_fraction: 99999.5 => "99999.5",
        zero: 0.0 => "0",
        negative_zero: -0.0 => "0",
        nan: f64::NAN => "NaN",
        pos_inf: f64::INFINITY => "+Inf",
        neg_inf: f64::NEG_INFINITY => "-Inf",
        max: f64::MAX => "1.7976931348623157e+308",
        min_positive: 5e-324 => "5e-324",
    }

    /// Every value of a table Go printed (`tests/data/go_format_float.txt`) is written as Go writes it,
    /// ties between two shortest 17-digit renderings included (Rust's `{:e}` picks the other one).
    #[test]
    fn values_are_written_as_go_writes_them() {
        let table = include_str!("../tests/data/go_format_float.txt");
        let mut checked = 0;
        for line in table.lines().filter(|l| !l.starts_with('#')) {
            let (bits, want) = line.split_once(' ').unwrap();
            let v = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
            assert_eq!(fmt(v), want, "{v:e}");
            checked += 1;
        }
        assert_eq!(checked, 5016);
    }

    /// What is written parses back to the value, for any bit pattern.
    #[test]
    fn values_round_trip() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let v = f64::from_bits(rng);
            if v.is_finite() {
                assert_eq!(fmt(v).parse::<f64>().unwrap(), v, "{v:e}");
            }
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut s = String::new();
        escape_label_value(&mut s, "a\\b\"c\nd");
        assert_eq!(s, "a\\\\b\\\"c\\nd");
    }

    #[test]
    fn help_is_escaped() {
        let mut s = String::new();
        write_header(&mut s, "m", "line1\nback\\slash \"q\"", FamilyType::Counter);
        assert_eq!(
            s,
            "# HELP m line1\\nback\\\\slash \"q\"\n# TYPE m counter\n"
        );
    }

    #[test]
    fn sample_without_labels_has_no_braces() {
        let mut s = String::new();
        write_sample(&mut s, "foo", "", "", None, 2.0);
        write_sample(&mut s, "foo", "_count", "", Some(("quantile", "0.9")), 1.0);
        assert_eq!(s, "foo 2\nfoo_count{quantile=\"0.9\"} 1\n");
    }

    #[test]
    fn gzip_negotiation() {
        // client_golang's answers (its vendored NegotiateContentEncoding, offers identity, gzip).
        for (values, gzip) in [
            (&["gzip"][..], true),
            (&["gzip, deflate, br"], true),
            (&["deflate, gzip;q=1.0, *;q=0.5"], true),
            (&["gzip;q=0.5"], true),
            (&["*"], false),
            (&["identity, gzip"], false),
            (&["gzip;q=0.5, identity;q=1"], false),
            (&["gzip;q=0, *;q=0.5"], false),
            (&["gzip;q=0"], false),
            (&["gzip;Q=0"], false),
            (&["GZIP"], false),
            (&["identity"], false),
            (&[""], false),
            (&[], false),
            (&["identity;q=0.5", "gzip"], true),
            (&["gzip", "identity"], false),
        ] {
            assert_eq!(accepts_gzip(values.iter().copied()), gzip, "{values:?}");
        }
    }
}
