//! The command line, with statsd_exporter's flag names and defaults so existing units keep starting.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand};
use statsd_line::Dialects;

use crate::config::{
    Config, DEFAULT_RELAY_PACKET_LENGTH, DEFAULT_STATSD_ADDRESS, DEFAULT_TCP_MAX_LINE,
    DEFAULT_TELEMETRY_PATH, DEFAULT_UNIXSOCKET_MODE, DEFAULT_WEB_ADDRESS, MappingSource,
    RelayConfig, TcpLimits,
};

pub mod argfiles;
mod values;
use values::{parse_count, parse_duration, parse_duration_or_zero, parse_mode, parse_uint};

/// StatsD to Prometheus translating proxy: a drop-in replacement for prometheus/statsd_exporter.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "statsd-proxy",
    about,
    long_about = None,
    args_override_self = true,
    disable_version_flag = true
)]
pub struct Cli {
    /// Show the version, in statsd_exporter's layout (`… version X (branch: …, revision: …)`), and exit.
    #[arg(long = "version", action = ArgAction::SetTrue)]
    pub version: bool,

    /// The UDP address on which to receive StatsD metric lines ("" disables it; ":9125" means every
    /// interface, IPv4 and IPv6).
    #[arg(long = "statsd.listen-udp", value_name = "ADDR", default_value = DEFAULT_STATSD_ADDRESS)]
    pub listen_udp: String,

    /// The TCP address on which to receive StatsD metric lines ("" disables it).
    #[arg(long = "statsd.listen-tcp", value_name = "ADDR", default_value = DEFAULT_STATSD_ADDRESS)]
    pub listen_tcp: String,

    /// Address on which to expose metrics and the web interface.
    #[arg(long = "web.listen-address", value_name = "ADDR", default_value = DEFAULT_WEB_ADDRESS)]
    pub web_listen_address: String,

