//! StatsD over TCP: an accept loop bounded by `--statsd.tcp-max-connections` (the longest-idle
//! connection makes room for a new one), one task per connection (all of them in one `JoinSet`,
//! awaited when the loop stops), an idle timeout, read buffers grown on demand, and the line framer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::AcceptBackoff;
use crate::config::{TCP_FIRST_READ, TCP_READ_BUFFER, TcpLimits};
use crate::ingest::Ingest;
use crate::telemetry::Telemetry;

/// What the accept loop knows of an open connection: when it last received, and how to close it.
#[derive(Debug)]
struct Slot {
    /// Milliseconds since the loop started, at the last read.
    last_active: AtomicU64,
    evict: Notify,
}

/// How soon a connection that owes the status page unmapped counts wakes to hand them over.
const ACTIVITY_WAKE: Duration = Duration::from_secs(1);

/// The open connections, for the accept loop to pick the longest idle one at the cap.
type Slots = Arc<Mutex<HashMap<u64, Arc<Slot>>>>;

/// Accepts connections until `stop` fires, then waits for every connection task to finish (each
/// watches `stop` too, and processes what it had read). At `max_connections` open (0: unlimited), a
/// new connection closes the longest-idle one (`statsd_proxy_tcp_connections_evicted_total`): a fleet
/// of idle clients cannot lock live ones out. Accept errors back off ([`AcceptBackoff`]).
pub async fn accept(
    listener: TcpListener,
    ingest: Ingest,
    telemetry: Telemetry,
    limits: TcpLimits,
    max_connections: usize,
    mut stop: watch::Receiver<bool>,
) {
    let slots: Slots = Arc::default();
    let started = Instant::now();
    let mut next_id = 0u64;
    let mut connections = JoinSet::new();
    let mut backoff = AcceptBackoff::new("TCP");
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff.reset();
                    telemetry.tcp_connections.inc();
                    if max_connections > 0 {
                        evict_longest_idle(&slots, max_connections, &telemetry);
                    }
                    tracing::debug!(%peer, "TCP connection");
                    let slot = Arc::new(Slot {
                        last_active: AtomicU64::new(elapsed_ms(started)),
                        evict: Notify::new(),
                    });
                    let id = next_id;
                    next_id += 1;
                    lock(&slots).insert(id, Arc::clone(&slot));
                    let slots = Arc::clone(&slots);
                    let (ingest, telemetry, stop) = (ingest.clone(), telemetry.clone(), stop.clone());
                    connections.spawn(async move {
                        connection(stream, ingest, telemetry, limits, &slot, started, stop).await;
                        lock(&slots).remove(&id);
                    });
                }
                Err(e) => {
                    telemetry.tcp_connection_errors.inc();
                    backoff.failed(&e).await;
                }
            },
        }
    }
    while connections.join_next().await.is_some() {}
}

fn lock(slots: &Slots) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
    slots
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// At the cap, tells the connection idle the longest to close (it processes what it has first).
fn evict_longest_idle(slots: &Slots, max_connections: usize, telemetry: &Telemetry) {
    let mut slots = lock(slots);
    if slots.len() < max_connections {
        return;
    }
    // Longest idle first; among equals (same millisecond), the oldest connection. It leaves the table
    // now, not when its task ends, so that a burst of new connections evicts as many old ones (and
    // the open count cannot run past the cap into the file-descriptor limit).
    let oldest = slots
        .iter()
        .min_by_key(|(id, s)| (s.last_active.load(Ordering::Relaxed), **id))
        .map(|(id, _)| *id);
    if let Some(slot) = oldest.and_then(|id| slots.remove(&id)) {
        slot.evict.notify_one();
        telemetry.tcp_connections_evicted.inc();
        tracing::debug!(
            "--statsd.tcp-max-connections reached: closing the longest-idle connection"
        );
    }
}

