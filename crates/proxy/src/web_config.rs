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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoClientAuth, WebPkiClientVerifier};
use rustls::{DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};
use serde::Deserialize;

/// A bcrypt hash of "fakepassword" (exporter-toolkit's): unknown users are checked against it, so a
/// failed login takes as long whether the user exists or not.
const UNKNOWN_USER_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
/// Cached authentication outcomes (exporter-toolkit's size).
const AUTH_CACHE_SIZE: usize = 100;
/// Password checks (bcrypt) waiting or running at once; a request beyond them is answered 503 at once,
/// so a flood of made-up passwords cannot queue a scraper's first login behind it for minutes.
pub const MAX_PENDING_CHECKS: usize = 16;

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
struct TlsFile {
    cert: String,
    key: String,
    client_ca: String,
    cert_file: String,
    key_file: String,
    client_auth_type: ClientAuth,
    client_ca_file: String,
    cipher_suites: Vec<String>,
    curve_preferences: Vec<String>,
    min_version: TlsVersion,
    max_version: TlsVersion,
    prefer_server_cipher_suites: bool,
    client_allowed_sans: Option<Vec<String>>,
}

impl Default for TlsFile {
    fn default() -> Self {
        Self {
            cert: String::new(),
            key: String::new(),
            client_ca: String::new(),
            cert_file: String::new(),
            key_file: String::new(),
            client_auth_type: ClientAuth::NoClientCert,
            client_ca_file: String::new(),
            cipher_suites: Vec::new(),
            curve_preferences: Vec::new(),
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            prefer_server_cipher_suites: true,
            client_allowed_sans: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
enum ClientAuth {
    #[default]
    #[serde(rename = "NoClientCert", alias = "")]
    NoClientCert,
    #[serde(rename = "RequestClientCert")]
    RequestClientCert,
    #[serde(rename = "RequireAnyClientCert", alias = "RequireClientCert")]
    RequireAnyClientCert,
    #[serde(rename = "VerifyClientCertIfGiven")]
    VerifyClientCertIfGiven,
    #[serde(rename = "RequireAndVerifyClientCert")]
    RequireAndVerifyClientCert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
enum TlsVersion {
    #[serde(rename = "TLS10")]
    Tls10,
    #[serde(rename = "TLS11")]
    Tls11,
    #[serde(rename = "TLS12")]
    Tls12,
    #[serde(rename = "TLS13")]
    Tls13,
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

/// Go's names of TLS 1.2 suites Go knows and rustls does not implement (skipped with a warning).
const UNSUPPORTED_SUITES: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
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

/// The rustls configuration `tls` describes, `None` when it configures no TLS (plain HTTP).
fn tls_config(
    tls: &TlsFile,
    dir: &Path,
    warnings: &mut Vec<String>,
    watched: &mut Stamp,
) -> Result<Option<Arc<ServerConfig>>, String> {
    let no_ca = tls.client_ca_file.is_empty() && tls.client_ca.is_empty();
    if tls.cert_file.is_empty()
        && tls.cert.is_empty()
        && tls.key_file.is_empty()
        && tls.key.is_empty()
        && no_ca
        && tls.client_auth_type == ClientAuth::NoClientCert
    {
        return Ok(None);
    }
    if tls.cert_file.is_empty() && tls.cert.is_empty() {
        return Err("tls_server_config: missing one of cert or cert_file".into());
    }
    if tls.key_file.is_empty() && tls.key.is_empty() {
        return Err("tls_server_config: missing one of key or key_file".into());
    }
    let cert_pem = if tls.cert_file.is_empty() {
        tls.cert.as_bytes().to_vec()
    } else {
        read(dir, &tls.cert_file, "cert_file", watched)?
    };
    let key_pem = if tls.key_file.is_empty() {
        tls.key.as_bytes().to_vec()
    } else {
        read(dir, &tls.key_file, "key_file", watched)?
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls_server_config: failed to load X509KeyPair: certificate: {e}"))?;
    if chain.is_empty() {
        return Err(
            "tls_server_config: failed to load X509KeyPair: no certificate in the PEM data".into(),
        );
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("tls_server_config: failed to load X509KeyPair: key: {e}"))?;

    let mut provider = rustls::crypto::ring::default_provider();
    if !tls.cipher_suites.is_empty() {
        let mut allowed = Vec::new();
        for name in &tls.cipher_suites {
            // rustls names its suites as Go does; Go also accepts the ChaCha20 ones without
            // `_SHA256`.
            let tls12 = provider.cipher_suites.iter().find(|s| {
                let rustls_name = format!("{:?}", s.suite());
                s.version() == &rustls::version::TLS12
                    && (&rustls_name == name || rustls_name == format!("{name}_SHA256"))
            });
            match tls12 {
                Some(suite) => allowed.push(suite.suite()),
                None if UNSUPPORTED_SUITES.contains(&name.as_str()) => warnings.push(format!(
                    "tls_server_config.cipher_suites: {name} is not implemented by rustls (no CBC, RC4, 3DES or RSA key exchange; TLS 1.3 suites are not configurable): skipped"
                )),
                None => return Err(format!("tls_server_config.cipher_suites: unknown cipher suite {name:?}")),
            }
        }
        provider
            .cipher_suites
            .retain(|s| s.version() == &rustls::version::TLS13 || allowed.contains(&s.suite()));
    }
    if !tls.curve_preferences.is_empty() {
        use rustls::crypto::ring::kx_group;
        let mut groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup> = Vec::new();
        for name in &tls.curve_preferences {
            match name.as_str() {
                "X25519" => groups.push(kx_group::X25519),
                "CurveP256" => groups.push(kx_group::SECP256R1),
                "CurveP384" => groups.push(kx_group::SECP384R1),
                "CurveP521" => warnings.push(
                    "tls_server_config.curve_preferences: CurveP521 is not implemented by rustls' ring provider: skipped".into(),
                ),
                other => {
                    return Err(format!(
                        "tls_server_config.curve_preferences: unknown curve {other:?}"
                    ));
                }
            }
        }
        if groups.is_empty() {
            return Err("tls_server_config.curve_preferences: none of the curves is available (X25519, CurveP256, CurveP384 are)".into());
        }
        provider.kx_groups = groups;
    }
    let min = if tls.min_version < TlsVersion::Tls12 {
        warnings.push(format!(
            "tls_server_config.min_version: {:?} is below TLS 1.2, the oldest version rustls speaks: TLS 1.2 is the minimum",
            tls.min_version
        ));
        TlsVersion::Tls12
    } else {
        tls.min_version
    };
    if tls.max_version < TlsVersion::Tls12 {
        return Err(format!(
            "tls_server_config.max_version: {:?}: TLS 1.0 and 1.1 are not available (rustls speaks TLS 1.2 and 1.3)",
            tls.max_version
        ));
    }
    if min > tls.max_version {
        return Err("tls_server_config: min_version is above max_version".into());
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (min..=tls.max_version).contains(v))
    .map(|(_, p)| p)
    .collect();
    let provider = Arc::new(provider);

    let roots = if no_ca {
        None
    } else {
        let pem = if tls.client_ca_file.is_empty() {
            tls.client_ca.as_bytes().to_vec()
        } else {
            read(dir, &tls.client_ca_file, "client_ca_file", watched)?
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("tls_server_config: client CA: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("tls_server_config: client CA: {e}"))?;
        }
        Some(Arc::new(roots))
    };
    if roots.is_some() && tls.client_auth_type == ClientAuth::NoClientCert {
        return Err(
            "tls_server_config: client CA's have been configured without a Client Auth Policy"
                .into(),
        );
    }
    let verifying = |optional: bool| -> Result<Arc<dyn ClientCertVerifier>, String> {
        let roots = roots.clone().ok_or_else(|| {
            format!(
                "tls_server_config: client_auth_type {:?} needs client_ca_file or client_ca",
                tls.client_auth_type
            )
        })?;
        let builder = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider));
        let builder = if optional {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder
            .build()
            .map(|v| v as Arc<dyn ClientCertVerifier>)
            .map_err(|e| format!("tls_server_config: client CA: {e}"))
    };
    let verifier: Arc<dyn ClientCertVerifier> = match tls.client_auth_type {
        ClientAuth::NoClientCert => Arc::new(NoClientAuth),
        ClientAuth::RequestClientCert => Arc::new(AnyCertificate {
            required: false,
            provider: Arc::clone(&provider),
        }),
        ClientAuth::RequireAnyClientCert => Arc::new(AnyCertificate {
            required: true,
            provider: Arc::clone(&provider),
        }),
        ClientAuth::VerifyClientCertIfGiven => verifying(true)?,
        ClientAuth::RequireAndVerifyClientCert => verifying(false)?,
    };
    let verifier: Arc<dyn ClientCertVerifier> = match (
        &tls.client_allowed_sans,
        tls.client_auth_type,
    ) {
        (None, _) => verifier,
        (Some(_), ClientAuth::NoClientCert) => {
            // exporter-toolkit does the same: no certificate is asked for, so none is checked.
            warnings.push(
                "tls_server_config.client_allowed_sans: ignored, client_auth_type NoClientCert asks clients for no certificate (use RequireAndVerifyClientCert with client_ca_file)".into(),
            );
            verifier
        }
        (Some(sans), policy) => {
            if matches!(
                policy,
                ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert
            ) {
                warnings.push(format!(
                    "tls_server_config.client_allowed_sans: client_auth_type {policy:?} does not verify client certificates, so anyone can make one with an allowed SAN (use RequireAndVerifyClientCert with client_ca_file)"
                ));
            }
            Arc::new(AllowedSans {
                inner: verifier,
                sans: sans.clone(),
            })
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls_server_config: failed to load X509KeyPair: {e}"))?;
    config.ignore_client_order = tls.prefer_server_cipher_suites;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// `RequestClientCert` and `RequireAnyClientCert`: a client certificate is asked for (and with the
/// second, required) but its chain is not verified, as in Go; the handshake's signature still is.
#[derive(Debug)]
struct AnyCertificate {
    required: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ClientCertVerifier for AnyCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        self.required
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `client_allowed_sans`: after the inner verifier accepts a client certificate, one of its subject
/// alternative names (DNS, email, IP, URI, compared as text as Go does) must be listed. A client
/// certificate is then required whatever the policy: a client without one has no allowed SAN
/// (exporter-toolkit's check fails such a handshake too, by a panic of its goroutine).
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    sans: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        true
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls::pki_types::UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let names = subject_alt_names(end_entity);
        if names.iter().any(|n| self.sans.contains(n)) {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "could not find allowed SANs in client cert, found: {names:?}"
            )))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A certificate's subject alternative names as text (DNS names, emails, IPs, URIs).
fn subject_alt_names(cert: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let Ok((_, parsed)) = X509Certificate::from_der(cert.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                Some((*s).to_string())
            }
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|b| std::net::IpAddr::from(b).to_string()),
                // Go prints an IPv4-mapped IPv6 address as IPv4 (`net.IP.String`).
                16 => <[u8; 16]>::try_from(*bytes).ok().map(|b| {
                    let v6 = std::net::Ipv6Addr::from(b);
                    v6.to_ipv4_mapped()
                        .map_or_else(|| v6.to_string(), |v4| v4.to_string())
                }),
                _ => None,
            },
            _ => None,
        })
        .collect()
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
    /// Credentials found valid, and found invalid: digests of user, hash and password, each set
    /// bounded on its own, so made-up passwords never push out a scraper's valid ones.
    granted: Mutex<HashSet<Digest>>,
    refused: Mutex<HashSet<Digest>>,
    /// bcrypt runs one check at a time (it is slow on purpose); the permit lives in the blocking task,
    /// so a request dropped while its check runs does not let the next one start beside it.
    bcrypt: Arc<tokio::sync::Semaphore>,
    /// Checks waiting for bcrypt or running, at most [`MAX_PENDING_CHECKS`].
    pending: Arc<AtomicUsize>,
    /// bcrypt checks run so far.
    checks: AtomicU64,
    limiter: Mutex<Option<(f64, Instant)>>,
}

/// SHA-256 of a user, its configured hash and a password: what the outcome caches keep.
type Digest = [u8; 32];

fn digest(user: &str, hash: &str, pass: &str) -> Digest {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, hash, pass] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part.as_bytes());
    }
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Adds `key` to `set`, first dropping a tenth of it when it holds [`AUTH_CACHE_SIZE`] (whichever
/// the set yields first, as exporter-toolkit does).
fn remember(set: &Mutex<HashSet<Digest>>, key: Digest) {
    let mut set = set.lock();
    if set.len() >= AUTH_CACHE_SIZE {
        let drop: Vec<Digest> = set.iter().take(AUTH_CACHE_SIZE / 10).copied().collect();
        for k in &drop {
            set.remove(k);
        }
    }
    set.insert(key);
}

/// One place among the [`MAX_PENDING_CHECKS`], given back when dropped.
struct Pending(Arc<AtomicUsize>);

impl Pending {
    fn take(count: &Arc<AtomicUsize>) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_PENDING_CHECKS).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(Arc::clone(count)))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
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
            granted: Mutex::new(HashSet::new()),
            refused: Mutex::new(HashSet::new()),
            bcrypt: Arc::new(tokio::sync::Semaphore::new(1)),
            pending: Arc::new(AtomicUsize::new(0)),
            checks: AtomicU64::new(0),
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
                self.granted.lock().clear();
                self.refused.lock().clear();
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
        let Some((user, pass)) = authorization.and_then(basic_credentials) else {
            return Verdict::Unauthorized;
        };
        let (hash, known) = match config.users.get(&user) {
            Some(h) => (h.clone(), true),
            None => (config.unknown_user_hash.clone(), false),
        };
        let key = digest(&user, &hash, &pass);
        if self.granted.lock().contains(&key) {
            return Verdict::Allowed;
        }
        if self.refused.lock().contains(&key) {
            return Verdict::Unauthorized;
        }
        let Some(pending) = Pending::take(&self.pending) else {
            return Verdict::Busy;
        };
        let Ok(permit) = Arc::clone(&self.bcrypt).acquire_owned().await else {
            return Verdict::Unauthorized;
        };
        self.checks.fetch_add(1, Ordering::Relaxed);
        let matches = tokio::task::spawn_blocking(move || {
            let _held = (permit, pending);
            bcrypt::verify(pass.as_bytes(), &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if known && matches {
            remember(&self.granted, key);
            Verdict::Allowed
        } else {
            remember(&self.refused, key);
            Verdict::Unauthorized
        }
    }

    /// bcrypt checks run since start (cache misses).
    pub fn password_checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
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

/// The user and password of a `Basic` `Authorization` header.
fn basic_credentials(header: &[u8]) -> Option<(String, String)> {
    use base64::Engine as _;
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("statsd-proxy-webcfg-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn errors_name_the_key_and_its_line() {
        let dir = tempdir("errors");
        let cases = [
            (
                "tls_server_config:\n  cert_file: a\n  bogus: 1\n",
                "3:3: tls_server_config: unknown field `bogus`",
            ),
            (
                "tls_server_config:\n  client_auth_type: Sometimes\n",
                "2:21: tls_server_config.client_auth_type: unknown variant `Sometimes`",
            ),
            (
                "tls_server_config:\n  min_version: TLS14\n",
                "2:16: tls_server_config.min_version: unknown variant `TLS14`",
            ),
            (
                "basic_auth_users:\n  alice: plain\n",
                "basic_auth_users.alice: not a bcrypt hash",
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: always\n",
                "invalid value for X-Frame-Options",
            ),
            (
                "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n",
                "failed to read cert_file",
            ),
            ("nonsense: true\n", "1:1: unknown field `nonsense`"),
        ];
        for (text, want) in cases {
            let p = write(&dir, "web.yml", text);
            let e = load(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(
                e.starts_with(&format!("web config {}: ", p.display())),
                "{e}"
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_empty_file_and_a_tls_less_file_serve_plain_http() {
        let dir = tempdir("plain");
        for text in [
            "",
            "basic_auth_users: {}\n",
            "tls_server_config: {}\nhttp_server_config:\n  http2: false\n",
        ] {
            let p = write(&dir, "web.yml", text);
            let loaded = load(&p).unwrap();
            assert!(loaded.tls.is_none(), "{text:?}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn cipher_suites_and_curves_by_go_names_with_warnings_for_what_rustls_lacks() {
        let dir = tempdir("suites");
        let tls = tls_files(&dir);
        let p = write(
            &dir,
            "web.yml",
            &format!(
                "{tls}  cipher_suites: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n  \
                 curve_preferences: [CurveP521, X25519]\n  min_version: TLS10\n"
            ),
        );
        let loaded = load(&p).unwrap();
        assert!(loaded.tls.is_some());
        assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);
        assert!(loaded.warnings[0].contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"));
        assert!(loaded.warnings[1].contains("CurveP521"));
        assert!(loaded.warnings[2].contains("min_version"));
        for (extra, want) in [
            ("  cipher_suites: [TLS_MADE_UP]\n", "unknown cipher suite"),
            (
                "  max_version: TLS11\n",
                "TLS 1.0 and 1.1 are not available",
            ),
            ("  client_ca_file: s.pem\n", "without a Client Auth Policy"),
            (
                "  client_auth_type: RequireAndVerifyClientCert\n",
                "needs client_ca_file",
            ),
        ] {
            let p = write(&dir, "web.yml", &format!("{tls}{extra}"));
            let e = load(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{extra}: {e}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn basic_credentials_are_read() {
        use base64::Engine as _;
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:s3:cret")
        );
        assert_eq!(
            basic_credentials(header.as_bytes()),
            Some(("alice".into(), "s3:cret".into()))
        );
        assert_eq!(basic_credentials(b"Bearer x"), None);
        assert_eq!(basic_credentials(b"Basic !!!"), None);
    }

    #[test]
    fn the_rate_limit_allows_a_burst_then_refuses() {
        let dir = tempdir("rate");
        let p = write(&dir, "web.yml", "rate_limit:\n  burst: 2\n  interval: 1h\n");
        let security = WebSecurity::load(&p).unwrap();
        let config = security.current();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let verdicts: Vec<_> = (0..3)
            .map(|_| rt.block_on(security.check(&config, None)))
            .collect();
        assert_eq!(
            verdicts,
            [Verdict::Allowed, Verdict::Allowed, Verdict::TooManyRequests]
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    fn tls_files(dir: &Path) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        write(dir, "s.pem", &cert.pem());
        write(dir, "s.key", &key.serialize_pem());
        "tls_server_config:\n  cert_file: s.pem\n  key_file: s.key\n".into()
    }

    #[test]
    fn allowed_sans_warn_where_they_prove_nothing() {
        let dir = tempdir("sans");
        let tls = tls_files(&dir);
        for (policy, want) in [
            ("NoClientCert", Some("ignored")),
            ("RequestClientCert", Some("does not verify")),
            ("RequireAnyClientCert", Some("does not verify")),
            ("VerifyClientCertIfGiven\n  client_ca_file: s.pem", None),
            ("RequireAndVerifyClientCert\n  client_ca_file: s.pem", None),
        ] {
            let p = write(
                &dir,
                "web.yml",
                &format!("{tls}  client_allowed_sans: [a.example]\n  client_auth_type: {policy}\n"),
            );
            let loaded = load(&p).unwrap();
            match want {
                Some(want) => {
                    assert_eq!(loaded.warnings.len(), 1, "{policy}: {:?}", loaded.warnings);
                    assert!(
                        loaded.warnings[0].contains(want),
                        "{policy}: {:?}",
                        loaded.warnings
                    );
                }
                None => assert!(
                    loaded.warnings.is_empty(),
                    "{policy}: {:?}",
                    loaded.warnings
                ),
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    fn basic(user: &str, pass: &str) -> Vec<u8> {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Basic {encoded}").into_bytes()
    }

    #[test]
    fn made_up_passwords_do_not_push_out_a_valid_one() {
        let dir = tempdir("cache");
        let alice = bcrypt::hash("right", 4).unwrap();
        let bob = bcrypt::hash("other", 5).unwrap();
        let p = write(
            &dir,
            "web.yml",
            &format!("basic_auth_users:\n  alice: {alice}\n  bob: {bob}\n"),
        );
        let security = WebSecurity::load(&p).unwrap();
        let config = security.current();
        // An unknown user is checked against the costliest configured hash.
        assert_eq!(config.unknown_user_hash, bob);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let check =
            |user: &str, pass: &str| rt.block_on(security.check(&config, Some(&basic(user, pass))));
        assert_eq!(check("alice", "right"), Verdict::Allowed);
        assert_eq!(check("alice", "right"), Verdict::Allowed);
        assert_eq!(security.password_checks(), 1);
        for i in 0..3 * AUTH_CACHE_SIZE {
            assert_eq!(check("alice", &format!("guess{i}")), Verdict::Unauthorized);
        }
        assert_eq!(check("mallory", "right"), Verdict::Unauthorized);
        let checked = security.password_checks();
        assert_eq!(checked, 2 + 3 * AUTH_CACHE_SIZE as u64);
        // Still cached: no bcrypt for the valid one, nor for a wrong one just refused.
        assert_eq!(check("alice", "right"), Verdict::Allowed);
        assert_eq!(check("mallory", "right"), Verdict::Unauthorized);
        assert_eq!(security.password_checks(), checked);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A web config of one user, alice, whose password is "right" (hashed at `cost`), and a runtime.
    fn alice(tag: &str, cost: u32) -> (PathBuf, WebSecurity, tokio::runtime::Runtime) {
        let dir = tempdir(tag);
        let hash = bcrypt::hash("right", cost).unwrap();
        let p = write(
            &dir,
            "web.yml",
            &format!("basic_auth_users:\n  alice: {hash}\n"),
        );
        let security = WebSecurity::load(&p).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        (dir, security, rt)
    }

    #[test]
    fn a_request_dropped_mid_check_keeps_bcrypt_busy_until_it_ends() {
        let (dir, security, rt) = alice("dropped", 10);
        let config = security.current();
        let _entered = rt.enter();
        let header = basic("alice", "wrong");
        let mut check = Box::pin(security.check(&config, Some(&header)));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(check.as_mut().poll(&mut cx).is_pending());
        drop(check);
        // The check goes on without its request (bcrypt of cost 10 takes tens of milliseconds and
        // more) and holds the one bcrypt permit and its pending place until it ends.
        assert_eq!(security.bcrypt.available_permits(), 0);
        assert_eq!(security.pending.load(Ordering::Acquire), 1);
        let deadline = Instant::now() + Duration::from_secs(60);
        while security.bcrypt.available_permits() == 0 {
            assert!(Instant::now() < deadline, "the check never ended");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(security.pending.load(Ordering::Acquire), 0);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn checks_beyond_the_pending_bound_are_refused_at_once() {
        let (dir, security, rt) = alice("busy", 4);
        let security = Arc::new(security);
        let config = security.current();
        let verdicts = rt.block_on(async {
            let tasks: Vec<_> = (0..MAX_PENDING_CHECKS + 4)
                .map(|i| {
                    let security = Arc::clone(&security);
                    let config = Arc::clone(&config);
                    tokio::spawn(async move {
                        security
                            .check(&config, Some(&basic("alice", &format!("guess{i}"))))
                            .await
                    })
                })
                .collect();
            let mut verdicts = Vec::new();
            for t in tasks {
                verdicts.push(t.await.unwrap());
            }
            verdicts
        });
        let busy = verdicts.iter().filter(|v| **v == Verdict::Busy).count();
        assert_eq!(busy, 4, "{verdicts:?}");
        assert_eq!(security.password_checks(), MAX_PENDING_CHECKS as u64);
        // Once they are done, checks run again.
        let right = basic("alice", "right");
        assert_eq!(
            rt.block_on(security.check(&config, Some(&right))),
            Verdict::Allowed
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_failed_reload_is_retried_when_a_file_only_it_names_appears() {
        let dir = tempdir("retry");
        let tls = tls_files(&dir);
        let p = write(&dir, "web.yml", &tls);
        let security = WebSecurity::load(&p).unwrap();
        assert!(security.current().headers.is_empty());
        // The new version names a certificate that is not there yet: refused, the old one stays.
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        write(
            &dir,
            "web.yml",
            "tls_server_config:\n  cert_file: new.pem\n  key_file: new.key\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        );
        assert!(security.current().headers.is_empty());
        assert!(security.current().headers.is_empty());
        // Its files appear (nothing the old version read changed): the new version is taken.
        write(&dir, "new.key", &key.serialize_pem());
        write(&dir, "new.pem", &cert.pem());
        assert_eq!(security.current().headers.len(), 1);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn subject_alt_names_read_as_go_prints_them() {
        use rcgen::SanType;
        let ia5 = |s: &str| rcgen::string::Ia5String::try_from(s).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![
            SanType::DnsName(ia5("scraper.example")),
            SanType::Rfc822Name(ia5("ops@example.org")),
            SanType::URI(ia5("spiffe://example.org/prometheus")),
            SanType::IpAddress("10.0.0.1".parse().unwrap()),
            SanType::IpAddress("2001:db8::1".parse().unwrap()),
            SanType::IpAddress("::ffff:192.0.2.7".parse().unwrap()),
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_alt_names(cert.der()),
            [
                "scraper.example",
                "ops@example.org",
                "spiffe://example.org/prometheus",
                "10.0.0.1",
                "2001:db8::1",
                "192.0.2.7"
            ]
        );
    }
}