    /// Path under which to expose metrics.
    #[arg(
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = DEFAULT_TELEMETRY_PATH
    )]
    pub telemetry_path: String,

    /// Longest TCP line in bytes; longer lines are skipped and counted
    /// (statsd_exporter_tcp_too_long_lines_total).
    #[arg(long = "statsd.tcp-max-line-length", value_name = "BYTES", default_value_t = DEFAULT_TCP_MAX_LINE)]
    pub tcp_max_line: usize,

    /// Parse DogStatsD style tags (`|#k:v`). On by default.
    #[arg(long = "statsd.parse-dogstatsd-tags", action = ArgAction::SetTrue, overrides_with = "no_dogstatsd")]
    pub dogstatsd: bool,
    /// Do not parse DogStatsD style tags.
    #[arg(long = "no-statsd.parse-dogstatsd-tags", action = ArgAction::SetTrue, overrides_with = "dogstatsd")]
    pub no_dogstatsd: bool,

    /// Parse InfluxDB style tags (`name,k=v`). On by default.
    #[arg(long = "statsd.parse-influxdb-tags", action = ArgAction::SetTrue, overrides_with = "no_influxdb")]
    pub influxdb: bool,
    /// Do not parse InfluxDB style tags.
    #[arg(long = "no-statsd.parse-influxdb-tags", action = ArgAction::SetTrue, overrides_with = "influxdb")]
    pub no_influxdb: bool,

    /// Parse Librato style tags (`name#k=v`). On by default.
    #[arg(long = "statsd.parse-librato-tags", action = ArgAction::SetTrue, overrides_with = "no_librato")]
    pub librato: bool,
    /// Do not parse Librato style tags.
    #[arg(long = "no-statsd.parse-librato-tags", action = ArgAction::SetTrue, overrides_with = "librato")]
    pub no_librato: bool,

    /// Parse SignalFX style tags (`name[k=v]`). On by default.
    #[arg(long = "statsd.parse-signalfx-tags", action = ArgAction::SetTrue, overrides_with = "no_signalfx")]
    pub signalfx: bool,
    /// Do not parse SignalFX style tags.
    #[arg(long = "no-statsd.parse-signalfx-tags", action = ArgAction::SetTrue, overrides_with = "signalfx")]
    pub no_signalfx: bool,

    /// Metric mapping configuration file (statsd_exporter's format). Without it (or given empty, as
    /// units that build it from a variable do) the --statsd.default-mapping applies.
    #[arg(long = "statsd.mapping-config", value_name = "FILE", global = true, value_parser = clap::value_parser!(std::ffi::OsString))]
    pub mapping_config: Option<std::ffi::OsString>,

    /// Refuse a mapping file that has warnings (unknown or duplicate keys, deprecated keys, values
    /// statsd_exporter accepts but that cannot work as written): at start, on reload, and in `mapping
    /// check`. Off by default, as statsd_exporter 0.30 loads such files.
    #[arg(long = "statsd.mapping-strict", action = ArgAction::SetTrue, overrides_with = "no_mapping_strict", global = true)]
    pub mapping_strict: bool,
    /// Load mapping files with warnings (the default).
    #[arg(long = "no-statsd.mapping-strict", action = ArgAction::SetTrue, overrides_with = "mapping_strict", global = true)]
    pub no_mapping_strict: bool,

    /// Mapping used when --statsd.mapping-config is not given: `mastodon` (the Mastodon mapping shipped in
    /// the binary, mappings/mastodon.yaml) or `none` (every metric unmapped, as statsd_exporter).
    #[arg(long = "statsd.default-mapping", value_name = "NAME", default_value = "mastodon", value_parser = ["mastodon", "none"], global = true)]
    pub default_mapping: String,

    /// Tools instead of running the proxy.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Check the mapping file (and flags), print the result, and exit 0 (valid) or 1 (invalid) without
    /// opening any port.
    #[arg(long = "check-config", action = ArgAction::SetTrue, overrides_with = "no_check_config")]
    pub check_config: bool,
    /// Run the proxy (the default; kingpin's negation of --check-config).
    #[arg(long = "no-check-config", action = ArgAction::SetTrue, overrides_with = "check_config", hide = true)]
    pub no_check_config: bool,

    /// Mapping results cached per receive worker (0 disables the cache).
    #[arg(long = "statsd.cache-size", value_name = "N", default_value_t = statsd_mapping::DEFAULT_CACHE_SIZE, value_parser = parse_count::<usize>)]
    pub cache_size: usize,

    /// Mapping cache eviction: lru or random. Accepted for compatibility, no effect: the cache is an
    /// LRU per worker (random eviction existed to avoid lock contention, which per-worker caches lack).
    #[arg(long = "statsd.cache-type", value_name = "TYPE", default_value = "lru", value_parser = ["lru", "random"])]
    pub cache_type: String,

    /// The Unixgram socket path to receive StatsD metric lines in datagrams ("" disables it). A stale
    /// socket file from a previous run is replaced; any other file there is an error.
    #[arg(
        long = "statsd.listen-unixgram",
        value_name = "PATH",
        default_value = ""
    )]
    pub listen_unixgram: String,

    /// The permission mode of the unix socket (octal).
    /// A value that is not an octal mode is reported and the default used (statsd_exporter 0.30 also
    /// starts, with a warning).
    #[arg(
        long = "statsd.unixsocket-mode",
        value_name = "MODE",
        default_value = "755"
    )]
    pub unixsocket_mode: String,

    /// Size in bytes of the kernel receive buffer of the UDP and unixgram sockets (SO_RCVBUF). The kernel
    /// caps it at net.core.rmem_max.
    /// 0 (or less) leaves the kernel's default.
    #[arg(long = "statsd.read-buffer", value_name = "BYTES", value_parser = parse_count::<usize>)]
    pub read_buffer: Option<usize>,

    /// UDP receive worker threads, all draining the same socket (default: half the cores, at least one).
    /// More workers contend for the socket's queue lock and for the cores the senders need: on two cores
    /// with a local sender, two workers accepted 35% fewer lines than one (BENCHMARKS.md).
    #[arg(long = "statsd.udp-workers", value_name = "N")]
    pub udp_workers: Option<usize>,

    /// Give each UDP worker a socket of its own (`SO_REUSEPORT`) instead of one shared socket: the kernel
    /// then hashes each sender (source address and port) to one worker, so there is no shared receive
    /// queue, but a single sender (a relay) is served by one worker only.
    #[arg(long = "statsd.udp-reuseport", action = clap::ArgAction::SetTrue)]
    pub udp_reuseport: bool,

    /// Most StatsD TCP connections open at once (0: unlimited). At the cap, a new connection closes the
    /// longest-idle one (counted), so idle clients cannot lock live ones out. Default: three quarters of
    /// the file descriptors the open-files limit leaves (raised to the hard limit at start).
    #[arg(long = "statsd.tcp-max-connections", value_name = "N")]
    pub tcp_max_connections: Option<usize>,

    /// Most HTTP connections served at once; more wait in the accept queue. Default: a quarter of the
    /// file descriptors the open-files limit leaves (at most 1024).
    #[arg(long = "web.max-connections", value_name = "N")]
    pub web_max_connections: Option<usize>,

    /// Close a TCP connection idle this long (Go duration; 0 never closes).
    #[arg(long = "statsd.tcp-idle-timeout", value_name = "DURATION", default_value = "15m", value_parser = parse_duration_or_zero)]
    pub tcp_idle_timeout: Duration,

    /// Serve PUT/POST /-/reload (reload the mapping) and /-/quit (stop).
    #[arg(long = "web.enable-lifecycle", action = ArgAction::SetTrue, overrides_with = "no_enable_lifecycle")]
    pub enable_lifecycle: bool,
    /// Do not serve /-/reload and /-/quit (the default).
    #[arg(long = "no-web.enable-lifecycle", action = ArgAction::SetTrue, overrides_with = "enable_lifecycle")]
    pub no_enable_lifecycle: bool,

    /// The UDP relay target address (host:port): received lines are forwarded there.
    #[arg(long = "statsd.relay.address", value_name = "HOST:PORT")]
    pub relay_address: Option<String>,

    /// Maximum relay output packet length, to avoid fragmentation.
    #[arg(long = "statsd.relay.packet-length", value_name = "BYTES", default_value_t = DEFAULT_RELAY_PACKET_LENGTH, value_parser = parse_uint::<usize>)]
    pub relay_packet_length: usize,

    /// Accepted for compatibility, no effect: there is no event queue (samples go to the store as they
    /// are parsed).
    #[arg(
        long = "statsd.event-queue-size",
        value_name = "N",
        default_value_t = 10000,
        value_parser = parse_uint::<u64>
    )]
    pub event_queue_size: u64,

    /// Accepted for compatibility, no effect: there is no event queue.
    #[arg(
        long = "statsd.event-flush-threshold",
        value_name = "N",
        default_value_t = 1000,
        value_parser = parse_count::<u64>
    )]
    pub event_flush_threshold: u64,

    /// Accepted for compatibility, no effect: there is no event queue.
    #[arg(
        long = "statsd.event-flush-interval",
        value_name = "DURATION",
        default_value = "200ms"
    )]
    pub event_flush_interval: String,

    /// Accepted for compatibility, no effect: receive workers parse datagrams where they land, with no
    /// packet queue in between.
    #[arg(
        long = "statsd.udp-packet-queue-size",
        value_name = "N",
        default_value_t = 10000,
        value_parser = parse_count::<u64>
    )]
    pub udp_packet_queue_size: u64,

    /// Accepted for compatibility, no effect: there is no FSM to dump (globs are matched by a trie;
    /// `--check-config` reports what a mapping file holds).
    #[arg(long = "debug.dump-fsm", value_name = "PATH", default_value = "")]
    pub dump_fsm: String,

    /// TLS, basic auth, response headers and a rate limit for every HTTP endpoint, in the Prometheus
    /// exporter-toolkit web configuration format (re-read when it or a file it names changes). An
    /// invalid file refuses the start, naming the key and its line.
    #[arg(long = "web.config.file", value_name = "FILE", default_value = "")]
    pub web_config_file: String,

    /// Serve HTTP on the listening socket systemd passes (socket activation: `LISTEN_FDS`, the first
    /// socket) instead of --web.listen-address.
    #[arg(long = "web.systemd-socket")]
    pub web_systemd_socket: bool,

    /// Most series kept in all (0: unlimited). A sample that would create one more is dropped and counted
    /// in statsd_proxy_series_limited_total; existing series keep updating. The default fits a large
    /// Mastodon instance (~10–30k series) with room, and bounds memory on a small VM.
    #[arg(long = "statsd.max-series", value_name = "N", default_value_t = statsd_store::DEFAULT_MAX_SERIES)]
    pub max_series: usize,

    /// Most series of one metric name (0: unlimited), so that one runaway label cannot take the whole
    /// budget.
    #[arg(long = "statsd.max-series-per-metric", value_name = "N", default_value_t = statsd_store::DEFAULT_MAX_SERIES_PER_METRIC)]
    pub max_series_per_metric: usize,

    /// Window over which StatsD sets (`|s`) count distinct members (Go duration syntax).
    #[arg(long = "statsd.set-window", value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub set_window: std::time::Duration,

    /// Only log messages with the given severity or above: debug, info, warn, error (in any case).
    #[arg(long = "log.level", value_name = "LEVEL", default_value = "info", ignore_case = true,
          value_parser = clap::builder::TypedValueParser::map(
              clap::builder::PossibleValuesParser::new(["debug", "info", "warn", "error"]),
              |level: String| level.to_ascii_lowercase()))]
    pub log_level: String,

    /// Output format of log messages: logfmt or json.
    #[arg(long = "log.format", value_name = "FORMAT", default_value = "logfmt",
          value_parser = ["logfmt", "json"])]
    pub log_format: String,
}

