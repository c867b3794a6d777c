//! Parses a corpus many times, for counting instructions per line with callgrind, which is exact and
//! repeatable on a noisy shared machine (wall-clock numbers come from the criterion bench):
//!
//! ```text
//! cargo build --release -p statsd-benches --example parse_instructions
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/parse_instructions mastodon 10000
//! ```
//! Instructions per line = total `Ir` / (rounds × corpus lines, both printed on stderr).

use std::hint::black_box;

use statsd_line::{Line, Parser};

fn main() {
    let mut args = std::env::args().skip(1);
    let corpus = args.next().unwrap_or_else(|| "mastodon".into());
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(10_000);
    let lines = match corpus.as_str() {
        "mastodon" => statsd_benches::mastodon_lines(),
        "dogstatsd" => statsd_benches::dogstatsd_lines(),
        other => {
            eprintln!("unknown corpus {other:?}: use mastodon or dogstatsd");
            std::process::exit(2);
        }
    };
    let parser = Parser::default();
    let mut acc = 0.0;
    for _ in 0..rounds {
        for line in &lines {
            let mut parsed = Line::default();
            if parser
                .parse_into(black_box(line.as_bytes()), &mut parsed)
                .is_ok()
            {
                for sample in parsed.samples().flatten() {
                    acc += sample.value + sample.tags.len() as f64;
                }
            }
        }
    }
    eprintln!(
        "corpus={corpus} lines={} rounds={rounds} checksum={acc}",
        lines.len()
    );
}
