//! Our own metrics in the text format, written by the same exposition code as the series (one number
//! format, one escaping): the `prometheus` crate gathers them, we write them.

use prometheus::proto::{LabelPair, MetricType};
use statsd_exposition::{FamilyType, render_label_set, write_header, write_sample, write_value};

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
        let mut text = String::new();
        for family in self.registry.gather() {
            let name = family.name();
            let kind = match family.get_field_type() {
                MetricType::COUNTER => FamilyType::Counter,
                MetricType::SUMMARY => FamilyType::Summary,
                MetricType::HISTOGRAM => FamilyType::Histogram,
                // We register no untyped metrics; anything else is a gauge.
                _ => FamilyType::Gauge,
            };
            write_header(out, name, family.help(), kind);
            for metric in family.get_metric() {
                let labels = label_text(metric.get_label());
                match kind {
                    FamilyType::Counter if name == LINES => {
                        write_sample(out, name, "", &labels, None, lines as f64);
                    }
                    FamilyType::Counter => {
                        let value = metric.get_counter().get_value();
                        write_sample(out, name, "", &labels, None, value);
                    }
                    FamilyType::Gauge => {
                        let value = metric.get_gauge().get_value();
                        write_sample(out, name, "", &labels, None, value);
                    }
                    FamilyType::Summary => {
                        let s = metric.get_summary();
                        for q in s.get_quantile() {
                            text.clear();
                            write_value(&mut text, q.quantile());
                            let extra = Some(("quantile", text.as_str()));
                            write_sample(out, name, "", &labels, extra, q.value());
                        }
                        write_sample(out, name, "_sum", &labels, None, s.sample_sum());
                        let count = s.sample_count() as f64;
                        write_sample(out, name, "_count", &labels, None, count);
                    }
                    FamilyType::Histogram => {
                        let h = metric.get_histogram();
                        for b in h.get_bucket() {
                            text.clear();
                            write_value(&mut text, b.upper_bound());
                            let extra = Some(("le", text.as_str()));
                            let count = b.cumulative_count() as f64;
                            write_sample(out, name, "_bucket", &labels, extra, count);
                        }
                        let count = h.get_sample_count() as f64;
                        write_sample(out, name, "_bucket", &labels, Some(("le", "+Inf")), count);
                        write_sample(out, name, "_sum", &labels, None, h.get_sample_sum());
                        write_sample(out, name, "_count", &labels, None, count);
                    }
                }
            }
        }
    }
}

/// A metric's labels as the text between braces (gathered metrics carry them sorted by name).
fn label_text(labels: &[LabelPair]) -> String {
    render_label_set(labels.iter().map(|l| (l.name(), l.value())))
}
