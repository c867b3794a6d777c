//! The store's specification: golden exposition text, the conflict matrix, TTL on an injected clock,
//! cardinality limits, sets, and concurrent updates.

use std::sync::Arc;
use std::time::Duration;

use pretty_assertions::assert_eq;
use statsd_store::{
    Config, HistogramOptions, Kind, Limits, ManualClock, Observer, Refusal, Spec, Store,
    SummaryOptions, Update,
};

fn render(store: &Store) -> String {
    let mut out = String::new();
    store.render(&mut out);
    out
}

fn histogram(bounds: &[f64]) -> Spec {
    Spec {
        // statsd_exporter's default native histogram beside the classic buckets: the text format
        // shows the classic buckets only.
        observer: Observer::Histogram(Arc::new(HistogramOptions::with_default_native(
            bounds.to_vec(),
        ))),
        ..Spec::default()
    }
}

fn help(text: &str) -> Spec {
    Spec {
        help: Arc::from(text),
        ..Spec::default()
    }
}

const OBS: Update<'static> = Update::Observe {
    value: 0.5,
    weight: 1,
};

/// Sends one sample of some kind to a name.
type SendTo<'a> = &'a dyn Fn(&Store, &str) -> Result<(), Refusal>;

/// One of each kind, escaped label values, special values, families sorted by name and series by labels.
#[test]
fn golden_exposition() {
    let store = Store::new();
    let d = Spec::default();
    store
        .update(
            "requests",
            &mut [("path", "/a\"b\\c\nd"), ("code", "200")],
            Update::Add(3.0),
            &d,
        )
        .unwrap();
    store
        .update("requests", &mut [("code", "500")], Update::Add(1.0), &d)
        .unwrap();
    store
        .update("requests", &mut [], Update::Add(1e6), &d)
        .unwrap();
    store
        .update(
            "temperature",
            &mut [],
            Update::Set(-4.5),
            &help("Room temperature."),
        )
        .unwrap();
    store
        .update("huge", &mut [], Update::Set(f64::MAX), &d)
        .unwrap();
    store
        .update(
            "latency",
            &mut [("route", "/")],
            Update::Observe {
                value: 0.25,
                weight: 2,
            },
            &d,
        )
        .unwrap();
    store
        .update(
            "size",
            &mut [],
            Update::Observe {
                value: 3.0,
                weight: 1,
            },
            &histogram(&[1.0, 5.0]),
        )
        .unwrap();
    store
        .update("users", &mut [], Update::Member("alice"), &d)
        .unwrap();
    store
        .update("users", &mut [], Update::Member("bob"), &d)
        .unwrap();
    store
        .update("users", &mut [], Update::Member("alice"), &d)
        .unwrap();
    let want = include_str!("golden/exposition.txt");
    assert_eq!(render(&store), want);
}

