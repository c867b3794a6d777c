//! The running proxy: listeners, the HTTP endpoint, reload, relay, and shutdown.
//!
//! [`start`] loads the mapping, binds every socket (so a bad address or file fails before anything
//! runs), starts the receive workers and tasks, and returns a [`Running`] handle with the bound
//! addresses; [`Running::shutdown`] stops them all. [`run`] is the binary's entry point: start, then
//! reload on SIGHUP and stop on SIGINT, SIGTERM or `/-/quit`.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use statsd_line::{Dialects, Parser};
use statsd_store::{Store, SystemClock};
use tokio::net::{TcpListener, TcpStream, UnixDatagram};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::http;
use crate::ingest::{Ingest, LineFramer};
use crate::mappings::Mappings;
use crate::relay::{self, RelayMetrics};
use crate::telemetry::Telemetry;
use crate::udp;

/// TCP read buffer size.
pub const TCP_READ_BUFFER: usize = 16 * 1024;
/// How long [`run`] waits for tasks to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often series TTLs are checked (statsd_exporter checks every second too).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Default `--statsd.tcp-max-connections`.
pub const DEFAULT_TCP_MAX_CONNECTIONS: usize = 1024;
/// Default `--statsd.tcp-idle-timeout`.
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

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

/// Relay settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// `host:port` of the StatsD server to forward to.
    pub address: String,
    /// Largest datagram sent.
    pub packet_length: usize,
}

/// What the proxy needs to run, built from the command line (see [`crate::cli::Cli::config`]).
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
    /// Path of the scrape endpoint.
    pub telemetry_path: String,
    /// Serve `/-/reload` and `/-/quit`.
    pub enable_lifecycle: bool,
    /// Tag dialects to parse.
    pub dialects: Dialects,
    /// Longest TCP line accepted, in bytes.
    pub tcp_max_line: usize,
    /// Most TCP connections open at once.
    pub tcp_max_connections: usize,
    /// Close TCP connections idle this long (zero: never).
    pub tcp_idle_timeout: Duration,
    /// Kernel receive buffer for UDP and unixgram sockets (`SO_RCVBUF`), if set.
    pub read_buffer: Option<usize>,
    /// UDP receive worker threads.
    pub udp_workers: usize,
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
}

impl Config {
    /// A configuration listening on `127.0.0.1` with ephemeral ports, for tests and tools.
    pub fn loopback() -> Self {
        Self {
            listen_udp: Some("127.0.0.1:0".into()),
            listen_tcp: Some("127.0.0.1:0".into()),
            listen_unixgram: None,
            unixsocket_mode: 0o755,
            web_listen_address: "127.0.0.1:0".into(),
            telemetry_path: "/metrics".into(),
            enable_lifecycle: false,
            dialects: Dialects::default(),
            tcp_max_line: crate::cli::DEFAULT_TCP_MAX_LINE,
            tcp_max_connections: DEFAULT_TCP_MAX_CONNECTIONS,
            tcp_idle_timeout: DEFAULT_TCP_IDLE_TIMEOUT,
            read_buffer: None,
            udp_workers: 1,
            mapping: MappingSource::None,
            mapping_strict: false,
            cache_size: statsd_mapping::DEFAULT_CACHE_SIZE,
            store: statsd_store::Config::default(),
            relay: None,
        }
    }
}

