//! Table-driven specification of the StatsD line protocol as statsd-proxy reads it.
//!
//! Each case renders what the parser made of one line as a list of strings, one per sample:
//! `"<type> <name> <exported value>[ @rate][ xN][ delta][ bad_rate][ {k=v,…}][ tag_errors=N]"`, or `"!reason"`
//! for a refused sample; a refused line is `["!reason"]`, and malformed name tags add a leading
//! `"tag_errors=N"`.

use statsd_line::{Dialects, Line, Parser, Sample, SampleKind};

fn render_sample(s: &Sample<'_, '_>) -> String {
    let value = match s.kind {
        SampleKind::Counter => s.counter_increment().to_string(),
        SampleKind::Set => s.raw_value.to_string(),
        _ => s.observation().to_string(),
    };
    let mut out = format!("{} {} {}", s.kind.code(), s.name, value);
    if s.rate != 1.0 {
        out += &format!(" @{}", s.rate);
    }
    if s.repeat() > 1 {
        out += &format!(" x{}", s.repeat());
    }
    if s.kind == SampleKind::Gauge && s.relative {
        out += " delta";
    }
    if s.invalid_rate {
        out += " bad_rate";
    }
    if !s.tags.is_empty() {
        let tags: Vec<String> = s
            .tags
            .iter()
            .map(|t| format!("{}={}", t.key, t.value))
            .collect();
        out += &format!(" {{{}}}", tags.join(","));
    }
    out
}

fn render_line(line: &Line<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if line.tag_errors() > 0 {
        out.push(format!("tag_errors={}", line.tag_errors()));
    }
    for sample in line.samples() {
        out.push(match sample {
            Ok(s) => render_sample(&s),
            Err(e) => format!("!{}", e.reason),
        });
    }
    out
}

fn render(parser: Parser, input: &[u8]) -> Vec<String> {
    let mut line = Line::default();
    match parser.parse_into(input, &mut line) {
        Ok(()) => render_line(&line),
        Err(e) => {
            assert!(
                e.span.end <= input.len(),
                "span {:?} outside the line",
                e.span
            );
            // Name tags read before the refusal still count their errors (statsd_exporter does).
            let mut out = Vec::new();
            if line.tag_errors() > 0 {
                out.push(format!("tag_errors={}", line.tag_errors()));
            }
            out.push(format!("!{}", e.reason));
            out
        }
    }
}

fn only(dialect: &str) -> Parser {
    let mut d = Dialects::default();
    match dialect {
        "no-dogstatsd" => d.dogstatsd = false,
        "no-influxdb" => d.influxdb = false,
        "no-librato" => d.librato = false,
        "no-signalfx" => d.signalfx = false,
        other => panic!("unknown dialect switch {other}"),
    }
    Parser::new(d)
}

/// `name: input => [expected…]` with the default parser, or `name: @ parser; input => [...]`.
macro_rules! cases {
    ($($name:ident: $(@ $parser:expr;)? $input:expr => [$($want:expr),* $(,)?],)*) => {$(
        #[test]
        fn $name() {
            #[allow(unused_mut, unused_assignments)]
            let mut parser = Parser::default();
            $(parser = $parser;)?
            let input: &[u8] = $input.as_ref();
            let want: Vec<String> = vec![$($want.to_string()),*];
            assert_eq!(render(parser, input), want, "line {:?}", String::from_utf8_lossy(input));
        }
    )*};
}

