//! The protobuf exposition format: Prometheus' `io.prometheus.client` messages (`metrics.proto`, proto2),
//! declared for `prost`, which derives their wire encoding, and written length-delimited, one
//! `MetricFamily` after another, as `application/vnd.google.protobuf;
//! proto=io.prometheus.client.MetricFamily; encoding=delimited` asks.
//!
//! Only the fields we serve are declared (names, field numbers and types as in `metrics.proto`); a
//! decoder skips what it does not know, and we never write timestamps, exemplars or created timestamps.
//! The declarations are checked against decoders that are not ours: Prometheus itself scrapes this
//! format in the tests.

/// The `Content-Type` of a protobuf scrape response.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// `io.prometheus.client.LabelPair`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPair {
    /// Field 1.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Field 2.
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// `io.prometheus.client.MetricType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    /// `COUNTER`.
    Counter = 0,
    /// `GAUGE`.
    Gauge = 1,
    /// `SUMMARY`.
    Summary = 2,
    /// `UNTYPED`.
    Untyped = 3,
    /// `HISTOGRAM`.
    Histogram = 4,
}

impl From<crate::FamilyType> for MetricType {
    fn from(kind: crate::FamilyType) -> Self {
        match kind {
            crate::FamilyType::Counter => MetricType::Counter,
            crate::FamilyType::Gauge => MetricType::Gauge,
            crate::FamilyType::Summary => MetricType::Summary,
            crate::FamilyType::Histogram => MetricType::Histogram,
        }
    }
}

/// `io.prometheus.client.Gauge`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Gauge {
    /// Field 1.
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

/// `io.prometheus.client.Counter` (without exemplar and created timestamp).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Counter {
    /// Field 1.
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

/// `io.prometheus.client.Quantile`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Quantile {
    /// Field 1.
    #[prost(double, optional, tag = "1")]
    pub quantile: Option<f64>,
    /// Field 2.
    #[prost(double, optional, tag = "2")]
    pub value: Option<f64>,
}

/// `io.prometheus.client.Summary` (without created timestamp).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// Field 1.
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    /// Field 2.
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    /// Field 3.
    #[prost(message, repeated, tag = "3")]
    pub quantile: Vec<Quantile>,
}

/// `io.prometheus.client.Bucket` (without exemplar).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Bucket {
    /// Field 1: cumulative, in increasing order of `upper_bound`.
    #[prost(uint64, optional, tag = "1")]
    pub cumulative_count: Option<u64>,
    /// Field 2: inclusive.
    #[prost(double, optional, tag = "2")]
    pub upper_bound: Option<f64>,
}

/// `io.prometheus.client.BucketSpan`: a run of consecutive native-histogram buckets.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BucketSpan {
    /// Field 1: gap to the previous span, or the first bucket's index for the first span.
    #[prost(sint32, optional, tag = "1")]
    pub offset: Option<i32>,
    /// Field 2: buckets in the run.
    #[prost(uint32, optional, tag = "2")]
    pub length: Option<u32>,
}

/// `io.prometheus.client.Histogram`: classic buckets, and the native-histogram fields.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    /// Field 1.
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    /// Field 2.
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    /// Field 3: classic buckets (the `+Inf` bucket is implied by the count).
    #[prost(message, repeated, tag = "3")]
    pub bucket: Vec<Bucket>,
    /// Field 5: native-histogram schema.
    #[prost(sint32, optional, tag = "5")]
    pub schema: Option<i32>,
    /// Field 6: width of the zero bucket.
    #[prost(double, optional, tag = "6")]
    pub zero_threshold: Option<f64>,
    /// Field 7: observations in the zero bucket.
    #[prost(uint64, optional, tag = "7")]
    pub zero_count: Option<u64>,
    /// Field 9.
    #[prost(message, repeated, tag = "9")]
    pub negative_span: Vec<BucketSpan>,
    /// Field 10: each bucket's count minus the previous one's.
    #[prost(sint64, repeated, tag = "10")]
    pub negative_delta: Vec<i64>,
    /// Field 12.
    #[prost(message, repeated, tag = "12")]
    pub positive_span: Vec<BucketSpan>,
    /// Field 13: each bucket's count minus the previous one's.
    #[prost(sint64, repeated, tag = "13")]
    pub positive_delta: Vec<i64>,
}

