//! Parsing throughput: Mastodon-style lines and DogStatsD-tagged lines, per line.
//!
//! `cargo bench -p statsd-benches --bench parse`. Each iteration parses the whole corpus and reads every
//! sample and tag (so nothing is optimised away); criterion's throughput is lines per second, and the
//! time per iteration divided by the corpus size is ns per line (BENCHMARKS.md).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use statsd_line::Parser;

fn parse_all(parser: &Parser, lines: &[String]) -> f64 {
    let mut acc = 0.0;
    for line in lines {
        let mut parsed = statsd_line::Line::default();
        if parser.parse_into(line.as_bytes(), &mut parsed).is_ok() {
            for sample in parsed.samples().flatten() {
                acc += sample.value + sample.tags.len() as f64;
            }
        }
    }
    acc
}

fn bench(c: &mut Criterion) {
    let parser = Parser::default();
    let mut group = c.benchmark_group("parse");
    for (name, lines) in [
        ("mastodon", statsd_benches::mastodon_lines()),
        ("dogstatsd", statsd_benches::dogstatsd_lines()),
    ] {
        // Every line of the corpora is valid: a bench of the error path would measure something else.
        assert!(
            lines.iter().all(|l| parser
                .parse(l.as_bytes())
                .is_ok_and(|p| p.samples().all(|s| s.is_ok()))),
            "{name} corpus must parse"
        );
        group.throughput(Throughput::Elements(lines.len() as u64));
        group.bench_function(name, |b| b.iter(|| parse_all(&parser, black_box(&lines))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