/// Half the cores, at least one (see `--statsd.udp-workers`).
pub fn default_udp_workers() -> usize {
    (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).max(1)
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Mapping tools: check a mapping file, or see what StatsD lines turn into.
    Mapping {
        /// What to do.
        #[command(subcommand)]
        action: MappingCommand,
    },
}

/// `statsd-proxy mapping …`
#[derive(Debug, Clone, Subcommand)]
pub enum MappingCommand {
    /// Check the mapping (the --statsd.mapping-config file, else the embedded one): exit 0 or 1, with
    /// file:line:column for every problem. The same as --check-config.
    Check,
    /// Show what StatsD lines turn into with the mapping: how each sample is read, which rule matches
    /// (and where it is in the file), and the series it updates, or why it is dropped or refused. Lines
    /// come from the arguments, or from standard input, one per line.
    Explain {
        /// StatsD lines, e.g. 'Mastodon.production.web.HomeController.index.html.total_duration:42|ms'.
        lines: Vec<String>,
    },
    /// Find what a mapping loads with but should not have: rules that can never match, templates that
    /// expand to nothing, labels of unbounded cardinality, names that collide across types or with our
    /// own metrics, regexes a glob would do. Each finding with file:line:column and a severity; exit 1
    /// on errors (and on warnings with --strict).
    Lint {
        /// The mapping file (default: the --statsd.mapping-config file, else the embedded one).
        file: Option<std::path::PathBuf>,
        /// Fail on warnings too.
        #[arg(long)]
        strict: bool,
    },
}

