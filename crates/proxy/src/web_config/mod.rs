//! `--web.config.file`: the Prometheus exporter-toolkit web configuration (as statsd_exporter 0.30
//! reads it, exporter-toolkit v0.16): TLS (`tls_server_config`), response headers
//! (`http_server_config`), basic authentication (`basic_auth_users`, bcrypt hashes) and a request rate
//! limit (`rate_limit`).
//!
//! The file is read strictly, as exporter-toolkit reads it: an unknown key or a bad value is an error
//! naming the key and its `line:column`, and the proxy does not start. Relative paths are taken from
//! the file's directory.
//!
//! **Reloads.** exporter-toolkit reads the file again on every TLS handshake and every request. Here
//! the file and the certificate, key and CA files it names are checked for changes (their modification
//! times and sizes) on every connection and request, and read again only when one changed: a rotated
//! certificate is served from the next connection on, without a restart. A new file that does not load
//! is logged and the previous configuration stays in use (exporter-toolkit fails every handshake
//! until it is fixed), and so does one that would switch the port between TLS and plain HTTP (that
//! takes a restart, as there).
//!
//! **TLS** is rustls with the *ring* provider: TLS 1.2 and 1.3 (a `min_version` of TLS 1.0 or 1.1 is
//! raised to 1.2, with a warning), the ECDHE AEAD cipher suites (`cipher_suites` names the TLS 1.2 ones
//! to allow, by Go's names; as in Go, TLS 1.3's suites are not configurable; suites rustls does not
//! implement — CBC, RSA key exchange — are skipped with a warning), `curve_preferences` X25519,
//! CurveP256 and CurveP384 (CurveP521 is skipped with a warning). HTTP/1.1 only (`http2` is accepted;
//! we do not serve HTTP/2).
//!
//! **Basic auth** follows exporter-toolkit: a request without valid credentials gets 401 with
//! `WWW-Authenticate: Basic`; an unknown user is checked against the configured hash of the highest
//! cost, so it costs the same time as a known one; outcomes are cached (as SHA-256 digests; valid and
//! invalid credentials 100 each, so made-up passwords never push out a scraper's) so a scraper does
//! not pay bcrypt per scrape. bcrypt runs one check at a time, off the async workers; at most
//! [`MAX_PENDING_CHECKS`] wait or run, and a request beyond them gets 503 with `Retry-After`.
//!
//! **Client certificates and `client_allowed_sans`**: with allowed SANs a client certificate is
//! required under every policy that asks for one; under `NoClientCert` they are ignored (no
//! certificate is asked for, as in exporter-toolkit) and under `RequestClientCert` and
//! `RequireAnyClientCert` the certificate is not verified, so its SANs prove nothing: both load with
//! a warning.

mod auth;
#[cfg(test)]
mod tests;
mod tls;

pub use auth::MAX_PENDING_CHECKS;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rustls::ServerConfig;
use serde::Deserialize;

use auth::{Passwords, UNKNOWN_USER_HASH};
use tls::{TlsFile, tls_config};

/// The file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct File {
    tls_server_config: TlsFile,
    http_server_config: HttpFile,
    basic_auth_users: BTreeMap<String, String>,
    rate_limit: RateLimitFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct HttpFile {
    http2: bool,
    headers: BTreeMap<String, String>,
}

