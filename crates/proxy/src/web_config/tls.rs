//! The `tls_server_config` part of a web config: its keys, the rustls configuration they describe,
//! and the client-certificate verifiers (`RequestClientCert`/`RequireAnyClientCert`, and
//! `client_allowed_sans` on top of any policy).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoClientAuth, WebPkiClientVerifier};
use rustls::{DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};
use serde::Deserialize;

use super::{Stamp, read};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct TlsFile {
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

/// The rustls configuration `tls` describes, `None` when it configures no TLS (plain HTTP).
pub(super) fn tls_config(
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
pub(super) fn subject_alt_names(cert: &CertificateDer<'_>) -> Vec<String> {
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
