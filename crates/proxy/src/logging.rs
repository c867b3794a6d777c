//! Log lines as statsd_exporter 0.30 writes them (Prometheus' promslog), so log parsers and
//! `journalctl | grep level=ERROR` habits keep working.
//!
//! - `--log.format=logfmt` (default): `time=2026-05-28T14:20:01.123Z level=INFO source=app.rs:351
//!   msg="loaded mapping file" file=/etc/statsd/mapping.yml rules=12`: one line per event, keys in that
//!   order, then the event's fields in the order given; a value is quoted (Go's `strconv.Quote` escapes)
//!   when it is empty or holds a space, `=`, `"`, a control or non-printable character.
//! - `--log.format=json`: one object per line with the same keys in the same order; numbers and booleans
//!   stay JSON numbers and booleans.
//!
//! Levels are upper case (`DEBUG`, `INFO`, `WARN`, `ERROR`; tracing's TRACE is written as DEBUG);
//! `source` is the file's base name and line. Time is UTC with millisecond precision (promslog uses the
//! local zone, which is UTC in most containers and services). Spans are not written: the proxy logs
//! events only.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `--log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `key=value` pairs.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// The event formatter for both formats.
#[derive(Debug, Clone, Copy)]
pub struct Promslog {
    /// Which format.
    pub format: LogFormat,
}

/// A field's value, typed so that JSON keeps numbers as numbers.
enum Value {
    Text(String),
    /// Already valid in both formats (a number or a boolean).
    Raw(String),
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    fields: Vec<(&'static str, Value)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value.to_string());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields
            .push((field.name(), Value::Raw(value.to_string())));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields
            .push((field.name(), Value::Raw(value.to_string())));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields
            .push((field.name(), Value::Raw(value.to_string())));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.fields
                .push((field.name(), Value::Raw(value.to_string())));
        } else {
            self.text(field, value.to_string());
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, format!("{value:?}"));
    }
}

impl Fields {
    fn text(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
        } else {
            self.fields.push((field.name(), Value::Text(value)));
        }
    }
}

/// promslog's level names.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

/// Does a logfmt value need quotes? Go's slog text handler quotes empty strings and strings with a
/// space, `=`, `"`, or any character that is not printable (controls included).
fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c.is_control() || c.is_whitespace())
}

/// Writes `s` quoted with Go's `strconv.Quote` escapes.
fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_logfmt_value(out: &mut String, s: &str) {
    if needs_quotes(s) {
        write_quoted(out, s);
    } else {
        out.push_str(s);
    }
}

fn write_json_string(out: &mut String, s: &str) {
    // serde_json escapes exactly what JSON requires and no more (`<`, `&`, `>` stay as they are).
    out.push_str(&serde_json::Value::String(s.to_string()).to_string());
}

impl Promslog {
    /// One event as one line (without the newline).
    fn line(&self, level: Level, source: &str, time: &str, fields: Fields) -> String {
        let mut out = String::with_capacity(160);
        let message = fields.message.unwrap_or_default();
        let (text, open, between, assign, close): (fn(&mut String, &str), _, _, _, _) =
            match self.format {
                LogFormat::Logfmt => (write_logfmt_value, "", ' ', '=', ""),
                LogFormat::Json => (write_json_string, "{", ',', ':', "}"),
            };
        let head = [
            ("time", Value::Text(time.to_string())),
            ("level", Value::Text(level_name(level).to_string())),
            ("source", Value::Text(source.to_string())),
            ("msg", Value::Text(message)),
        ];
        out.push_str(open);
        for (i, (key, value)) in head.iter().chain(&fields.fields).enumerate() {
            if i > 0 {
                out.push(between);
            }
            text(&mut out, key);
            out.push(assign);
            match value {
                Value::Text(t) => text(&mut out, t),
                Value::Raw(r) => out.push_str(r),
            }
        }
        out.push_str(close);
        out
    }
}

impl<S, N> FormatEvent<S, N> for Promslog
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let file = meta.file().unwrap_or("unknown");
        let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
        let source = format!("{base}:{}", meta.line().unwrap_or(0));
        let time = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        writeln!(
            writer,
            "{}",
            self.line(*meta.level(), &source, &time, fields)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(message: &str, pairs: &[(&'static str, &str)]) -> Fields {
        Fields {
            message: Some(message.to_string()),
            fields: pairs
                .iter()
                .map(|(k, v)| (*k, Value::Text(v.to_string())))
                .collect(),
        }
    }

    #[test]
    fn logfmt_line_has_promslog_keys_and_quoting() {
        let mut f = fields(
            "Accepting StatsD Traffic",
            &[("udp", ":9125"), ("unixgram", ""), ("path", "a\\b")],
        );
        f.fields.push(("rules", Value::Raw("12".into())));
        let line = Promslog {
            format: LogFormat::Logfmt,
        }
        .line(Level::INFO, "app.rs:12", "2026-05-28T14:20:01.123Z", f);
        assert_eq!(
            line,
            r#"time=2026-05-28T14:20:01.123Z level=INFO source=app.rs:12 msg="Accepting StatsD Traffic" udp=:9125 unixgram="" path=a\b rules=12"#
        );
    }

    #[test]
    fn logfmt_escapes_like_go() {
        let mut out = String::new();
        write_logfmt_value(&mut out, "a \"b\"\nc\t\u{1b}=");
        assert_eq!(out, r#""a \"b\"\nc\t\x1b=""#);
        out.clear();
        write_logfmt_value(&mut out, "file.yaml:4:5:");
        assert_eq!(out, "file.yaml:4:5:");
    }

    #[test]
    fn json_line_keeps_key_order_and_types() {
        let mut f = fields("loaded <mapping> & more", &[("file", "m.yml")]);
        f.fields.push(("rules", Value::Raw("3".into())));
        f.fields.push(("strict", Value::Raw("false".into())));
        let line = Promslog {
            format: LogFormat::Json,
        }
        .line(Level::TRACE, "x.rs:1", "2026-05-28T14:20:01.123Z", f);
        assert_eq!(
            line,
            r#"{"time":"2026-05-28T14:20:01.123Z","level":"DEBUG","source":"x.rs:1","msg":"loaded <mapping> & more","file":"m.yml","rules":3,"strict":false}"#
        );
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v["rules"], 3);
    }
}
