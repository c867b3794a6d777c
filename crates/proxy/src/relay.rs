//! Relay: forward the raw lines received to another StatsD server (`--statsd.relay.address`).
//!
//! Receive workers hand over their lines in one chunk per batch through a queue bounded in chunks and in
//! bytes ([`QUEUE_CHUNKS`], [`QUEUE_BYTES`]): when it is full the chunk is dropped and counted, so a slow
//! or absent relay target never slows ingest or grows memory. At shutdown what is queued is relayed,
//! and what cannot be sent then is counted as dropped.
//!
//! The relay task packs lines into datagrams of at most `--statsd.relay.packet-length` bytes, sends a
//! datagram when the next line would not fit, and flushes at least every [`FLUSH_INTERVAL`]. A line
//! longer than a packet is dropped and counted, as statsd_exporter does. A failed send is counted and
//! the datagram kept for the next flush (up to [`MAX_ATTEMPTS`] times, at most [`MAX_OUTBOX_DATAGRAMS`]
//! kept, oldest dropped first); statsd_exporter's relay stops for good after one error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

/// Longest wait before buffered lines are sent.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Chunks (one per receive batch) waiting for the relay task.
pub const QUEUE_CHUNKS: usize = 4096;
/// Bytes those chunks may hold together (a batch of 32 large datagrams is 2 MiB): beyond, a chunk is
/// dropped and its lines counted in `statsd_proxy_relay_dropped_lines_total`.
pub const QUEUE_BYTES: usize = 64 << 20;
/// The largest UDP payload (IPv4): a longer `--statsd.relay.packet-length` is lowered to it.
pub const MAX_PACKET_LENGTH: usize = 65_507;
/// Datagrams waiting to be (re)sent at most: while sends keep failing, the oldest are dropped (their
/// lines counted in `statsd_proxy_relay_dropped_lines_total`), so a dead target cannot grow memory.
pub const MAX_OUTBOX_DATAGRAMS: usize = 1024;
/// Sends of one datagram before it is given up.
pub const MAX_ATTEMPTS: u32 = 3;

/// Relay self-metrics, labelled by target.
#[derive(Debug, Clone)]
pub struct RelayMetrics {
    packets: IntCounter,
    lines: IntCounter,
    long_lines: IntCounter,
    dropped: IntCounter,
    errors: IntCounter,
}

impl RelayMetrics {
    /// Registers the relay counters for `target` in `registry`.
    pub fn register(registry: &Registry, target: &str) -> Self {
        let vec = |name: &str, help: &str| {
            let v = IntCounterVec::new(Opts::new(name, help), &["target"])
                .expect("static metric name, help and labels are valid");
            registry
                .register(Box::new(v.clone()))
                .expect("each self-metric is registered once");
            v.with_label_values(&[target])
        };
        Self {
            packets: vec(
                "statsd_exporter_relay_packets_total",
                "The number of StatsD packets relayed.",
            ),
            lines: vec(
                "statsd_exporter_relay_lines_relayed_total",
                "The number of StatsD lines relayed.",
            ),
            long_lines: vec(
                "statsd_exporter_relay_long_lines_total",
                "The number of lines that were too long to relay.",
            ),
            dropped: vec(
                "statsd_proxy_relay_dropped_lines_total",
                "Lines not relayed because the relay queue or outbox was full, or a datagram kept failing to send.",
            ),
            errors: vec(
                "statsd_proxy_relay_send_errors_total",
                "Failed relay sends (each retried).",
            ),
        }
    }
}

/// The receive side's handle: queue lines for relaying.
#[derive(Debug, Clone)]
pub struct RelayQueue {
    tx: mpsc::Sender<Vec<u8>>,
    metrics: RelayMetrics,
    /// Bytes queued (chunks' capacities), at most [`QUEUE_BYTES`].
    queued: Arc<AtomicUsize>,
}

impl RelayQueue {
    /// Queues a chunk of `\n`-terminated lines holding `lines` lines; never blocks.
    pub fn push(&self, chunk: Vec<u8>, lines: u64) {
        let size = chunk.capacity();
        let reserved = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q + size <= QUEUE_BYTES).then_some(q + size)
            })
            .is_ok();
        if !reserved {
            self.metrics.dropped.inc_by(lines);
        } else if self.tx.try_send(chunk).is_err() {
            self.queued.fetch_sub(size, Ordering::AcqRel);
            self.metrics.dropped.inc_by(lines);
        }
    }
}

/// Packs lines into datagrams of at most `limit` bytes.
#[derive(Debug)]
struct Packer {
    limit: usize,
    packet: Vec<u8>,
    lines_in_packet: u64,
}

