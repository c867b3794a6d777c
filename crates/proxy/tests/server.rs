//! The server as an admin meets it: the real binary on loopback, every endpoint and method, reloads by
//! signal and by HTTP, unixgram, IPv6, relay, and statsd_exporter's own command line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{WAIT_LIMIT, request, scrape, scrape_until, spawn, wait_for_lines};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("statsd-proxy-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn send(to: std::net::SocketAddr, lines: &[&str]) {
    let socket = UdpSocket::bind(if to.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    })
    .unwrap();
    for l in lines {
        socket.send_to(l.as_bytes(), to).unwrap();
    }
}

#[test]
fn every_endpoint_and_method() {
    for lifecycle in [false, true] {
        let args: &[&str] = if lifecycle {
            &["--web.enable-lifecycle"]
        } else {
            &[]
        };
        let proxy = spawn(args);
        let get = |path: &str| request(proxy.http, "GET", path, &[]).status;
        let call = |method: &str, path: &str| request(proxy.http, method, path, &[]).status;
        // As statsd_exporter: /metrics and / for any method; health and readiness with its texts
        // (probes match them), other methods there an empty 200.
        assert_eq!(get("/metrics"), 200);
        assert_eq!(call("HEAD", "/metrics"), 200);
        assert_eq!(call("POST", "/metrics"), 200);
        assert_eq!(get("/"), 200);
        assert_eq!(call("DELETE", "/"), 200);
        let healthy = request(proxy.http, "GET", "/-/healthy", &[]);
        assert_eq!(
            (healthy.status, healthy.text().as_str()),
            (200, "Statsd Exporter is Healthy.\n")
        );
        let ready = request(proxy.http, "GET", "/-/ready", &[]);
        assert_eq!(
            (ready.status, ready.text().as_str()),
            (200, "Statsd Exporter is Ready.\n")
        );
        let posted = request(proxy.http, "POST", "/-/ready", &[]);
        assert_eq!((posted.status, posted.text().as_str()), (200, ""));
        assert_eq!(call("POST", "/status"), 405);
        assert_eq!(get("/no/such/path"), 404);
        if lifecycle {
            assert_eq!(get("/-/reload"), 405);
            assert_eq!(call("DELETE", "/-/quit"), 405);
            assert_eq!(call("PUT", "/-/reload"), 200);
            assert_eq!(call("POST", "/-/reload"), 200);
        } else {
            for method in ["GET", "POST", "PUT"] {
                assert_eq!(
                    call(method, "/-/reload"),
                    404,
                    "{method} /-/reload without lifecycle"
                );
                assert_eq!(
                    call(method, "/-/quit"),
                    404,
                    "{method} /-/quit without lifecycle"
                );
            }
        }
    }
    // /-/quit stops the process with exit status 0.
    let mut proxy = spawn(&["--web.enable-lifecycle"]);
    let response = request(proxy.http, "POST", "/-/quit", &[]);
    assert_eq!(response.status, 200);
    let deadline = Instant::now() + WAIT_LIMIT;
    let status = loop {
        if let Some(status) = proxy.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after /-/quit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

const GOOD_V1: &str =
    "mappings:\n  - match: \"app.*.hits\"\n    name: \"hits_v1\"\n    labels: { page: \"$1\" }\n";
const GOOD_V2: &str =
    "mappings:\n  - match: \"app.*.hits\"\n    name: \"hits_v2\"\n    labels: { page: \"$1\" }\n";
const BAD: &str = "mappings:\n  - match: \"app.*.hits\"\n    name: \"bad name\"\n";

#[test]
fn reload_by_signal_and_by_http_keeps_series_and_refuses_bad_files() {
    let dir = temp_dir("reload");
    let file = dir.join("mapping.yaml");
    std::fs::write(&file, GOOD_V1).unwrap();
    let mapping = format!("--statsd.mapping-config={}", file.display());
    let proxy = spawn(&[&mapping, "--web.enable-lifecycle"]);
    send(proxy.udp, &["app.home.hits:1|c"]);
    wait_for_lines(proxy.http, 1.0);

    // A bad file over HTTP: 500 with the error, the old mapping stays.
    std::fs::write(&file, BAD).unwrap();
    let response = request(proxy.http, "POST", "/-/reload", &[]);
    assert_eq!(response.status, 500);
    assert!(
        response.text().contains(&format!(
            "{}:3:5: mappings[0]: invalid metric name",
            file.display()
        )),
        "{}",
        response.text()
    );
    send(proxy.udp, &["app.home.hits:1|c"]);
    let m = wait_for_lines(proxy.http, 2.0);
    assert_eq!(
        m.get(r#"hits_v1{page="home"}"#),
        Some(&2.0),
        "old mapping kept after a failed reload"
    );
    assert_eq!(
        m.get(r#"statsd_exporter_config_reloads_total{outcome="failure"}"#),
        Some(&1.0)
    );

    // A bad file by SIGHUP: counted, the old mapping stays.
    let hup = |pid: u32| {
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .unwrap()
                .success()
        )
    };
    hup(proxy.child.id());
    scrape_until(proxy.http, "the failed SIGHUP reload", |m| {
        m.get(r#"statsd_exporter_config_reloads_total{outcome="failure"}"#) == Some(&2.0)
    });

    // A good file by SIGHUP: new rules apply, existing series keep their values.
    std::fs::write(&file, GOOD_V2).unwrap();
    hup(proxy.child.id());
    scrape_until(proxy.http, "the SIGHUP reload", |m| {
        m.get(r#"statsd_exporter_config_reloads_total{outcome="success"}"#) == Some(&1.0)
    });
    send(proxy.udp, &["app.home.hits:5|c"]);
    let m = wait_for_lines(proxy.http, 3.0);
    assert_eq!(m.get(r#"hits_v2{page="home"}"#), Some(&5.0));
    assert_eq!(
        m.get(r#"hits_v1{page="home"}"#),
        Some(&2.0),
        "series are kept across reloads"
    );

    // A good file over HTTP.
    std::fs::write(&file, GOOD_V1).unwrap();
    let response = request(proxy.http, "PUT", "/-/reload", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    send(proxy.udp, &["app.home.hits:1|c"]);
    let m = wait_for_lines(proxy.http, 4.0);
    assert_eq!(m.get(r#"hits_v1{page="home"}"#), Some(&3.0));
    assert_eq!(
        m.get(r#"statsd_exporter_config_reloads_total{outcome="success"}"#),
        Some(&2.0)
    );
    assert_eq!(m.get("statsd_exporter_loaded_mappings"), Some(&1.0));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn tcp_long_line_then_a_good_line_on_the_same_connection() {
    let proxy = spawn(&[]);
    let mut stream = TcpStream::connect(proxy.tcp).unwrap();
    let long = format!("long:{}|c\n", "9".repeat(10_000));
    stream.write_all(long.as_bytes()).unwrap();
    stream.write_all(b"good:1|c\r\n").unwrap();
    stream.flush().unwrap();
    let m = wait_for_lines(proxy.http, 1.0);
    assert_eq!(m.get("good"), Some(&1.0));
    assert_eq!(
        m.get("statsd_exporter_tcp_too_long_lines_total"),
        Some(&1.0)
    );
    // The connection is still open and usable.
    stream.write_all(b"good:1|c\n").unwrap();
    let m = wait_for_lines(proxy.http, 2.0);
    assert_eq!(m.get("good"), Some(&2.0));
    assert_eq!(m.get("statsd_exporter_tcp_connections_total"), Some(&1.0));
}

/// Runs the binary with `arg` (a unixgram listener) as its only listener, to its exit.
fn start_unixgram_only(arg: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_statsd-proxy"))
        .args([
            arg,
            "--statsd.listen-udp=",
            "--statsd.listen-tcp=",
            "--web.listen-address=127.0.0.1:0",
        ])
        .output()
        .unwrap()
}

#[test]
fn unixgram_round_trip_and_stale_socket_replacement() {
    let dir = temp_dir("unixgram");
    let path = dir.join("statsd.sock");
    // A stale socket file from a previous run is replaced.
    drop(UnixDatagram::bind(&path).unwrap());
    assert!(path.exists());
    let arg = format!("--statsd.listen-unixgram={}", path.display());
    let proxy = spawn(&[&arg, "--statsd.unixsocket-mode=700"]);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700);
    let client = UnixDatagram::unbound().unwrap();
    client
        .send_to(b"via_unix:3|c\nvia_unix:4|c", &path)
        .unwrap();
    let m = wait_for_lines(proxy.http, 2.0);
    assert_eq!(m.get("via_unix"), Some(&7.0));
    assert_eq!(m.get("statsd_exporter_unixgram_packets_total"), Some(&1.0));

    // A second instance on the same path is refused: the socket is live, not stale.
    let out = start_unixgram_only(&arg);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another process is receiving"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    client.send_to(b"via_unix:1|c", &path).unwrap();
    let m = wait_for_lines(proxy.http, 3.0);
    assert_eq!(
        m.get("via_unix"),
        Some(&8.0),
        "the first instance still receives"
    );
    drop(proxy);

    // Any other file at the path is a clear startup error.
    std::fs::remove_file(&path).ok();
    std::fs::write(&path, "not a socket").unwrap();
    let out = start_unixgram_only(&arg);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists and is not a socket"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "not a socket",
        "the file is left alone"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unixgram_abstract_socket() {
    use std::os::linux::net::SocketAddrExt as _;
    let name = format!("statsd-proxy-test-{}", std::process::id());
    let arg = format!("--statsd.listen-unixgram=@{name}");
    let proxy = spawn(&[&arg]);
    let client = UnixDatagram::unbound().unwrap();
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    client.send_to_addr(b"via_abstract:2|c", &addr).unwrap();
    let m = wait_for_lines(proxy.http, 1.0);
    assert_eq!(m.get("via_abstract"), Some(&2.0));
    assert!(
        !std::path::Path::new(&format!("@{name}")).exists(),
        "no file is made for an abstract socket"
    );
}

#[test]
fn ipv6_loopback_datagram() {
    let proxy = spawn(&["--statsd.listen-udp=[::1]:0"]);
    assert!(proxy.udp.is_ipv6());
    send(proxy.udp, &["over_ipv6:1|c"]);
    let m = wait_for_lines(proxy.http, 1.0);
    assert_eq!(m.get("over_ipv6"), Some(&1.0));
}

#[test]
fn relay_delivers_lines_to_a_local_udp_socket() {
    let target = UdpSocket::bind("127.0.0.1:0").unwrap();
    target.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    let relay = format!("--statsd.relay.address={}", target.local_addr().unwrap());
    let proxy = spawn(&[&relay, "--statsd.relay.packet-length=40"]);
    let long = format!("too_long:{}|c", "1".repeat(50));
    send(
        proxy.udp,
        &[
            "relayed.a:1|c\nrelayed.b:2|g",
            &long,
            "bad line",
            "relayed.c:3|ms",
        ],
    );
    let mut received = Vec::new();
    let deadline = Instant::now() + WAIT_LIMIT;
    let mut buf = [0u8; 2048];
    while received.len() < 4 {
        assert!(
            Instant::now() < deadline,
            "relay delivered only {received:?}"
        );
        let (n, _) = target.recv_from(&mut buf).expect("a relayed datagram");
        assert!(n <= 40, "datagram of {n} bytes exceeds the packet length");
        received.extend(
            String::from_utf8_lossy(&buf[..n])
                .split('\n')
                .map(str::to_string),
        );
    }
    // Every line as received, bad ones too (the relay forwards raw lines); the long one is refused.
    assert_eq!(
        received,
        [
            "relayed.a:1|c",
            "relayed.b:2|g",
            "bad line",
            "relayed.c:3|ms"
        ]
    );
    let addr = target.local_addr().unwrap().to_string();
    let m = scrape(proxy.http);
    assert_eq!(
        m.get(&format!(
            "statsd_exporter_relay_lines_relayed_total{{target=\"{addr}\"}}"
        )),
        Some(&4.0)
    );
    assert_eq!(
        m.get(&format!(
            "statsd_exporter_relay_long_lines_total{{target=\"{addr}\"}}"
        )),
        Some(&1.0)
    );
    assert!(
        m.get(&format!(
            "statsd_exporter_relay_packets_total{{target=\"{addr}\"}}"
        ))
        .is_some_and(|p| *p >= 2.0)
    );
}

/// The flags of a typical statsd_exporter systemd unit (`/etc/default/statsd-exporter` style), unchanged
/// but for the addresses, start the proxy.
#[test]
fn statsd_exporter_command_line_starts_unchanged() {
    let dir = temp_dir("flags");
    let mapping = dir.join("mapping.yml");
    std::fs::write(&mapping, GOOD_V1).unwrap();
    let mapping_flag = format!("--statsd.mapping-config={}", mapping.display());
    let proxy = spawn(&[
        &mapping_flag,
        "--statsd.read-buffer=8388608",
        "--statsd.cache-size=1000",
        "--statsd.cache-type=random",
        "--statsd.event-queue-size=10000",
        "--statsd.event-flush-threshold=1000",
        "--statsd.event-flush-interval=200ms",
        "--statsd.udp-packet-queue-size=10000",
        "--statsd.relay.packet-length=1400",
        "--statsd.unixsocket-mode=755",
        "--statsd.parse-dogstatsd-tags",
        "--no-statsd.parse-influxdb-tags",
        "--statsd.parse-librato-tags",
        "--statsd.parse-signalfx-tags",
        "--web.telemetry-path=/metrics",
        "--web.enable-lifecycle",
        "--debug.dump-fsm=",
        "--log.level=info",
    ]);
    send(proxy.udp, &["app.x.hits:1|c", "plain,tag=v:1|c"]);
    let m = wait_for_lines(proxy.http, 2.0);
    assert_eq!(m.get(r#"hits_v1{page="x"}"#), Some(&1.0));
    assert_eq!(
        m.get("plain_tag_v"),
        Some(&1.0),
        "--no-statsd.parse-influxdb-tags took effect"
    );
    let help = Command::new(env!("CARGO_BIN_EXE_statsd-proxy"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--statsd.event-queue-size") && help.contains("no effect"),
        "{help}"
    );
    let version = Command::new(env!("CARGO_BIN_EXE_statsd-proxy"))
        .arg("--version")
        .output()
        .unwrap();
    // prometheus/common's layout, as statsd_exporter prints it (scripts read `version (\S+)`).
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.starts_with(&format!(
            "statsd-proxy, version {} (branch: ",
            env!("CARGO_PKG_VERSION")
        )) && version.contains("\n  platform:         "),
        "{version}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Readiness is true before the HTTP endpoint can answer: the very first request to `/-/ready` of a
/// freshly started proxy is 200, every time (it once raced with the task serving HTTP).
#[test]
fn ready_from_the_first_request() {
    for _ in 0..20 {
        let (rt, running) = common::start_app(statsd_proxy::app::Config::loopback());
        let addr = running.http_addr;
        let status = std::thread::spawn(move || request(addr, "GET", "/-/ready", &[]).status)
            .join()
            .unwrap();
        assert_eq!(status, 200);
        common::stop_app(rt, running);
    }
}
