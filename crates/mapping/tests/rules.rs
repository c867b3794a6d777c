//! Table-driven specification of mapping rules: which rule wins, what it produces, and every load error
//! with its file:line:column.

use std::sync::Arc;
use std::time::Duration;

use statsd_mapping::{
    Action, ErrorKind, HistogramOptions, Mapper, MappingCache, MetricType, Observer,
    SummaryOptions, WarningKind,
};

fn mapper(yaml: &str) -> Mapper {
    Mapper::from_yaml(yaml, "test.yaml").unwrap_or_else(|e| panic!("mapping must load: {e}"))
}

/// Renders the result of mapping `name` as `rule#N name{k=v,…}`, or `unmapped`.
fn render(m: &Mapper, name: &str, ty: MetricType) -> String {
    match m.map(name, ty) {
        None => "unmapped".into(),
        Some(r) => {
            let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if labels.is_empty() {
                format!("rule#{} {}", r.rule, r.name)
            } else {
                format!("rule#{} {}{{{}}}", r.rule, r.name, labels.join(","))
            }
        }
    }
}

/// `case: yaml; name => expected` (counter samples), or `name @ type => expected`.
macro_rules! mapping_cases {
    ($($case:ident: $yaml:expr; $($name:literal $(@ $ty:ident)? => $want:expr),+ ;)*) => {$(
        #[test]
        fn $case() {
            let m = mapper($yaml);
            $(
                #[allow(unused_mut, unused_assignments)]
                let mut ty = MetricType::Counter;
                $(ty = MetricType::$ty;)?
                assert_eq!(render(&m, $name, ty), $want, "mapping {:?} as {:?}", $name, ty);
            )+
        }
    )*};
}

const ORDERED: &str = r#"
mappings:
  - match: "a.*.c"
    name: "wild_$1"
  - match: "a.b.c"
    name: "literal"
"#;

const UNORDERED: &str = r#"
defaults:
  glob_disable_ordering: true
mappings:
  - match: "a.*.c"
    name: "wild_$1"
  - match: "a.b.c"
    name: "literal"
"#;

