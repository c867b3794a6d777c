//! The running proxy: start, run, shut down.
//!
//! [`start`] loads the mapping, binds every socket (so a bad address or file fails before anything
//! runs), starts the receive workers and tasks, and returns a [`Running`] handle with the bound
//! addresses; [`Running::shutdown`] stops them all. [`run`] is the binary's entry point: start, then
//! reload on SIGHUP and stop on SIGINT, SIGTERM or `/-/quit`.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use statsd_line::Parser;
use statsd_store::Store;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::activity::Activity;
pub use crate::config::{Config, MappingSource, RelayConfig};
use crate::config::{SHUTDOWN_GRACE, SWEEP_INTERVAL};
use crate::ingest::Ingest;
use crate::listen::{BindError, bind_first, bind_tcp, fds, tcp, udp, unixgram};
use crate::relay::{self, RelayMetrics};
use crate::state::{Parts, State};
use crate::status::Listener;
use crate::telemetry::Telemetry;
use crate::web_config::WebSecurity;
use crate::{http, mappings};

/// Errors that stop the proxy from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be set up.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The mapping file is invalid (the error names file:line:column).
    #[error("invalid mapping file: {0}")]
    Mapping(#[from] statsd_mapping::LoadError),
    /// The relay target does not resolve.
    #[error("invalid relay address {0:?}: {1}")]
    Relay(String, io::Error),
    /// The web config file is invalid (the error names the key and its line).
    #[error(transparent)]
    WebConfig(crate::web_config::WebConfigError),
    /// No listener is enabled.
    #[error("at least one of the UDP, TCP and unixgram listeners must be enabled")]
    NoListener,
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
    pub state: Arc<State>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    udp_workers: Option<udp::Workers>,
    unixgram_path: Option<PathBuf>,
}