cases! {
    // Types and their value semantics.
    counter: "foo:2|c" => ["c foo 2"],
    gauge: "foo:2|g" => ["g foo 2"],
    gauge_minus_is_delta: "foo:-3|g" => ["g foo -3 delta"],
    gauge_plus_is_delta: "foo:+3|g" => ["g foo 3 delta"],
    timer_is_seconds: "foo:250|ms" => ["ms foo 0.25"],
    histogram_is_kept: "foo:250|h" => ["h foo 250"],
    distribution_is_kept: "foo:250|d" => ["d foo 250"],
    set_member_is_text: "users:bob|s" => ["s users bob"],
    negative_counter_parses: "foo:-1|c" => ["c foo -1"],
    exponent_value: "foo:4.0e-05|ms" => ["ms foo 0.00000004"],
    fractional_leading_dot: "foo:.5|g" => ["g foo 0.5"],

    // Sample rates.
    counter_divided_by_rate: "foo:1|c|@0.1" => ["c foo 10 @0.1"],
    timer_repeated_floor_of_inverse_rate: "foo:100|ms|@0.1" => ["ms foo 0.1 @0.1 x10"],
    histogram_rate_floor: "foo:1|h|@0.3" => ["h foo 1 @0.3 x3"],
    gauge_ignores_rate: "foo:5|g|@0.1" => ["g foo 5"],
    zero_rate_counts_as_one_and_is_reported: "foo:1|c|@0" => ["c foo 1 bad_rate"],
    negative_rate_counts_as_one_and_is_reported: "foo:1|ms|@-1" => ["ms foo 0.001 bad_rate"],
    nan_rate_counts_as_one_and_is_reported: "foo:1|ms|@nan" => ["ms foo 0.001 bad_rate"],
    infinite_rate_counts_as_one_and_is_reported: "foo:1|c|@inf" => ["c foo 1 bad_rate"],
    rate_above_one_counts_as_one_and_is_reported: "foo:1|c|@2" => ["c foo 1 bad_rate"],
    tiny_counter_rate_weighs_at_most_a_million: "c:2|c|@0.000000001" => ["c c 2000000 @0.000000001"],
    unparsable_rate_counts_as_one_with_error: "foo:1|c|@abc" => ["c foo 1 bad_rate"],
    empty_rate_is_unparsable: "foo:1|c|@" => ["c foo 1 bad_rate"],
    rate_above_one_is_invalid: "foo:1|c|@2" => ["c foo 1 bad_rate"],
    negative_rate_is_invalid: "foo:1|ms|@-0.5" => ["ms foo 0.001 bad_rate"],
    nan_rate_is_invalid: "foo:1|ms|@NaN" => ["ms foo 0.001 bad_rate"],
    gauge_still_counts_bad_rate: "foo:1|g|@x" => ["g foo 1 bad_rate"],
    tiny_rate_is_a_weight_not_copies: "foo:1|ms|@0.000000001" => ["ms foo 0.001 @0.000000001 x1000000"],

    // Several samples per line.
    multi_samples: "a:1|c:2|ms" => ["c a 1", "ms a 0.002"],
    multi_samples_bad_one_does_not_spoil_others: "a:1|c:x|c:3|g" => ["c a 1", "!malformed_value", "g a 3"],
    multi_sample_without_type: "a:1|c:2" => ["c a 1", "!malformed_component"],
    multi_samples_share_name_tags: "a,k=v:1|c:2|g" => ["c a 1 {k=v}", "g a 2 {k=v}"],
    multi_samples_each_own_rate: "a:1|c|@0.5:1|c" => ["c a 2 @0.5", "c a 1"],

    // DogStatsD extended values.
    extended_timer_values: "a:1:2:3|ms" => ["ms a 0.001", "ms a 0.002", "ms a 0.003"],
    extended_values_share_suffix: "a:1:2|h|@0.5|#k:v" => ["h a 1 @0.5 x2 {k=v}", "h a 2 @0.5 x2 {k=v}"],
    extended_distribution: "a:1:2|d" => ["d a 1", "d a 2"],
    extended_bad_value: "a:1::2|ms" => ["ms a 0.001", "!malformed_value", "ms a 0.002"],
    extended_counter_refused: "a:1:2|c" => ["!invalid_extended_aggregate_type"],
    extended_gauge_refused: "a:1:2|g|#k:v" => ["!invalid_extended_aggregate_type"],
    extended_set_refused: "a:x:y|s" => ["!invalid_extended_aggregate_type"],

    // Line-level refusals.
    no_colon: "foo" => ["!malformed_line"],
    empty_name: ":1|c" => ["!malformed_line"],
    empty_line: "" => ["!malformed_line"],
    not_utf8: b"fo\xff:1|c" => ["!malformed_line"],
    service_check: "_sc|name|0" => ["!malformed_line"],
    no_pipe_after_colon: "a:1" => ["!not_enough_parts_after_colon"],
    nothing_after_colon: "a:" => ["!not_enough_parts_after_colon"],
    values_without_type: "a:1:2" => ["!not_enough_parts_after_colon"],
    influx_and_dogstatsd_mixed: "foo,a=b:1|c|#c:d" => ["!mixed_tagging_styles"],
    librato_and_dogstatsd_mixed: "foo#a=b:1|c|#c:d" => ["!mixed_tagging_styles"],
    signalfx_and_dogstatsd_mixed: "foo[a=b]:1|c|#c:d" => ["!mixed_tagging_styles"],
    bad_name_tags_do_not_count_as_mixed: "foo,bad:1|c|#c:d" => ["tag_errors=1", "c foo 1 {c=d}"],
    bad_librato_tag_then_dogstatsd_tags: "foo#consumer:1|h|#x:y" => ["tag_errors=1", "h foo 1 {x=y}"],
    refused_mixed_line_still_counts_its_bad_name_tag: "foo#bad,a=b:1|c|#c:d" => ["tag_errors=1", "!mixed_tagging_styles"],
    refused_line_still_counts_its_bad_name_tag: "foo,bad:1" => ["tag_errors=1", "!not_enough_parts_after_colon"],

    // Sample-level refusals.
    value_not_a_number: "foo:abc|c" => ["!malformed_value"],
    empty_value: "foo:|c" => ["!malformed_value"],
    nan_value: "foo:NaN|g" => ["!malformed_value"],
    infinite_value: "foo:inf|c" => ["!malformed_value"],
    overflowing_value: "foo:1e400|c" => ["!malformed_value"],
    unknown_type: "foo:1|x" => ["!illegal_event"],
    empty_type: "foo:1|" => ["!illegal_event"],
    empty_component: "foo:1|c||@0.1" => ["!malformed_component"],
    trailing_pipe: "foo:1|c|" => ["!malformed_component"],
    six_parts_allowed: "foo:1|c|@1|@1|@1|@1" => ["c foo 1"],
    every_component_at_once: "foo:1|c|@0.5|#a:b|c:abc|T1700000000" => ["c foo 2 @0.5 {a=b,container_id=abc}"],
    seven_parts_refused: "foo:1|c|@1|@1|@1|@1|@1" => ["!malformed_component"],
    seven_parts_refused_before_the_value: "foo:x|c|@1|@1|@1|@1|@1" => ["!malformed_component"],
    unknown_component: "foo:1|c|x" => ["!invalid_sample_factor"],
    value_checked_before_components: "foo:x|c|zzz" => ["!malformed_value"],
    components_checked_before_type: "foo:1|zz|T" => ["!malformed_timestamp"],
    dogstatsd_event: "_e{5,4}:title|text" => ["tag_errors=1", "!malformed_value"],

    // DogStatsD tags, container id and timestamp.
    dogstatsd_tags: "foo:1|c|#a:b,c:d" => ["c foo 1 {a=b,c=d}"],
    dogstatsd_value_keeps_colons: "foo:1|c|#url:http://x:8080/" => ["c foo 1 {url=http://x:8080/}"],
    dogstatsd_leading_hash_per_tag: "foo:1|c|#a:b,#c:d" => ["c foo 1 {a=b,c=d}"],
    dogstatsd_key_escaped_value_verbatim: "foo:1|c|#http.method:GET /x" => ["c foo 1 {http_method=GET /x}"],
    dogstatsd_bad_tag_skipped: "foo:1|c|#a,b:c" => ["tag_errors=1", "c foo 1 {b=c}"],
    extended_values_count_a_bad_tag_once: "foo:1:2|ms|#a" => ["tag_errors=1", "ms foo 0.001", "ms foo 0.002"],
    dogstatsd_empty_section: "foo:1|c|#" => ["c foo 1"],
    dogstatsd_with_rate_container_timestamp: "foo:1|ms|@0.5|#a:b|c:id|T1656581400" =>
        ["ms foo 0.001 @0.5 x2 {a=b,container_id=id}"],
    container_id_is_a_label: "foo:1|c|#a:b|c:abc" => ["c foo 1 {a=b,container_id=abc}"],
    empty_container_id: "foo:1|c|#a:b|c:" => ["!malformed_container_id"],
    container_without_colon: "foo:1|c|cx" => ["!malformed_container_id"],
    // Without `|#` the body is split on `:` (several samples per line), so a container id is read
    // as a second sample, exactly as statsd_exporter reads it: `a:1|c:2|c` must stay two counters.
    container_id_without_tags_is_ambiguous: "foo:1|c|c:abc" => ["!malformed_container_id", "!malformed_component"],
    timestamp_ignored: "foo:1|c|T1656581400" => ["c foo 1"],
    timestamp_not_integer: "foo:1|c|T16.5" => ["!malformed_timestamp"],
    timestamp_empty: "foo:1|c|T" => ["!malformed_timestamp"],

    // Name dialects.
    influxdb_tags: "foo,a=b,c=d:1|c" => ["c foo 1 {a=b,c=d}"],
    librato_tags: "foo#a=b:1|c" => ["c foo 1 {a=b}"],
    first_of_comma_or_hash_wins: "foo#a=b,c=d:1|c" => ["c foo 1 {a=b,c=d}"],
    influxdb_bad_tag: "foo,a=b,oops,=x,y=:1|c" => ["tag_errors=3", "c foo 1 {a=b}"],
    signalfx_tags: "foo[a=b,c=d]bar:1|c" => ["c foobar 1 {a=b,c=d}"],
    signalfx_tags_first: "[a=b]foo:1|c" => ["c foo 1 {a=b}"],
    signalfx_tags_last: "foo[a=b]:1|c" => ["c foo 1 {a=b}"],
    signalfx_reversed_brackets_do_not_crash: "foo]x[:1|c" => ["tag_errors=1", "c foo]x[ 1"],
    signalfx_one_bracket: "foo[x:1|c" => ["tag_errors=1", "c foo[x 1"],
    signalfx_close_only: "foo]x:1|c" => ["tag_errors=1", "c foo]x 1"],

    // Each dialect can be switched off; its syntax then stays in the name (DogStatsD tags are ignored).
    dogstatsd_off: @ only("no-dogstatsd"); "foo:1|c|#a:b" => ["c foo 1"],
    influxdb_off: @ only("no-influxdb"); "foo,a=b:1|c" => ["c foo,a=b 1"],
    librato_off: @ only("no-librato"); "foo#a=b:1|c" => ["c foo#a=b 1"],
    signalfx_off: @ only("no-signalfx"); "foo[a=b]:1|c" => ["c foo[a=b] 1"],
    signalfx_off_reversed_brackets: @ only("no-signalfx"); "foo]x[:1|c" => ["c foo]x[ 1"],

    // Mastodon's vocabulary and quirks (DESIGN §6).
    mastodon_controller_timing: "Mastodon.production.web.Api.V1.TimelinesController.home.json.total_duration:12.5|ms" =>
        ["ms Mastodon.production.web.Api.V1.TimelinesController.home.json.total_duration 0.0125"],
    mastodon_empty_status_code: "Mastodon.production.web.HomeController.index.html.status.:1|c" =>
        ["c Mastodon.production.web.HomeController.index.html.status. 1"],
    mastodon_placeholder_timing: "Mastodon.production.web.HomeController.index.html.db_time:1|ms" =>
        ["ms Mastodon.production.web.HomeController.index.html.db_time 0.001"],
    mastodon_select_table: "Mastodon.production.db.tables.(SELECT.queries.select.duration:0.3|ms" =>
        ["ms Mastodon.production.db.tables.(SELECT.queries.select.duration 0.0003"],
    mastodon_exist_question_mark: "Mastodon.production.cache.exist?.duration:4.0e-05|ms" =>
        ["ms Mastodon.production.cache.exist?.duration 0.00000004"],
    mastodon_double_dot_worker: "Mastodon.production.sidekiq.ActivityPub..DeliveryWorker.processing_time:80|ms" =>
        ["ms Mastodon.production.sidekiq.ActivityPub..DeliveryWorker.processing_time 0.08"],
    mastodon_queue_gauge: "Mastodon.production.sidekiq.queues.default.enqueued:3|g" =>
        ["g Mastodon.production.sidekiq.queues.default.enqueued 3"],
}

