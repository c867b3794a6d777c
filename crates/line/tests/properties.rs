//! Property tests: no input makes the parser panic, and no line disappears without a reason.

use proptest::prelude::*;
use statsd_line::{Dialects, Parser, Reason};

/// Parses `input` and checks the accounting invariant: either the line is refused with a reason whose
/// span lies inside it, or it yields at least one sample result, each a sample or a reason.
fn check_accounted(parser: Parser, input: &[u8]) -> Result<(), TestCaseError> {
    match parser.parse(input) {
        Err(e) => {
            prop_assert!(e.span.start <= e.span.end && e.span.end <= input.len());
            prop_assert!(Reason::ALL.contains(&e.reason));
        }
        Ok(line) => {
            let mut results = 0;
            for sample in line.samples() {
                results += 1;
                match sample {
                    Ok(s) => {
                        prop_assert!(s.value.is_finite());
                        prop_assert!(s.rate > 0.0 && s.rate <= 1.0);
                        prop_assert!(s.repeat() >= 1);
                        prop_assert!(!s.name.is_empty() || line.name().is_empty());
                    }
                    Err(e) => prop_assert!(e.span.end <= input.len()),
                }
            }
            prop_assert!(results >= 1, "a parsed line yielded nothing");
        }
    }
    Ok(())
}

fn dialects() -> impl Strategy<Value = Dialects> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(d, i, l, s)| Dialects {
        dogstatsd: d,
        influxdb: i,
        librato: l,
        signalfx: s,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..200), d in dialects()) {
        check_accounted(Parser::new(d), &input)?;
    }

    /// Lines built from the protocol's own punctuation reach far deeper than random bytes.
    #[test]
    fn protocol_shaped_lines_are_accounted(input in "[a-zA-Z0-9._,#=:|@\\[\\]Tc+-]{0,60}", d in dialects()) {
        check_accounted(Parser::new(d), input.as_bytes())?;
    }

    #[test]
    fn valid_counters_round_trip(name in "[a-zA-Z_][a-zA-Z0-9_.]{0,30}", value in 0u32..1_000_000, rate in 1u32..=100) {
        let rate = f64::from(rate) / 100.0;
        let text = format!("{name}:{value}|c|@{rate}");
        let line = Parser::default().parse(text.as_bytes()).expect("valid line");
        let sample = line.samples().next().expect("one sample").expect("valid sample");
        prop_assert_eq!(sample.name, name.as_str());
        prop_assert_eq!(sample.counter_increment(), f64::from(value) / rate);
    }
}