impl Running {
    /// Signals every task to stop and waits up to `grace` for them; returns false if some had to be
    /// aborted. Removes the unixgram socket file.
    pub async fn shutdown(mut self, grace: Duration) -> bool {
        self.state.set_not_ready();
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

/// Starts the relay task, if configured: its queue for ingest.
async fn start_relay(
    config: &Config,
    telemetry: &Telemetry,
    tasks: &mut JoinSet<()>,
    stopped: &watch::Receiver<bool>,
) -> Result<Option<relay::RelayQueue>, StartError> {
    let Some(rc) = &config.relay else {
        return Ok(None);
    };
    let target = crate::listen::resolve(&rc.address)
        .await
        .map(|found| found[0])
        .map_err(|e| StartError::Relay(rc.address.clone(), e))?;
    let metrics = RelayMetrics::register(&telemetry.registry, &rc.address);
    let (queue, task) = relay::start(target, rc.packet_length, metrics, stopped.clone());
    tasks.spawn(task);
    tracing::info!(%target, packet_length = rc.packet_length, "relaying lines");
    Ok(Some(queue))
}

/// Loads the mapping, binds every listener and starts serving.
pub async fn start(config: Config) -> Result<Running, StartError> {
    if config.listen_udp.is_none()
        && config.listen_tcp.is_none()
        && config.listen_unixgram.is_none()
    {
        return Err(StartError::NoListener);
    }
    let fd_limit = fds::raise_nofile_limit();
    let (derived_tcp, derived_http) = fd_limit.connection_caps();
    let tcp_cap = config.tcp.max_connections.unwrap_or(derived_tcp);
    let http_cap = config.web_max_connections.unwrap_or(derived_http);
    tracing::info!(
        soft_before = fd_limit.before,
        soft = fd_limit.soft,
        hard = fd_limit.hard,
        tcp_max_connections = tcp_cap,
        web_max_connections = http_cap,
        "open-files limit"
    );
    // The mapping first: a bad file never starts a half-configured proxy.
    let mapper = mappings::load(&config.mapping, config.mapping_strict)?;
    let store = Arc::new(Store::with_config(config.store, Arc::clone(&config.clock)));
    let telemetry = Telemetry::new();
    telemetry
        .series_limit
        .set(i64::try_from(config.store.limits.max_series).unwrap_or(i64::MAX));
    telemetry.reloaded_initially(mapper.rules().len(), mapper.warnings().len());
    let mapper = Arc::new(ArcSwap::from_pointee(mapper));
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let relay = start_relay(&config, &telemetry, &mut tasks, &stopped).await?;
    // Our own metric names (relay ones included) are never StatsD series: a scrape never holds two
    // families of one name.
    store.reserve_names(telemetry.names());
    let activity = Arc::new(Activity::default());
    let ingest = Ingest::new(
        Parser::new(config.dialects),
        Arc::clone(&mapper),
        Arc::clone(&store),
        telemetry.clone(),
        Arc::clone(&activity),
        config.cache_size,
        config.series_cache_size(),
        relay,
    );

    let read_buffer = config.read_buffer;
    let reuse_port = config.udp_reuseport && config.udp_workers > 1;
    let udp = match &config.listen_udp {
        Some(addr) => Some(
            bind_first("UDP", addr, |a| async move {
                udp::bind(a, read_buffer, reuse_port)
            })
            .await?,
        ),
        None => None,
    };
    let tcp = match &config.listen_tcp {
        Some(addr) => Some(bind_first("TCP", addr, bind_tcp).await?),
        None => None,
    };
    let unixgram = match &config.listen_unixgram {
        Some(path) => Some(unixgram::bind(path, config.unixsocket_mode, read_buffer)?),
        None => None,
    };
    let web = match &config.web_listener {
        Some(passed) => {
            let listener = passed
                .try_clone()
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .and_then(tokio::net::TcpListener::from_std)
                .map_err(|source| BindError::Io {
                    what: "web",
                    addr: "systemd socket".into(),
                    source,
                })?;
            tracing::info!("serving HTTP on the socket systemd passed (--web.systemd-socket)");
            listener
        }
        None => bind_first("web", &config.web_listen_address, bind_tcp).await?,
    };
    let web_security = match &config.web_config_file {
        Some(path) => {
            let security = WebSecurity::load(path).map_err(StartError::WebConfig)?;
            tracing::info!(file = %path.display(), tls = security.tls_enabled(), "web config loaded");
            Some(Arc::new(security))
        }
        None => None,
    };
    let bind_err = |what, addr: &str| {
        let addr = addr.to_string();
        move |source| BindError::Io { what, addr, source }
    };
    let udp_addr = udp.as_ref().and_then(|s| s.local_addr().ok());
    let tcp_addr = tcp.as_ref().and_then(|s| s.local_addr().ok());
    let http_addr = web
        .local_addr()
        .map_err(bind_err("web", &config.web_listen_address))?;
    // With --statsd.udp-reuseport, one more socket per further worker, on the address the first got.
    let udp: Option<Vec<std::net::UdpSocket>> = match (udp, udp_addr) {
        (Some(first), Some(addr)) if reuse_port => {
            let mut sockets = vec![first];
            for _ in 1..config.udp_workers {
                sockets.push(
                    udp::bind(addr, read_buffer, true)
                        .map_err(bind_err("UDP", &addr.to_string()))?,
                );
            }
            Some(sockets)
        }
        (udp, _) => udp.map(|s| vec![s]),
    };
    let udp_inodes: Vec<u64> = udp.iter().flatten().filter_map(udp::inode).collect();

    let udp_workers = match udp {
        Some(sockets) => {
            let address = udp_addr.map(|a| a.to_string()).unwrap_or_default();
            tracing::info!(
                %address,
                workers = config.udp_workers,
                sockets = sockets.len(),
                "listening for StatsD on UDP"
            );
            Some(
                udp::Workers::start(sockets, config.udp_workers, &ingest, &telemetry)
                    .map_err(bind_err("UDP", &address))?,
            )
        }
        None => None,
    };
    if let Some(listener) = tcp {
        let address = tcp_addr.map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(%address, "listening for StatsD on TCP");
        let (ingest, telemetry) = (ingest.clone(), telemetry.clone());
        let stop = stopped.clone();
        tasks.spawn(tcp::accept(
            listener, ingest, telemetry, config.tcp, tcp_cap, stop,
        ));
    }
    if let Some(socket) = unixgram {
        let path = config.listen_unixgram.clone().unwrap_or_default();
        tracing::info!(path = %path.display(), "listening for StatsD on unixgram");
        let (ingest, telemetry) = (ingest.clone(), telemetry.clone());
        tasks.spawn(unixgram::receive(
            socket,
            ingest,
            telemetry,
            stopped.clone(),
        ));
    }
    let state = Arc::new(State::new(Parts {
        store: Arc::clone(&store),
        telemetry: telemetry.clone(),
        activity: Arc::clone(&activity),
        mapper,
        source: config.mapping.clone(),
        strict: config.mapping_strict,
        enable_lifecycle: config.enable_lifecycle,
        telemetry_path: config.telemetry_path.clone(),
        udp_inodes,
        listeners: listeners(
            udp_addr,
            tcp_addr,
            config.listen_unixgram.as_deref(),
            (
                http_addr,
                web_security.as_ref().is_some_and(|w| w.tls_enabled()),
            ),
        ),
        parser: Parser::new(config.dialects),
        web_security,
    }));
    tracing::info!(address = %http_addr, path = %config.telemetry_path, "serving metrics over HTTP");
    tasks.spawn(http::serve(
        web,
        Arc::clone(&state),
        http_cap,
        stopped.clone(),
    ));
    tasks.spawn(sweep(store, telemetry, activity, stopped));

    Ok(Running {
        udp_addr,
        tcp_addr,
        http_addr,
        state,
        stop,
        tasks,
        udp_workers,
        // An abstract socket leaves no file to remove.
        unixgram_path: config
            .listen_unixgram
            .clone()
            .filter(|p| !unixgram::is_abstract(p)),
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
    signals.serve(&running.state).await;
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
    async fn serve(mut self, state: &State) {
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
                _ = state.quit_requested() => return,
                _ = recv(&mut self.hangup) => {
                    tracing::info!("SIGHUP: reloading the mapping");
                    // Errors are logged and counted by `reload`.
                    let _ = state.reload().await;
                }
            }
        }
    }
}

/// What the proxy listens on, for the status page.
fn listeners(
    udp: Option<std::net::SocketAddr>,
    tcp: Option<std::net::SocketAddr>,
    unixgram: Option<&std::path::Path>,
    (http, tls): (std::net::SocketAddr, bool),
) -> Vec<Listener> {
    let mut all = Vec::new();
    let mut add = |protocol, address: Option<String>| {
        if let Some(address) = address {
            all.push(Listener { protocol, address });
        }
    };
    add("udp", udp.map(|a| a.to_string()));
    add("tcp", tcp.map(|a| a.to_string()));
    add("unixgram", unixgram.map(|p| p.display().to_string()));
    add(if tls { "https" } else { "http" }, Some(http.to_string()));
    all
}

/// Advances the store's coarse clock and removes expired series, and records the traffic for the
/// status page, every [`SWEEP_INTERVAL`].
async fn sweep(
    store: Arc<Store>,
    telemetry: Telemetry,
    activity: Arc<Activity>,
    mut stop: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(SWEEP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = interval.tick() => {
                store.tick();
                let (lines, samples) = telemetry.totals();
                activity.tick(lines, samples);
                let removed = store.expire();
                if removed > 0 {
                    tracing::debug!(removed, "expired series");
                }
            }
        }
    }
}
