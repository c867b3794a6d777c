//! `--web.config.file` end to end: certificates made at test time (rcgen), the real binary, curl and a
//! real Prometheus. TLS with basic auth: Prometheus scrapes (`up == 1`), curl without credentials gets
//! 401, plain HTTP fails; a rotated certificate is served without a restart; client certificates
//! required (or allowed SANs under `VerifyClientCertIfGiven`): a client without one is refused, one
//! with an allowed SAN is served; a malformed file refuses the
//! start naming the key and its line; the socket systemd passes is served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::WAIT_LIMIT;
use common::prom::{self, query_value};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

const USER: &str = "prometheus";
const PASSWORD: &str = "s3cret:with colon";

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("statsd-proxy-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA, and certificates it signs.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// (certificate PEM, key PEM) for `names` (DNS names or IPs), called `cn`.
    fn sign(&self, cn: &str, names: &[&str]) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl")
}

/// The HTTP status curl got (0 when there was no HTTP answer, e.g. a failed handshake).
fn status(args: &[&str]) -> u32 {
    let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
    all.extend_from_slice(args);
    let out = curl(&all);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The certificate the server at `addr` presents, as PEM (curl's `%{certs}` write-out).
fn served_certificate(addr: SocketAddr, ca: &Path) -> String {
    let url = format!("https://localhost:{}/-/healthy", addr.port());
    let resolve = format!("localhost:{}:127.0.0.1", addr.port());
    let out = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "--resolve",
        &resolve,
        "-o",
        "/dev/null",
        "-w",
        "%{certs}",
        &url,
    ]);
    // curl writes each certificate's fields, then its PEM: keep the first PEM block.
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text.find("-----BEGIN CERTIFICATE-----").unwrap_or(0);
    let end = text[begin..]
        .find("-----END CERTIFICATE-----")
        .map_or(text.len(), |e| {
            begin + e + "-----END CERTIFICATE-----".len()
        });
    text[begin..end].to_string()
}

fn normalised(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
}

fn web_config(dir: &Dir, extra_tls: &str) -> PathBuf {
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    dir.write(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n{extra_tls}\
             http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n\
             basic_auth_users:\n  {USER}: {hash}\n"
        ),
    )
}