/// `io.prometheus.client.Metric` (without timestamp and untyped value).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    /// Field 1.
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    /// Field 2.
    #[prost(message, optional, tag = "2")]
    pub gauge: Option<Gauge>,
    /// Field 3.
    #[prost(message, optional, tag = "3")]
    pub counter: Option<Counter>,
    /// Field 4.
    #[prost(message, optional, tag = "4")]
    pub summary: Option<Summary>,
    /// Field 7.
    #[prost(message, optional, tag = "7")]
    pub histogram: Option<Histogram>,
}

/// `io.prometheus.client.MetricFamily` (without unit).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricFamily {
    /// Field 1.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Field 2.
    #[prost(string, optional, tag = "2")]
    pub help: Option<String>,
    /// Field 3.
    #[prost(enumeration = "MetricType", optional, tag = "3")]
    pub r#type: Option<i32>,
    /// Field 4.
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<Metric>,
}

impl MetricFamily {
    /// An empty family.
    pub fn new(name: &str, help: &str, kind: MetricType) -> Self {
        Self {
            name: Some(name.to_string()),
            help: Some(help.to_string()),
            r#type: Some(kind as i32),
            metric: Vec::new(),
        }
    }

    /// Appends the family, length-delimited, to `out`.
    pub fn write_delimited(&self, out: &mut Vec<u8>) {
        // Encoding into a `Vec` cannot fail (it grows as needed).
        let _ = prost::Message::encode_length_delimited(self, out);
    }
}

/// The labels of a label set rendered by [`crate::render_label_set`], unescaped, in order, into `pairs`
/// (its strings reused: a scrape fills one list per series).
pub fn fill_label_pairs(rendered: &str, pairs: &mut Vec<LabelPair>) {
    let mut rest = rendered;
    let mut n = 0;
    while let Some((name, after)) = rest.split_once("=\"") {
        if pairs.len() == n {
            pairs.push(LabelPair::default());
        }
        let pair = &mut pairs[n];
        n += 1;
        let pair_name = pair.name.get_or_insert_with(String::new);
        pair_name.clear();
        pair_name.push_str(name);
        let value = pair.value.get_or_insert_with(String::new);
        value.clear();
        let mut end = after.len();
        // Unescaped stretches are copied whole; only `\\`, `\"` and `\n` are rewritten.
        let bytes = after.as_bytes();
        let mut from = 0;
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => {
                    value.push_str(&after[from..i]);
                    match bytes.get(i + 1) {
                        Some(b'n') => value.push('\n'),
                        Some(&other) => value.push(char::from(other)),
                        None => {}
                    }
                    i += 2;
                    from = i;
                }
                b'"' => {
                    value.push_str(&after[from..i]);
                    end = i + 1;
                    break;
                }
                _ => i += 1,
            }
        }
        rest = after[end.min(after.len())..]
            .strip_prefix(',')
            .unwrap_or("");
    }
    pairs.truncate(n);
}

/// Writes one length-delimited `MetricFamily` whose metrics are added one at a time (encoded as they
/// come, so a family of many series is never held as a list of messages).
#[derive(Debug, Default)]
pub struct FamilyWriter {
    body: Vec<u8>,
}

impl FamilyWriter {
    /// Starts a family.
    pub fn begin(&mut self, name: &str, help: &str, kind: MetricType) {
        self.body.clear();
        let _ = prost::Message::encode(&MetricFamily::new(name, help, kind), &mut self.body);
    }

    /// Adds a metric (field 4 of the family).
    pub fn push(&mut self, metric: &Metric) {
        prost::encoding::message::encode(4, metric, &mut self.body);
    }

    /// Appends the family, length-delimited, to `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        prost::encoding::encode_varint(self.body.len() as u64, out);
        out.extend_from_slice(&self.body);
    }
}

/// The exposition formats we serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Text, version 0.0.4.
    Text,
    /// Length-delimited protobuf `MetricFamily` messages.
    Protobuf,
}

