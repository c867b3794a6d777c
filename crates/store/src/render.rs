//! Rendering the store in the text format: families sorted by name, series by label set.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use statsd_exposition::{write_header, write_sample, write_value};

use crate::Store;
use crate::series::{Family, State};

impl Store {
    /// Appends every series in the text format: families sorted by name, each with one `# HELP` and
    /// `# TYPE`, series sorted by label set.
    pub fn render(&self, out: &mut String) {
        let mut families: Vec<Arc<Family>> = Vec::new();
        for shard in self.families.iter() {
            families.extend(shard.read().values().cloned());
        }
        families.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let now = self.clock.now();
        let mut text = String::new();
        for family in &families {
            let mut members = family.members.lock();
            if members.list.is_empty() {
                continue;
            }
            if !members.sorted {
                members
                    .list
                    .sort_unstable_by(|a, b| a.rendered.cmp(&b.rendered));
                members.sorted = true;
            }
            let name: &str = &family.name;
            let help = family.help.load();
            write_header(out, name, &help.text, family.kind.family_type());
            for series in &members.list {
                let labels: &str = &series.rendered;
                match &series.state {
                    State::Counter(v) | State::Gauge(v) => {
                        write_sample(out, name, "", labels, None, v.get())
                    }
                    State::Summary(s) => {
                        let mut s = s.lock();
                        for (q, v) in s.quantiles(now) {
                            text.clear();
                            write_value(&mut text, q);
                            write_sample(out, name, "", labels, Some(("quantile", &text)), v);
                        }
                        write_sample(out, name, "_sum", labels, None, s.sum());
                        write_sample(out, name, "_count", labels, None, s.count() as f64);
                    }
                    State::Histogram(h) => {
                        let mut cumulative = 0u64;
                        for (i, count) in h.counts.iter().enumerate() {
                            cumulative += count.load(Ordering::Relaxed);
                            text.clear();
                            match h.bounds.get(i) {
                                Some(&b) => write_value(&mut text, b),
                                None => text.push_str("+Inf"),
                            }
                            write_sample(
                                out,
                                name,
                                "_bucket",
                                labels,
                                Some(("le", &text)),
                                cumulative as f64,
                            );
                        }
                        write_sample(out, name, "_sum", labels, None, h.sum.get());
                        write_sample(
                            out,
                            name,
                            "_count",
                            labels,
                            None,
                            h.count.load(Ordering::Relaxed) as f64,
                        );
                    }
                    State::Set(s) => {
                        let n = s.lock().count(now);
                        write_sample(out, name, "", labels, None, n as f64);
                    }
                }
            }
        }
    }
}
