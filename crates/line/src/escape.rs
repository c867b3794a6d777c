//! Metric-name and tag-key escaping, exactly as statsd_exporter's `EscapeMetricName`.

use std::borrow::Cow;

/// Is `c` allowed unescaped in a Prometheus metric or label name (`[A-Za-z0-9_]`)?
#[inline]
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Escapes a StatsD name (or tag key) into a valid Prometheus name.
///
/// Rules (statsd_exporter's, so existing dashboards keep their series names):
/// - every character outside `[A-Za-z0-9_]` becomes one `_` (a multi-byte character too);
/// - a run of `-` becomes a single `_` (`web--server` → `web_server`);
/// - a leading digit gets a `_` prefix (`5xx` → `_5xx`);
/// - the empty string stays empty.
///
/// Borrows when nothing needs escaping, which is the common case for tag keys.
///
/// ```
/// use statsd_line::escape_name;
/// assert_eq!(escape_name("web.api-server.total"), "web_api_server_total");
/// assert_eq!(escape_name("with---multiple-dashes"), "with_multiple_dashes");
/// assert_eq!(escape_name("0starts"), "_0starts");
/// assert!(matches!(escape_name("clean_name"), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn escape_name(name: &str) -> Cow<'_, str> {
    let bytes = name.as_bytes();
    let leading_digit = bytes.first().is_some_and(u8::is_ascii_digit);
    // Byte-wise: any non-ASCII byte is not a name byte, so this agrees with the char-wise rule.
    if !leading_digit
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 1);
    escape_name_into(name, &mut out);
    Cow::Owned(out)
}

/// [`escape_name`] into a caller's buffer (cleared first), so a receive loop can reuse one allocation.
pub fn escape_name_into(name: &str, out: &mut String) {
    out.clear();
    if name.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        out.push('_');
    }
    let mut prev_dash = false;
    for c in name.chars() {
        if is_name_char(c) {
            out.push(c);
            prev_dash = false;
        } else if c == '-' && prev_dash {
            // Second and later dashes of a run fold into the `_` already written.
        } else {
            out.push('_');
            prev_dash = c == '-';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! escapes {
        ($($name:ident: $input:expr => $want:expr,)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(escape_name($input), $want, "escaping {:?}", $input);
            }
        )*};
    }

    escapes! {
        clean_name_is_kept: "clean" => "clean",
        leading_digit_gets_underscore: "0starts_with_digit" => "_0starts_with_digit",
        underscore_is_kept: "with_underscore" => "with_underscore",
        double_dash_folds: "with--doubledash" => "with_doubledash",
        dash_runs_fold: "with---multiple-dashes" => "with_multiple_dashes",
        dot_becomes_underscore: "with.dot" => "with_dot",
        emoji_is_one_underscore: "with😱emoji" => "with_emoji",
        each_symbol_is_one_underscore: "with.*.multiple" => "with___multiple",
        mastodon_style_name: "test.web-server.foo.bar" => "test_web_server_foo_bar",
        empty_stays_empty: "" => "",
        question_mark: "cache.exist?.duration" => "cache_exist__duration",
        dot_then_dash_is_not_a_run: ".-" => "__",
        dash_after_dot_run: "a-.-b" => "a___b",
    }

    #[test]
    fn escape_into_reuses_and_clears_the_buffer() {
        let mut buf = String::from("stale");
        escape_name_into("a.b-c", &mut buf);
        assert_eq!(buf, "a_b_c");
        escape_name_into("9", &mut buf);
        assert_eq!(buf, "_9");
    }

    #[test]
    fn clean_names_borrow() {
        assert!(matches!(escape_name("abc_DEF_123"), Cow::Borrowed(_)));
    }
}