mapping_cases! {
    glob_first_rule_in_file_order_wins: ORDERED;
        "a.b.c" => "rule#0 wild_b",
        "a.x.c" => "rule#0 wild_x";
    glob_most_specific_wins_without_ordering: UNORDERED;
        "a.b.c" => "rule#1 literal",
        "a.x.c" => "rule#0 wild_x";
    glob_captures_under_backtracking: r#"
mappings:
  - match: "a.b.*.d"
    name: "first_$1"
  - match: "a.*.x.*"
    name: "second_${1}_${2}"
"#;
        "a.b.x.e" => "rule#1 second_b_e",
        "a.b.z.d" => "rule#0 first_z";
    glob_empty_segment_is_captured_empty: r#"
mappings:
  - match: "a.*.c"
    name: "m"
    labels: { part: "[$1]" }
"#;
        "a..c" => "rule#0 m{part=[]}",
        "a.c" => "unmapped";
    glob_prefix_of_earlier_rule_matches: r#"
mappings:
  - match: "a.b.c"
    name: "long"
  - match: "a.b"
    name: "short"
"#;
        "a.b" => "rule#1 short",
        "a.b.c" => "rule#0 long";
    glob_before_regex_even_when_regex_is_first: r#"
mappings:
  - match: "a\\..*"
    match_type: regex
    name: "from_regex"
  - match: "a.b"
    name: "from_glob"
"#;
        "a.b" => "rule#1 from_glob",
        "a.c.d" => "rule#0 from_regex";
    regex_is_unanchored_search: r#"
mappings:
  - match: "cache\\.(\\w+)"
    match_type: regex
    name: "cache_$1"
"#;
        "prefix.cache.hit.suffix" => "rule#0 cache_hit";
    regex_first_rule_in_file_order_wins: r#"
defaults:
  match_type: regex
mappings:
  - match: "(.+)\\.duration"
    name: "first"
  - match: "db\\.(.+)\\.duration"
    name: "second_$1"
"#;
        "db.x.duration" => "rule#0 first";
    regex_named_groups_and_whole_match: r#"
mappings:
  - match: "^(?P<service>[a-z]+)\\.requests$"
    match_type: regex
    name: "${service}_requests"
    labels: { original: "$0", dollar: "$$1" }
"#;
        "api.requests" => "rule#0 api_requests{dollar=$1,original=api.requests}";
    template_pitfalls: r#"
mappings:
  - match: "t.*.*"
    name: "t_${1}_x"
    labels:
      underscore_swallows: "$1_x"
      braces: "${1}_x"
      out_of_range: "<$7>"
      zero_is_whole_name: "$0"
      literal_dollar: "$$"
"#;
        "t.a.b" => "rule#0 t_a_x{braces=a_x,literal_dollar=$,out_of_range=<>,underscore_swallows=,zero_is_whole_name=t.a.b}";
    expanded_name_is_escaped: r#"
mappings:
  - match: "svc.*.calls"
    name: "calls_$1"
"#;
        "svc.web-api.calls" => "rule#0 calls_web_api";
    match_metric_type_splits_one_name: r#"
mappings:
  - match: "jobs.done"
    match_metric_type: observer
    name: "jobs_seconds"
  - match: "jobs.done"
    match_metric_type: counter
    name: "jobs_total"
"#;
        "jobs.done" @ Observer => "rule#0 jobs_seconds",
        "jobs.done" @ Counter => "rule#1 jobs_total",
        "jobs.done" @ Gauge => "unmapped";
    regex_match_metric_type_skips_to_next_rule: r#"
defaults:
  match_type: regex
mappings:
  - match: "^jobs"
    match_metric_type: gauge
    name: "jobs_gauge"
  - match: "^jobs"
    name: "jobs_any"
"#;
        "jobs.x" @ Gauge => "rule#0 jobs_gauge",
        "jobs.x" @ Counter => "rule#1 jobs_any";
    drop_rules_match_too: r#"
mappings:
  - match: "noise.*"
    action: drop
"#;
        "noise.x" => "rule#0 ";
    go_regex_syntax_means_what_it_means_in_go: r#"
defaults:
  match_type: regex
mappings:
  - match: '^a\<b\>$'
    name: "angle"
  - match: '^c\Qd.e\E$'
    name: "quoted"
  - match: '^[[]x$'
    name: "bracket"
"#;
        "a<b>" => "rule#0 angle",
        "cd.e" => "rule#1 quoted",
        "cdxe" => "unmapped",
        "[x" => "rule#2 bracket";
    a_regex_rule_without_match_takes_every_name: r#"
mappings:
  - match: "known.*"
    name: "known"
  - match_type: regex
    name: "everything_else"
"#;
        "known.x" => "rule#0 known",
        "other.y" => "rule#1 everything_else";
    a_label_without_a_value_is_empty: r#"
mappings:
  - match: "a.*"
    name: "m"
    labels:
      empty:
      tilde: ~
"#;
        "a.b" => "rule#0 m{empty=,tilde=}";
    names_with_an_unbalanced_brace_load_as_in_go: r#"
mappings:
  - match: "x.*"
    name: "x_${1"
  - match: "y.*"
    name: "y_$1}"
"#;
        "x.p" => "rule#0 x___1",
        "y.p" => "rule#1 y_p_";
}

