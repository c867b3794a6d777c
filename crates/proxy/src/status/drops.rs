//! The page's drops: every self-metric that counts something lost or refused, read from the registry.

use super::*;

/// Self-metrics that count something lost or refused, with what the page calls them.
const DROPS: &[(&str, &str)] = &[
    (
        "statsd_exporter_sample_errors_total",
        "malformed samples and lines",
    ),
    ("statsd_exporter_tag_errors_total", "malformed tags"),
    ("statsd_exporter_events_error_total", "refused events"),
    (
        "statsd_exporter_events_conflict_total",
        "type, help and name conflicts",
    ),
    (
        "statsd_proxy_series_limited_total",
        "refused by the series limits",
    ),
    (
        "statsd_exporter_events_actions_total",
        "dropped by a mapping rule",
    ),
    (
        "statsd_exporter_udp_packet_drops_total",
        "UDP datagrams dropped by the kernel",
    ),
    (
        "statsd_exporter_tcp_connection_errors_total",
        "TCP connection errors",
    ),
    (
        "statsd_exporter_tcp_too_long_lines_total",
        "TCP lines too long",
    ),
    (
        "statsd_proxy_receive_errors_total",
        "UDP/Unixgram receive errors",
    ),
    (
        "statsd_proxy_receive_panics_total",
        "UDP/Unixgram receive panics (bugs)",
    ),
    (
        "statsd_proxy_tcp_cut_lines_total",
        "TCP lines cut by a close of ours",
    ),
    (
        "statsd_proxy_tcp_connections_evicted_total",
        "idle TCP connections closed for new ones",
    ),
    (
        "statsd_exporter_relay_long_lines_total",
        "relay: lines too long",
    ),
    (
        "statsd_proxy_relay_dropped_lines_total",
        "relay: lines dropped",
    ),
    ("statsd_proxy_relay_send_errors_total", "relay: send errors"),
    (
        "statsd_proxy_web_unauthorized_total",
        "web: requests without valid credentials",
    ),
    (
        "statsd_proxy_web_rate_limited_total",
        "web: requests over the rate limit",
    ),
    (
        "statsd_proxy_web_auth_busy_total",
        "web: refused, too many password checks waiting",
    ),
    (
        "statsd_proxy_web_tls_handshake_errors_total",
        "web: failed TLS handshakes",
    ),
];

/// Every non-zero drop counter, and the refusals by metric among them (most first, bounded).
pub(super) fn drops_and_refusals(state: &State) -> (Vec<DropCount>, Vec<Refusal>) {
    let mut drops = Vec::new();
    let mut refusals = Vec::new();
    for family in state.telemetry().registry.gather() {
        let Some(&(_, what)) = DROPS.iter().find(|(name, _)| *name == family.name()) else {
            continue;
        };
        if family.get_field_type() != PromType::COUNTER {
            continue;
        }
        for m in family.get_metric() {
            let count = m.get_counter().get_value() as u64;
            let label = |n: &str| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == n)
                    .map(|l| l.value().to_string())
            };
            if count == 0 || label("action").is_some_and(|a| a != "drop") {
                continue;
            }
            match family.name() {
                "statsd_exporter_events_conflict_total" => refusals.push(Refusal {
                    metric: label("metric_name").unwrap_or_default(),
                    reason: "conflict",
                    kind: label("type").unwrap_or_default(),
                    count,
                }),
                "statsd_proxy_series_limited_total" => refusals.push(Refusal {
                    metric: label("metric_name").unwrap_or_default(),
                    reason: "series limit",
                    kind: String::new(),
                    count,
                }),
                _ => {}
            }
            let labels = m
                .get_label()
                .iter()
                .map(|l| format!("{}={:?}", l.name(), l.value()))
                .collect::<Vec<_>>()
                .join(",");
            drops.push(DropCount {
                what,
                metric: family.name().to_string(),
                labels,
                count,
            });
        }
    }
    // Conflicts by metric are listed under refusals; keep the drop list to one row per reason.
    let mut merged: Vec<DropCount> = Vec::new();
    for d in drops {
        let by_metric = matches!(
            d.metric.as_str(),
            "statsd_exporter_events_conflict_total" | "statsd_proxy_series_limited_total"
        );
        match merged
            .iter_mut()
            .find(|m| by_metric && m.metric == d.metric)
        {
            Some(m) => m.count += d.count,
            None if by_metric => merged.push(DropCount {
                labels: String::new(),
                ..d
            }),
            None => merged.push(d),
        }
    }
    refusals.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.metric.cmp(&b.metric)));
    refusals.truncate(MAX_REFUSALS);
    (merged, refusals)
}
