//! Receiving StatsD: binding the listen addresses and the receive loops of each transport. Every
//! loop hands what it receives to [`crate::ingest::Ingest`] and stops when told.
//!
//! - [`udp`]: receive threads taking batches of datagrams per system call, kernel drop accounting;
//! - [`tcp`]: an accept loop and one task per connection (all awaited at shutdown), with the line
//!   framer and the connection limits;
//! - [`unixgram`]: one task on a Unix datagram socket.

pub mod tcp;
pub mod udp;
pub mod unixgram;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

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