/// Errors that stop the proxy from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listen address did not resolve or could not be bound.
    #[error("cannot listen on {what} address {addr:?}: {source}")]
    Bind {
        /// Which listener (`UDP`, `TCP`, `unixgram`, `web`).
        what: &'static str,
        /// The address as given.
        addr: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The mapping file is invalid (the error names file:line:column).
    #[error("invalid mapping file: {0}")]
    Mapping(#[from] statsd_mapping::LoadError),
    /// A path exists where the unixgram socket should be created, and it is not a socket.
    #[error("{0} exists and is not a socket: refusing to replace it")]
    NotASocket(PathBuf),
    /// The relay target does not resolve.
    #[error("invalid relay address {0:?}: {1}")]
    Relay(String, io::Error),
    /// No listener is enabled.
    #[error("at least one of the UDP, TCP and unixgram listeners must be enabled")]
    NoListener,
}

/// State shared by the HTTP handlers, signal handling and the receive side.
#[derive(Debug)]
pub struct Shared {
    /// The series.
    pub store: Arc<Store>,
    /// Our own metrics.
    pub telemetry: Telemetry,
    /// The current mapping; replaced whole on reload.
    pub mappings: Arc<ArcSwap<Mappings>>,
    /// Where the mapping comes from.
    pub source: MappingSource,
    /// Refuse a reloaded file with warnings.
    pub mapping_strict: bool,
    /// Listeners are bound and the mapping is loaded; false again once shutdown begins.
    pub ready: AtomicBool,
    /// Serve `/-/reload` and `/-/quit`.
    pub enable_lifecycle: bool,
    /// The scrape path.
    pub telemetry_path: String,
    /// Notified by `/-/quit`.
    pub quit: Notify,
    /// Kernel drop accounting: our UDP sockets' inodes, and the drops already counted.
    udp_inodes: Vec<u64>,
    udp_drops_seen: AtomicUsize,
}

impl Shared {
    /// Reloads the mapping: built off the hot path, swapped atomically; series and their values are
    /// kept. On error the current mapping stays. Returns the number of rules now loaded.
    pub async fn reload(&self) -> Result<usize, String> {
        let MappingSource::File(path) = &self.source else {
            tracing::info!("reload requested, but no mapping file is configured: nothing to do");
            return Ok(self.mappings.load().mapper.rules().len());
        };
        let path = path.clone();
        let strict = self.mapping_strict;
        let loaded = tokio::task::spawn_blocking(move || Mappings::load(&path, strict))
            .await
            .map_err(|e| format!("reload task failed: {e}"))?;
        match loaded {
            Ok(mappings) => {
                let rules = mappings.mapper.rules().len();
                let warnings = mappings.mapper.warnings().len();
                self.mappings.store(Arc::new(mappings));
                self.telemetry.reloaded(true, rules, warnings);
                tracing::info!(rules, "mapping reloaded");
                Ok(rules)
            }
            Err(e) => {
                self.telemetry
                    .reloaded(false, self.mappings.load().mapper.rules().len(), 0);
                tracing::error!(error = %e, "mapping reload failed; the previous mapping stays in use");
                Err(e.to_string())
            }
        }
    }

    /// Brings the kernel drop counter up to date (called before each scrape).
    pub fn update_kernel_drops(&self) {
        if self.udp_inodes.is_empty() {
            return;
        }
        let now = udp::kernel_drops(&self.udp_inodes) as usize;
        let before = self.udp_drops_seen.swap(now, Ordering::Relaxed);
        if now > before {
            self.telemetry
                .udp_packet_drops
                .inc_by((now - before) as u64);
        }
    }
}

/// A started proxy.
#[derive(Debug)]
pub struct Running {
    /// The bound UDP address, if UDP is on.
    pub udp_addr: Option<SocketAddr>,
    /// The bound TCP address, if TCP is on.
    pub tcp_addr: Option<SocketAddr>,
    /// The bound HTTP address.
    pub http_addr: SocketAddr,
    /// Shared state (store, telemetry, mapping).
    pub shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    udp_workers: Option<udp::Workers>,
    unixgram_path: Option<PathBuf>,
}

impl Running {
    /// Signals every task to stop and waits up to `grace` for them; returns false if some had to be
    /// aborted. Removes the unixgram socket file.
    pub async fn shutdown(mut self, grace: Duration) -> bool {
        self.shared.ready.store(false, Ordering::Relaxed);
        let _ = self.stop.send(true);
        if let Some(workers) = self.udp_workers.take() {
            let _ = tokio::task::spawn_blocking(move || workers.stop()).await;
        }
        let all_done = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        if !all_done {
            self.tasks.abort_all();
        }
        if let Some(path) = &self.unixgram_path {
            let _ = std::fs::remove_file(path);
        }
        all_done
    }
}

/// Resolves a Go-style listen address: `:port` means every interface (IPv6 and IPv4 on one dual-stack
/// socket where the system allows, else IPv4), `host:port` is resolved.
async fn candidates(addr: &str) -> io::Result<Vec<SocketAddr>> {
    if let Some(port) = addr.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid port"))?;
        return Ok(vec![
            SocketAddr::from(([0u16; 8], port)),
            SocketAddr::from(([0u8; 4], port)),
        ]);
    }
    let found: Vec<SocketAddr> = tokio::net::lookup_host(addr).await?.collect();
    if found.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "address resolved to nothing",
        ));
    }
    Ok(found)
}