/// Every way two families could write the same sample name is refused at ingest, whichever comes
/// first, and the output stays what it was.
#[test]
fn conflict_matrix() {
    let d = Spec::default();
    let h = histogram(&[1.0]);
    let counter = |s: &Store, n: &str| s.update(n, &mut [], Update::Add(1.0), &d);
    let gauge = |s: &Store, n: &str| s.update(n, &mut [], Update::Set(1.0), &d);
    let summary = |s: &Store, n: &str| s.update(n, &mut [], OBS, &d);
    let hist = |s: &Store, n: &str| s.update(n, &mut [], OBS, &h);
    let cases: Vec<(&str, SendTo<'_>, &str, SendTo<'_>, &str)> = vec![
        // (first, then) — the second is refused.
        (
            "summary x, then counter x_sum",
            &summary,
            "x",
            &counter,
            "x_sum",
        ),
        (
            "summary x, then gauge x_count",
            &summary,
            "x",
            &gauge,
            "x_count",
        ),
        (
            "histogram x, then counter x_bucket",
            &hist,
            "x",
            &counter,
            "x_bucket",
        ),
        ("histogram x, then gauge x_sum", &hist, "x", &gauge, "x_sum"),
        (
            "histogram x, then counter x_count",
            &hist,
            "x",
            &counter,
            "x_count",
        ),
        (
            "counter x_sum, then summary x",
            &counter,
            "x_sum",
            &summary,
            "x",
        ),
        (
            "gauge x_count, then summary x",
            &gauge,
            "x_count",
            &summary,
            "x",
        ),
        (
            "counter x_bucket, then histogram x",
            &counter,
            "x_bucket",
            &hist,
            "x",
        ),
        ("gauge x_sum, then histogram x", &gauge, "x_sum", &hist, "x"),
        (
            "summary x, then histogram x_sum",
            &summary,
            "x",
            &hist,
            "x_sum",
        ),
        (
            "histogram x_sum, then summary x_sum_bucket",
            &hist,
            "x_sum",
            &summary,
            "x_sum_bucket",
        ),
    ];
    for (what, first, a, second, b) in cases {
        let store = Store::new();
        first(&store, a).unwrap_or_else(|e| panic!("{what}: first refused: {e}"));
        let before = render(&store);
        let got = second(&store, b);
        assert!(
            matches!(got, Err(Refusal::NameCollision)),
            "{what}: {got:?}"
        );
        assert_eq!(render(&store), before, "{what}: output changed");
    }

    // Type conflicts: the first type seen for a name wins, for any label set.
    let kinds: [(&str, SendTo<'_>, Kind); 4] = [
        ("counter", &counter, Kind::Counter),
        ("gauge", &gauge, Kind::Gauge),
        ("summary", &summary, Kind::Summary),
        ("histogram", &hist, Kind::Histogram),
    ];
    for (first_name, first, first_kind) in &kinds {
        for (second_name, second, _) in &kinds {
            if first_name == second_name {
                continue;
            }
            let store = Store::new();
            first(&store, "m").unwrap();
            assert_eq!(
                second(&store, "m"),
                Err(Refusal::TypeConflict {
                    existing: *first_kind
                }),
                "{first_name} then {second_name}"
            );
        }
    }

    // Help mismatch, self-metric names, reserved and invalid labels, empty names.
    let store = Store::new();
    store.reserve_names(["statsd_exporter_lines_total"]);
    store
        .update(
            "documented",
            &mut [("a", "1")],
            Update::Add(1.0),
            &help("One."),
        )
        .unwrap();
    assert_eq!(
        store.update(
            "documented",
            &mut [("a", "2")],
            Update::Add(1.0),
            &help("Two.")
        ),
        Err(Refusal::HelpConflict)
    );
    assert_eq!(
        store.update(
            "documented",
            &mut [("a", "1")],
            Update::Add(1.0),
            &help("Two.")
        ),
        Err(Refusal::HelpConflict)
    );
    assert_eq!(
        counter(&store, "statsd_exporter_lines_total"),
        Err(Refusal::NameCollision)
    );
    assert_eq!(
        store.update("c", &mut [("__name__", "x")], Update::Add(1.0), &d),
        Err(Refusal::ReservedLabel)
    );
    assert_eq!(
        store.update("s", &mut [("quantile", "x")], OBS, &d),
        Err(Refusal::ReservedLabel)
    );
    assert_eq!(
        store.update("h", &mut [("le", "x")], OBS, &h),
        Err(Refusal::ReservedLabel)
    );
    assert_eq!(
        store.update("c", &mut [("9x", "y")], Update::Add(1.0), &d),
        Err(Refusal::InvalidLabel)
    );
    assert_eq!(
        store.update("c", &mut [("a-b", "y")], Update::Add(1.0), &d),
        Err(Refusal::InvalidLabel)
    );
    // The store checks unique label names itself: no series can hold a label twice.
    assert_eq!(
        store.update(
            "c",
            &mut [("b", "1"), ("a", "x"), ("b", "2")],
            Update::Add(1.0),
            &d
        ),
        Err(Refusal::DuplicateLabel)
    );
    assert_eq!(counter(&store, ""), Err(Refusal::EmptyName));
    assert_eq!(
        store.update("c", &mut [], Update::Add(-1.0), &d),
        Err(Refusal::NegativeCounter)
    );
    // A `quantile` label is fine on a counter, `le` on a summary.
    store
        .update("c", &mut [("quantile", "x")], Update::Add(1.0), &d)
        .unwrap();
    store.update("s", &mut [("le", "x")], OBS, &d).unwrap();
    assert_eq!(store.len(), 3);
}

#[test]
fn different_label_sets_coexist_in_one_family() {
    let store = Store::new();
    let d = Spec::default();
    store
        .update("m", &mut [("a", "1")], Update::Add(1.0), &d)
        .unwrap();
    store
        .update("m", &mut [("b", "1")], Update::Add(1.0), &d)
        .unwrap();
    store.update("m", &mut [], Update::Add(1.0), &d).unwrap();
    let out = render(&store);
    assert_eq!(out.matches("# TYPE m counter").count(), 1);
    assert!(
        out.ends_with("\nm 1\nm{a=\"1\"} 1\nm{b=\"1\"} 1\n"),
        "{out}"
    );
}

#[test]
fn ttl_expires_idle_series_and_forgets_empty_families() {
    let clock = Arc::new(ManualClock::default());
    let store = Store::with_config(Config::default(), clock.clone());
    let ttl = Spec {
        ttl: Duration::from_secs(30),
        ..Spec::default()
    };
    store
        .update("short", &mut [("id", "1")], Update::Add(1.0), &ttl)
        .unwrap();
    store
        .update("short", &mut [("id", "2")], Update::Add(1.0), &ttl)
        .unwrap();
    store
        .update("forever", &mut [], Update::Add(1.0), &Spec::default())
        .unwrap();

    clock.advance(Duration::from_secs(20));
    store.tick();
    store
        .update("short", &mut [("id", "2")], Update::Add(1.0), &ttl)
        .unwrap(); // refreshes id=2
    assert_eq!(store.expire(), 0);

    clock.advance(Duration::from_secs(15)); // id=1 idle 35 s, id=2 idle 15 s
    store.tick();
    assert_eq!(store.expire(), 1);
    let out = render(&store);
    assert!(!out.contains("id=\"1\""), "{out}");
    assert!(out.contains("short{id=\"2\"} 2\n"), "{out}");

    clock.advance(Duration::from_secs(31));
    store.tick();
    assert_eq!(store.expire(), 1);
    assert_eq!(store.len(), 1);
    assert!(!render(&store).contains("short"));
    // The family's type is forgotten: the name may now be a gauge.
    store
        .update("short", &mut [], Update::Set(7.0), &Spec::default())
        .unwrap();
    assert!(render(&store).contains("# TYPE short gauge\nshort 7\n"));
}

#[test]
fn limits_refuse_new_series_and_keep_updating_existing_ones() {
    let config = Config {
        limits: Limits {
            max_series: 5,
            max_series_per_metric: 3,
        },
        ..Config::default()
    };
    let store = Store::with_config(config, Arc::new(ManualClock::default()));
    let d = Spec::default();
    for i in 0..3 {
        store
            .update("a", &mut [("i", &i.to_string())], Update::Add(1.0), &d)
            .unwrap();
    }
    assert_eq!(
        store.update("a", &mut [("i", "3")], Update::Add(1.0), &d),
        Err(Refusal::SeriesLimit {
            family_exists: true
        })
    );
    store.update("b", &mut [], Update::Add(1.0), &d).unwrap();
    store.update("c", &mut [], Update::Add(1.0), &d).unwrap();
    assert_eq!(store.len(), 5);
    assert_eq!(
        store.update("d", &mut [], Update::Add(1.0), &d),
        Err(Refusal::SeriesLimit {
            family_exists: false
        })
    );
    assert_eq!(
        store.update("c", &mut [("x", "y")], Update::Add(1.0), &d),
        Err(Refusal::SeriesLimit {
            family_exists: true
        })
    );
    // Existing series keep updating.
    store
        .update("a", &mut [("i", "0")], Update::Add(1.0), &d)
        .unwrap();
    assert!(render(&store).contains("a{i=\"0\"} 2\n"));
    assert_eq!(store.len(), 5);
}

#[test]
fn sets_count_distinct_members() {
    let store = Store::new();
    let d = Spec::default();
    for m in ["a", "b", "a", "c"] {
        store
            .update("visitors", &mut [("page", "home")], Update::Member(m), &d)
            .unwrap();
    }
    assert!(render(&store).contains("# TYPE visitors gauge\nvisitors{page=\"home\"} 3\n"));
    assert_eq!(
        store.update("visitors", &mut [("page", "home")], Update::Set(1.0), &d),
        Err(Refusal::TypeConflict {
            existing: Kind::Set
        })
    );
}

#[test]
fn summaries_use_their_spec_options() {
    let store = Store::new();
    let spec = Spec {
        observer: Observer::Summary(Arc::new(SummaryOptions {
            quantiles: vec![(0.75, 0.01)],
            ..SummaryOptions::default()
        })),
        ..Spec::default()
    };
    for v in [1.0, 2.0, 3.0, 4.0] {
        store
            .update(
                "t",
                &mut [],
                Update::Observe {
                    value: v,
                    weight: 1,
                },
                &spec,
            )
            .unwrap();
    }
    let out = render(&store);
    assert!(out.contains("t{quantile=\"0.75\"} 3\n"), "{out}");
    assert!(!out.contains("quantile=\"0.5\""));
}

#[test]
fn concurrent_updates_add_up_exactly() {
    let store = Arc::new(Store::new());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let d = Spec::default();
                let h = histogram(&[1.0]);
                for i in 0..10_000 {
                    let label = format!("{}", i % 7);
                    store
                        .update("hits", &mut [("k", &label)], Update::Add(1.0), &d)
                        .unwrap();
                    store
                        .update(
                            "lat",
                            &mut [("k", &label)],
                            Update::Observe {
                                value: 0.5,
                                weight: 2,
                            },
                            &h,
                        )
                        .unwrap();
                    store
                        .update(
                            "per_thread",
                            &mut [("t", &t.to_string())],
                            Update::Add(0.5),
                            &d,
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let out = render(&store);
    let sum = |prefix: &str| -> f64 {
        out.lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(sum("hits{"), 40_000.0);
    assert_eq!(sum("lat_count{"), 80_000.0);
    assert_eq!(
        sum("lat_bucket{k=\"3\",le=\"+Inf\"}"),
        sum("lat_count{k=\"3\"}")
    );
    assert_eq!(out.matches("per_thread{").count(), 4);
    assert!(out.contains("per_thread{t=\"3\"} 5000\n"));
    assert_eq!(store.len(), 7 + 7 + 4);
}

#[test]
fn counters_and_gauges_never_become_infinite() {
    let store = Store::new();
    let d = Spec::default();
    assert_eq!(store.update("c", &mut [], Update::Add(1e308), &d), Ok(()));
    assert_eq!(
        store.update("c", &mut [], Update::Add(1e308), &d),
        Err(Refusal::Overflow)
    );
    assert_eq!(
        store.update("c", &mut [], Update::Add(f64::INFINITY), &d),
        Err(Refusal::Overflow)
    );
    assert_eq!(store.update("g", &mut [], Update::Set(-1e308), &d), Ok(()));
    assert_eq!(
        store.update("g", &mut [], Update::Delta(-1e308), &d),
        Err(Refusal::Overflow)
    );
    let mut out = String::new();
    store.render(&mut out);
    assert!(out.contains("\nc 1e+308\n"), "{out}");
    assert!(out.contains("\ng -1e+308\n"), "{out}");
}

#[test]
fn a_newer_mapping_load_changes_a_familys_help() {
    let store = Store::new();
    let spec = |text: &str, generation| Spec {
        help: Arc::from(text),
        generation,
        ..Spec::default()
    };
    let first = spec("First.", 1);
    assert_eq!(store.update("c", &mut [], Update::Add(1.0), &first), Ok(()));
    assert_eq!(
        store.update(
            "c",
            &mut [],
            Update::Add(1.0),
            &spec("Other rule, same load.", 1)
        ),
        Err(Refusal::HelpConflict)
    );
    assert_eq!(
        store.update("c", &mut [], Update::Add(1.0), &spec("After reload.", 2)),
        Ok(())
    );
    assert_eq!(
        store.update("c", &mut [], Update::Add(1.0), &first),
        Err(Refusal::HelpConflict),
        "the older load no longer decides"
    );
    let mut out = String::new();
    store.render(&mut out);
    assert!(out.contains("# HELP c After reload.\n"), "{out}");
    assert!(out.contains("\nc 2\n"), "the series kept its value: {out}");
}

#[test]
fn label_count_and_value_size_are_bounded() {
    let store = Store::new();
    let d = Spec::default();
    let names: Vec<String> = (0..=statsd_store::MAX_LABELS_PER_SERIES)
        .map(|i| format!("l{i:03}"))
        .collect();
    let mut many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    assert_eq!(
        store.update("c", &mut many, Update::Add(1.0), &d),
        Err(Refusal::TooManyLabels)
    );
    let mut enough = many[..statsd_store::MAX_LABELS_PER_SERIES].to_vec();
    assert_eq!(store.update("c", &mut enough, Update::Add(1.0), &d), Ok(()));
    let long = "x".repeat(statsd_store::MAX_LABEL_VALUE_BYTES + 1);
    assert_eq!(
        store.update("c", &mut [("k", long.as_str())], Update::Add(1.0), &d),
        Err(Refusal::LabelValueTooLong)
    );
    let fits = &long[1..];
    assert_eq!(
        store.update("c", &mut [("k", fits)], Update::Add(1.0), &d),
        Ok(())
    );
}

/// A scrape rendered in small chunks is the whole render, byte for byte, for every chunk size: families
/// larger than a chunk, every kind. Series created while a scrape is under way, in a family it has not
/// finished, never make it repeat or skip one that existed when it began.
#[test]
fn chunked_scrape_renders_what_a_whole_render_does() {
    let store = Store::new();
    let spec = Spec::default();
    let hist = histogram(&[0.5, 1.0]);
    for i in 0..300 {
        let id = i.to_string();
        store
            .update("big", &mut [("id", &id)], Update::Add(1.0), &spec)
            .unwrap();
        if i % 10 == 0 {
            store
                .update("g", &mut [("id", &id)], Update::Set(i as f64), &spec)
                .unwrap();
            store
                .update(
                    "t",
                    &mut [("id", &id)],
                    Update::Observe {
                        value: 0.7,
                        weight: 1,
                    },
                    &spec,
                )
                .unwrap();
            store
                .update(
                    "h",
                    &mut [("id", &id)],
                    Update::Observe {
                        value: 0.7,
                        weight: 2,
                    },
                    &hist,
                )
                .unwrap();
        }
    }
    let whole = render(&store);
    for budget in [1, 100, 1000, 4096, 1 << 20] {
        let mut scrape = store.scrape();
        let (mut page, mut chunk, mut chunks) = (String::new(), String::new(), 0);
        loop {
            chunk.clear();
            let more = scrape.next_chunk(&mut chunk, budget);
            page.push_str(&chunk);
            chunks += 1;
            if !more {
                break;
            }
        }
        assert_eq!(page, whole, "budget {budget}");
        assert!(
            chunks > whole.len() / (budget + 200),
            "budget {budget}: {chunks} chunks"
        );
    }

    // New series in the middle of a scrape: every series of the start is there exactly once.
    let mut scrape = store.scrape();
    let mut page = String::new();
    let mut created = 0;
    loop {
        let budget = page.len() + 500;
        if !scrape.next_chunk(&mut page, budget) {
            break;
        }
        created += 1;
        let id = format!("new{created}");
        store
            .update("big", &mut [("id", &id)], Update::Add(1.0), &spec)
            .unwrap();
    }
    assert!(created > 10);
    for i in 0..300 {
        let line = format!("big{{id=\"{i}\"}} 1\n");
        assert_eq!(page.matches(&line).count(), 1, "{line}");
    }
    assert_eq!(page.matches("# TYPE big counter\n").count(), 1);
}
