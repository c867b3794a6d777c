//! `mapping lint`: a fixture with one of each problem, each reported at its line; the shipped and the
//! community Mastodon mappings without errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use statsd_mapping::Mapper;
use statsd_mapping::lint::{Severity, lint};

fn findings(file: &str) -> Vec<(usize, usize, Severity, &'static str, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let mapper = Mapper::from_file(&path).unwrap();
    lint(&mapper, &text, &["statsd_exporter_lines_total"])
        .into_iter()
        .map(|f| {
            (
                f.position.line,
                f.position.column,
                f.severity,
                f.check,
                f.message,
            )
        })
        .collect()
}

#[test]
fn each_problem_at_its_line() {
    let got = findings("tests/data/lint.yaml");
    let brief: Vec<(usize, Severity, &str)> = got.iter().map(|f| (f.0, f.2, f.3)).collect();
    assert_eq!(
        brief,
        [
            (5, Severity::Error, "unreachable"),
            (10, Severity::Warning, "empty-reference"),
            (12, Severity::Hint, "unbounded-label"),
            (13, Severity::Hint, "glob-would-do"),
            (22, Severity::Error, "name-conflict"),
            (25, Severity::Error, "name-conflict"),
            (29, Severity::Warning, "untyped-shared-name"),
        ],
        "{got:#?}"
    );
    let message = |check: &str| &got.iter().find(|f| f.3 == check).unwrap().4;
    assert!(message("empty-reference").contains("${1}_x"), "{got:#?}");
    assert!(
        message("glob-would-do").contains("`cache.*.hits`"),
        "{got:#?}"
    );
    assert!(message("unreachable").contains("line 2"), "{got:#?}");
    // Columns point at the key.
    assert!(got.iter().all(|f| f.1 == 5 || f.1 == 7), "{got:#?}");
}

#[test]
fn the_mastodon_mappings_have_no_errors() {
    for file in [
        "../../mappings/mastodon.yaml",
        "../../mappings/testdata/ipng-mastodon-mapping.yaml",
        "../../examples/mastodon-histograms.yaml",
    ] {
        let got = findings(file);
        assert!(
            got.iter().all(|f| f.2 != Severity::Error),
            "{file}: {got:#?}"
        );
    }
}