#[test]
fn lines_split_on_newline_strip_cr_and_skip_empty() {
    let packet = b"foo:2|c\nbar:250|ms|#env:prod\r\n\n\nbaz:1|g\n";
    let got: Vec<&[u8]> = statsd_line::lines(packet).collect();
    assert_eq!(
        got,
        [
            &b"foo:2|c"[..],
            &b"bar:250|ms|#env:prod"[..],
            &b"baz:1|g"[..]
        ]
    );
}

#[test]
fn error_span_points_at_the_offending_text() {
    let line = b"foo:1|c|@0.5|zz";
    let parsed = Parser::default().parse(line).expect("line-level valid");
    let err = parsed
        .samples()
        .next()
        .expect("one sample")
        .expect_err("zz is unknown");
    assert_eq!(&line[err.span.clone()], b"zz");
    assert_eq!(err.to_string(), "invalid_sample_factor at bytes 13..15");
}

#[test]
fn samples_share_the_line_tag_set() {
    let input = b"foo,a=b:1|c:2|c";
    let line = Parser::default().parse(input).expect("valid");
    let samples: Vec<Sample<'_, '_>> = line.samples().map(|s| s.expect("valid sample")).collect();
    assert_eq!(samples.len(), 2);
    assert!(std::ptr::eq(samples[0].tags, samples[1].tags));
    assert_eq!(samples[1].tags.get("a"), Some("b"));
    assert_eq!(line.tags().len(), 1);
}
