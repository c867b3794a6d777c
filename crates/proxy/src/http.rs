//! The HTTP endpoint: the scrape path, a landing page, and health checks.

use std::convert::Infallible;
use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use statsd_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::telemetry::Telemetry;

/// What request handlers read.
#[derive(Debug)]
pub struct State {
    /// The series to expose.
    pub store: Arc<Store>,
    /// Our own metrics, appended to every scrape.
    pub telemetry: Telemetry,
    /// The scrape path (`--web.telemetry-path`).
    pub telemetry_path: String,
}

/// Accepts HTTP connections until `stop` fires.
pub async fn serve(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, _) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept error");
                continue;
            }
        };
        let state = Arc::clone(&state);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, &req)) }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "HTTP connection error");
                    }
                }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Routes one request.
pub fn handle(state: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "Only GET and HEAD are allowed here.\n",
        );
    }
    if path == state.telemetry_path {
        let gzip = req
            .headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(statsd_exposition::accepts_gzip);
        return metrics(state, gzip);
    }
    match path {
        "/" => text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            landing_page(&state.telemetry_path),
        ),
        "/-/healthy" => text(StatusCode::OK, "text/plain; charset=utf-8", "OK\n"),
        "/-/ready" => text(StatusCode::OK, "text/plain; charset=utf-8", "OK\n"),
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "Not found.\n",
        ),
    }
}

/// Renders the store, then our own metrics, in one text-format body.
///
/// Our metrics are *gathered* first: a receive task updates the store before it publishes its counts,
/// so every line counted in this snapshot is already in the store when the store is rendered next.
/// (Rendering the store first let a scrape count a line whose series it did not show.)
pub fn render(state: &State) -> String {
    state.telemetry.set_series(&state.store.len_by_kind());
    let families = state.telemetry.registry.gather();
    let mut own = String::new();
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&families, &mut own) {
        // Our own registry holds only valid metrics; never fail the scrape over it.
        tracing::error!(error = %e, "cannot encode self-metrics");
    }
    let mut body = String::with_capacity(64 * 1024 + own.len());
    state.store.render(&mut body);
    body.push_str(&own);
    body
}

fn metrics(state: &State, gzip: bool) -> Response<Full<Bytes>> {
    let body = render(state);
    if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if encoder.write_all(body.as_bytes()).is_ok()
            && let Ok(compressed) = encoder.finish()
        {
            let mut response = text(StatusCode::OK, statsd_exposition::CONTENT_TYPE, compressed);
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            return response;
        }
    }
    text(StatusCode::OK, statsd_exposition::CONTENT_TYPE, body)
}

fn landing_page(telemetry_path: &str) -> String {
    let mut escaped = String::new();
    for c in telemetry_path.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            c => escaped.push(c),
        }
    }
    format!(
        "<!DOCTYPE html>\n<html><head><title>statsd-proxy</title></head><body>\n\
         <h1>statsd-proxy</h1>\n<p>StatsD to Prometheus translating proxy.</p>\n\
         <ul><li><a href=\"{escaped}\">Metrics</a></li>\n\
         <li><a href=\"/-/healthy\">Health</a></li><li><a href=\"/-/ready\">Readiness</a></li></ul>\n\
         </body></html>\n"
    )
}
