//! StatsD over TCP: an accept loop bounded by `--statsd.tcp-max-connections`, one task per connection
//! (all of them in one `JoinSet`, awaited when the loop stops), an idle timeout, and the line framer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{TCP_READ_BUFFER, TcpLimits};
use crate::ingest::Ingest;
use crate::telemetry::Telemetry;

/// Accepts connections until `stop` fires, then waits for every connection task to finish (each
/// watches `stop` too, and processes what it had read).
pub async fn accept(
    listener: TcpListener,
    ingest: Ingest,
    telemetry: Telemetry,
    limits: TcpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    telemetry.tcp_connections.inc();
                    if limits.max_connections > 0 && open.load(Ordering::Relaxed) >= limits.max_connections {
                        telemetry.tcp_connections_refused.inc();
                        tracing::debug!(%peer, "TCP connection refused: --statsd.tcp-max-connections reached");
                        drop(stream);
                        continue;
                    }
                    open.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "TCP connection");
                    let open = Arc::clone(&open);
                    let (ingest, telemetry, stop) = (ingest.clone(), telemetry.clone(), stop.clone());
                    connections.spawn(async move {
                        connection(stream, ingest, telemetry, limits, stop).await;
                        open.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                Err(e) => {
                    telemetry.tcp_connection_errors.inc();
                    tracing::warn!(error = %e, "TCP accept error");
                }
            },
        }
    }
    while connections.join_next().await.is_some() {}
}

async fn connection(
    mut stream: TcpStream,
    ingest: Ingest,
    telemetry: Telemetry,
    limits: TcpLimits,
    mut stop: watch::Receiver<bool>,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; TCP_READ_BUFFER];
    let mut framer = LineFramer::new(limits.max_line);
    let mut scratch = ingest.scratch();
    let idle = if limits.idle_timeout.is_zero() {
        Duration::MAX
    } else {
        limits.idle_timeout
    };
    loop {
        let read = tokio::select! {
            biased;
            _ = stop.changed() => break,
            read = tokio::time::timeout(idle, stream.read(&mut buf)) => read,
        };
        match read {
            Err(_elapsed) => {
                tracing::debug!("closing idle TCP connection");
                break;
            }
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => {
                framer.push(
                    &buf[..n],
                    |line| ingest.lines_of(line, &mut scratch),
                    || telemetry.tcp_too_long_lines.inc(),
                );
                ingest.publish(&mut scratch);
            }
            Ok(Err(e)) => {
                telemetry.tcp_connection_errors.inc();
                tracing::debug!(error = %e, "TCP read error");
                break;
            }
        }
    }
    framer.finish(|line| ingest.lines_of(line, &mut scratch));
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
            buf: Vec::with_capacity(max_line.min(64 * 1024)),
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
