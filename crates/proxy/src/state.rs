//! What the HTTP endpoint and signal handling share with the running proxy, behind methods: the store,
//! our own metrics, the current mapping and how to reload it, readiness, and the quit request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use statsd_mapping::{LoadError, Mapper};
use statsd_store::Store;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, SemaphorePermit};

use crate::activity::Activity;
use crate::config::{MAX_CONCURRENT_RENDERS, MAX_STREAMING_SCRAPES, MappingSource};
use crate::listen::udp;
use crate::status::Listener;
use crate::telemetry::Telemetry;
use crate::web_config::WebSecurity;
use statsd_line::Parser;

/// Why a reload did not happen; the previous mapping stays in use either way.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new file is invalid (or, under `--statsd.mapping-strict`, has warnings).
    #[error(transparent)]
    Mapping(#[from] LoadError),
    /// The loading task could not run to its end.
    #[error("reload task failed: {0}")]
    Task(String),
}

/// State shared by the HTTP handlers, signal handling and the receive side.
#[derive(Debug)]
pub struct State {
    store: Arc<Store>,
    telemetry: Telemetry,
    activity: Arc<Activity>,
    mapper: Arc<ArcSwap<Mapper>>,
    source: MappingSource,
    strict: bool,
    ready: AtomicBool,
    enable_lifecycle: bool,
    telemetry_path: String,
    quit: Notify,
    /// Slots for rendering a scrape's chunk (see [`MAX_CONCURRENT_RENDERS`]).
    renders: Semaphore,
    /// Slots for streaming a scrape (see [`MAX_STREAMING_SCRAPES`]).
    scrapes: Arc<Semaphore>,
    /// What the proxy listens on, and how it reads lines (for the status page and its explain form).
    listeners: Vec<Listener>,
    parser: Parser,
    /// `--web.config.file`: TLS, basic auth, headers, rate limit.
    web_security: Option<Arc<WebSecurity>>,
    /// Kernel drop accounting: our UDP sockets' inodes, and the drops already counted.
    udp_inodes: Vec<u64>,
    udp_drops_seen: AtomicUsize,
}

/// What a [`State`] is made of (see [`State::new`]).
#[derive(Debug)]
pub struct Parts {
    /// The series.
    pub store: Arc<Store>,
    /// Our own metrics.
    pub telemetry: Telemetry,
    /// What the status page shows beyond them.
    pub activity: Arc<Activity>,
    /// The current mapping, shared with ingest.
    pub mapper: Arc<ArcSwap<Mapper>>,
    /// Where the mapping comes from, and whether warnings refuse a reload.
    pub source: MappingSource,
    /// `--statsd.mapping-strict`.
    pub strict: bool,
    /// Serve `/-/reload` and `/-/quit`.
    pub enable_lifecycle: bool,
    /// The scrape path.
    pub telemetry_path: String,
    /// Inodes of our UDP sockets, for kernel drop accounting.
    pub udp_inodes: Vec<u64>,
    /// What the proxy listens on.
    pub listeners: Vec<Listener>,
    /// How lines are read.
    pub parser: Parser,
    /// `--web.config.file`, loaded.
    pub web_security: Option<Arc<WebSecurity>>,
}

impl State {
    /// The state of a proxy whose listeners are bound and mapping loaded: ready from the start (the
    /// HTTP task, which alone reads readiness, is spawned after this), so no request can see "not
    /// ready" before shutdown.
    pub fn new(parts: Parts) -> Self {
        let state = Self {
            store: parts.store,
            telemetry: parts.telemetry,
            activity: parts.activity,
            mapper: parts.mapper,
            source: parts.source,
            strict: parts.strict,
            ready: AtomicBool::new(true),
            enable_lifecycle: parts.enable_lifecycle,
            telemetry_path: parts.telemetry_path,
            quit: Notify::new(),
            renders: Semaphore::new(MAX_CONCURRENT_RENDERS),
            scrapes: Arc::new(Semaphore::new(MAX_STREAMING_SCRAPES)),
            udp_inodes: parts.udp_inodes,
            listeners: parts.listeners,
            parser: parts.parser,
            web_security: parts.web_security,
            udp_drops_seen: AtomicUsize::new(0),
        };
        state.update_kernel_drops();
        state
    }

    /// The series.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Our own metrics.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Rule hits, unmapped names, rates and the last mapping load, for the status page.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// What the proxy listens on.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// `--web.config.file`, when given.
    pub fn web_security(&self) -> Option<&Arc<WebSecurity>> {
        self.web_security.as_ref()
    }

    /// How lines are read.
    pub fn parser(&self) -> Parser {
        self.parser
    }

    /// Where the mapping comes from.
    pub fn mapping_source(&self) -> &MappingSource {
        &self.source
    }

    /// The mapping in use now.
    pub fn mapper(&self) -> Arc<Mapper> {
        self.mapper.load_full()
    }

    /// Ready to serve (false once shutdown begins).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Shutdown has begun.
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::Relaxed);
    }

    /// `/-/reload` and `/-/quit` are served.
    pub fn lifecycle_enabled(&self) -> bool {
        self.enable_lifecycle
    }

    /// The scrape path.
    pub fn telemetry_path(&self) -> &str {
        &self.telemetry_path
    }

    /// Waits for a slot to render a scrape's chunk in (an error only if the semaphore was closed).
    pub async fn render_slot(&self) -> Result<SemaphorePermit<'_>, tokio::sync::AcquireError> {
        self.renders.acquire().await
    }

    /// Waits for a slot to stream a scrape in, held until its body is dropped (an error only if the
    /// semaphore was closed).
    pub async fn scrape_slot(&self) -> Result<OwnedSemaphorePermit, tokio::sync::AcquireError> {
        Arc::clone(&self.scrapes).acquire_owned().await
    }

    /// Asks the proxy to stop (`/-/quit`).
    pub fn request_quit(&self) {
        self.quit.notify_one();
    }

    /// Resolves when [`State::request_quit`] was called.
    pub async fn quit_requested(&self) {
        self.quit.notified().await;
    }

    /// Reloads the mapping: built off the hot path, swapped atomically; series and their values are
    /// kept. On error the current mapping stays. Returns the number of rules now loaded.
    pub async fn reload(&self) -> Result<usize, ReloadError> {
        if !matches!(self.source, MappingSource::File(_)) {
            tracing::info!("reload requested, but no mapping file is configured: nothing to do");
            return Ok(self.mapper.load().rules().len());
        }
        let (source, strict) = (self.source.clone(), self.strict);
        let loaded = tokio::task::spawn_blocking(move || crate::mappings::load(&source, strict))
            .await
            .map_err(|e| ReloadError::Task(e.to_string()))?;
        match loaded {
            Ok(mapper) => {
                let (rules, warnings) = (mapper.rules().len(), mapper.warnings().len());
                self.mapper.store(Arc::new(mapper));
                self.telemetry.reloaded(true, rules, warnings);
                self.activity.loaded(None);
                tracing::info!(rules, "mapping reloaded");
                Ok(rules)
            }
            Err(e) => {
                let rules = self.mapper.load().rules().len();
                self.telemetry.reloaded(false, rules, 0);
                self.activity.loaded(Some(e.to_string()));
                tracing::error!(error = %e, "mapping reload failed; the previous mapping stays in use");
                Err(e.into())
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