#[test]
fn rule_settings_are_resolved_with_defaults() {
    let m = mapper(
        r#"
defaults:
  ttl: 1m30s
  observer_type: histogram
  histogram_options: { buckets: [1, 2, 5] }
  summary_options: { quantiles: [{quantile: 0.75, error: 0.01}], max_age: 30s, age_buckets: 3 }
mappings:
  - match: "inherits.*"
    name: "inherits"
  - match: "own.*"
    name: "own"
    ttl: 10s
    scale: 0.001
    help: "Own help."
    honor_labels: true
    action: map
  - match: "summary.*"
    name: "summary"
    observer_type: summary
  - match: "summary_own.*"
    name: "summary_own"
    observer_type: summary
    summary_options: { max_age: 1m }
  - match: "hist_own.*"
    name: "hist_own"
    histogram_options: { buckets: [0.1, 1] }
  - match: "legacy.*"
    name: "legacy"
    timer_type: summary
  - match: "dropper.*"
    action: drop
"#,
    );
    let r = m.rules();
    assert_eq!(r[0].spec.ttl, Duration::from_secs(90));
    assert_eq!(
        r[0].spec.observer,
        Observer::Histogram(Arc::new(HistogramOptions::with_default_native(vec![
            1.0, 2.0, 5.0
        ])))
    );
    assert_eq!(r[0].scale, None);
    assert!(!r[0].honor_labels);
    assert_eq!(r[1].spec.ttl, Duration::from_secs(10));
    assert_eq!(r[1].scale, Some(0.001));
    assert_eq!(&*r[1].spec.help, "Own help.");
    assert!(r[1].honor_labels);
    let default_summary = SummaryOptions {
        quantiles: vec![(0.75, 0.01)],
        max_age: Duration::from_secs(30),
        age_buckets: 3,
    };
    assert_eq!(
        r[2].spec.observer,
        Observer::Summary(Arc::new(default_summary.clone()))
    );
    assert_eq!(
        r[3].spec.observer,
        Observer::Summary(Arc::new(SummaryOptions {
            max_age: Duration::from_secs(60),
            ..default_summary.clone()
        }))
    );
    assert_eq!(
        r[4].spec.observer,
        Observer::Histogram(Arc::new(HistogramOptions::with_default_native(vec![
            0.1, 1.0
        ])))
    );
    assert_eq!(
        r[5].spec.observer,
        Observer::Summary(Arc::new(default_summary))
    );
    assert_eq!(r[6].action, Action::Drop);
    assert_eq!(m.unmapped().ttl, Duration::from_secs(90));
    assert!(
        m.warnings()
            .iter()
            .map(ToString::to_string)
            .any(|w| w.contains("timer_type") && w.starts_with("test.yaml:29:5: mappings[5]: ")),
        "{:?}",
        m.warnings()
    );
}

#[test]
fn defaults_without_a_file_are_statsd_exporters() {
    let m = Mapper::empty();
    assert_eq!(m.unmapped().ttl, Duration::ZERO);
    assert_eq!(
        m.unmapped().observer,
        Observer::Summary(Arc::new(SummaryOptions {
            quantiles: vec![(0.5, 0.05), (0.9, 0.01), (0.99, 0.001)],
            max_age: Duration::from_secs(600),
            age_buckets: 5,
        }))
    );
    assert_eq!(m.map("anything", MetricType::Counter), None);
}

#[test]
fn a_last_infinite_bucket_is_the_implicit_one() {
    // The Go client drops it; kept, the page had two `le="+Inf"` lines for one series.
    let m = mapper(
        "mappings:\n  - match: a\n    name: a\n    observer_type: histogram\n    histogram_options: { buckets: [0.5, 1, .inf] }\n",
    );
    assert_eq!(
        m.rules()[0].spec.observer,
        Observer::Histogram(Arc::new(HistogramOptions::with_default_native(vec![
            0.5, 1.0
        ])))
    );
    assert!(m.warnings().is_empty(), "{:?}", m.warnings());
}

#[test]
fn histogram_options_on_a_default_summary_rule_load_with_a_warning() {
    // statsd_exporter accepts this (and ignores the options); so do we, and we say so.
    let m =
        mapper("mappings:\n  - match: a\n    name: a\n    histogram_options: { buckets: [1] }\n");
    assert!(matches!(m.rules()[0].spec.observer, Observer::Summary(_)));
    assert!(
        m.warnings()[0]
            .to_string()
            .starts_with("test.yaml:4:5: mappings[0]: `histogram_options` has no effect"),
        "{:?}",
        m.warnings()
    );
}

