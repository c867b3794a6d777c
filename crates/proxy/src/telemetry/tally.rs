//! Hot-path counts, summed per packet (or TCP read) before they reach the shared counters.

use statsd_line::Reason;
use statsd_store::Kind;

/// Counts gathered while handling one packet, added to [`super::Telemetry`] in one go.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Non-empty lines.
    pub lines: u64,
    /// Samples (a line may carry several).
    pub samples: u64,
    /// Errors by [`Reason`], indexed like `Reason::ALL`.
    pub sample_errors: [u64; Reason::ALL.len()],
    /// Samples that carried tags.
    pub tags: u64,
    /// Malformed tags.
    pub tag_errors: u64,
    /// Events stored, by kind (counter, gauge, observer).
    pub events: [u64; 4],
    /// Samples no rule matched.
    pub unmapped: u64,
    /// Samples a `map` rule matched.
    pub actions_map: u64,
    /// Samples a `drop` rule matched.
    pub actions_drop: u64,
    /// Mapping-cache lookups and hits.
    pub cache_gets: u64,
    /// See `cache_gets`.
    pub cache_hits: u64,
    /// Series-cache lookups and hits.
    pub series_cache_lookups: u64,
    /// See `series_cache_lookups`.
    pub series_cache_hits: u64,
}

impl Tally {
    /// Counts one sample error.
    pub fn error(&mut self, reason: Reason) {
        let i = Reason::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("Reason::ALL lists every reason");
        self.sample_errors[i] += 1;
    }

    /// Counts `n` stored events of `kind`.
    pub fn events(&mut self, kind: Kind, n: u64) {
        let i = match kind {
            Kind::Counter => 0,
            Kind::Gauge => 1,
            Kind::Summary | Kind::Histogram => 2,
            Kind::Set => 3,
        };
        self.events[i] += n;
    }
}
