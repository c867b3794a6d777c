//! What the proxy runs with: [`Config`] and every default, in one place. `cli` builds a `Config` from
//! statsd_exporter's flags; `app` runs one. Nothing here does I/O.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use statsd_line::Dialects;
use statsd_store::{Clock, SystemClock};

/// Default StatsD UDP and TCP listen address (every interface, IPv4 and IPv6).
pub const DEFAULT_STATSD_ADDRESS: &str = ":9125";
/// Default web listen address.
pub const DEFAULT_WEB_ADDRESS: &str = ":9102";
/// Default scrape path.
pub const DEFAULT_TELEMETRY_PATH: &str = "/metrics";
/// Default longest TCP line, in bytes.
pub const DEFAULT_TCP_MAX_LINE: usize = 4096;
/// Accept-queue depth of the TCP listeners (statsd_exporter's Go runtime uses the system's maximum,
/// typically 4096).
pub const LISTEN_BACKLOG: i32 = 4096;
/// Default `--statsd.tcp-idle-timeout`.
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The permission mode of the unixgram socket when none (or a bad one) is given.
pub const DEFAULT_UNIXSOCKET_MODE: u32 = 0o755;
/// Default `--statsd.relay.packet-length`: fits an Ethernet MTU without fragmentation.
pub const DEFAULT_RELAY_PACKET_LENGTH: usize = 1400;
/// Largest TCP read buffer; a connection's buffer starts at [`TCP_FIRST_READ`] and grows to this when
/// reads fill it.
pub const TCP_READ_BUFFER: usize = 16 * 1024;
/// First TCP read buffer of a connection (an idle one never needs more).
pub const TCP_FIRST_READ: usize = 1024;
/// How long `app::run` waits for tasks to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long an HTTP client may take to send its request headers (slow-header clients cannot hold a
/// connection slot for ever).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Scrape chunks rendered at once (each on a blocking thread); more wait for a slot, so scrapes cannot
/// take every core from ingest.
pub const MAX_CONCURRENT_RENDERS: usize = 2;
/// Scrapes streaming at once. Each holds a chunk and, gzipped, a compressor (about 300 KiB), so this
/// bounds scrape memory; more wait up to [`SCRAPE_QUEUE_TIMEOUT`] for a slot.
pub const MAX_STREAMING_SCRAPES: usize = 32;
/// How long a scrape waits for a streaming slot before it is answered 503 with `Retry-After`.
pub const SCRAPE_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// An HTTP client that accepts no bytes of a response for this long is disconnected (a client that
/// stops reading cannot hold its connection and scrape slot for ever).
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How often series TTLs are checked (statsd_exporter checks every second too).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Where the mapping comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingSource {
    /// No mapping: every metric unmapped.
    None,
    /// The Mastodon mapping shipped in the binary.
    EmbeddedMastodon,
    /// A mapping file, reloadable.
    File(PathBuf),
}

impl MappingSource {
    /// The one place the flags choose a mapping: the file if one is named (an empty name is none, as
    /// units that build it from a variable give), else `--statsd.default-mapping` (`none` or the
    /// embedded Mastodon mapping).
    pub fn from_flags(file: Option<&std::path::Path>, default_mapping: &str) -> Self {
        match file.filter(|p| !p.as_os_str().is_empty()) {
            Some(path) => MappingSource::File(path.to_path_buf()),
            None if default_mapping == "none" => MappingSource::None,
            None => MappingSource::EmbeddedMastodon,
        }
    }
}

/// Relay settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// `host:port` of the StatsD server to forward to.
    pub address: String,
    /// Largest datagram sent.
    pub packet_length: usize,
}

/// TCP resource bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Longest line accepted, in bytes.
    pub max_line: usize,
    /// Most connections open at once (0: unlimited; `None`: sized from the file-descriptor limit).
    pub max_connections: Option<usize>,
    /// Close connections idle this long (zero: never).
    pub idle_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        Self {
            max_line: DEFAULT_TCP_MAX_LINE,
            max_connections: None,
            idle_timeout: DEFAULT_TCP_IDLE_TIMEOUT,
        }
    }
}