/// The format an `Accept` header asks for, chosen as client_golang chooses with OpenMetrics off: media
/// ranges by decreasing q-value (ties in the order given, q=0 excluded); the first that is delimited
/// protobuf of `io.prometheus.client.MetricFamily` or `text/plain` (no version, or 0.0.4) wins; text when
/// nothing does. Prometheus' default `Accept` (OpenMetrics first) gets text, so counter names stay as
/// they are; with native histograms on, it asks for protobuf first.
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    let mut ranges: Vec<(f32, Format)> = Vec::new();
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let (mut q, mut proto, mut encoding, mut version) = (1.0f32, None, None, None);
        for param in parts {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "q" => q = v.parse().unwrap_or(0.0),
                "proto" => proto = Some(v),
                "encoding" => encoding = Some(v),
                "version" => version = Some(v),
                _ => {}
            }
        }
        let format = match media.as_str() {
            "application/vnd.google.protobuf"
                if proto == Some("io.prometheus.client.MetricFamily")
                    && encoding == Some("delimited") =>
            {
                Some(Format::Protobuf)
            }
            "text/plain" if matches!(version, None | Some("0.0.4")) => Some(Format::Text),
            _ => None,
        };
        if let Some(format) = format
            && q > 0.0
        {
            ranges.push((q, format));
        }
    }
    // Stable: equal q-values keep the header's order.
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges.first().map_or(Format::Text, |r| r.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label_pairs(rendered: &str) -> Vec<LabelPair> {
        let mut pairs = Vec::new();
        fill_label_pairs(rendered, &mut pairs);
        pairs
    }

    #[test]
    fn prometheus_default_accept_gets_text() {
        // Prometheus 3's default scrape `Accept`, native histograms off.
        let default = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,\
            application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,\
            text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        assert_eq!(negotiate(Some(default)), Format::Text);
        assert_eq!(negotiate(None), Format::Text);
        assert_eq!(negotiate(Some("*/*")), Format::Text);
    }

    #[test]
    fn protobuf_when_preferred() {
        // Prometheus with native histograms on: protobuf first.
        let native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,\
            application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        assert_eq!(negotiate(Some(native)), Format::Protobuf);
        assert_eq!(
            negotiate(Some(
                "text/plain;q=0.5, application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            )),
            Format::Protobuf
        );
        // Text preferred, or protobuf in a form we do not write.
        assert_eq!(
            negotiate(Some(
                "text/plain, application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.9"
            )),
            Format::Text
        );
        assert_eq!(
            negotiate(Some(
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text"
            )),
            Format::Text
        );
        assert_eq!(
            negotiate(Some(
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0"
            )),
            Format::Text
        );
    }

    #[test]
    fn label_pairs_unescape_a_rendered_label_set() {
        let rendered = crate::render_label_set([("a", "x\"y\\z\nw"), ("b", ""), ("c", "=\",")]);
        let pairs = label_pairs(&rendered);
        let got: Vec<(String, String)> = pairs
            .into_iter()
            .map(|p| (p.name.unwrap(), p.value.unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("a".to_string(), "x\"y\\z\nw".to_string()),
                ("b".to_string(), String::new()),
                ("c".to_string(), "=\",".to_string()),
            ]
        );
        assert!(label_pairs("").is_empty());
    }

    #[test]
    fn the_family_writer_writes_what_prost_writes_for_the_whole_family() {
        let mut family = MetricFamily::new("x", "help", MetricType::Gauge);
        let mut writer = FamilyWriter::default();
        writer.begin("x", "help", MetricType::Gauge);
        let mut labels = Vec::new();
        for (i, rendered) in ["a=\"1\",b=\"x\\\"y\"", "a=\"2\"", ""].iter().enumerate() {
            fill_label_pairs(rendered, &mut labels);
            let metric = Metric {
                label: labels.clone(),
                gauge: Some(Gauge {
                    value: Some(i as f64),
                }),
                ..Metric::default()
            };
            writer.push(&metric);
            family.metric.push(metric);
        }
        let (mut ours, mut prosts) = (Vec::new(), Vec::new());
        writer.finish(&mut ours);
        family.write_delimited(&mut prosts);
        assert_eq!(ours, prosts);
        assert_eq!(family.metric[0].label[1].value.as_deref(), Some("x\"y"));
        assert!(family.metric[2].label.is_empty());
    }

    #[test]
    fn a_family_round_trips_through_prost() {
        let mut family = MetricFamily::new("x", "help", MetricType::Counter);
        family.metric.push(Metric {
            label: label_pairs("k=\"v\""),
            counter: Some(Counter { value: Some(2.5) }),
            ..Metric::default()
        });
        let mut out = Vec::new();
        family.write_delimited(&mut out);
        family.write_delimited(&mut out);
        let mut buf = out.as_slice();
        for _ in 0..2 {
            let decoded: MetricFamily = prost::Message::decode_length_delimited(&mut buf).unwrap();
            assert_eq!(decoded, family);
        }
        assert!(buf.is_empty());
    }
}
