//! The running proxy: listeners, the HTTP endpoint, and shutdown.
//!
//! [`start`] binds every socket (so a bad address fails before anything runs), spawns one task per
//! listener, and returns a [`Running`] handle with the bound addresses; [`Running::shutdown`] stops them
//! all. [`run`] is the binary's entry point: start, wait for a signal, stop.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use statsd_line::{Dialects, Parser};
use statsd_store::{Store, SystemClock};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::http;
use crate::ingest::{Ingest, LineFramer};
use crate::mappings::Mappings;
use crate::telemetry::Telemetry;

/// Largest UDP datagram we accept (the IPv4/IPv6 payload limit).
pub const MAX_UDP_PACKET: usize = 65_535;
/// TCP read buffer size.
pub const TCP_READ_BUFFER: usize = 16 * 1024;
/// How long [`run`] waits for tasks to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the proxy needs to run, built from the command line (see [`crate::cli::Cli::config`]).
#[derive(Debug, Clone)]
pub struct Config {
    /// UDP listen address (`host:port`, `:port` for every interface); `None` disables UDP.
    pub listen_udp: Option<String>,
    /// TCP listen address; `None` disables TCP.
    pub listen_tcp: Option<String>,
    /// HTTP listen address for `/metrics` and friends.
    pub web_listen_address: String,
    /// Path of the scrape endpoint.
    pub telemetry_path: String,
    /// Tag dialects to parse.
    pub dialects: Dialects,
    /// Longest TCP line accepted, in bytes.
    pub tcp_max_line: usize,
    /// The mapping file; `None`: every metric unmapped.
    pub mapping_config: Option<PathBuf>,
    /// Mapping results cached per receive task (0 disables the cache).
    pub cache_size: usize,
    /// Series limits and the set window.
    pub store: statsd_store::Config,
}

impl Config {
    /// A configuration listening on `127.0.0.1` with ephemeral ports, for tests and tools.
    pub fn loopback() -> Self {
        Self {
            listen_udp: Some("127.0.0.1:0".into()),
            listen_tcp: Some("127.0.0.1:0".into()),
            web_listen_address: "127.0.0.1:0".into(),
            telemetry_path: "/metrics".into(),
            dialects: Dialects::default(),
            tcp_max_line: crate::cli::DEFAULT_TCP_MAX_LINE,
            mapping_config: None,
            cache_size: statsd_mapping::DEFAULT_CACHE_SIZE,
            store: statsd_store::Config::default(),
        }
    }
}