/// What the proxy needs to run, built from the command line by `cli::Cli::config`.
#[derive(Debug, Clone)]
pub struct Config {
    /// UDP listen address (`host:port`, `:port` for every interface); `None` disables UDP.
    pub listen_udp: Option<String>,
    /// TCP listen address; `None` disables TCP.
    pub listen_tcp: Option<String>,
    /// Unix datagram socket path; `None` disables it.
    pub listen_unixgram: Option<PathBuf>,
    /// Permission bits of the unixgram socket file.
    pub unixsocket_mode: u32,
    /// HTTP listen address for `/metrics` and friends.
    pub web_listen_address: String,
    /// `--web.config.file`: TLS, basic auth, response headers, rate limit (exporter-toolkit format).
    pub web_config_file: Option<PathBuf>,
    /// `--web.systemd-socket`: the listening socket systemd passed (taken by the binary before the
    /// runtime starts), served instead of `web_listen_address`.
    pub web_listener: Option<Arc<std::net::TcpListener>>,
    /// Path of the scrape endpoint.
    pub telemetry_path: String,
    /// Serve `/-/reload` and `/-/quit`.
    pub enable_lifecycle: bool,
    /// Most HTTP connections served at once; more wait in the accept queue (`None`: sized from the
    /// file-descriptor limit).
    pub web_max_connections: Option<usize>,
    /// Tag dialects to parse.
    pub dialects: Dialects,
    /// TCP line, connection and idle bounds.
    pub tcp: TcpLimits,
    /// Kernel receive buffer for UDP and unixgram sockets (`SO_RCVBUF`), if set.
    pub read_buffer: Option<usize>,
    /// UDP receive worker threads.
    pub udp_workers: usize,
    /// One `SO_REUSEPORT` socket per UDP worker instead of one shared socket.
    pub udp_reuseport: bool,
    /// The mapping.
    pub mapping: MappingSource,
    /// Refuse a mapping file with warnings (`--statsd.mapping-strict`), at start and on reload.
    pub mapping_strict: bool,
    /// Mapping results cached per receive worker (0 disables the cache).
    pub cache_size: usize,
    /// Series limits and the set window.
    pub store: statsd_store::Config,
    /// Forward raw lines to another StatsD server.
    pub relay: Option<RelayConfig>,
    /// The store's time source (TTL, summary windows, set windows): the system clock, or a manual one
    /// in tests.
    pub clock: Arc<dyn Clock>,
}

impl Config {
    /// A configuration listening on `127.0.0.1` with ephemeral ports, for tests and tools.
    pub fn loopback() -> Self {
        Self {
            listen_udp: Some("127.0.0.1:0".into()),
            listen_tcp: Some("127.0.0.1:0".into()),
            listen_unixgram: None,
            unixsocket_mode: DEFAULT_UNIXSOCKET_MODE,
            web_listen_address: "127.0.0.1:0".into(),
            web_config_file: None,
            web_listener: None,
            telemetry_path: DEFAULT_TELEMETRY_PATH.into(),
            enable_lifecycle: false,
            web_max_connections: None,
            dialects: Dialects::default(),
            tcp: TcpLimits::default(),
            read_buffer: None,
            udp_workers: 1,
            udp_reuseport: false,
            mapping: MappingSource::None,
            mapping_strict: false,
            cache_size: statsd_mapping::DEFAULT_CACHE_SIZE,
            store: statsd_store::Config::default(),
            relay: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Entries each UDP or unixgram worker's series cache may grow to (see [`crate::series_cache`]):
    /// the series limit (each entry leads to one series; a name sent in several spellings takes one
    /// entry each, and the least recently used goes first), or [`statsd_store::DEFAULT_MAX_SERIES`]
    /// when the store is unlimited; never less than `--statsd.cache-size`.
    pub fn series_cache_size(&self) -> usize {
        let series = match self.store.limits.max_series {
            0 => statsd_store::DEFAULT_MAX_SERIES,
            n => n,
        };
        series.max(self.cache_size)
    }
}
