//! Receiving StatsD: binding the listen addresses and the receive loops of each transport. Every
//! loop hands what it receives to [`crate::ingest::Ingest`] and stops when told.
//!
//! - [`udp`]: receive threads taking batches of datagrams per system call, kernel drop accounting;
//! - [`tcp`]: an accept loop and one task per connection (all awaited at shutdown), with the line
//!   framer and the connection limits;
//! - [`unixgram`]: one task on a Unix datagram socket.

pub mod fds;
pub mod tcp;
pub mod udp;
pub mod unixgram;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::LISTEN_BACKLOG;

/// A listener that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// A listen address did not resolve or could not be bound.
    #[error("cannot listen on {what} address {addr:?}: {source}")]
    Io {
        /// Which listener (`UDP`, `TCP`, `unixgram`, `web`).
        what: &'static str,
        /// The address as given.
        addr: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A path exists where the unixgram socket should be created, and it is not a socket.
    #[error("{0} exists and is not a socket: refusing to replace it")]
    NotASocket(PathBuf),
}

/// Resolves a Go-style listen address: `:port` — and, as in Go, the wildcards `0.0.0.0:port` and
/// `[::]:port` — means every interface (IPv6 and IPv4 on one dual-stack socket where the system
/// allows, else IPv4); `host:port` is resolved, IPv4 first (see [`resolve`]).
async fn candidates(addr: &str) -> io::Result<Vec<SocketAddr>> {
    let wildcard_port = addr
        .strip_prefix(':')
        .or_else(|| addr.strip_prefix("0.0.0.0:"))
        .or_else(|| addr.strip_prefix("[::]:"));
    if let Some(port) = wildcard_port {
        let port: u16 = port
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid port"))?;
        return Ok(vec![
            SocketAddr::from(([0u16; 8], port)),
            SocketAddr::from(([0u8; 4], port)),
        ]);
    }
    resolve(addr).await
}

/// Resolves `host:port` as Go's resolver does for statsd_exporter (`net.ResolveUDPAddr`): IPv4
/// addresses first, unless the address is written in brackets (`[fe80::1]:9125`), then the others
/// first. The system's order puts `::1` before `127.0.0.1` for `localhost` on most hosts: taken as
/// is, `localhost:9125` would listen (or relay) on IPv6 only while clients send to 127.0.0.1.
pub async fn resolve(addr: &str) -> io::Result<Vec<SocketAddr>> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host(addr).await?.collect();
    if found.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "address resolved to nothing",
        ));
    }
    Ok(go_order(addr, found))
}

/// The addresses `addr` resolved to, in the order Go's resolver would take them (stable within a
/// family).
fn go_order(addr: &str, mut found: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let want_ipv6 = addr.starts_with('[');
    found.sort_by_key(|a| a.is_ipv4() == want_ipv6);
    found
}

/// Binds the first candidate address of `addr` that works.
pub async fn bind_first<T, F, Fut>(what: &'static str, addr: &str, bind: F) -> Result<T, BindError>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let err = |source| BindError::Io {
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

/// Binds a TCP listener with a [`LISTEN_BACKLOG`]-deep accept queue (the system default of 128 lost
/// connection attempts in a burst of 2,000 clients).
pub async fn bind_tcp(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// Pause after a failed receive (other than a timeout or an interruption), so that an error that
/// persists (`ENOMEM`, `ENOBUFS` under memory pressure) does not spin a core.
pub const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// The shortest and the longest pause after a failed `accept`.
pub const ACCEPT_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(1));

/// Pauses after failed `accept` calls — 10 ms, doubling to 1 s, back to 10 ms after a success — and
/// logs at most once per second, so that running out of file descriptors (EMFILE, ENFILE, ENOBUFS,
/// ENOMEM) neither spins a core nor floods the log.
#[derive(Debug)]
pub struct AcceptBackoff {
    what: &'static str,
    pause: Duration,
    last_log: Option<Instant>,
    unlogged: u64,
}

impl AcceptBackoff {
    /// For the `what` (`TCP`, `HTTP`) listener.
    pub fn new(what: &'static str) -> Self {
        Self {
            what,
            pause: ACCEPT_BACKOFF.0,
            last_log: None,
            unlogged: 0,
        }
    }

    /// An accept succeeded.
    pub fn reset(&mut self) {
        self.pause = ACCEPT_BACKOFF.0;
    }

    /// An accept failed with `error`: logs (at most once a second, with how many were not logged)
    /// and waits before the next attempt.
    pub async fn failed(&mut self, error: &io::Error) {
        self.unlogged += 1;
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            tracing::warn!(
                listener = self.what,
                %error,
                errors = self.unlogged,
                retry_in = ?self.pause,
                "accept failed (file descriptors exhausted?); backing off"
            );
            self.last_log = Some(now);
            self.unlogged = 0;
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(ACCEPT_BACKOFF.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_ipv4_first_unless_bracketed_as_in_go() {
        let system: Vec<SocketAddr> = vec![
            "[::1]:9125".parse().unwrap(),
            "127.0.0.1:9125".parse().unwrap(),
            "[fe80::1]:9125".parse().unwrap(),
            "10.0.0.1:9125".parse().unwrap(),
        ];
        let ipv4_first = go_order("localhost:9125", system.clone());
        assert_eq!(ipv4_first[0].to_string(), "127.0.0.1:9125");
        assert_eq!(ipv4_first[1].to_string(), "10.0.0.1:9125");
        assert_eq!(ipv4_first[2].to_string(), "[::1]:9125");
        let ipv6_first = go_order("[::1]:9125", system);
        assert_eq!(ipv6_first[0].to_string(), "[::1]:9125");
        assert_eq!(ipv6_first[2].to_string(), "127.0.0.1:9125");
    }

    #[test]
    fn the_wildcards_listen_on_every_interface() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for addr in [":9125", "0.0.0.0:9125", "[::]:9125"] {
            let found = rt.block_on(candidates(addr)).unwrap();
            assert_eq!(
                found,
                [
                    SocketAddr::from(([0u16; 8], 9125)),
                    SocketAddr::from(([0u8; 4], 9125))
                ],
                "{addr}"
            );
        }
    }
}