/// Binds the first candidate address that works.
async fn bind_first<T, F, Fut>(what: &'static str, addr: &str, bind: F) -> Result<T, StartError>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let err = |source| StartError::Bind {
        what,
        addr: addr.to_string(),
        source,
    };
    let mut last = None;
    for candidate in candidates(addr).await.map_err(err)? {
        match bind(candidate).await {
            Ok(socket) => return Ok(socket),
            Err(e) => last = Some(e),
        }
    }
    Err(err(
        last.unwrap_or_else(|| io::Error::other("no address to bind"))
    ))
}

/// Creates the unixgram socket: a stale socket file from a previous run is replaced; any other file
/// at the path is an error.
fn bind_unixgram(
    path: &Path,
    mode: u32,
    read_buffer: Option<usize>,
) -> Result<UnixDatagram, StartError> {
    let bind_err = |source| StartError::Bind {
        what: "unixgram",
        addr: path.display().to_string(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path).map_err(bind_err)?,
        Ok(_) => return Err(StartError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(bind_err(e)),
    }
    let socket = std::os::unix::net::UnixDatagram::bind(path).map_err(bind_err)?;
    if let Some(bytes) = read_buffer {
        socket2::SockRef::from(&socket)
            .set_recv_buffer_size(bytes)
            .map_err(bind_err)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(bind_err)?;
    socket.set_nonblocking(true).map_err(bind_err)?;
    UnixDatagram::from_std(socket).map_err(bind_err)
}

/// Loads the mapping, binds every listener and starts serving.
pub async fn start(config: Config) -> Result<Running, StartError> {
    if config.listen_udp.is_none()
        && config.listen_tcp.is_none()
        && config.listen_unixgram.is_none()
    {
        return Err(StartError::NoListener);
    }
    // The mapping first: a bad file never starts a half-configured proxy.
    let mappings = match &config.mapping {
        MappingSource::File(path) => {
            let m = Mappings::load(path, config.mapping_strict)?;
            let rules = m.mapper.rules().len();
            let warnings = m.mapper.warnings().len();
            tracing::info!(file = %path.display(), rules, warnings, "loaded mapping file");
            m
        }
        MappingSource::EmbeddedMastodon => {
            let m = Mappings::embedded_mastodon();
            tracing::info!(
                rules = m.mapper.rules().len(),
                "no --statsd.mapping-config: using the embedded Mastodon mapping \
                 (--statsd.default-mapping=none exposes every metric unmapped instead)"
            );
            m
        }
        MappingSource::None => Mappings::none(),
    };
    let store = Arc::new(Store::with_config(config.store, Arc::new(SystemClock)));
    let telemetry = Telemetry::new();
    telemetry
        .series_limit
        .set(i64::try_from(config.store.limits.max_series).unwrap_or(i64::MAX));
    telemetry.reloaded_initially(
        mappings.mapper.rules().len(),
        mappings.mapper.warnings().len(),
    );
    let mappings = Arc::new(ArcSwap::from_pointee(mappings));
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();

    let relay = match &config.relay {
        Some(rc) => {
            let target = tokio::net::lookup_host(&rc.address)
                .await
                .and_then(|mut a| {
                    a.next()
                        .ok_or_else(|| io::Error::other("resolved to nothing"))
                })
                .map_err(|e| StartError::Relay(rc.address.clone(), e))?;
            let metrics = RelayMetrics::register(&telemetry.registry, &rc.address);
            let (queue, task) = relay::start(target, rc.packet_length, metrics, stopped.clone());
            tasks.spawn(task);
            tracing::info!(%target, packet_length = rc.packet_length, "relaying lines");
            Some(queue)
        }
        None => None,
    };
    // Our own metric names (relay ones included) are never StatsD series: a scrape never holds two
    // families of one name.
    store.reserve_names(telemetry.names());

    let ingest = Ingest::new(
        Parser::new(config.dialects),
        Arc::clone(&mappings),
        Arc::clone(&store),
        telemetry.clone(),
        config.cache_size,
        relay,
    );

    let read_buffer = config.read_buffer;
    let udp = match &config.listen_udp {
        Some(addr) => {
            Some(bind_first("UDP", addr, |a| async move { udp::bind(a, read_buffer) }).await?)
        }
        None => None,
    };
    let tcp = match &config.listen_tcp {
        Some(addr) => Some(bind_first("TCP", addr, TcpListener::bind).await?),
        None => None,
    };
    let unixgram = match &config.listen_unixgram {
        Some(path) => Some(bind_unixgram(path, config.unixsocket_mode, read_buffer)?),
        None => None,
    };
    let web = bind_first("web", &config.web_listen_address, TcpListener::bind).await?;

    let udp_addr = udp.as_ref().and_then(|s| s.local_addr().ok());
    let tcp_addr = tcp.as_ref().and_then(|s| s.local_addr().ok());
    let http_addr = web.local_addr().map_err(|source| StartError::Bind {
        what: "web",
        addr: config.web_listen_address.clone(),
        source,
    })?;
    let udp_inodes: Vec<u64> = udp.iter().filter_map(udp::inode).collect();

    let udp_workers = match udp {
        Some(socket) => {
            tracing::info!(
                address = %udp_addr.map(|a| a.to_string()).unwrap_or_default(),
                workers = config.udp_workers,
                "listening for StatsD on UDP"
            );
            Some(
                udp::Workers::start(socket, config.udp_workers, &ingest, &telemetry).map_err(
                    |source| StartError::Bind {
                        what: "UDP",
                        addr: config.listen_udp.clone().unwrap_or_default(),
                        source,
                    },
                )?,
            )
        }
        None => None,
    };
    if let Some(listener) = tcp {
        tracing::info!(address = %tcp_addr.map(|a| a.to_string()).unwrap_or_default(), "listening for StatsD on TCP");
        tasks.spawn(tcp_loop(
            listener,
            ingest.clone(),
            telemetry.clone(),
            TcpLimits::from(&config),
            stopped.clone(),
        ));
    }
    if let Some(socket) = unixgram {
        let path = config.listen_unixgram.clone().unwrap_or_default();
        tracing::info!(path = %path.display(), "listening for StatsD on unixgram");
        tasks.spawn(unixgram_loop(
            socket,
            ingest.clone(),
            telemetry.clone(),
            stopped.clone(),
        ));
    }
    let shared = Arc::new(Shared {
        store: Arc::clone(&store),
        telemetry,
        mappings,
        source: config.mapping.clone(),
        mapping_strict: config.mapping_strict,
        // Ready from the start: every listener is bound and the mapping loaded, and the HTTP task (which
        // alone reads this) is spawned only below, so no request can see "not ready" before shutdown.
        ready: AtomicBool::new(true),
        enable_lifecycle: config.enable_lifecycle,
        telemetry_path: config.telemetry_path.clone(),
        quit: Notify::new(),
        udp_inodes,
        udp_drops_seen: AtomicUsize::new(0),
    });
    shared.update_kernel_drops();
    tracing::info!(address = %http_addr, path = %config.telemetry_path, "serving metrics over HTTP");
    tasks.spawn(http::serve(web, Arc::clone(&shared), stopped.clone()));
    tasks.spawn(sweep(Arc::clone(&store), stopped));

    Ok(Running {
        udp_addr,
        tcp_addr,
        http_addr,
        shared,
        stop,
        tasks,
        udp_workers,
        unixgram_path: config.listen_unixgram.clone(),
    })
}

/// Runs until SIGINT, SIGTERM or `/-/quit`, reloading the mapping on SIGHUP; then stops within
/// [`SHUTDOWN_GRACE`].
///
/// The signal handlers are installed before any socket is bound, so once the proxy reports that it
/// listens, a signal always gets its handling (never the default "terminate at once").
pub async fn run(config: Config) -> Result<(), StartError> {
    let signals = Signals::install();
    let running = start(config).await?;
    signals.serve(&running.shared).await;
    tracing::info!("shutting down");
    if !running.shutdown(SHUTDOWN_GRACE).await {
        tracing::warn!("some tasks did not stop within the grace period and were aborted");
    }
    Ok(())
}

/// SIGINT, SIGTERM and SIGHUP, registered eagerly (tokio's `ctrl_c()` registers only when first polled).
struct Signals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let watch = |kind: SignalKind| {
            signal(kind)
                .map_err(|e| tracing::warn!(error = %e, ?kind, "cannot watch signal"))
                .ok()
        };
        Self {
            interrupt: watch(SignalKind::interrupt()),
            terminate: watch(SignalKind::terminate()),
            hangup: watch(SignalKind::hangup()),
        }
    }

    /// Reloads on SIGHUP until a stop signal or `/-/quit` arrives.
    async fn serve(mut self, shared: &Shared) {
        async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        loop {
            tokio::select! {
                _ = recv(&mut self.interrupt) => return,
                _ = recv(&mut self.terminate) => return,
                _ = shared.quit.notified() => return,
                _ = recv(&mut self.hangup) => {
                    tracing::info!("SIGHUP: reloading the mapping");
                    // Errors are logged and counted by `reload`.
                    let _ = shared.reload().await;
                }
            }
        }
    }
}