impl Packer {
    /// Adds one line; returns a full datagram to send first, if the line does not fit.
    fn add(&mut self, line: &[u8], metrics: &RelayMetrics) -> Option<(Vec<u8>, u64)> {
        if line.len() > self.limit {
            metrics.long_lines.inc();
            return None;
        }
        let mut full = None;
        let needed = line.len() + usize::from(!self.packet.is_empty());
        if self.packet.len() + needed > self.limit {
            full = self.take();
        }
        if !self.packet.is_empty() {
            self.packet.push(b'\n');
        }
        self.packet.extend_from_slice(line);
        self.lines_in_packet += 1;
        full
    }

    fn take(&mut self) -> Option<(Vec<u8>, u64)> {
        if self.packet.is_empty() {
            return None;
        }
        let lines = std::mem::take(&mut self.lines_in_packet);
        Some((
            std::mem::replace(&mut self.packet, Vec::with_capacity(self.limit)),
            lines,
        ))
    }
}

/// Starts the relay: returns the queue for the receive side and the task to spawn.
pub fn start(
    target: SocketAddr,
    packet_length: usize,
    metrics: RelayMetrics,
    stop: watch::Receiver<bool>,
) -> (RelayQueue, impl Future<Output = ()>) {
    let (tx, rx) = mpsc::channel(QUEUE_CHUNKS);
    let queued = Arc::new(AtomicUsize::new(0));
    let queue = RelayQueue {
        tx,
        metrics: metrics.clone(),
        queued: Arc::clone(&queued),
    };
    let received = Received { rx, queued };
    (queue, run(target, packet_length, metrics, received, stop))
}

/// The relay task's end of the queue.
struct Received {
    rx: mpsc::Receiver<Vec<u8>>,
    queued: Arc<AtomicUsize>,
}

impl Received {
    async fn recv(&mut self) -> Option<Vec<u8>> {
        let chunk = self.rx.recv().await?;
        self.queued.fetch_sub(chunk.capacity(), Ordering::AcqRel);
        Some(chunk)
    }

    /// At shutdown: closes the queue (later pushes are dropped and counted) and takes what is in it.
    fn drain(&mut self) -> Vec<Vec<u8>> {
        self.rx.close();
        let mut chunks = Vec::new();
        while let Ok(chunk) = self.rx.try_recv() {
            self.queued.fetch_sub(chunk.capacity(), Ordering::AcqRel);
            chunks.push(chunk);
        }
        chunks
    }
}

/// Datagrams waiting to be (re)sent, with their line count and attempts so far.
type Outbox = std::collections::VecDeque<(Vec<u8>, u64, u32)>;

/// Queues a datagram, dropping (and counting) the oldest beyond [`MAX_OUTBOX_DATAGRAMS`].
fn enqueue(outbox: &mut Outbox, datagram: (Vec<u8>, u64, u32), metrics: &RelayMetrics) {
    if outbox.len() >= MAX_OUTBOX_DATAGRAMS
        && let Some((_, lines, _)) = outbox.pop_front()
    {
        metrics.dropped.inc_by(lines);
    }
    outbox.push_back(datagram);
}

async fn run(
    target: SocketAddr,
    packet_length: usize,
    metrics: RelayMetrics,
    mut received: Received,
    mut stop: watch::Receiver<bool>,
) {
    let local: SocketAddr = if target.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let socket = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "relay: cannot open a UDP socket; relaying is off");
            return;
        }
    };
    if packet_length > MAX_PACKET_LENGTH {
        tracing::warn!(
            packet_length,
            "--statsd.relay.packet-length is above the largest UDP payload; using {MAX_PACKET_LENGTH}"
        );
    }
    let limit = packet_length.clamp(1, MAX_PACKET_LENGTH);
    let mut packer = Packer {
        limit,
        packet: Vec::with_capacity(limit),
        lines_in_packet: 0,
    };
    let mut outbox: Outbox = Default::default();
    let mut tick = tokio::time::interval(FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let pack = |chunk: &[u8], packer: &mut Packer, outbox: &mut Outbox| {
        for line in chunk.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if let Some((packet, lines)) = packer.add(line, &metrics) {
                enqueue(outbox, (packet, lines, 0), &metrics);
            }
        }
    };
    loop {
        // Whether to send what is packed, and whether the relay ends: the queue closed (no receive
        // side is left) or the proxy stops.
        let (flush, ended) = tokio::select! {
            chunk = received.recv() => match chunk {
                Some(chunk) => {
                    pack(&chunk, &mut packer, &mut outbox);
                    (false, false)
                }
                None => (true, true),
            },
            _ = tick.tick() => (true, false),
            _ = stop.changed() => (true, true),
        };
        // Another branch may have been taken while stopping: the stop is checked whatever woke us.
        let ending = ended || *stop.borrow();
        if ending {
            // What the receive side queued before it stopped is relayed too.
            for chunk in received.drain() {
                pack(&chunk, &mut packer, &mut outbox);
            }
        }
        let flush_all = flush || ending;
        if flush_all && let Some((packet, lines)) = packer.take() {
            enqueue(&mut outbox, (packet, lines, 0), &metrics);
        }
        // Send what is ready; on failure keep the datagram for the next flush.
        while let Some((packet, lines, attempts)) = outbox.pop_front() {
            if !send(&socket, target, &packet, lines, &metrics).await {
                if attempts + 1 < MAX_ATTEMPTS {
                    outbox.push_front((packet, lines, attempts + 1));
                } else {
                    metrics.dropped.inc_by(lines);
                }
                break;
            }
        }
        if ending {
            // One more try for each datagram still waiting; what fails now is counted as dropped.
            while let Some((packet, lines, _)) = outbox.pop_front() {
                if !send(&socket, target, &packet, lines, &metrics).await {
                    metrics.dropped.inc_by(lines);
                }
            }
            return;
        }
    }
}