#[test]
fn cache_gives_identical_results_and_resets_on_a_new_mapper() {
    let community = include_str!("../../../mappings/testdata/ipng-mastodon-mapping.yaml");
    let m = Arc::new(Mapper::from_yaml(community, "community.yaml").expect("loads"));
    let mut cache = MappingCache::new(4); // smaller than the names below: exercises eviction
    let mut uncached = MappingCache::new(0);
    let names = [
        (
            "Mastodon.production.web.Api.V1.Timelines.HomeController.show.json.total_duration",
            MetricType::Observer,
        ),
        (
            "Mastodon.production.db.tables.statuses.queries.select.duration",
            MetricType::Observer,
        ),
        (
            "Mastodon.production.sidekiq.queues.default.enqueued",
            MetricType::Gauge,
        ),
        (
            "Mastodon.production.sidekiq.LinkCrawlWorker.success",
            MetricType::Counter,
        ),
        (
            "Mastodon.production.cache.read_hit.duration",
            MetricType::Observer,
        ),
        ("something.else", MetricType::Counter),
    ];
    for round in 0..3 {
        for (name, ty) in names {
            let direct = m.map(name, ty);
            assert_eq!(
                cache.map(&m, name, ty),
                direct.as_ref(),
                "round {round}: {name}"
            );
            assert_eq!(uncached.map(&m, name, ty), direct.as_ref(), "{name}");
        }
    }
    assert_eq!(cache.len(), 4);
    // A reloaded mapper with other rules: the cache must not answer from the old one.
    let other = Arc::new(mapper(
        "mappings:\n  - match: something.else\n    name: other\n",
    ));
    assert_eq!(
        cache
            .map(&other, "something.else", MetricType::Counter)
            .map(|r| r.name.as_str()),
        Some("other")
    );
    assert_eq!(cache.len(), 1);
}

#[test]
fn cache_counts_gets_and_hits() {
    let m = Arc::new(mapper("mappings:\n  - match: a.*\n    name: a\n"));
    let mut cache = MappingCache::new(2);
    for name in ["a.x", "a.x", "a.y", "b", "a.x"] {
        cache.map(&m, name, MetricType::Counter);
    }
    // a.x miss, hit; a.y miss; b miss (evicts a.x); a.x miss.
    assert_eq!(cache.take_stats(), (5, 1));
    assert_eq!(cache.take_stats(), (0, 0));
    let mut off = MappingCache::new(0);
    off.map(&m, "a.x", MetricType::Counter);
    assert_eq!(off.take_stats(), (0, 0));
}

#[test]
fn community_mastodon_mapping_translates_like_statsd_exporter() {
    let community = include_str!("../../../mappings/testdata/ipng-mastodon-mapping.yaml");
    let m = Mapper::from_yaml(community, "ipng-mastodon-mapping.yaml")
        .expect("the community mapping loads unchanged");
    assert_eq!(m.rules().len(), 12);
    assert!(m.warnings().is_empty(), "{:?}", m.warnings());
    let o = MetricType::Observer;
    for (name, ty, want) in [
        (
            "Mastodon.production.web.Api.V1.Timelines.HomeController.show.json.total_duration",
            o,
            // `(.+)` is greedy, so the controller takes every segment it can.
            "rule#3 mastodon_controller_duration{action=show,controller=Api.V1.Timelines.HomeController,format=json,mastodon=web}",
        ),
        (
            "Mastodon.production.web.HomeController.index.html.status.200",
            MetricType::Counter,
            "rule#0 mastodon_controller_status{action=index,controller=HomeController,format=html,mastodon=web,status=200}",
        ),
        (
            "Mastodon.production.db.tables.(SELECT.queries.select.duration",
            o,
            "rule#4 mastodon_db_operation{mastodon=db,operation=select,table=(SELECT}",
        ),
        (
            "Mastodon.production.cache.exist?.duration",
            o,
            "rule#5 mastodon_cache_duration{mastodon=cache,operation=exist?}",
        ),
        (
            "Mastodon.production.sidekiq.ActivityPub..DeliveryWorker.processing_time",
            o,
            "rule#6 mastodon_sidekiq_worker_processing_time{mastodon=sidekiq,worker=ActivityPub..DeliveryWorker}",
        ),
        (
            "Mastodon.production.sidekiq.LinkCrawlWorker.success",
            MetricType::Counter,
            "rule#7 mastodon_sidekiq_worker_success_total{mastodon=sidekiq,worker=LinkCrawlWorker}",
        ),
        (
            "Mastodon.production.sidekiq.queues.default.latency",
            MetricType::Gauge,
            "rule#10 mastodon_sidekiq_queue_latency{mastodon=sidekiq,queue=default}",
        ),
        (
            "Mastodon.production.sidekiq.dead_size",
            MetricType::Gauge,
            "rule#11 mastodon_sidekiq_dead_size{mastodon=sidekiq}",
        ),
        ("Other.metric", MetricType::Counter, "unmapped"),
    ] {
        assert_eq!(render(&m, name, ty), want, "{name}");
    }
}

