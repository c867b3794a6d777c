//! UDP ingest that keeps up with the kernel.
//!
//! Each receive worker is a dedicated thread that takes up to [`BATCH`] datagrams per system call
//! (`recvmmsg`, through nix's safe wrapper) into buffers allocated once, and hands each datagram to
//! [`Ingest`] without copying. Several workers (`--statsd.udp-workers`) drain the *same* socket, so even
//! a single sender (one Mastodon host, one source port, a relay) is spread over all cores. With
//! `--statsd.udp-reuseport` each worker has a socket of its own (`SO_REUSEPORT`) and the kernel hashes
//! each sender to one of them: no shared receive queue, but one sender's traffic lands on one worker. Threads instead of async tasks: the work is CPU-bound and the
//! socket never idles under load; a 100 ms receive timeout lets them notice shutdown.
//!
//! `:port` binds one dual-stack socket (IPv6 with IPv4-mapped addresses), falling back to IPv4 where
//! IPv6 is off. Datagrams the kernel dropped because our receive buffer was full are read from
//! `/proc/net/udp{,6}` for our sockets (`statsd_exporter_udp_packet_drops_total`), so silent loss shows.

use std::io;
use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::socket::{MsgFlags, MultiHeaders, recvmmsg};
use socket2::{Domain, Protocol, Socket, Type};

use super::ERROR_PAUSE;
use crate::ingest::Ingest;
use crate::telemetry::Telemetry;

/// Datagrams taken per `recvmmsg` call.
pub const BATCH: usize = 32;
/// Size of each receive buffer: the largest UDP payload.
pub const MAX_DATAGRAM: usize = 65_535;
/// How long a blocked receive waits before checking for shutdown.
pub const RECV_TIMEOUT: Duration = Duration::from_millis(100);

/// Creates a UDP socket bound to `addr`: dual-stack for the IPv6 wildcard, with `read_buffer` bytes of
/// kernel receive buffer if given, and `SO_REUSEPORT` if `reuse_port`.
pub fn bind(
    addr: SocketAddr,
    read_buffer: Option<usize>,
    reuse_port: bool,
) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // One socket for IPv6 and IPv4 (Mastodon may send to 127.0.0.1 or to [::1]).
        socket.set_only_v6(false)?;
    }
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if let Some(bytes) = read_buffer {
        socket.set_recv_buffer_size(bytes)?;
        let granted = socket.recv_buffer_size()?;
        if granted < bytes {
            tracing::warn!(
                requested = bytes,
                granted,
                "the kernel capped --statsd.read-buffer: raise net.core.rmem_max"
            );
        }
    }
    socket.set_read_timeout(Some(RECV_TIMEOUT))?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Running receive workers.
