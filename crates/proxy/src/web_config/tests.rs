use std::sync::atomic::Ordering;

use super::auth::{AUTH_CACHE_SIZE, basic_credentials};
use super::tls::subject_alt_names;
use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("statsd-proxy-webcfg-{tag}-{}", std::process::id()));
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
    assert_eq!(security.passwords.bcrypt.available_permits(), 0);
    assert_eq!(security.passwords.pending.load(Ordering::Acquire), 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while security.passwords.bcrypt.available_permits() == 0 {
        assert!(Instant::now() < deadline, "the check never ended");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(security.passwords.pending.load(Ordering::Acquire), 0);
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