impl Cli {
    /// The tag dialects the flags leave on (each `--no-…` flag turns one off; the last flag given wins).
    pub fn dialects(&self) -> Dialects {
        Dialects {
            dogstatsd: !self.no_dogstatsd,
            influxdb: !self.no_influxdb,
            librato: !self.no_librato,
            signalfx: !self.no_signalfx,
        }
    }

    /// `--check-config` given (and not negated after).
    pub fn check_config_requested(&self) -> bool {
        self.check_config && !self.no_check_config
    }

    /// The mapping the flags choose (see [`MappingSource::from_flags`]).
    pub fn mapping_source(&self) -> MappingSource {
        let file = self.mapping_config.as_deref().map(std::path::Path::new);
        MappingSource::from_flags(file, &self.default_mapping)
    }

    /// `--statsd.mapping-strict` (and not negated after it).
    pub fn mapping_strict(&self) -> bool {
        self.mapping_strict && !self.no_mapping_strict
    }

    /// The unixgram socket's mode, and a warning when the flag's value is not an octal mode.
    pub fn unixsocket_mode(&self) -> (u32, Option<String>) {
        match parse_mode(&self.unixsocket_mode) {
            Ok(mode) => (mode, None),
            Err(e) => (
                DEFAULT_UNIXSOCKET_MODE,
                Some(format!(
                    "--statsd.unixsocket-mode: {e}; using {DEFAULT_UNIXSOCKET_MODE:o}"
                )),
            ),
        }
    }

