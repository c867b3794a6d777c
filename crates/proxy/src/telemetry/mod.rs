//! Our own metrics, with statsd_exporter's names so existing dashboards and alerts keep working.
//!
//! Hot-path counts are first summed in a per-packet [`Tally`] and added to the shared counters once per
//! packet (or TCP read), so receive workers do not fight over the same cache lines for every line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry};
use statsd_line::Reason;
use statsd_store::{Kind, Refusal};

mod new;
mod registry;
mod render;
mod tally;

pub use registry::{BUILD_INFO_LABELS, build_info_values, version_text};
use registry::{counter, counter_vec, gauge};
pub use tally::Tally;

/// The `reason` label of `statsd_exporter_events_error_total` for each store refusal other than a
/// type conflict (which has its own counter).
pub fn refusal_reason(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::NegativeCounter => "illegal_negative_counter",
        Refusal::EmptyName => "empty_metric_name",
        Refusal::ReservedLabel => "reserved_label_name",
        Refusal::InvalidLabel => "invalid_label_name",
        Refusal::DuplicateLabel => "duplicate_label_name",
        Refusal::Overflow => "value_overflow",
        Refusal::TooManyLabels => "too_many_labels",
        Refusal::LabelValueTooLong => "label_value_too_long",
        Refusal::TypeConflict { .. } => "conflicting_type",
        Refusal::NameCollision => "conflicting_name",
        Refusal::HelpConflict => "conflicting_help",
        Refusal::SeriesLimit { .. } => "series_limit",
    }
}

/// The name of the lines counter, which [`Telemetry::render`] reads before the others.
const LINES: &str = "statsd_exporter_lines_total";

/// The event types of `statsd_exporter_events_total`, in [`Tally::events`] order.
const EVENT_TYPES: [&str; 4] = ["counter", "gauge", "observer", "set"];

/// How often, at most, the "series limit reached" warning is logged.
pub const LIMIT_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// The self-metrics registry and handles to each counter.
#[derive(Clone)]
pub struct Telemetry {
    /// Everything registered here is appended to every scrape.
    pub registry: Registry,
    lines: IntCounter,
    samples: IntCounter,
    sample_errors: [IntCounter; Reason::ALL.len()],
    tags: IntCounter,
    tag_errors: IntCounter,
    /// `statsd_exporter_udp_packets_total`.
    pub udp_packets: IntCounter,
    /// `statsd_exporter_tcp_connections_total`.
    pub tcp_connections: IntCounter,
    /// `statsd_exporter_tcp_connection_errors_total`.
    pub tcp_connection_errors: IntCounter,
    /// `statsd_exporter_tcp_too_long_lines_total`.
    pub tcp_too_long_lines: IntCounter,
    /// `statsd_proxy_tcp_cut_lines_total`: unterminated lines of TCP connections we closed (idle,
    /// evicted, shutting down), dropped.
    pub tcp_cut_lines: IntCounter,
    events: [IntCounter; 4],
    series_limited: IntCounterVec,
    /// Refusals since the last limit warning, and when it was logged (ms since `started`).
    limited_since_warning: Arc<AtomicU64>,
    last_limit_warning_ms: Arc<AtomicU64>,
    started: Instant,
    metrics_by_type: IntGaugeVec,
    series: IntGauge,
    /// `statsd_proxy_series_limit`: the configured `--statsd.max-series` (0: unlimited).
    pub series_limit: IntGauge,
    events_error: IntCounterVec,
    events_conflict: IntCounterVec,
    events_unmapped: IntCounter,
    actions_map: IntCounter,
    actions_drop: IntCounter,
    /// `statsd_exporter_loaded_mappings`.
    pub loaded_mappings: IntGauge,
    config_reloads: IntCounterVec,
    /// `statsd_proxy_scrapes_total{format}`: scrapes served, by exposition format.
    scrapes: IntCounterVec,
    /// `statsd_exporter_unixgram_packets_total`.
    pub unixgram_packets: IntCounter,
    /// `statsd_proxy_receive_errors_total`: receive calls that failed other than by a timeout or an
    /// interruption (each followed by a short pause, so a persistent error does not spin a core).
    pub receive_errors: IntCounter,
    /// `statsd_proxy_receive_panics_total`: panics while handling received data (a UDP worker is
    /// restarted, the unixgram listener goes on with the next datagram).
    pub receive_panics: IntCounter,
    /// `statsd_exporter_udp_packet_drops_total`: datagrams the kernel dropped for our UDP sockets (the
    /// only place ours are dropped: there is no packet queue of our own to overflow).
    pub udp_packet_drops: IntCounter,
    /// `statsd_metric_mapper_cache_gets_total` and `_hits_total`: mapping-cache lookups of every worker.
    cache_gets: IntCounter,
    cache_hits: IntCounter,
    /// `statsd_metric_mapper_cache_length`: results cached, summed over the workers' caches.
    pub cache_length: IntGauge,
    /// `statsd_proxy_series_cache_lookups_total` and `_hits_total`: series-cache lookups of every
    /// worker (see [`crate::series_cache`]).
    series_cache_lookups: IntCounter,
    series_cache_hits: IntCounter,
    /// `statsd_proxy_series_cache_length`: entries, summed over the workers' series caches.
    pub series_cache_length: IntGauge,
    /// `statsd_proxy_mapping_warnings`: warnings of the mapping file in use (0 for the embedded one).
    mapping_warnings: IntGauge,
    /// `statsd_proxy_tcp_connections_evicted_total`: over `--statsd.tcp-max-connections`.
    pub tcp_connections_evicted: IntCounter,
    /// `statsd_proxy_web_unauthorized_total`: HTTP requests refused for their credentials (401).
    pub web_unauthorized: IntCounter,
    /// `statsd_proxy_web_rate_limited_total`: HTTP requests over the web config's `rate_limit` (429).
    pub web_rate_limited: IntCounter,
    /// `statsd_proxy_web_auth_busy_total`: HTTP requests answered 503 because
    /// [`crate::web_config::MAX_PENDING_CHECKS`] password checks were waiting or running.
    pub web_auth_busy: IntCounter,
    /// `statsd_proxy_web_tls_handshake_errors_total`: TLS handshakes on the web port that failed.
    pub web_tls_handshake_errors: IntCounter,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// Adds a tally to the shared counters.
    pub fn flush(&self, t: &mut Tally) {
        if t.lines == 0 {
            return;
        }
        self.samples.inc_by(t.samples);
        self.tags.inc_by(t.tags);
        self.tag_errors.inc_by(t.tag_errors);
        for (counter, n) in self.sample_errors.iter().zip(t.sample_errors) {
            if n > 0 {
                counter.inc_by(n);
            }
        }
        for (counter, n) in self.events.iter().zip(t.events) {
            if n > 0 {
                counter.inc_by(n);
            }
        }
        for (counter, n) in [
            (&self.events_unmapped, t.unmapped),
            (&self.actions_map, t.actions_map),
            (&self.actions_drop, t.actions_drop),
            (&self.cache_gets, t.cache_gets),
            (&self.cache_hits, t.cache_hits),
            (&self.series_cache_lookups, t.series_cache_lookups),
            (&self.series_cache_hits, t.series_cache_hits),
        ] {
            if n > 0 {
                counter.inc_by(n);
            }
        }
        // Lines last, after a release fence: whoever sees these lines counted (see `render`) finds every
        // other count of them, and their store updates, published.
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        self.lines.inc_by(t.lines);
        *t = Tally::default();
    }