/// `case: yaml => (kind, "file:line:col: message fragment")`
macro_rules! load_errors {
    ($($case:ident: $yaml:expr => ($kind:ident, $prefix:expr, $fragment:expr),)*) => {$(
        #[test]
        fn $case() {
            let err = Mapper::from_yaml($yaml, "bad.yaml").expect_err("must be refused");
            let text = err.to_string();
            assert_eq!(err.kind, ErrorKind::$kind, "{text}");
            assert!(text.starts_with($prefix), "message {text:?} should start with {:?}", $prefix);
            assert!(text.contains($fragment), "message {text:?} should mention {:?}", $fragment);
        }
    )*};
}

load_errors! {
    yaml_syntax: "mappings:\n  - match: \"unclosed\n    name: x\n" => (Yaml, "bad.yaml:", "invalid YAML: "),
    yaml_wrong_shape: "mappings:\n  - match: [a, b]\n" => (Yaml, "bad.yaml:2:5: mappings[0]: ", "mappings[0].match: invalid type: sequence, expected a string"),
    negative_bare_bucket_type: "defaults:\n  histogram_options: { buckets: [a] }\n" => (Yaml, "bad.yaml:2:", "buckets[0]: invalid type: string"),
    wrong_value_type: "mappings:\n  - match: a\n    name: b\n    honor_labels: maybe\n" => (Yaml, "bad.yaml:4:", "honor_labels"),
    bad_duration: "defaults:\n  ttl: 10 minutes\n" => (Yaml, "bad.yaml:2:", "invalid duration"),
    missing_match: "mappings:\n  - name: b\n" => (Missing, "bad.yaml:2:5: mappings[0]: ", "no `match`"),
    missing_name: "mappings:\n  - match: a.b\n  - match: c\n" => (Missing, "bad.yaml:2:5: mappings[0]: ", "no `name`"),
    bad_glob_partial_wildcard: "mappings:\n  - match: a\n    name: x\n  - match: a.b*\n    name: y\n" =>
        (Glob, "bad.yaml:4:5: mappings[1]: ", "`*` must be a whole segment"),
    bad_glob_characters: "mappings:\n  - match: a.(b)\n    name: y\n" => (Glob, "bad.yaml:2:5: mappings[0]: ", "segment 2"),
    bad_regex_says_why: "mappings:\n  - match: 'a(b'\n    match_type: regex\n    name: y\n" =>
        (Regex, "bad.yaml:2:5: mappings[0]: ", "unclosed group"),
    bad_name_characters: "mappings:\n  - match: a.*\n    name: my.metric\n" => (Name, "bad.yaml:3:5: mappings[0]: ", "'.' is not allowed"),
    name_starting_with_digit: "mappings:\n  - match: a.*\n    name: 9lives\n" => (Name, "bad.yaml:3:5: ", "starts with a digit"),
    bad_label_name: "mappings:\n  - match: a.*\n    name: m\n    labels:\n      ok: x\n      bad-label: y\n" =>
        (LabelName, "bad.yaml:6:7: mappings[0]: ", "invalid label name \"bad-label\""),
    unknown_match_type: "mappings:\n  - match: a\n    name: m\n    match_type: wildcard\n" => (Value, "bad.yaml:4:5: ", "unknown match_type \"wildcard\""),
    unknown_action: "mappings:\n  - match: a\n    name: m\n    action: keep\n" => (Value, "bad.yaml:4:5: ", "unknown action"),
    unknown_metric_type: "mappings:\n  - match: a\n    name: m\n    match_metric_type: histogram\n" => (Value, "bad.yaml:4:5: ", "match_metric_type"),
    unknown_observer_type: "defaults:\n  observer_type: native\n" => (Value, "bad.yaml:2:3: ", "unknown observer_type"),
    histogram_with_summary_options: "mappings:\n  - match: a\n    name: m\n    observer_type: histogram\n    summary_options: { max_age: 1m }\n" =>
        (Conflict, "bad.yaml:5:5: mappings[0]: ", "`summary_options` on a rule whose observer_type is histogram"),
    summary_with_histogram_options: "mappings:\n  - match: a\n    name: m\n    observer_type: summary\n    histogram_options: { buckets: [1] }\n" =>
        (Conflict, "bad.yaml:5:5: ", "`histogram_options` on a rule whose observer_type is summary"),
    legacy_and_new_quantiles: "mappings:\n  - match: a\n    name: m\n    quantiles: [{quantile: 0.5, error: 0.1}]\n    summary_options: { quantiles: [{quantile: 0.5, error: 0.1}] }\n" =>
        (Conflict, "bad.yaml:4:5: ", "both"),
}