    /// Flags accepted for compatibility that change nothing here, with their values (for a debug log).
    pub fn without_effect(&self) -> Vec<String> {
        let mut notes = vec![
            format!("--statsd.event-queue-size={}", self.event_queue_size),
            format!(
                "--statsd.event-flush-threshold={}",
                self.event_flush_threshold
            ),
            format!(
                "--statsd.event-flush-interval={}",
                self.event_flush_interval
            ),
            format!(
                "--statsd.udp-packet-queue-size={}",
                self.udp_packet_queue_size
            ),
            format!("--statsd.cache-type={}", self.cache_type),
        ];
        if !self.dump_fsm.is_empty() {
            notes.push(format!("--debug.dump-fsm={}", self.dump_fsm));
        }
        notes
    }

    /// The application configuration these flags describe.
    pub fn config(&self) -> Config {
        let optional = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Config {
            listen_udp: optional(&self.listen_udp),
            listen_tcp: optional(&self.listen_tcp),
            listen_unixgram: optional(&self.listen_unixgram).map(PathBuf::from),
            unixsocket_mode: self.unixsocket_mode().0,
            web_listen_address: self.web_listen_address.clone(),
            web_config_file: optional(&self.web_config_file).map(PathBuf::from),
            web_listener: None,
            telemetry_path: self.telemetry_path.clone(),
            enable_lifecycle: self.enable_lifecycle && !self.no_enable_lifecycle,
            web_max_connections: self.web_max_connections,
            dialects: self.dialects(),
            tcp: TcpLimits {
                max_line: self.tcp_max_line,
                max_connections: self.tcp_max_connections,
                idle_timeout: self.tcp_idle_timeout,
            },
            read_buffer: self.read_buffer.filter(|&b| b > 0),
            udp_workers: self.udp_workers.unwrap_or_else(default_udp_workers),
            udp_reuseport: self.udp_reuseport,
            mapping: self.mapping_source(),
            mapping_strict: self.mapping_strict(),
            cache_size: self.cache_size,
            store: statsd_store::Config {
                limits: statsd_store::Limits {
                    max_series: self.max_series,
                    max_series_per_metric: self.max_series_per_metric,
                },
                set_window: self.set_window,
            },
            relay: optional(self.relay_address.as_deref().unwrap_or_default()).map(|address| {
                RelayConfig {
                    address,
                    packet_length: self.relay_packet_length,
                }
            }),
            clock: std::sync::Arc::new(statsd_store::SystemClock),
        }
    }
}

#[cfg(test)]
mod tests;
