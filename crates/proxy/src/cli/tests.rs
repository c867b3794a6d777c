//! The command line as units written for statsd_exporter use it.
use super::*;

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("statsd-proxy").chain(args.iter().copied()))
        .expect("valid flags")
}

#[test]
fn defaults_match_statsd_exporter() {
    let c = parse(&[]).config();
    assert_eq!(c.listen_udp.as_deref(), Some(":9125"));
    assert_eq!(c.listen_tcp.as_deref(), Some(":9125"));
    assert_eq!(c.web_listen_address, ":9102");
    assert_eq!(c.telemetry_path, "/metrics");
    assert_eq!(c.dialects, Dialects::default());
}

#[test]
fn empty_address_disables_a_listener() {
    let c = parse(&["--statsd.listen-tcp="]).config();
    assert_eq!(c.listen_tcp, None);
}

#[test]
fn negated_dialect_flags_and_last_one_wins() {
    let d = parse(&[
        "--no-statsd.parse-influxdb-tags",
        "--no-statsd.parse-signalfx-tags",
    ])
    .dialects();
    assert_eq!(
        (d.dogstatsd, d.influxdb, d.librato, d.signalfx),
        (true, false, true, false)
    );
    let d = parse(&[
        "--no-statsd.parse-librato-tags",
        "--statsd.parse-librato-tags",
    ])
    .dialects();
    assert!(d.librato);
    let d = parse(&[
        "--statsd.parse-dogstatsd-tags",
        "--no-statsd.parse-dogstatsd-tags",
    ])
    .dialects();
    assert!(!d.dogstatsd);
}

#[test]
fn unknown_log_level_is_refused() {
    assert!(Cli::try_parse_from(["statsd-proxy", "--log.level=verbose"]).is_err());
    assert!(Cli::try_parse_from(["statsd-proxy", "--log.format=xml"]).is_err());
}

#[test]
fn log_level_in_any_case() {
    for (given, want) in [
        ("DEBUG", "debug"),
        ("Info", "info"),
        ("wArN", "warn"),
        ("error", "error"),
    ] {
        assert_eq!(parse(&[&format!("--log.level={given}")]).log_level, want);
    }
}

#[test]
fn empty_values_mean_off_as_in_statsd_exporter() {
    let c = parse(&[
        "--statsd.mapping-config=",
        "--statsd.relay.address=",
        "--statsd.read-buffer=0",
    ])
    .config();
    assert_eq!(c.mapping, MappingSource::EmbeddedMastodon);
    assert_eq!(c.relay, None);
    assert_eq!(c.read_buffer, None);
    let c = parse(&["--statsd.mapping-config=", "--statsd.default-mapping=none"]).config();
    assert_eq!(c.mapping, MappingSource::None);
}

#[test]
fn kingpin_int_flags_take_what_kingpin_takes() {
    for (given, want) in [
        ("1000", 1000),
        ("1e3", 1000),
        ("1.9", 1),
        ("+5", 5),
        ("0x1p4", 16),
        ("-1", 0),
        ("0", 0),
        ("NaN", 0),
        ("0x_1p4", 16),
    ] {
        assert_eq!(
            parse(&[&format!("--statsd.cache-size={given}")]).cache_size,
            want,
            "{given}"
        );
    }
    for bad in ["0x10", "1_000", "ten", ""] {
        assert!(
            Cli::try_parse_from(["statsd-proxy", &format!("--statsd.cache-size={bad}")]).is_err(),
            "{bad}"
        );
    }
    assert_eq!(
        parse(&["--statsd.read-buffer=2.5e6"]).config().read_buffer,
        Some(2_500_000)
    );
    assert_eq!(
        parse(&["--statsd.event-flush-threshold=1e2"]).event_flush_threshold,
        100
    );
    assert_eq!(
        parse(&["--statsd.udp-packet-queue-size=-3"]).udp_packet_queue_size,
        0
    );
}

#[test]
fn kingpin_uint_flags_take_go_unsigned_syntax() {
    for (given, want) in [
        ("1400", 1400),
        ("0x10", 16),
        ("0o17", 15),
        ("017", 15),
        ("0b101", 5),
        ("10_000", 10_000),
        ("0", 0),
    ] {
        assert_eq!(
            parse(&[&format!("--statsd.event-queue-size={given}")]).event_queue_size,
            want,
            "{given}"
        );
    }
    assert_eq!(
        parse(&["--statsd.relay.packet-length=0x200"]).relay_packet_length,
        512
    );
    for bad in ["+10", "-1", "1.5", "_1", "1_", "1__0", "0x", "08"] {
        assert!(
            Cli::try_parse_from(["statsd-proxy", &format!("--statsd.event-queue-size={bad}")])
                .is_err(),
            "{bad}"
        );
    }
}

#[test]
fn a_bad_unixsocket_mode_warns_and_keeps_the_default() {
    assert_eq!(
        parse(&["--statsd.unixsocket-mode=660"]).unixsocket_mode(),
        (0o660, None)
    );
    for bad in ["8", "", "rwx", "77777"] {
        let (mode, warning) =
            parse(&[&format!("--statsd.unixsocket-mode={bad}")]).unixsocket_mode();
        assert_eq!(mode, DEFAULT_UNIXSOCKET_MODE);
        assert!(warning.is_some_and(|w| w.contains("octal")), "{bad}");
    }
}

#[test]
fn boolean_flags_have_kingpin_negations() {
    assert!(!parse(&["--check-config", "--no-check-config"]).check_config_requested());
    assert!(parse(&["--no-check-config", "--check-config"]).check_config_requested());
    assert!(parse(&["--statsd.mapping-strict"]).config().mapping_strict);
    assert!(
        !parse(&["--statsd.mapping-strict", "--no-statsd.mapping-strict"])
            .config()
            .mapping_strict
    );
}