#[test]
fn unreadable_file_is_an_error_naming_it() {
    let err = Mapper::from_file(std::path::Path::new("/nonexistent/mapping.yaml"))
        .expect_err("missing file");
    assert_eq!(err.kind, ErrorKind::Io);
    assert!(
        err.to_string()
            .starts_with("/nonexistent/mapping.yaml:0:0: cannot read"),
        "{err}"
    );
}

#[test]
fn empty_file_is_no_rules() {
    assert!(mapper("").rules().is_empty());
    assert!(mapper("# only a comment\n").rules().is_empty());
    assert!(mapper("mappings: []\n").rules().is_empty());
}

/// `case: yaml => (kind, "file:line:col: message fragment")`: files statsd_exporter 0.30 loads, so we
/// load them too, with a positioned warning (and refuse them only under `--statsd.mapping-strict`).
macro_rules! load_warnings {
    ($($case:ident: $yaml:expr => ($kind:ident, $prefix:expr, $fragment:expr),)*) => {$(
        #[test]
        fn $case() {
            let m = Mapper::from_yaml($yaml, "warn.yaml").expect("statsd_exporter 0.30 loads it");
            let w = m.warnings().first().expect("a warning").clone();
            let text = w.to_string();
            assert_eq!(w.kind, WarningKind::$kind, "{text}");
            assert!(text.starts_with($prefix), "message {text:?} should start with {:?}", $prefix);
            assert!(text.contains($fragment), "message {text:?} should mention {:?}", $fragment);
            let strict = m.strict_error().expect("strict mode refuses a file with warnings");
            assert_eq!(strict.kind, ErrorKind::Strict);
            assert!(strict.to_string().starts_with($prefix), "{strict}");
        }
    )*};
}