    /// Records the mapping loaded at start: its rules and warnings.
    pub fn reloaded_initially(&self, rules: usize, warnings: usize) {
        self.loaded_mappings
            .set(i64::try_from(rules).unwrap_or(i64::MAX));
        self.mapping_warnings
            .set(i64::try_from(warnings).unwrap_or(i64::MAX));
    }

    /// Counts a scrape served in `format`.
    pub fn scraped(&self, format: statsd_exposition::proto::Format) {
        let label = match format {
            statsd_exposition::proto::Format::Text => "text",
            statsd_exposition::proto::Format::Protobuf => "protobuf",
        };
        self.scrapes.with_label_values(&[label]).inc();
    }

    /// Counts a reload and publishes the number of rules in use, and on success the new file's
    /// warnings (a failed reload keeps the old mapping, and its count).
    pub fn reloaded(&self, success: bool, rules: usize, warnings: usize) {
        let outcome = if success { "success" } else { "failure" };
        self.config_reloads.with_label_values(&[outcome]).inc();
        if success {
            self.mapping_warnings
                .set(i64::try_from(warnings).unwrap_or(i64::MAX));
        }
        self.loaded_mappings
            .set(i64::try_from(rules).unwrap_or(i64::MAX));
    }

    /// Counts an event whose mapped name expanded to nothing.
    pub fn empty_metric_name(&self) {
        self.events_error
            .with_label_values(&["empty_metric_name"])
            .inc();
    }

    /// Counts a refused event. Refusals are rare, so they go straight to the shared counters.
    ///
    /// Conflicts (type, name collision, help) are counted per metric name, as statsd_exporter does:
    /// they need an existing family, so their label values are bounded. Series-limit refusals name the
    /// metric only if it already has series, so a flood of new names cannot grow our own output.
    pub fn refused(&self, refusal: Refusal, kind: Kind, metric_name: &str) {
        match refusal {
            Refusal::TypeConflict { .. } | Refusal::NameCollision | Refusal::HelpConflict => self
                .events_conflict
                .with_label_values(&[kind.event_type(), metric_name])
                .inc(),
            Refusal::SeriesLimit { family_exists } => {
                let label = if family_exists { metric_name } else { "" };
                self.series_limited.with_label_values(&[label]).inc();
                self.warn_limited(metric_name);
            }
            other => self
                .events_error
                .with_label_values(&[refusal_reason(other)])
                .inc(),
        }
    }

    /// Logs "series limit reached" at most once per [`LIMIT_WARNING_INTERVAL`], with the count since.
    fn warn_limited(&self, example: &str) {
        let pending = self.limited_since_warning.fetch_add(1, Ordering::Relaxed) + 1;
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_limit_warning_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(LIMIT_WARNING_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        if (last == 0 || now.saturating_sub(last) >= interval)
            && self
                .last_limit_warning_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.limited_since_warning
                .fetch_sub(pending, Ordering::Relaxed);
            tracing::warn!(
                dropped = pending,
                example_metric = example,
                "series limit reached: samples that would create new series are dropped \
                 (see statsd_proxy_series_limited_total; raise --statsd.max-series or \
                 --statsd.max-series-per-metric if this is expected)"
            );
        }
    }

    /// Lines and samples received so far.
    pub fn totals(&self) -> (u64, u64) {
        (self.lines.get(), self.samples.get())
    }

    /// Publishes the store's series counts (called before each scrape).
    pub fn set_series(&self, by_kind: &[(Kind, usize)]) {
        let mut total = 0;
        for (kind, n) in by_kind {
            total += n;
            self.metrics_by_type
                .with_label_values(&[kind.type_label()])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        self.series.set(i64::try_from(total).unwrap_or(i64::MAX));
    }

    /// Names of every self-metric family, for the store to refuse to StatsD series.
    pub fn names(&self) -> Vec<String> {
        self.registry
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect()
    }
}