/// Advances the store's coarse clock and removes expired series, every [`SWEEP_INTERVAL`].
async fn sweep(store: Arc<Store>, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(SWEEP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = interval.tick() => {
                store.tick();
                let removed = store.expire();
                if removed > 0 {
                    tracing::debug!(removed, "expired series");
                }
            }
        }
    }
}

async fn unixgram_loop(
    socket: UnixDatagram,
    ingest: Ingest,
    telemetry: Telemetry,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; udp::MAX_DATAGRAM];
    let mut scratch = ingest.scratch();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            received = socket.recv(&mut buf) => match received {
                Ok(n) => {
                    telemetry.unixgram_packets.inc();
                    ingest.packet(&buf[..n], &mut scratch);
                }
                Err(e) => tracing::debug!(error = %e, "unixgram receive error"),
            },
        }
    }
}

/// TCP resource bounds.
#[derive(Debug, Clone, Copy)]
struct TcpLimits {
    max_line: usize,
    max_connections: usize,
    idle_timeout: Duration,
}

impl From<&Config> for TcpLimits {
    fn from(c: &Config) -> Self {
        Self {
            max_line: c.tcp_max_line,
            max_connections: c.tcp_max_connections,
            idle_timeout: c.tcp_idle_timeout,
        }
    }
}

