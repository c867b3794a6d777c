//! The HTTP endpoint: the scrape path, a landing page, the status page (`/status`, and its data as
//! JSON at `/api/v1/status`, see [`crate::status`]), health and readiness, and (with
//! `--web.enable-lifecycle`) reload and quit.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_io_timeout::TimeoutStream;

use crate::config::{HEADER_READ_TIMEOUT, SCRAPE_QUEUE_TIMEOUT, WRITE_STALL_TIMEOUT};
use crate::listen::AcceptBackoff;
use crate::scrape::ScrapeBody;
use crate::state::State;
use crate::web_config::Verdict;
use statsd_exposition::proto::Format;

const TEXT: &str = "text/plain; charset=utf-8";

/// Every response's body: a small one built whole, or a streamed scrape.
pub type Body = Either<Full<Bytes>, ScrapeBody>;

/// Accepts HTTP connections until `stop` fires, serving at most `max_connections` at once (more wait
/// in the accept queue). Connections in progress are finished (gracefully) before this returns, so a
/// response such as `/-/quit`'s is delivered before the process exits. Accept errors back off.
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    max_connections: usize,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    let mut backoff = AcceptBackoff::new("HTTP");
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.changed() => break,
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept(), if connections.len() < max_connections.max(1) => accepted,
        };
        let (stream, _) = match accepted {
            Ok(conn) => {
                backoff.reset();
                conn
            }
            Err(e) => {
                backoff.failed(&e).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        let mut stop = stop.clone();
        connections.spawn(async move {
            // With --web.config.file's TLS: the handshake first (the configuration re-read if one
            // of its files changed), within the header-read timeout.
            let tls = state
                .web_security()
                .and_then(|security| security.current().tls.clone());
            match tls {
                None => serve_connection(stream, state, stop).await,
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    let handshake =
                        tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream));
                    let shaken = tokio::select! {
                        shaken = handshake => shaken,
                        _ = stop.changed() => return,
                    };
                    match shaken {
                        Ok(Ok(tls)) => serve_connection(tls, state, stop).await,
                        Ok(Err(e)) => {
                            state.telemetry().web_tls_handshake_errors.inc();
                            tracing::debug!(error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            state.telemetry().web_tls_handshake_errors.inc();
                            tracing::debug!("TLS handshake timed out");
                        }
                    }
                }
            }
        });
    }
    while connections.join_next().await.is_some() {}
}

