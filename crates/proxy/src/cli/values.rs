//! Flag values read as statsd_exporter's kingpin reads them: Go durations, octal modes, `Int` (a
//! float, truncated) and `Uint` (Go's unsigned syntax).

use std::time::Duration;

pub(super) fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{text:?} is not an octal permission mode like 755"))
}

/// kingpin's `Int`: the text is read as a float and truncated (`1e3`, `1.9`, `+5`, `0x1p4` are
/// accepted), so units written for statsd_exporter start. Counts here are unsigned: a value below
/// zero means 0 (for the cache, "off"; statsd_exporter crashes on a negative cache size).
pub(super) fn parse_count<T: TryFrom<u64>>(text: &str) -> Result<T, String> {
    let bad = || format!("{text:?} is not a number");
    let value: f64 = match text.trim().parse() {
        Ok(v) => v,
        Err(_) => parse_hex_float(text.trim()).ok_or_else(bad)?,
    };
    // `as` saturates: huge values become u64::MAX, negative ones 0, and NaN 0 (Go's ParseFloat
    // takes "NaN" too; its int conversion then gives a negative count, which we take as 0).
    T::try_from(value.trunc() as u64).map_err(|_| format!("{text:?} is too large"))
}

/// Go's hexadecimal float syntax (`0x1p4`, `-0x1.8p1`), which kingpin's Int accepts.
pub(super) fn parse_hex_float(text: &str) -> Option<f64> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let rest = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))?;
    // Go allows `_` after the base prefix and between digits (`0x_1p4`, `0x1_0p0`).
    let rest = rest.replace('_', "");
    let (mantissa, exponent) = rest.split_once(['p', 'P'])?;
    let exponent: i32 = exponent.parse().ok()?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in int.chars() {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        value += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let value = value * 2f64.powi(exponent);
    Some(if negative { -value } else { value })
}

/// kingpin's `Uint`: Go's `strconv.ParseUint(text, 0, 64)`: decimal, `0x`/`0o`/`0b` prefixes, a
/// leading `0` for octal, and `_` between digits.
pub(super) fn parse_uint<T: TryFrom<u64>>(text: &str) -> Result<T, String> {
    let bad = || format!("{text:?} is not an unsigned number");
    let (digits, radix) =
        if let Some(r) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            (r, 16)
        } else if let Some(r) = text.strip_prefix("0o").or_else(|| text.strip_prefix("0O")) {
            (r, 8)
        } else if let Some(r) = text.strip_prefix("0b").or_else(|| text.strip_prefix("0B")) {
            (r, 2)
        } else if text.len() > 1 && text.starts_with('0') {
            (&text[1..], 8)
        } else {
            (text, 10)
        };
    // Go allows `_` only between digits (and after a base prefix).
    if digits.is_empty()
        || digits.starts_with('+')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return Err(bad());
    }
    if digits.starts_with('_') && radix == 10 {
        return Err(bad());
    }
    let value = u64::from_str_radix(&digits.replace('_', ""), radix).map_err(|_| bad())?;
    T::try_from(value).map_err(|_| format!("{text:?} is too large"))
}

pub(super) fn parse_duration_or_zero(text: &str) -> Result<Duration, String> {
    statsd_mapping::duration::parse(text)
}

pub(super) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    match statsd_mapping::duration::parse(text)? {
        d if d.is_zero() => Err("the window must be longer than zero".into()),
        d => Ok(d),
    }
}
