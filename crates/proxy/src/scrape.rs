//! A scrape's response body: the page is rendered (and gzipped) in chunks of [`CHUNK`] bytes, each on
//! a blocking thread, as the client reads it: text 0.0.4, or protobuf `MetricFamily` messages (whole
//! families per chunk), as [`statsd_exposition::proto::negotiate`] chose.
//!
//! Why chunks: a page of 100k series is several MB. Built whole, every concurrent scrape held a copy,
//! and the allocator kept the peak long after (two rounds of 50 scrapes left RSS at 430 MB). Streamed,
//! a scrape holds one chunk and its compressed form whatever the store's size, and a client that reads
//! slowly only delays itself. Why off the async workers: a chunk costs tens of microseconds of CPU
//! (more in protobuf), which would add up to milliseconds of stalled TCP and unixgram ingest per
//! scrape on a worker. Each chunk takes one of the [`crate::config::MAX_CONCURRENT_RENDERS`] render
//! slots, so scrapes cannot occupy every core however many arrive; the slot is released between
//! chunks, so a client that stops reading never holds one. A scrape holds one of the
//! [`crate::config::MAX_STREAMING_SCRAPES`] streaming slots from its response to its body's end, which
//! bounds the memory of all scrapes together (a gzip compressor is about 300 KiB); a client that stops
//! reading is disconnected after [`crate::config::WRITE_STALL_TIMEOUT`], freeing its slot.
//!
//! Consistency: our own metrics are *gathered* when the first chunk is rendered, before the store is
//! read, and written after the store. A receive task updates the store before it publishes its counts,
//! so every line counted on the page is already in the store when the store is rendered.

use std::future::Future;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use flate2::write::GzEncoder;
use hyper::body::{Body, Frame};
use statsd_exposition::proto::Format;
use statsd_store::Scrape;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinError;

use crate::state::State;

/// Bytes rendered per chunk (a text chunk ends at the first series boundary past it, a protobuf one at
/// the first family boundary).
pub const CHUNK: usize = 256 * 1024;

/// The rendering side of one scrape, moved to a blocking thread for each chunk and back.
struct Renderer {
    state: Arc<State>,
    format: Format,
    /// The store's part, once begun.
    store: Option<Scrape>,
    /// Our own metrics (in `own_text` or `own`, by format), gathered before the store is read, written
    /// after it.
    own_text: String,
    own: Vec<u8>,
    /// The chunk being rendered (its buffers reused): text, or protobuf messages.
    text: String,
    bytes: Vec<u8>,
    gzip: Option<GzEncoder<Vec<u8>>>,
    finished: bool,
}

impl Renderer {
    /// Renders the next chunk into `text` or `bytes` (whichever the format uses); returns whether more
    /// follows. The first call gathers our own metrics and begins the store's scrape.
    fn render(&mut self) -> bool {
        self.text.clear();
        self.bytes.clear();
        let scrape = match &mut self.store {
            Some(scrape) => scrape,
            None => {
                let state = &self.state;
                state.telemetry().set_series(&state.store().len_by_kind());
                state.update_kernel_drops();
                match self.format {
                    Format::Text => state.telemetry().render(&mut self.own_text),
                    Format::Protobuf => state.telemetry().render_proto(&mut self.own),
                }
                self.store.insert(state.store().scrape())
            }
        };
        match self.format {
            Format::Text => scrape.next_chunk(&mut self.text, CHUNK),
            // Whole families, as many as fill a chunk.
            Format::Protobuf => loop {
                let more = scrape.next_family_proto(&mut self.bytes);
                if !more || self.bytes.len() >= CHUNK {
                    break more;
                }
            },
        }
    }

    /// The next piece of the body: `None` when everything has been written.
    fn next(&mut self) -> io::Result<Option<Bytes>> {
        while !self.finished {
            let more = self.render();
            if !more {
                self.text.push_str(&self.own_text);
                self.bytes.extend_from_slice(&self.own);
                self.finished = true;
            }
            let chunk: &[u8] = match self.format {
                Format::Text => self.text.as_bytes(),
                Format::Protobuf => &self.bytes,
            };
            let Some(encoder) = &mut self.gzip else {
                return Ok(Some(Bytes::copy_from_slice(chunk)));
            };
            encoder.write_all(chunk)?;
            if self.finished {
                encoder.try_finish()?;
            }
            // Compressed text is a small fraction of its input: render on until a frame's worth (or
            // the end) is out, rather than sending many tiny frames.
            if encoder.get_ref().len() >= CHUNK / 4
                || (self.finished && !encoder.get_ref().is_empty())
            {
                return Ok(Some(Bytes::from(std::mem::take(encoder.get_mut()))));
            }
        }
        Ok(None)
    }
}

type Chunk = Result<(Renderer, io::Result<Option<Bytes>>), JoinError>;

/// The body of a `/metrics` response (see the module documentation).
pub struct ScrapeBody {
    /// This scrape's streaming slot, released when the body is dropped.
    _slot: OwnedSemaphorePermit,
    renderer: Option<Renderer>,
    pending: Option<Pin<Box<dyn Future<Output = Chunk> + Send>>>,
}

impl ScrapeBody {
    /// A scrape of `state` in `format`, gzipped when `gzip`, streaming in `slot`. Nothing is rendered
    /// until the body is polled.
    pub fn new(state: Arc<State>, format: Format, gzip: bool, slot: OwnedSemaphorePermit) -> Self {
        let gzip = gzip.then(|| GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        Self {
            _slot: slot,
            renderer: Some(Renderer {
                state,
                format,
                store: None,
                own_text: String::new(),
                own: Vec::new(),
                text: String::new(),
                bytes: Vec::new(),
                gzip,
                finished: false,
            }),
            pending: None,
        }
    }
}

impl Body for ScrapeBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let pending = match &mut this.pending {
            Some(pending) => pending,
            None => {
                let Some(mut renderer) = this.renderer.take() else {
                    return Poll::Ready(None);
                };
                this.pending.insert(Box::pin(async move {
                    let state = Arc::clone(&renderer.state);
                    let _slot = state.render_slot().await;
                    tokio::task::spawn_blocking(move || {
                        let chunk = renderer.next();
                        (renderer, chunk)
                    })
                    .await
                }))
            }
        };
        let Poll::Ready(chunk) = pending.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        this.pending = None;
        match chunk {
            Ok((renderer, Ok(Some(bytes)))) => {
                if !renderer.finished {
                    this.renderer = Some(renderer);
                }
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Ok((_, Ok(None))) => Poll::Ready(None),
            Ok((_, Err(e))) => Poll::Ready(Some(Err(e))),
            Err(e) => {
                tracing::error!(error = %e, "rendering the scrape failed");
                Poll::Ready(Some(Err(io::Error::other(e))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.renderer.is_none() && self.pending.is_none()
    }
}
