//! Our own metrics (counters and gauges) in the text format, written by the same exposition code as the series (one number
//! format, one escaping): the `prometheus` crate gathers them, we write them.

use prometheus::proto::{LabelPair, MetricType};
use statsd_exposition::{FamilyType, render_label_set, write_header, write_sample};

use super::{LINES, Telemetry};

impl Telemetry {
    /// Appends every self-metric: families sorted by name (as gathered), one `# HELP`/`# TYPE` each.
    ///
    /// `statsd_exporter_lines_total` is read first, and written as read: [`Telemetry::flush`] publishes
    /// a batch's lines after every other count of it (with a release fence, matched by the acquire
    /// fence here), so a scrape that shows N lines shows everything those N lines did — whatever
    /// order the registry gathers its collectors in.
    pub fn render(&self, out: &mut String) {
        let lines = self.lines.get();
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        for family in self.registry.gather() {
            let name = family.name();
            // Our self-metrics are counters and gauges (ours, the process collector's, the relay's).
            let kind = match family.get_field_type() {
                MetricType::COUNTER => FamilyType::Counter,
                MetricType::GAUGE => FamilyType::Gauge,
                other => {
                    debug_assert!(false, "self-metric {name} of type {other:?}");
                    continue;
                }
            };
            write_header(out, name, family.help(), kind);
            for metric in family.get_metric() {
                let value = match kind {
                    FamilyType::Counter if name == LINES => lines as f64,
                    FamilyType::Counter => metric.get_counter().get_value(),
                    _ => metric.get_gauge().get_value(),
                };
                write_sample(out, name, "", &label_text(metric.get_label()), None, value);
            }
        }
    }
}

impl Telemetry {
    /// [`Telemetry::render`] in the protobuf format: one length-delimited `MetricFamily` per family, the
    /// same values read the same way.
    pub fn render_proto(&self, out: &mut Vec<u8>) {
        use statsd_exposition::proto::{self, Counter, Gauge, Metric, MetricFamily};
        let lines = self.lines.get();
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        for family in self.registry.gather() {
            let name = family.name();
            let kind = match family.get_field_type() {
                MetricType::COUNTER => proto::MetricType::Counter,
                MetricType::GAUGE => proto::MetricType::Gauge,
                other => {
                    debug_assert!(false, "self-metric {name} of type {other:?}");
                    continue;
                }
            };
            let mut message = MetricFamily::new(name, family.help(), kind);
            for metric in family.get_metric() {
                let label = metric
                    .get_label()
                    .iter()
                    .map(|l| proto::LabelPair {
                        name: Some(l.name().to_string()),
                        value: Some(l.value().to_string()),
                    })
                    .collect();
                let mut m = Metric {
                    label,
                    ..Metric::default()
                };
                match kind {
                    proto::MetricType::Counter => {
                        let value = if name == LINES {
                            lines as f64
                        } else {
                            metric.get_counter().get_value()
                        };
                        m.counter = Some(Counter { value: Some(value) });
                    }
                    _ => {
                        m.gauge = Some(Gauge {
                            value: Some(metric.get_gauge().get_value()),
                        });
                    }
                }
                message.metric.push(m);
            }
            message.write_delimited(out);
        }
    }
}

/// A metric's labels as the text between braces (gathered metrics carry them sorted by name).
fn label_text(labels: &[LabelPair]) -> String {
    render_label_set(labels.iter().map(|l| (l.name(), l.value())))
}