/// Serves HTTP/1.1 on one connection (plain or TLS) until it closes or `stop` fires (then gracefully).
async fn serve_connection<S>(stream: S, state: Arc<State>, mut stop: watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let service = service_fn(move |req| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(guarded(&state, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(crate::scrape::CHUNK)
        .serve_connection(TokioIo::new(stalled_writes_time_out(stream)), service);
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
}

/// [`handle`] behind the web config's rate limit and basic auth, its headers added to every answer.
async fn guarded(state: &Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let Some(security) = state.web_security() else {
        return handle(state, req).await;
    };
    let config = security.current();
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let mut response = match security.check(&config, authorization).await {
        Verdict::Allowed => handle(state, req).await,
        Verdict::Unauthorized => {
            state.telemetry().web_unauthorized.inc();
            let mut r = text(StatusCode::UNAUTHORIZED, TEXT, "Unauthorized\n");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            r
        }
        Verdict::TooManyRequests => {
            state.telemetry().web_rate_limited.inc();
            text(StatusCode::TOO_MANY_REQUESTS, TEXT, "Too Many Requests\n")
        }
        Verdict::Busy => {
            state.telemetry().web_auth_busy.inc();
            retry_later("Too many password checks waiting; try again.\n")
        }
    };
    for (name, value) in &config.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// 503 with `Retry-After: 1`.
fn retry_later(message: &'static str) -> Response<Body> {
    let mut busy = text(StatusCode::SERVICE_UNAVAILABLE, TEXT, message);
    busy.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    busy
}

/// The connection's stream, failing a write that makes no progress for [`WRITE_STALL_TIMEOUT`].
fn stalled_writes_time_out<S>(stream: S) -> Pin<Box<TimeoutStream<S>>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let mut stream = TimeoutStream::new(stream);
    stream.set_write_timeout(Some(WRITE_STALL_TIMEOUT));
    Box::pin(stream)
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Either::Left(Full::new(body.into())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn method_not_allowed(allowed: &'static str) -> Response<Body> {
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        TEXT,
        format!("Allowed: {allowed}.\n"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    r
}

/// Routes one request.
pub async fn handle(state: &Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD);
    if path == state.telemetry_path() {
        // Any method, as promhttp serves it.
        let gzip = statsd_exposition::accepts_gzip(
            req.headers()
                .get_all(header::ACCEPT_ENCODING)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        let format = statsd_exposition::proto::negotiate(
            req.headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        );
        return metrics(state, format, gzip).await;
    }
    match path {
        // statsd_exporter answers other methods here with an empty 200.
        "/-/healthy" | "/-/ready" if !read_only => text(StatusCode::OK, TEXT, ""),
        "/status" | "/api/v1/status" if !read_only => method_not_allowed("GET, HEAD"),
        "/status" => {
            let explain = crate::status::explain_query(req.uri().query());
            status_page(state, explain).await
        }
        "/api/v1/status" => status_json(state).await,
        "/" => text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            landing_page(state),
        ),
        // statsd_exporter's texts: probes may match them.
        "/-/healthy" => text(StatusCode::OK, TEXT, "Statsd Exporter is Healthy.\n"),
        "/-/ready" if state.is_ready() => text(StatusCode::OK, TEXT, "Statsd Exporter is Ready.\n"),
        "/-/ready" => text(StatusCode::SERVICE_UNAVAILABLE, TEXT, "Not ready.\n"),
        "/-/reload" | "/-/quit" if !state.lifecycle_enabled() => text(
            StatusCode::NOT_FOUND,
            TEXT,
            "Lifecycle endpoints are off: start with --web.enable-lifecycle.\n",
        ),
        "/-/reload" | "/-/quit" if !matches!(*req.method(), Method::PUT | Method::POST) => {
            method_not_allowed("PUT, POST")
        }
        "/-/reload" => match state.reload().await {
            Ok(rules) => text(
                StatusCode::OK,
                TEXT,
                format!("Reloaded: {rules} mapping rules.\n"),
            ),
            // statsd_exporter answers 200 either way; a failed reload deserves a failure status.
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                TEXT,
                format!("Reload failed; the previous mapping stays in use.\n{e}\n"),
            ),
        },
        "/-/quit" => {
            state.request_quit();
            text(StatusCode::OK, TEXT, "Requesting termination... Goodbye!\n")
        }
        _ => text(StatusCode::NOT_FOUND, TEXT, "Not found.\n"),
    }
}

/// The status report, gathered on a blocking thread (it counts the store's series).
async fn gather(state: &Arc<State>) -> Option<crate::status::Report> {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || crate::status::report(&state))
        .await
        .ok()
}

async fn status_page(state: &Arc<State>, explain: Option<String>) -> Response<Body> {
    let Some(report) = gather(state).await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, TEXT, "Shutting down.\n");
    };
    let explained = explain.map(|input| {
        let output = crate::status::explain(state, &input);
        (input, output)
    });
    let page = crate::status::html(
        &report,
        explained.as_ref().map(|(i, o)| (i.as_str(), o.as_str())),
    );
    text(StatusCode::OK, "text/html; charset=utf-8", page)
}

async fn status_json(state: &Arc<State>) -> Response<Body> {
    let Some(report) = gather(state).await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, TEXT, "Shutting down.\n");
    };
    match serde_json::to_vec_pretty(&report) {
        Ok(body) => text(StatusCode::OK, "application/json", body),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, TEXT, format!("{e}\n")),
    }
}

/// A `/metrics` response: the page is streamed, rendered in chunks as the client reads it (see
/// [`crate::scrape`]), once a streaming slot is free; 503 with `Retry-After` if none frees up within
/// [`SCRAPE_QUEUE_TIMEOUT`].
async fn metrics(state: &Arc<State>, format: Format, gzip: bool) -> Response<Body> {
    let slot = match tokio::time::timeout(SCRAPE_QUEUE_TIMEOUT, state.scrape_slot()).await {
        Ok(Ok(slot)) => slot,
        Ok(Err(_)) => return text(StatusCode::SERVICE_UNAVAILABLE, TEXT, "Shutting down.\n"),
        Err(_) => return retry_later("Too many scrapes at once; try again.\n"),
    };
    state.telemetry().scraped(format);
    let body = ScrapeBody::new(Arc::clone(state), format, gzip, slot);
    let mut response = Response::new(Either::Right(body));
    let headers = response.headers_mut();
    let content_type = match format {
        Format::Text => statsd_exposition::CONTENT_TYPE,
        Format::Protobuf => statsd_exposition::proto::PROTOBUF_CONTENT_TYPE,
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

fn landing_page(state: &State) -> String {
    let path = crate::status::escape_html(state.telemetry_path());
    let lifecycle = if state.lifecycle_enabled() {
        "<li>POST <code>/-/reload</code> reloads the mapping; POST <code>/-/quit</code> stops the proxy.</li>\n"
    } else {
        ""
    };
    format!(
        "<!DOCTYPE html>\n<html><head><title>statsd-proxy</title></head><body>\n\
         <h1>statsd-proxy</h1>\n<p>StatsD to Prometheus translating proxy.</p>\n\
         <ul><li><a href=\"{path}\">Metrics</a></li>\n\
         <li><a href=\"/status\">Status</a>: traffic, drops, unmapped names, rule hits, series, \
         and an explain form (<a href=\"/api/v1/status\">as JSON</a>)</li>\n\
         <li><a href=\"/-/healthy\">Health</a></li><li><a href=\"/-/ready\">Readiness</a></li>\n{lifecycle}</ul>\n\
         </body></html>\n"
    )
}