async fn connection(
    mut stream: TcpStream,
    ingest: Ingest,
    telemetry: Telemetry,
    limits: TcpLimits,
    slot: &Slot,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) {
    use tokio::io::AsyncReadExt;
    // Grown on demand: an idle connection holds a small buffer, a busy one reaches TCP_READ_BUFFER.
    let mut buf = vec![0u8; TCP_FIRST_READ];
    let mut framer = LineFramer::new(limits.max_line);
    let mut scratch = ingest.scratch();
    // `None`: no idle timeout.
    let idle = (!limits.idle_timeout.is_zero()).then_some(limits.idle_timeout);
    let mut deadline = idle.map(|d| tokio::time::Instant::now() + d);
    // Whether the client ended the stream (end of file or a read error), rather than we.
    let mut peer_ended = false;
    loop {
        // Unmapped names counted but not yet handed to the status page: wake within a second to hand
        // them over (an idle connection without any sleeps until its deadline).
        let wake = match (scratch.owes_activity(), deadline) {
            (true, Some(d)) => Some(d.min(tokio::time::Instant::now() + ACTIVITY_WAKE)),
            (true, None) => Some(tokio::time::Instant::now() + ACTIVITY_WAKE),
            (false, d) => d,
        };
        let wait = async {
            match wake {
                Some(at) => tokio::time::timeout_at(at, stream.read(&mut buf)).await,
                None => Ok(stream.read(&mut buf).await),
            }
        };
        let read = tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = slot.evict.notified() => break,
            read = wait => read,
        };
        match read {
            Err(_elapsed) if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) => {
                tracing::debug!("closing idle TCP connection");
                break;
            }
            Err(_elapsed) => ingest.collect_activity(&mut scratch),
            Ok(Ok(0)) => {
                peer_ended = true;
                break;
            }
            Ok(Ok(n)) => {
                deadline = idle.map(|d| tokio::time::Instant::now() + d);
                slot.last_active
                    .store(elapsed_ms(started), Ordering::Relaxed);
                framer.push(
                    &buf[..n],
                    |line| ingest.lines_of(line, &mut scratch),
                    || telemetry.tcp_too_long_lines.inc(),
                );
                ingest.publish(&mut scratch);
                if n == buf.len() && buf.len() < TCP_READ_BUFFER {
                    buf.resize((buf.len() * 4).min(TCP_READ_BUFFER), 0);
                }
            }
            Ok(Err(e)) => {
                telemetry.tcp_connection_errors.inc();
                tracing::debug!(error = %e, "TCP read error");
                peer_ended = true;
                break;
            }
        }
    }
    if peer_ended {
        // The client ended the stream: its unterminated last line is a line (as in statsd_exporter).
        framer.finish(|line| ingest.lines_of(line, &mut scratch));
    } else if framer.cut() {
        // We closed the connection (idle, evicted, stopping) in the middle of a line: what arrived
        // of it is not a line (`x:1|c|@0.25` cut to `x:1|c|@0.2` would count 5, not 4).
        telemetry.tcp_cut_lines.inc();
    }
    ingest.publish(&mut scratch);
}

/// Splits a TCP byte stream into lines of bounded length.
///
/// Bytes are appended with [`LineFramer::push`]; complete lines come out through a callback. A line
/// longer than the limit is discarded up to its newline and reported once, without closing the
/// connection. A `\r` before the `\n` is dropped (by [`statsd_line::lines`]' rule, applied per line).
#[derive(Debug)]
pub struct LineFramer {
    buf: Vec<u8>,
    max_line: usize,
    discarding: bool,
}

impl LineFramer {
    /// A framer refusing lines longer than `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        Self {
            // Grown on demand, when a read ends in the middle of a line.
            buf: Vec::new(),
            max_line,
            discarding: false,
        }
    }

    /// Feeds received bytes; calls `line` for each complete line and `too_long` for each line dropped
    /// for its length.
    pub fn push(
        &mut self,
        mut data: &[u8],
        mut line: impl FnMut(&[u8]),
        mut too_long: impl FnMut(),
    ) {
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if self.discarding {
                        self.discarding = false;
                    } else if self.buf.len() + i > self.max_line {
                        too_long();
                    } else if self.buf.is_empty() {
                        line(&data[..i]);
                    } else {
                        self.buf.extend_from_slice(&data[..i]);
                        line(&self.buf);
                    }
                    self.buf.clear();
                    data = &data[i + 1..];
                }
                None => {
                    if !self.discarding {
                        if self.buf.len() + data.len() > self.max_line {
                            too_long();
                            self.buf.clear();
                            self.discarding = true;
                        } else {
                            self.buf.extend_from_slice(data);
                        }
                    }
                    data = &[];
                }
            }
        }
    }

    /// Drops an unterminated line, if any; returns whether there was one (one being discarded for its
    /// length is counted already).
    pub fn cut(&mut self) -> bool {
        let mut cut = false;
        self.finish(|_| cut = true);
        cut
    }

    /// At end of stream: the unterminated last line, if any (statsd_exporter processes it too).
    pub fn finish(&mut self, line: impl FnOnce(&[u8])) {
        if !self.discarding && !self.buf.is_empty() {
            line(&self.buf);
        }
        self.buf.clear();
        self.discarding = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(chunks: &[&[u8]], max: usize) -> (Vec<String>, usize) {
        let mut f = LineFramer::new(max);
        let mut lines = Vec::new();
        let mut long = 0;
        for c in chunks {
            f.push(
                c,
                |l| lines.push(String::from_utf8_lossy(l).into_owned()),
                || long += 1,
            );
        }
        f.finish(|l| lines.push(String::from_utf8_lossy(l).into_owned()));
        (lines, long)
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let (lines, long) = frame(&[b"foo:1", b"|c\nbar:2|g\nba", b"z:3|c\n"], 100);
        assert_eq!(lines, ["foo:1|c", "bar:2|g", "baz:3|c"]);
        assert_eq!(long, 0);
    }

    #[test]
    fn too_long_lines_are_skipped_and_the_stream_goes_on() {
        let (lines, long) = frame(&[b"ok:1|c\n", b"0123456789", b"0123456789\nnext:1|c\n"], 12);
        assert_eq!(lines, ["ok:1|c", "next:1|c"]);
        assert_eq!(long, 1);
        let (lines, long) = frame(&[b"0123456789012345\nnext:1|c"], 12);
        assert_eq!(lines, ["next:1|c"]);
        assert_eq!(long, 1);
    }

    #[test]
    fn unterminated_last_line_is_kept() {
        assert_eq!(frame(&[b"a:1|c"], 100).0, ["a:1|c"]);
    }
}