load_warnings! {
    unknown_rule_key: "mappings:\n  - match: a\n    name: b\n    lables: {}\n" =>
        (UnknownKey, "warn.yaml:4:5: mappings[0]: ", "unknown key `mappings.0.lables`"),
    unknown_defaults_key: "defaults:\n  ttl: 1m\n  observer: summary\n" => (UnknownKey, "warn.yaml:3:3: ", "`defaults.observer`"),
    unknown_top_level_key: "version: 2\nmappings: []\n" => (UnknownKey, "warn.yaml:1:1: ", "`version`"),
    unknown_summary_options_key: "mappings:\n  - match: a\n    name: b\n    summary_options:\n      maxage: 1m\n" =>
        (UnknownKey, "warn.yaml:5:7: mappings[0]: ", "summary_options.maxage"),
    unknown_histogram_options_key: "defaults:\n  histogram_options:\n    bucket: [1]\n" =>
        (UnknownKey, "warn.yaml:3:5: ", "histogram_options.bucket"),
    duplicate_rule_key: "mappings:\n  - match: a\n    name: b\n    name: c\n" =>
        (DuplicateKey, "warn.yaml:4:5: mappings[0]: ", "the last value is used"),
    negative_rule_ttl: "mappings:\n  - match: a\n    name: b\n    ttl: -1s\n" => (Repaired, "warn.yaml:4:5: mappings[0]: ", "never expire"),
    negative_default_ttl: "defaults:\n  ttl: -5m\n" => (Repaired, "warn.yaml:2:3: ", "never expire"),
    negative_max_age: "defaults:\n  summary_options: { max_age: -1m }\n" => (Repaired, "warn.yaml:2:", "negative max_age"),
    reserved_label_name: "mappings:\n  - match: a.*\n    name: m\n    labels: { __name__: x }\n" =>
        (Repaired, "warn.yaml:4:15: mappings[0]: ", "reserved"),
    unsorted_buckets: "mappings:\n  - match: a\n    name: m\n    observer_type: histogram\n    histogram_options: { buckets: [1, 0.5] }\n" =>
        (Repaired, "warn.yaml:5:5: ", "using [0.5, 1.0]"),
    quantile_out_of_range: "defaults:\n  summary_options: { quantiles: [{quantile: 1.5, error: 0.1}] }\n" => (Repaired, "warn.yaml:2:3: ", "outside [0, 1]"),
    infinite_scale: "mappings:\n  - match: a\n    name: m\n    scale: .inf\n" => (Repaired, "warn.yaml:4:5: ", "finite"),
    regex_rule_without_match: "mappings:\n  - match_type: regex\n    name: m\n" => (Repaired, "warn.yaml:2:5: mappings[0]: ", "matches every name"),
}

#[test]
fn unknown_and_duplicate_keys_do_not_change_the_rule() {
    let m = mapper(
        "defaults:\n  ttl: 1m\n  some_future_key: true\nmappings:\n  - match: a.*\n    name: first\n    name: m_$1\n    labels: {k: x, k: \"$1\"}\n    comment: ignored\n",
    );
    assert_eq!(m.warnings().len(), 4, "{:?}", m.warnings());
    let got = m.map("a.b", MetricType::Counter).expect("matches");
    assert_eq!(got.name, "m_b");
    assert_eq!(got.labels[..], [("k".into(), "b".to_string())]);
    assert_eq!(m.rules()[0].spec.ttl, Duration::from_secs(60));
    assert!(
        m.strict_error()
            .expect("strict")
            .to_string()
            .contains("(and 3 more warnings)")
    );
}

#[test]
fn a_negative_rule_ttl_does_not_inherit_the_default() {
    // statsd_exporter copies defaults.ttl only onto rules whose ttl is 0; -1s stays and means none.
    let m = mapper(
        "defaults:\n  ttl: 10m\nmappings:\n  - match: a\n    name: a\n    ttl: -1s\n  - match: b\n    name: b\n",
    );
    assert_eq!(m.rules()[0].spec.ttl, Duration::ZERO);
    assert_eq!(m.rules()[1].spec.ttl, Duration::from_secs(600));
}

#[test]
fn a_file_without_warnings_passes_strict_mode() {
    assert!(
        mapper("mappings:\n  - match: a.*\n    name: m\n")
            .strict_error()
            .is_none()
    );
}