#[derive(Debug)]
pub struct Workers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `count` workers: all on the one socket given, or, given one socket per worker
    /// (`--statsd.udp-reuseport`), each on its own.
    pub fn start(
        sockets: Vec<UdpSocket>,
        count: usize,
        ingest: &Ingest,
        telemetry: &Telemetry,
    ) -> io::Result<Self> {
        let sockets: Vec<Arc<UdpSocket>> = sockets.into_iter().map(Arc::new).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for i in 0..count.max(1) {
            let (socket, stop, ingest, telemetry) = (
                Arc::clone(&sockets[i % sockets.len()]),
                Arc::clone(&stop),
                ingest.clone(),
                telemetry.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name(format!("udp-recv-{i}"))
                    .spawn(move || {
                        // A panic (a bug) must not end UDP ingest for good: count it and start over.
                        while std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            receive(&socket, &stop, &ingest, &telemetry);
                        }))
                        .is_err()
                        {
                            telemetry.receive_panics.inc();
                            tracing::error!("a UDP receive worker panicked; restarting it");
                        }
                    })?,
            );
        }
        Ok(Self { stop, threads })
    }

    /// Stops the workers (each notices within [`RECV_TIMEOUT`]) and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn receive(socket: &UdpSocket, stop: &AtomicBool, ingest: &Ingest, telemetry: &Telemetry) {
    let fd = socket.as_raw_fd();
    let mut buffers: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect();
    // `()`: the kernel does not copy each sender's address out (we never use it).
    let mut headers = MultiHeaders::<()>::preallocate(BATCH, None);
    let mut scratch = ingest.worker_scratch();
    let mut lengths = [0usize; BATCH];
    while !stop.load(Ordering::Relaxed) {
        let received = {
            // On the stack: no allocation per batch.
            let mut next = buffers.iter_mut();
            let mut slices: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
                [IoSliceMut::new(
                    next.next().expect("there are BATCH buffers"),
                )]
            });
            // MSG_WAITFORONE: block (up to the socket timeout) for the first datagram, then take what
            // is queued without waiting.
            match recvmmsg(
                fd,
                &mut headers,
                slices.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(results) => {
                    let mut n = 0;
                    for (i, r) in results.enumerate() {
                        lengths[i] = r.bytes;
                        n += 1;
                    }
                    n
                }
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => 0,
                Err(e) => {
                    telemetry.receive_errors.inc();
                    tracing::debug!(error = %e, "UDP receive error");
                    std::thread::sleep(ERROR_PAUSE);
                    0
                }
            }
        };
        if received == 0 {
            // Idle (the receive timeout): hand over what the status page is owed.
            ingest.collect_activity(&mut scratch);
            continue;
        }
        telemetry.udp_packets.inc_by(received as u64);
        for (buffer, &len) in buffers.iter().zip(&lengths[..received]) {
            ingest.lines_of(&buffer[..len], &mut scratch);
        }
        ingest.publish(&mut scratch);
    }
}

/// Kernel receive-queue drops of the sockets with these inodes, from `/proc/net/udp` and `udp6`.
pub fn kernel_drops(inodes: &[u64]) -> u64 {
    let mut total = 0;
    // Each socket once: the file is read in several reads, and sockets opened or closed meanwhile
    // can make the kernel list one twice.
    let mut seen: smallvec::SmallVec<[u64; 8]> = smallvec::SmallVec::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            // sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ref pointer drops
            let fields: Vec<&str> = line.split_whitespace().collect();
            let inode = fields.get(9).and_then(|f| f.parse::<u64>().ok());
            if let Some(i) = inode
                && inodes.contains(&i)
                && !seen.contains(&i)
            {
                seen.push(i);
                total += fields
                    .get(12)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

/// The inode of a socket (to find it in `/proc/net/udp`).
pub fn inode(socket: &UdpSocket) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
        .ok()
        .map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_of_our_socket_are_found_in_proc() {
        let socket = bind("127.0.0.1:0".parse().expect("address"), None, false).expect("bind");
        let inode = inode(&socket).expect("socket inode");
        // A fresh socket has dropped nothing, and is listed (the parse finds its row).
        assert_eq!(kernel_drops(&[inode]), 0);
        let text = std::fs::read_to_string("/proc/net/udp").expect("proc");
        assert!(text.contains(&format!(" {inode} ")), "socket inode listed");
    }

    #[test]
    fn wildcard_ipv6_socket_takes_ipv4_too() {
        let Ok(socket) = bind("[::]:0".parse().expect("address"), None, false) else {
            // IPv6 disabled on this host (the proxy then falls back to IPv4). Written to the real
            // stderr, past the test harness's capture, so the skip shows in every run's output.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED wildcard_ipv6_socket_takes_ipv4_too: IPv6 is off on this host"
            );
            return;
        };
        let port = socket.local_addr().expect("bound").port();
        let sender = UdpSocket::bind("127.0.0.1:0").expect("sender");
        sender
            .send_to(b"x:1|c", ("127.0.0.1", port))
            .expect("send over IPv4");
        let mut buf = [0u8; 16];
        let (n, _) = socket
            .recv_from(&mut buf)
            .expect("received on the dual-stack socket");
        assert_eq!(&buf[..n], b"x:1|c");
    }
}
