//! StatsD over a Unix datagram socket (`--statsd.listen-unixgram`).

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use tokio::net::UnixDatagram;
use tokio::sync::watch;

use super::BindError;
use super::udp::MAX_DATAGRAM;
use crate::ingest::Ingest;
use crate::telemetry::Telemetry;

/// Whether `path` names a Linux abstract socket (`@name`, as Go reads it): nothing on the file
/// system, so nothing to replace, chmod or remove.
pub fn is_abstract(path: &Path) -> bool {
    path.as_os_str().as_encoded_bytes().first() == Some(&b'@')
}

/// Creates the socket at `path` with permission bits `mode` (or the abstract socket `@name`). A stale
/// socket file from a previous run is replaced; a socket another process still receives on, and any
/// other file at the path, are errors (statsd_exporter refuses any existing path).
pub fn bind(path: &Path, mode: u32, read_buffer: Option<usize>) -> Result<UnixDatagram, BindError> {
    let bind_err = |source| BindError::Io {
        what: "unixgram",
        addr: path.display().to_string(),
        source,
    };
    let socket = if is_abstract(path) {
        use std::os::linux::net::SocketAddrExt as _;
        let name = &path.as_os_str().as_encoded_bytes()[1..];
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).map_err(bind_err)?;
        std::os::unix::net::UnixDatagram::bind_addr(&addr).map_err(bind_err)?
    } else {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                // A socket file: stale if nothing receives on it any more (connecting is refused).
                let probe = std::os::unix::net::UnixDatagram::unbound().map_err(bind_err)?;
                match probe.connect(path) {
                    Ok(()) => {
                        return Err(bind_err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            "another process is receiving on this socket",
                        )));
                    }
                    Err(_) => std::fs::remove_file(path).map_err(bind_err)?,
                }
            }
            Ok(_) => return Err(BindError::NotASocket(path.to_path_buf())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(bind_err(e)),
        }
        let socket = std::os::unix::net::UnixDatagram::bind(path).map_err(bind_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(bind_err)?;
        socket
    };
    if let Some(bytes) = read_buffer {
        socket2::SockRef::from(&socket)
            .set_recv_buffer_size(bytes)
            .map_err(bind_err)?;
    }
    socket.set_nonblocking(true).map_err(bind_err)?;
    UnixDatagram::from_std(socket).map_err(bind_err)
}

/// Receives datagrams until `stop` fires.
pub async fn receive(
    socket: UnixDatagram,
    ingest: Ingest,
    telemetry: Telemetry,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut scratch = ingest.worker_scratch();
    // Idle or not, what the status page is owed is handed over once a second.
    let mut collect = tokio::time::interval(std::time::Duration::from_secs(1));
    collect.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = collect.tick() => ingest.collect_activity(&mut scratch),
            received = socket.recv(&mut buf) => match received {
                Ok(n) => {
                    telemetry.unixgram_packets.inc();
                    // A panic (a bug) must not end the listener: count it, go on with a fresh scratch.
                    let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        ingest.packet(&buf[..n], &mut scratch);
                    }));
                    if handled.is_err() {
                        telemetry.receive_panics.inc();
                        tracing::error!("handling a unixgram datagram panicked; going on");
                        scratch = ingest.worker_scratch();
                    }
                }
                Err(e) => {
                    telemetry.receive_errors.inc();
                    tracing::debug!(error = %e, "unixgram receive error");
                    tokio::time::sleep(super::ERROR_PAUSE).await;
                }
            },
        }
    }
}
