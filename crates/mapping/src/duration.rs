//! Go's duration syntax (`time.ParseDuration`): `300ms`, `1.5h`, `1h30m`, `-2s`, units `ns`, `us`/`µs`,
//! `ms`, `s`, `m`, `h`. Mapping files written for statsd_exporter use it for `ttl` and `max_age`.

use std::time::Duration;

/// A Go duration as written, sign included: Go's `time.Duration` is signed and statsd_exporter's
/// mapping loader accepts a negative `ttl` (with the effect of none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GoDuration {
    /// True for a duration below zero (`-5s`); `-0s` is zero, not negative.
    pub negative: bool,
    /// The magnitude.
    pub magnitude: Duration,
}

/// Parses a Go duration. Negative durations are refused (use [`parse_signed`] where Go takes one).
pub fn parse(text: &str) -> Result<Duration, String> {
    let d = parse_signed(text)?;
    if d.negative {
        return Err(format!("negative duration {text:?} is not allowed"));
    }
    Ok(d.magnitude)
}

/// Parses a Go duration, keeping its sign.
pub fn parse_signed(text: &str) -> Result<GoDuration, String> {
    let mut rest = text.trim();
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    } else if let Some(r) = rest.strip_prefix('-') {
        let magnitude = parse_unsigned(r, text)?;
        return Ok(GoDuration {
            negative: !magnitude.is_zero(),
            magnitude,
        });
    }
    parse_unsigned(rest, text).map(|magnitude| GoDuration {
        negative: false,
        magnitude,
    })
}

fn parse_unsigned(mut rest: &str, text: &str) -> Result<Duration, String> {
    let bad =
        || format!("invalid duration {text:?} (expected Go syntax such as 30s, 1m30s, 500ms, 1h)");
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, tail) = rest.split_at(number_len);
        if number.is_empty() || number == "." {
            return Err(bad());
        }
        let value: f64 = number.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos_per_unit = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * nanos_per_unit;
        rest = tail;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(format!("duration {text:?} is too large"));
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// Serde support for `Option<GoDuration>` fields: a Go duration string, or an integer number of
/// nanoseconds (what Go's YAML decoder does with a bare number).
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, de::Error};

    use super::GoDuration;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Nanos(i64),
    }

    /// Deserializes an optional Go duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<GoDuration>, D::Error> {
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(Raw::Nanos(n)) => Ok(Some(GoDuration {
                negative: n < 0,
                magnitude: Duration::from_nanos(n.unsigned_abs()),
            })),
            Some(Raw::Text(t)) => super::parse_signed(&t).map(Some).map_err(D::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! durations {
        ($($name:ident: $text:expr => $want:expr,)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(parse($text), $want, "{:?}", $text);
            }
        )*};
    }

    durations! {
        seconds: "30s" => Ok(Duration::from_secs(30)),
        minutes_and_seconds: "1m30s" => Ok(Duration::from_secs(90)),
        milliseconds: "500ms" => Ok(Duration::from_millis(500)),
        hours: "1h" => Ok(Duration::from_secs(3600)),
        fractional: "1.5h" => Ok(Duration::from_secs(5400)),
        micro: "10us" => Ok(Duration::from_micros(10)),
        micro_sign: "10µs" => Ok(Duration::from_micros(10)),
        nanos: "7ns" => Ok(Duration::from_nanos(7)),
        mixed: "1h2m3s4ms" => Ok(Duration::from_millis(3_723_004)),
        bare_zero: "0" => Ok(Duration::ZERO),
        zero_seconds: "0s" => Ok(Duration::ZERO),
    }

    #[test]
    fn bad_durations_are_explained() {
        for bad in ["", "10", "s", "10x", "1m30", ".s", "1..5s"] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains("invalid duration"), "{bad}: {err}");
        }
        assert!(parse("-5s").expect_err("negative").contains("negative"));
        assert_eq!(parse("-0s"), Ok(Duration::ZERO));
        assert_eq!(
            parse_signed("-1m30s"),
            Ok(GoDuration {
                negative: true,
                magnitude: Duration::from_secs(90)
            })
        );
        assert!(parse_signed("-x").is_err());
    }
}