#[test]
fn prometheus_scrapes_over_tls_with_basic_auth_and_a_rotated_certificate_is_served() {
    let dir = Dir::new("auth");
    let ca = Ca::new("test CA");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let (cert, key) = ca.sign("first", &["localhost", "127.0.0.1"]);
    dir.write("server.pem", &cert);
    dir.write("server.key", &key);
    let config = web_config(&dir, "");
    let proxy = common::spawn(&[&format!("--web.config.file={}", config.display())]);
    let port = proxy.http.port();
    let url = format!("https://localhost:{port}/metrics");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let ca_arg = ca_file.to_str().unwrap();
    let credentials = format!("{USER}:{PASSWORD}");

    // curl trusting the CA, with `more` arguments.
    let tls = |more: &[&str]| -> Vec<String> {
        ["--cacert", ca_arg, "--resolve", &resolve]
            .iter()
            .chain(more)
            .map(|a| (*a).to_string())
            .collect()
    };
    let run = |args: Vec<String>| curl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let code = |args: Vec<String>| status(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // With credentials: served, with the configured header.
    let ok = run(tls(&["-u", &credentials, "-i", &url]));
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(text.starts_with("HTTP/1.1 200"), "{text:.300}");
    assert!(text.contains("statsd_exporter_build_info"), "{text:.300}");
    assert!(
        text.to_ascii_lowercase()
            .contains("x-content-type-options: nosniff")
    );
    // Without, with a wrong password, as an unknown user: 401 and a Basic challenge.
    let unauthorized = run(tls(&["-i", &url]));
    let text = String::from_utf8_lossy(&unauthorized.stdout);
    assert!(text.starts_with("HTTP/1.1 401"), "{text:.300}");
    assert!(
        text.to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{text}"
    );
    for wrong in [format!("{USER}:nope"), format!("nobody:{PASSWORD}")] {
        assert_eq!(code(tls(&["-u", &wrong, &url])), 401);
    }
    // Plain HTTP on the TLS port: no HTTP answer.
    assert_eq!(status(&[&format!("http://127.0.0.1:{port}/metrics")]), 0);
    // A client that does not trust the CA: the handshake fails.
    assert_eq!(
        status(&["-u", &credentials, "--resolve", &resolve, &url]),
        0
    );

    // The real Prometheus, over TLS with basic auth.
    let password_file = dir.write("password", PASSWORD);
    let job = format!(
        "scheme: https\n    tls_config:\n      ca_file: {}\n      server_name: localhost\n    \
         basic_auth:\n      username: {USER}\n      password_file: {}\n    \
         static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n",
        ca_file.display(),
        password_file.display()
    );
    let (_prometheus, prometheus) = prom::start(&dir.0, "prometheus", &job, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while query_value(prometheus, "up") != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped the proxy (up != 1)"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let scraped = query_value(prometheus, "statsd_exporter_build_info");
    assert_eq!(scraped, Some(1.0));

    // Rotation: new certificate files, served from the next connection on, no restart.
    assert_eq!(
        normalised(&served_certificate(proxy.http, &ca_file)),
        normalised(&cert)
    );
    let (cert2, key2) = ca.sign("second", &["localhost", "127.0.0.1"]);
    std::fs::write(dir.0.join("server.key"), &key2).unwrap();
    std::fs::write(dir.0.join("server.pem"), &cert2).unwrap();
    let deadline = Instant::now() + WAIT_LIMIT;
    while normalised(&served_certificate(proxy.http, &ca_file)) != normalised(&cert2) {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A file without TLS does not turn the port into plain HTTP, and a broken file keeps the working
    // configuration.
    std::fs::write(&config, "basic_auth_users: {}\n").unwrap();
    assert_eq!(code(tls(&["-u", &credentials, &url])), 200);
    assert_eq!(status(&[&format!("http://127.0.0.1:{port}/metrics")]), 0);
    std::fs::write(&config, "tls_server_config:\n  cert_file: [\n").unwrap();
    let metrics = run(tls(&["-u", &credentials, &url]));
    let m = common::parse_exposition(&String::from_utf8_lossy(&metrics.stdout));
    assert!(
        m.get("statsd_proxy_web_unauthorized_total")
            .copied()
            .unwrap_or(0.0)
            >= 3.0
    );
    assert!(
        m.get("statsd_proxy_web_tls_handshake_errors_total")
            .copied()
            .unwrap_or(0.0)
            >= 2.0
    );
}

#[test]
fn with_client_certificates_required_a_client_without_one_is_refused() {
    // VerifyClientCertIfGiven lets a client without a certificate in, but not when SANs are
    // required: it could not show one (exporter-toolkit's check drops such a connection too).
    for policy in ["RequireAndVerifyClientCert", "VerifyClientCertIfGiven"] {
        client_certificates_with_allowed_sans(policy);
    }
}

fn client_certificates_with_allowed_sans(policy: &str) {
    let dir = Dir::new(&format!("mtls-{policy}"));
    let ca = Ca::new("server CA");
    let clients = Ca::new("client CA");
    let ca_file = dir.write("ca.pem", &ca.pem);
    dir.write("clients.pem", &clients.pem);
    let (cert, key) = ca.sign("server", &["localhost"]);
    dir.write("server.pem", &cert);
    dir.write("server.key", &key);
    let (client_cert, client_key) = clients.sign("scraper", &["scraper.example"]);
    let client_cert = dir.write("client.pem", &client_cert);
    let client_key = dir.write("client.key", &client_key);
    let (other_cert, other_key) = clients.sign("other", &["other.example"]);
    let other_cert = dir.write("other.pem", &other_cert);
    let other_key = dir.write("other.key", &other_key);
    let config = web_config(
        &dir,
        &format!(
            "  client_auth_type: {policy}\n  client_ca_file: clients.pem\n  \
             client_allowed_sans: [scraper.example]\n"
        ),
    );
    let proxy = common::spawn(&[&format!("--web.config.file={}", config.display())]);
    let port = proxy.http.port();
    let url = format!("https://localhost:{port}/metrics");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let credentials = format!("{USER}:{PASSWORD}");
    let base = [
        "--cacert",
        ca_file.to_str().unwrap(),
        "--resolve",
        &resolve,
        "-u",
        &credentials,
    ];
    let with = |cert: &Path, key: &Path| {
        let mut args = base.to_vec();
        args.extend_from_slice(&[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            &url,
        ]);
        status(&args)
    };
    assert_eq!(with(&client_cert, &client_key), 200, "{policy}");
    // No client certificate: refused in the handshake.
    let mut without = base.to_vec();
    without.push(&url);
    assert_eq!(status(&without), 0, "{policy}");
    // A certificate of the right CA without an allowed SAN: refused too.
    assert_eq!(with(&other_cert, &other_key), 0, "{policy}");
}

#[test]
fn a_malformed_web_config_refuses_the_start_naming_the_key_and_line() {
    let dir = Dir::new("bad");
    let config = dir.write(
        "web.yml",
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: TLS9\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_statsd-proxy"))
        .args([
            "--statsd.listen-udp=127.0.0.1:0",
            "--statsd.listen-tcp=",
            "--web.listen-address=127.0.0.1:0",
            &format!("--web.config.file={}", config.display()),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("web.yml: 4:16: tls_server_config.min_version: unknown variant `TLS9`"),
        "{log}"
    );
}

/// `--web.systemd-socket`: the proxy serves on the socket it is handed as fd 3 (`LISTEN_FDS=1`), as
/// systemd's socket activation passes it, and binds no web port of its own.
#[test]
fn the_socket_systemd_passes_is_served() {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = listener.as_raw_fd();
    // Inherited by the shell (Rust opens every descriptor close-on-exec).
    socket2::SockRef::from(&listener)
        .set_cloexec(false)
        .unwrap();
    // systemd-socket-activate (from the systemd package) does what systemd does: it listens, then
    // starts the service with the socket as fd 3 and LISTEN_FDS/LISTEN_PID set. Without it, the test
    // does the same with a shell's redirection.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec {bin} --statsd.listen-udp=127.0.0.1:0 --statsd.listen-tcp= --web.systemd-socket 3<&{fd}",
            bin = env!("CARGO_BIN_EXE_statsd-proxy")
        ))
        .env("LISTEN_FDS", "1")
        .env_remove("LISTEN_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(listener);
    let deadline = Instant::now() + WAIT_LIMIT;
    let answer = loop {
        let r = curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{addr}/-/ready"),
        ]);
        let code = String::from_utf8_lossy(&r.stdout).trim().to_string();
        if code == "200" || Instant::now() > deadline {
            break code;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answer, "200");
}

/// `examples/web-config.yml` as shipped (certificate files beside it) serves with its documented
/// password, "changeme", and refuses without.
#[test]
fn the_example_web_config_serves_with_its_documented_password() {
    let dir = Dir::new("example");
    let ca = Ca::new("example CA");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let (cert, key) = ca.sign("example", &["localhost"]);
    dir.write("server.pem", &cert);
    dir.write("server.key", &key);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/web-config.yml");
    let config = dir.write("web-config.yml", &std::fs::read_to_string(example).unwrap());
    let proxy = common::spawn(&[&format!("--web.config.file={}", config.display())]);
    let port = proxy.http.port();
    let url = format!("https://localhost:{port}/status");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let base = ["--cacert", ca_file.to_str().unwrap(), "--resolve", &resolve];
    let mut with = base.to_vec();
    with.extend_from_slice(&["-u", "prometheus:changeme", &url]);
    assert_eq!(status(&with), 200);
    let mut without = base.to_vec();
    without.push(&url);
    assert_eq!(status(&without), 401);
}
