//! Why a line or a sample was refused: statsd_exporter's reasons, and where in the line.

use std::ops::Range;

/// Why a line or a sample was refused. The label value of `statsd_exporter_sample_errors_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// No `:`, an empty name, or not UTF-8.
    MalformedLine,
    /// Name tags (InfluxDB, Librato, SignalFX) together with DogStatsD `|#` tags.
    MixedTaggingStyles,
    /// Nothing `|`-separated after the first `:` (`name:1`).
    NotEnoughPartsAfterColon,
    /// Several values (`name:1:2|c`) for a type other than `ms`, `h`, `d`.
    InvalidExtendedAggregateType,
    /// A sample with fewer than 2 or more than 8 `|` parts, or an empty component.
    MalformedComponent,
    /// A value that is not a finite number.
    MalformedValue,
    /// An unparsable or out-of-range rate (the sample is kept, at rate 1), or an unknown component (dropped).
    InvalidSampleFactor,
    /// A `c` component that is not `c:` followed by an id.
    MalformedContainerId,
    /// A `T` component that is not an integer.
    MalformedTimestamp,
    /// An unknown metric type.
    IllegalEvent,
}

impl Reason {
    /// Every reason, for pre-registering counters so they show as 0 before the first error.
    pub const ALL: [Reason; 10] = [
        Reason::MalformedLine,
        Reason::MixedTaggingStyles,
        Reason::NotEnoughPartsAfterColon,
        Reason::InvalidExtendedAggregateType,
        Reason::MalformedComponent,
        Reason::MalformedValue,
        Reason::InvalidSampleFactor,
        Reason::MalformedContainerId,
        Reason::MalformedTimestamp,
        Reason::IllegalEvent,
    ];

    /// The label value statsd_exporter uses for this reason.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::MalformedLine => "malformed_line",
            Reason::MixedTaggingStyles => "mixed_tagging_styles",
            Reason::NotEnoughPartsAfterColon => "not_enough_parts_after_colon",
            Reason::InvalidExtendedAggregateType => "invalid_extended_aggregate_type",
            Reason::MalformedComponent => "malformed_component",
            Reason::MalformedValue => "malformed_value",
            Reason::InvalidSampleFactor => "invalid_sample_factor",
            Reason::MalformedContainerId => "malformed_container_id",
            Reason::MalformedTimestamp => "malformed_timestamp",
            Reason::IllegalEvent => "illegal_event",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused line or sample: the reason and where in the line the offending text is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at bytes {}..{}", span.start, span.end)]
pub struct ParseError {
    /// Why it was refused.
    pub reason: Reason,
    /// Byte range of the offending text within the line (`&line[span]` shows it).
    pub span: Range<usize>,
}