/// Errors that stop the proxy from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listen address did not resolve or could not be bound.
    #[error("cannot listen on {what} address {addr:?}: {source}")]
    Bind {
        /// Which listener (`UDP`, `TCP`, `web`).
        what: &'static str,
        /// The address as given.
        addr: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The mapping file is invalid (the error names file:line:column).
    #[error("invalid mapping file: {0}")]
    Mapping(#[from] statsd_mapping::LoadError),
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
    /// The series store (shared with the tasks).
    pub store: Arc<Store>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// Signals every task to stop and waits up to `grace` for them; returns false if some had to be
    /// aborted.
    pub async fn shutdown(mut self, grace: Duration) -> bool {
        let _ = self.stop.send(true);
        let all_done = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        if !all_done {
            self.tasks.abort_all();
        }
        all_done
    }
}

/// Resolves a Go-style listen address: `:port` means every interface (IPv6 and IPv4, dual-stack where
/// the system allows), `host:port` is resolved.
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

/// Binds every listener and starts serving.
pub async fn start(config: Config) -> Result<Running, StartError> {
    // The mapping first: a bad file never starts a half-configured proxy.
    let mappings = match &config.mapping_config {
        Some(path) => {
            let m = Mappings::load(path)?;
            let rules = m.mapper.rules().len();
            tracing::info!(file = %path.display(), rules, "loaded mapping file");
            m
        }
        None => Mappings::none(),
    };
    let store = Arc::new(Store::with_config(config.store, Arc::new(SystemClock)));
    let telemetry = Telemetry::new();
    // Our own metric names are never StatsD series: a scrape never holds two families of one name.
    store.reserve_names(telemetry.names());
    telemetry
        .series_limit
        .set(i64::try_from(config.store.limits.max_series).unwrap_or(i64::MAX));
    let rules = mappings.mapper.rules().len();
    telemetry
        .loaded_mappings
        .set(i64::try_from(rules).unwrap_or(i64::MAX));
    let ingest = Ingest::new(
        Parser::new(config.dialects),
        Arc::new(mappings),
        Arc::clone(&store),
        telemetry.clone(),
        config.cache_size,
    );
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();

    let udp = match &config.listen_udp {
        Some(addr) => Some(bind_first("UDP", addr, UdpSocket::bind).await?),
        None => None,
    };
    let tcp = match &config.listen_tcp {
        Some(addr) => Some(bind_first("TCP", addr, TcpListener::bind).await?),
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

    if let Some(socket) = udp {
        tracing::info!(address = %udp_addr.map(|a| a.to_string()).unwrap_or_default(), "listening for StatsD on UDP");
        tasks.spawn(udp_loop(
            socket,
            ingest.clone(),
            telemetry.clone(),
            stopped.clone(),
        ));
    }
    if let Some(listener) = tcp {
        tracing::info!(address = %tcp_addr.map(|a| a.to_string()).unwrap_or_default(), "listening for StatsD on TCP");
        tasks.spawn(tcp_loop(
            listener,
            ingest.clone(),
            telemetry.clone(),
            config.tcp_max_line,
            stopped.clone(),
        ));
    }
    tracing::info!(address = %http_addr, path = %config.telemetry_path, "serving metrics over HTTP");
    let state = Arc::new(http::State {
        store: Arc::clone(&store),
        telemetry,
        telemetry_path: config.telemetry_path.clone(),
    });
    tasks.spawn(http::serve(web, state, stopped.clone()));
    tasks.spawn(sweep(Arc::clone(&store), stopped));

    Ok(Running {
        udp_addr,
        tcp_addr,
        http_addr,
        store,
        stop,
        tasks,
    })
}

/// Runs until SIGINT or SIGTERM, then stops within [`SHUTDOWN_GRACE`].
///
/// The signal handlers are installed before any socket is bound, so once the proxy reports that it
/// listens, a SIGTERM always means a clean shutdown (never the default "terminate at once").
pub async fn run(config: Config) -> Result<(), StartError> {
    let signals = Signals::install();
    let running = start(config).await?;
    signals.wait().await;
    tracing::info!("shutting down");
    if !running.shutdown(SHUTDOWN_GRACE).await {
        tracing::warn!("some tasks did not stop within the grace period and were aborted");
    }
    Ok(())
}

/// SIGINT and SIGTERM, registered eagerly (tokio's `ctrl_c()` registers only when first polled).
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let watch = |kind: SignalKind| {
                signal(kind)
                    .map_err(|e| tracing::warn!(error = %e, ?kind, "cannot watch signal"))
                    .ok()
            };
            Self {
                interrupt: watch(SignalKind::interrupt()),
                terminate: watch(SignalKind::terminate()),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            async fn recv(signal: Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = recv(self.interrupt) => {}
                _ = recv(self.terminate) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// How often series TTLs are checked (statsd_exporter checks every second too).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

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

async fn udp_loop(
    socket: UdpSocket,
    ingest: Ingest,
    telemetry: Telemetry,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; MAX_UDP_PACKET];
    let mut scratch = ingest.scratch();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, _peer)) => {
                    telemetry.udp_packets.inc();
                    ingest.packet(&buf[..n], &mut scratch);
                }
                Err(e) => {
                    // ICMP errors and the like surface here; they never stop the listener.
                    tracing::debug!(error = %e, "UDP receive error");
                }
            },
        }
    }
}

async fn tcp_loop(
    listener: TcpListener,
    ingest: Ingest,
    telemetry: Telemetry,
    max_line: usize,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    telemetry.tcp_connections.inc();
                    tracing::debug!(%peer, "TCP connection");
                    tokio::spawn(tcp_connection(
                        stream,
                        ingest.clone(),
                        telemetry.clone(),
                        max_line,
                        stop.clone(),
                    ));
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
    max_line: usize,
    mut stop: watch::Receiver<bool>,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; TCP_READ_BUFFER];
    let mut framer = LineFramer::new(max_line);
    let mut scratch = ingest.scratch();
    loop {
        let read = tokio::select! {
            biased;
            _ = stop.changed() => break,
            read = stream.read(&mut buf) => read,
        };
        match read {
            Ok(0) => break,
            Ok(n) => {
                framer.push(
                    &buf[..n],
                    |line| {
                        for l in statsd_line::lines(line) {
                            ingest.line(l, &mut scratch);
                        }
                    },
                    || telemetry.tcp_too_long_lines.inc(),
                );
                ingest.publish(&mut scratch);
            }
            Err(e) => {
                telemetry.tcp_connection_errors.inc();
                tracing::debug!(error = %e, "TCP read error");
                break;
            }
        }
    }
    framer.finish(|line| {
        for l in statsd_line::lines(line) {
            ingest.line(l, &mut scratch);
        }
    });
    ingest.publish(&mut scratch);
}
