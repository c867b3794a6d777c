//! [`Telemetry::new`]: every self-metric registered, with its name and help, and every known label
//! value at zero.

use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};

use super::*;

impl Telemetry {
    /// Registers every self-metric in a fresh registry, with every known label value at zero.
    pub fn new() -> Self {
        let r = Registry::new();
        let sample_errors_vec = counter_vec(
            &r,
            "statsd_exporter_sample_errors_total",
            "The total number of errors parsing StatsD samples.",
            &["reason"],
        );
        let sample_errors =
            Reason::ALL.map(|reason| sample_errors_vec.with_label_values(&[reason.as_str()]));
        let events_vec = counter_vec(
            &r,
            "statsd_exporter_events_total",
            "The total number of StatsD events seen.",
            &["type"],
        );
        let events = EVENT_TYPES.map(|t| events_vec.with_label_values(&[t]));
        let series_limited = counter_vec(
            &r,
            "statsd_proxy_series_limited_total",
            "Samples dropped because creating their series would exceed --statsd.max-series or \
             --statsd.max-series-per-metric (metric_name is empty for names that have no series yet).",
            &["metric_name"],
        );
        let metrics_by_type = IntGaugeVec::new(
            Opts::new(
                "statsd_exporter_metrics_total",
                "The total number of metrics.",
            ),
            &["type"],
        )
        .expect("static metric name, help and labels are valid");
        r.register(Box::new(metrics_by_type.clone()))
            .expect("each self-metric is registered once");
        for k in Kind::ALL {
            metrics_by_type.with_label_values(&[k.type_label()]);
        }
        let series = gauge(&r, "statsd_proxy_series", "Series currently held.");
        let series_limit = gauge(
            &r,
            "statsd_proxy_series_limit",
            "The configured --statsd.max-series (0: unlimited).",
        );
        let events_error = counter_vec(
            &r,
            "statsd_exporter_events_error_total",
            "The total number of StatsD events discarded due to errors.",
            &["reason"],
        );
        for reason in [
            "illegal_negative_counter",
            "empty_metric_name",
            "reserved_label_name",
            "invalid_label_name",
            "value_overflow",
            "too_many_labels",
            "label_value_too_long",
        ] {
            events_error.with_label_values(&[reason]);
        }
        let actions = counter_vec(
            &r,
            "statsd_exporter_events_actions_total",
            "The total number of StatsD events by action.",
            &["action"],
        );
        let loaded_mappings = IntGauge::new(
            "statsd_exporter_loaded_mappings",
            "The current number of configured metric mappings.",
        )
        .expect("static metric name and help are valid");
        r.register(Box::new(loaded_mappings.clone()))
            .expect("each self-metric is registered once");
        let config_reloads = counter_vec(
            &r,
            "statsd_exporter_config_reloads_total",
            "The number of configuration reloads.",
            &["outcome"],
        );
        for outcome in ["success", "failure"] {
            config_reloads.with_label_values(&[outcome]);
        }
        let scrapes = counter_vec(
            &r,
            "statsd_proxy_scrapes_total",
            "Scrapes of the metrics path served, by exposition format (text 0.0.4, or delimited \
             protobuf, which Prometheus asks for when native histograms are enabled).",
            &["format"],
        );
        for format in ["text", "protobuf"] {
            scrapes.with_label_values(&[format]);
        }
        let build_info = IntGaugeVec::new(
            Opts::new(
                "statsd_exporter_build_info",
                "A metric with a constant '1' value labeled by version, revision, branch, goversion from \
                 which statsd_exporter was built, and the goos and goarch for the build (here: \
                 statsd-proxy; goversion is the Rust compiler's version).",
            ),
            &BUILD_INFO_LABELS,
        )
        .expect("static metric name, help and labels are valid");
        r.register(Box::new(build_info.clone()))
            .expect("each self-metric is registered once");
        build_info.with_label_values(&build_info_values()).set(1);
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("the process collector is registered once");
        Self {
            config_reloads,
            scrapes,
            unixgram_packets: counter(
                &r,
                "statsd_exporter_unixgram_packets_total",
                "The total number of StatsD packets received over Unixgram.",
            ),
            receive_errors: counter(
                &r,
                "statsd_proxy_receive_errors_total",
                "UDP and Unixgram receive calls that failed (other than timeouts and interruptions); each is followed by a 10 ms pause.",
            ),
            receive_panics: counter(
                &r,
                "statsd_proxy_receive_panics_total",
                "Panics while handling UDP or Unixgram data (a bug: please report it with the log); the receiver goes on.",
            ),
            udp_packet_drops: counter(
                &r,
                "statsd_exporter_udp_packet_drops_total",
                "The total number of dropped StatsD packets which received over UDP (here: dropped by \
                 the kernel because a UDP socket's receive buffer was full, from /proc/net/udp; raise \
                 --statsd.read-buffer or --statsd.udp-workers).",
            ),
            cache_gets: counter(
                &r,
                "statsd_metric_mapper_cache_gets_total",
                "The count of total metric cache gets.",
            ),
            cache_hits: counter(
                &r,
                "statsd_metric_mapper_cache_hits_total",
                "The count of total metric cache hits.",
            ),
            cache_length: gauge(
                &r,
                "statsd_metric_mapper_cache_length",
                "The count of unique metrics currently cached.",
            ),
            series_cache_lookups: counter(
                &r,
                "statsd_proxy_series_cache_lookups_total",
                "Samples looked up in the workers' series caches (name, type and tags as received, to \
                 the series they update).",
            ),
            series_cache_hits: counter(
                &r,
                "statsd_proxy_series_cache_hits_total",
                "Series-cache lookups that found the series (no mapping, no store lookup).",
            ),
            series_cache_length: gauge(
                &r,
                "statsd_proxy_series_cache_length",
                "Entries in the workers' series caches.",
            ),
            mapping_warnings: gauge(
                &r,
                "statsd_proxy_mapping_warnings",
                "Warnings of the mapping file in use (unknown or duplicate keys, deprecated keys, repaired \
                 values; `statsd-proxy mapping check` lists them, --statsd.mapping-strict refuses them).",
            ),
            tcp_connections_evicted: counter(
                &r,
                "statsd_proxy_tcp_connections_evicted_total",
                "TCP connections closed at once because --statsd.tcp-max-connections were open.",
            ),
            web_unauthorized: counter(
                &r,
                "statsd_proxy_web_unauthorized_total",
                "HTTP requests answered 401: no or wrong basic-auth credentials (--web.config.file).",
            ),
            web_rate_limited: counter(
                &r,
                "statsd_proxy_web_rate_limited_total",
                "HTTP requests answered 429: over the web config's rate_limit (--web.config.file).",
            ),
            web_auth_busy: counter(
                &r,
                "statsd_proxy_web_auth_busy_total",
                "HTTP requests answered 503: too many basic-auth password checks (bcrypt) waiting (--web.config.file).",
            ),
            web_tls_handshake_errors: counter(
                &r,
                "statsd_proxy_web_tls_handshake_errors_total",
                "TLS handshakes on the web port that failed (plain HTTP, unknown CA, no client \
                 certificate where one is required, timeouts).",
            ),
            events_unmapped: counter(
                &r,
                "statsd_exporter_events_unmapped_total",
                "The total number of StatsD events no mapping was found for.",
            ),
            actions_map: actions.with_label_values(&["map"]),
            actions_drop: actions.with_label_values(&["drop"]),
            loaded_mappings,
            series_limited,
            limited_since_warning: Arc::new(AtomicU64::new(0)),
            last_limit_warning_ms: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
            metrics_by_type,
            series,
            series_limit,
            lines: counter(&r, LINES, "The total number of StatsD lines received."),
            samples: counter(
                &r,
                "statsd_exporter_samples_total",
                "The total number of StatsD samples received.",
            ),
            sample_errors,
            tags: counter(
                &r,
                "statsd_exporter_tags_total",
                "The total number of DogStatsD tags processed.",
            ),
            tag_errors: counter(
                &r,
                "statsd_exporter_tag_errors_total",
                "The number of errors parsing DogStatsD tags.",
            ),
            udp_packets: counter(
                &r,
                "statsd_exporter_udp_packets_total",
                "The total number of StatsD packets received over UDP.",
            ),
            tcp_connections: counter(
                &r,
                "statsd_exporter_tcp_connections_total",
                "The total number of TCP connections handled.",
            ),
            tcp_connection_errors: counter(
                &r,
                "statsd_exporter_tcp_connection_errors_total",
                "The number of errors encountered reading from TCP.",
            ),
            tcp_too_long_lines: counter(
                &r,
                "statsd_exporter_tcp_too_long_lines_total",
                "The number of lines discarded due to being too long.",
            ),
            tcp_cut_lines: counter(
                &r,
                "statsd_proxy_tcp_cut_lines_total",
                "Unterminated lines of TCP connections closed by us (idle timeout, eviction at the connection cap, shutdown), dropped.",
            ),
            events,
            events_error,
            events_conflict: counter_vec(
                &r,
                "statsd_exporter_events_conflict_total",
                "The total number of StatsD events with conflicting names.",
                &["type", "metric_name"],
            ),
            registry: r,
        }
    }
}