async fn tcp_loop(
    listener: TcpListener,
    ingest: Ingest,
    telemetry: Telemetry,
    limits: TcpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    telemetry.tcp_connections.inc();
                    if limits.max_connections > 0 && open.load(Ordering::Relaxed) >= limits.max_connections {
                        telemetry.tcp_connections_refused.inc();
                        tracing::debug!(%peer, "TCP connection refused: --statsd.tcp-max-connections reached");
                        drop(stream);
                        continue;
                    }
                    open.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "TCP connection");
                    let open = Arc::clone(&open);
                    let (ingest, telemetry, stop) = (ingest.clone(), telemetry.clone(), stop.clone());
                    tokio::spawn(async move {
                        tcp_connection(stream, ingest, telemetry, limits, stop).await;
                        open.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                Err(e) => {
                    telemetry.tcp_connection_errors.inc();
                    tracing::warn!(error = %e, "TCP accept error");
                }
            },
        }
    }
}

async fn tcp_connection(
    mut stream: TcpStream,
    ingest: Ingest,
    telemetry: Telemetry,
    limits: TcpLimits,
    mut stop: watch::Receiver<bool>,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; TCP_READ_BUFFER];
    let mut framer = LineFramer::new(limits.max_line);
    let mut scratch = ingest.scratch();
    let idle = if limits.idle_timeout.is_zero() {
        Duration::MAX
    } else {
        limits.idle_timeout
    };
    loop {
        let read = tokio::select! {
            biased;
            _ = stop.changed() => break,
            read = tokio::time::timeout(idle, stream.read(&mut buf)) => read,
        };
        match read {
            Err(_elapsed) => {
                tracing::debug!("closing idle TCP connection");
                break;
            }
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => {
                framer.push(
                    &buf[..n],
                    |line| ingest.lines_of(line, &mut scratch),
                    || telemetry.tcp_too_long_lines.inc(),
                );
                ingest.publish(&mut scratch);
            }
            Ok(Err(e)) => {
                telemetry.tcp_connection_errors.inc();
                tracing::debug!(error = %e, "TCP read error");
                break;
            }
        }
    }
    framer.finish(|line| ingest.lines_of(line, &mut scratch));
    ingest.publish(&mut scratch);
}
