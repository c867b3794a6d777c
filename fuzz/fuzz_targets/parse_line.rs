//! Fuzzes the StatsD line parser with every dialect combination: no input may panic, every parsed line
//! yields at least one sample result, and every error span lies inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use statsd_line::{Dialects, Line, Parser};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the dialects, the rest is the packet.
    let Some((&switches, packet)) = data.split_first() else { return };
    let parser = Parser::new(Dialects {
        dogstatsd: switches & 1 != 0,
        influxdb: switches & 2 != 0,
        librato: switches & 4 != 0,
        signalfx: switches & 8 != 0,
    });
    for raw in statsd_line::lines(packet) {
        let mut line = Line::default();
        match parser.parse_into(raw, &mut line) {
            Err(e) => assert!(e.span.end <= raw.len() && e.span.start <= e.span.end),
            Ok(()) => {
                let mut results = 0;
                for sample in line.samples() {
                    results += 1;
                    match sample {
                        Ok(s) => {
                            assert!(s.value.is_finite());
                            assert!(s.rate > 0.0 && s.rate <= 1.0);
                            assert!(s.repeat() >= 1);
                            let _ = statsd_line::escape_name(s.name);
                        }
                        Err(e) => assert!(e.span.end <= raw.len()),
                    }
                }
                assert!(results >= 1);
            }
        }
    }
});
