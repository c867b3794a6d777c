//! The statsd-proxy application: command line, listeners, HTTP endpoint and self-metrics.
//!
//! This crate wires the pure crates together and owns everything that does I/O. It holds no parsing,
//! mapping or aggregation logic of its own: lines go to `statsd-line`, series to `statsd-store`, text to
//! `statsd-exposition`, rules to `statsd-mapping`.
//!
//! Main items: [`cli::Cli`] (statsd_exporter's flags) → [`config::Config`] (every default) →
//! [`app::start`] (load the mapping through [`mappings::load`], bind the [`listen`]ers, spawn, return a
//! [`app::Running`] handle with the bound addresses) or [`app::run`] (start, wait for SIGINT/SIGTERM,
//! stop). Each received line goes through [`ingest`], whose routing decision is [`route::resolve`] (shared
//! with [`explain`]); [`http`] sees the proxy only through [`state::State`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), statsd_proxy::app::StartError> {
//! let running = statsd_proxy::app::start(statsd_proxy::app::Config::loopback()).await?;
//! println!("scrape http://{}/metrics", running.http_addr);
//! running.shutdown(std::time::Duration::from_secs(1)).await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod activity;
pub mod app;
pub mod cli;
pub mod config;
pub mod explain;
pub mod http;
pub mod ingest;
pub mod listen;
pub mod logging;
pub mod mappings;
pub mod relay;
pub mod route;
pub mod scrape;
pub mod series_cache;
pub mod state;
pub mod status;
pub mod telemetry;
pub mod web_config;