/// Sends one datagram of `lines` lines, counting it sent or failed; true when sent.
async fn send(
    socket: &UdpSocket,
    target: SocketAddr,
    packet: &[u8],
    lines: u64,
    metrics: &RelayMetrics,
) -> bool {
    match socket.send_to(packet, target).await {
        Ok(_) => {
            metrics.packets.inc();
            metrics.lines.inc_by(lines);
            true
        }
        Err(e) => {
            metrics.errors.inc();
            tracing::debug!(error = %e, %target, "relay send failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_keeps_the_newest_datagrams_and_counts_the_dropped_lines() {
        let metrics = RelayMetrics::register(&Registry::new(), "t");
        let mut outbox = Outbox::default();
        for i in 0..MAX_OUTBOX_DATAGRAMS as u64 + 10 {
            enqueue(&mut outbox, (vec![b'x'], i, 0), &metrics);
        }
        assert_eq!(outbox.len(), MAX_OUTBOX_DATAGRAMS);
        assert_eq!(
            outbox.front().map(|d| d.1),
            Some(10),
            "the oldest went first"
        );
        assert_eq!(metrics.dropped.get(), (0..10).sum::<u64>());
    }

    #[test]
    fn lines_are_packed_up_to_the_limit() {
        let metrics = RelayMetrics::register(&Registry::new(), "t");
        let mut p = Packer {
            limit: 10,
            packet: Vec::new(),
            lines_in_packet: 0,
        };
        assert_eq!(p.add(b"aaaa", &metrics), None);
        assert_eq!(p.add(b"bbbb", &metrics), None); // "aaaa\nbbbb" = 9 bytes
        assert_eq!(p.add(b"cc", &metrics), Some((b"aaaa\nbbbb".to_vec(), 2)));
        assert_eq!(p.add(b"this line is too long", &metrics), None);
        assert_eq!(metrics.long_lines.get(), 1);
        assert_eq!(p.take(), Some((b"cc".to_vec(), 1)));
        assert_eq!(p.take(), None);
    }

    #[test]
    fn the_queue_holds_a_bounded_number_of_bytes() {
        let metrics = RelayMetrics::register(&Registry::new(), "t");
        let (_stop_tx, stop) = watch::channel(false);
        let (queue, _task) = start("127.0.0.1:9".parse().unwrap(), 1400, metrics.clone(), stop);
        let chunk = || Vec::with_capacity(1 << 20);
        let fit = QUEUE_BYTES >> 20;
        for _ in 0..fit + 3 {
            queue.push(chunk(), 10);
        }
        assert_eq!(
            metrics.dropped.get(),
            30,
            "three chunks past {fit} MiB dropped"
        );
        assert_eq!(queue.queued.load(Ordering::Acquire), fit << 20);
    }

    #[test]
    fn at_shutdown_what_was_queued_is_relayed() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let target = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let metrics = RelayMetrics::register(&Registry::new(), "t");
            let (stop_tx, stop) = watch::channel(false);
            let (queue, task) = start(target.local_addr().unwrap(), 1400, metrics.clone(), stop);
            queue.push(b"a:1|c\nb:2|c\n".to_vec(), 2);
            // Stopped before the task ever ran: the queued chunk still goes out.
            stop_tx.send(true).unwrap();
            task.await;
            let mut buf = [0u8; 100];
            let n = tokio::time::timeout(Duration::from_secs(10), target.recv(&mut buf))
                .await
                .expect("the relayed datagram arrives")
                .unwrap();
            assert_eq!(&buf[..n], b"a:1|c\nb:2|c");
            assert_eq!(metrics.lines.get(), 2);
            // Pushed after the end: counted as dropped.
            queue.push(b"c:3|c\n".to_vec(), 1);
            assert_eq!(metrics.dropped.get(), 1);
        });
    }
}