impl Default for HttpFile {
    fn default() -> Self {
        Self {
            http2: true,
            headers: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RateLimitFile {
    burst: u32,
    /// A Go duration (`1s`, `100ms`); empty or zero: no limit.
    interval: String,
}

/// Headers exporter-toolkit lets a web config add, with the values it allows (empty: any).
const EXTRA_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// Why a web config does not load.
#[derive(Debug, Clone, thiserror::Error)]
#[error("web config {file}: {message}")]
pub struct WebConfigError {
    file: String,
    message: String,
}

/// A loaded web configuration.
#[derive(Debug)]
pub struct Loaded {
    /// TLS, when the file configures it (else plain HTTP).
    pub tls: Option<Arc<ServerConfig>>,
    users: HashMap<String, String>,
    /// The hash an unknown user's password is checked against: the configured one of the highest
    /// cost, so a failed login takes as long whether the user exists or not.
    unknown_user_hash: String,
    /// Headers added to every response.
    pub headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    rate_limit: Option<(u32, Duration)>,
    /// What the file asks for that we do not do (logged at each load).
    pub warnings: Vec<String>,
    stamp: Stamp,
}

/// Modification time and size of each file a configuration was read from.
type Stamp = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

fn stamp_of(paths: impl IntoIterator<Item = PathBuf>) -> Stamp {
    paths
        .into_iter()
        .map(|p| {
            let key = stamp_one(&p);
            (p, key)
        })
        .collect()
}

fn stamp_one(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reads and checks the web config at `path` (and the files it names).
pub fn load(path: &Path) -> Result<Loaded, WebConfigError> {
    load_watching(path, &mut Vec::new())
}

/// [`load`], noting in `watched` each file it reads with its stamp taken *before* reading it (a file
/// changed while it is read then differs from its stamp and is read again).
fn load_watching(path: &Path, watched: &mut Stamp) -> Result<Loaded, WebConfigError> {
    let fail = |message: String| WebConfigError {
        file: path.display().to_string(),
        message,
    };
    watched.push((path.to_path_buf(), stamp_one(path)));
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let file: File = match serde_yaml::from_str(&text) {
        Ok(f) => f,
        // An empty file is an empty configuration (plain HTTP, no auth), as in Go.
        Err(_) if text.trim().is_empty() => File::default(),
        Err(e) => {
            // serde_yaml names the key path first (`tls_server_config.min_version: …`) and ends with
            // " at line L column C": the position leads instead.
            let at = e
                .location()
                .map(|l| format!("{}:{}: ", l.line(), l.column()))
                .unwrap_or_default();
            let message = e.to_string();
            let message = message.split(" at line ").next().unwrap_or(&message);
            return Err(fail(format!("{at}{message}")));
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut warnings = Vec::new();
    let tls = tls_config(&file.tls_server_config, dir, &mut warnings, watched).map_err(fail)?;
    let headers = headers(&file.http_server_config.headers).map_err(fail)?;
    if tls.is_some() && file.http_server_config.http2 {
        // The default; we serve HTTP/1.1, which every scraper speaks.
    }
    let mut unknown_user_hash = (0, UNKNOWN_USER_HASH.to_string());
    for (user, hash) in &file.basic_auth_users {
        let parts = hash.parse::<bcrypt::HashParts>().map_err(|e| {
            fail(format!(
                "basic_auth_users.{user}: not a bcrypt hash ({e}); make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`"
            ))
        })?;
        if parts.get_cost() > unknown_user_hash.0 {
            unknown_user_hash = (parts.get_cost(), hash.clone());
        }
    }
    let rate_limit = match file.rate_limit.interval.trim() {
        "" | "0" | "0s" => None,
        interval => {
            let every = humantime::parse_duration(interval)
                .map_err(|e| fail(format!("rate_limit.interval: {interval:?}: {e}")))?;
            (!every.is_zero()).then_some((file.rate_limit.burst.max(1), every))
        }
    };
    Ok(Loaded {
        tls,
        users: file.basic_auth_users.into_iter().collect(),
        unknown_user_hash: unknown_user_hash.1,
        headers,
        rate_limit,
        warnings,
        stamp: watched.clone(),
    })
}

fn headers(
    configured: &BTreeMap<String, String>,
) -> Result<Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>, String> {
    let mut out = Vec::new();
    for (name, value) in configured {
        let Some((_, allowed)) = EXTRA_HEADERS.iter().find(|(n, _)| n == name) else {
            return Err(format!(
                "http_server_config.headers: HTTP header {name:?} can not be configured"
            ));
        };
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(format!(
                "http_server_config.headers: invalid value for {name}. Expected one of: {allowed:?}, but got: {value:?}"
            ));
        }
        let header = hyper::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| format!("http_server_config.headers.{name}: {e}"))?;
        let value = hyper::header::HeaderValue::from_str(value)
            .map_err(|e| format!("http_server_config.headers.{name}: {e}"))?;
        out.push((header, value));
    }
    Ok(out)
}

fn joined(dir: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

fn read(dir: &Path, file: &str, key: &str, watched: &mut Stamp) -> Result<Vec<u8>, String> {
    let path = joined(dir, file);
    watched.push((path.clone(), stamp_one(&path)));
    std::fs::read(&path).map_err(|e| format!("failed to read {key} ({}): {e}", path.display()))
}

/// What a request's credentials are worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Allowed,
    /// 401 with `WWW-Authenticate: Basic`.
    Unauthorized,
    /// 429: over `rate_limit`.
    TooManyRequests,
    /// 503: [`MAX_PENDING_CHECKS`] password checks are waiting or running already.
    Busy,
}

/// The web configuration in use, reloaded when its files change.
#[derive(Debug)]
pub struct WebSecurity {
    path: PathBuf,
    current: ArcSwap<Loaded>,
    /// TLS or plain HTTP, as at start: a reload that would switch is refused (a restart does it).
    tls: bool,
    /// A new file that failed to load: the stamp of the files in use then, and of those the failed
    /// load read (not retried until one of either changes again).
    failed: Mutex<Option<(Stamp, Stamp)>>,
    /// Basic auth's password checks and their cached outcomes.
    passwords: Passwords,
    limiter: Mutex<Option<(f64, Instant)>>,
}

impl WebSecurity {
    /// Loads `path` (an error refuses the start).
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let loaded = load(path)?;
        for w in &loaded.warnings {
            tracing::warn!(file = %path.display(), "web config: {w}");
        }
        Ok(Self {
            path: path.to_path_buf(),
            tls: loaded.tls.is_some(),
            current: ArcSwap::from_pointee(loaded),
            failed: Mutex::new(None),
            passwords: Passwords::new(),
            limiter: Mutex::new(None),
        })
    }

    /// The configuration to use now: read again if one of its files changed since it was loaded; a
    /// new file that does not load is logged once and the previous configuration stays.
    pub fn current(&self) -> Arc<Loaded> {
        let current = self.current.load_full();
        let now = stamp_of(current.stamp.iter().map(|(p, _)| p.clone()));
        if now == current.stamp {
            return current;
        }
        let mut failed = self.failed.lock();
        if let Some((then, tried)) = failed.as_ref()
            && *then == now
            && stamp_of(tried.iter().map(|(p, _)| p.clone())) == *tried
        {
            return current;
        }
        let mut tried = Vec::new();
        let reloaded = load_watching(&self.path, &mut tried).and_then(|loaded| {
            if loaded.tls.is_some() == self.tls {
                Ok(loaded)
            } else {
                Err(WebConfigError {
                    file: self.path.display().to_string(),
                    message: if self.tls {
                        "tls_server_config no longer configures TLS: the port keeps serving TLS until a restart".into()
                    } else {
                        "tls_server_config now configures TLS: the port keeps serving plain HTTP until a restart".into()
                    },
                })
            }
        });
        match reloaded {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    tracing::warn!(file = %self.path.display(), "web config: {w}");
                }
                tracing::info!(file = %self.path.display(), tls = loaded.tls.is_some(), "web config reloaded");
                *failed = None;
                self.passwords.forget();
                let loaded = Arc::new(loaded);
                self.current.store(Arc::clone(&loaded));
                loaded
            }
            Err(e) => {
                tracing::error!(error = %e, "web config reload failed; the previous configuration stays in use");
                *failed = Some((now, tried));
                current
            }
        }
    }

    /// Serves TLS (decided at start: a listener does not switch between TLS and plain HTTP).
    pub fn tls_enabled(&self) -> bool {
        self.tls
    }

    /// Checks a request's `Authorization` header (and the rate limit) against `config`.
    pub async fn check(&self, config: &Loaded, authorization: Option<&[u8]>) -> Verdict {
        if let Some((burst, every)) = config.rate_limit
            && !self.take_token(burst, every)
        {
            return Verdict::TooManyRequests;
        }
        if config.users.is_empty() {
            return Verdict::Allowed;
        }
        self.passwords.check(config, authorization).await
    }

    /// bcrypt checks run since start (cache misses).
    pub fn password_checks(&self) -> u64 {
        self.passwords.checks()
    }

    /// A token bucket of `burst` tokens refilled one per `every`.
    fn take_token(&self, burst: u32, every: Duration) -> bool {
        let mut state = self.limiter.lock();
        let now = Instant::now();
        let (tokens, at) = state.unwrap_or((f64::from(burst), now));
        let refilled = (tokens + now.duration_since(at).as_secs_f64() / every.as_secs_f64())
            .min(f64::from(burst));
        if refilled >= 1.0 {
            *state = Some((refilled - 1.0, now));
            true
        } else {
            *state = Some((refilled, now));
            false
        }
    }
}
