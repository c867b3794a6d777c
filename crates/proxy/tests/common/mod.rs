//! Helpers shared by the end-to-end tests: a minimal HTTP client and exposition parsing.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

pub mod prom;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any wait in these tests may take before it fails the test.
pub const WAIT_LIMIT: Duration = Duration::from_secs(10);

/// An HTTP response: status, headers (lower-cased names), body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), blocking.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect to the HTTP endpoint");
    stream.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(&body) } else { body };
    Response {
        status,
        headers,
        body,
    }
}

/// Decodes a `Transfer-Encoding: chunked` body (RFC 9112 §7.1; no trailers), panicking on bad framing.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = std::str::from_utf8(&raw[..end]).expect("chunk size is ASCII");
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16)
            .expect("hexadecimal chunk size");
        raw = &raw[end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[..size]);
        assert_eq!(&raw[size..size + 2], b"\r\n", "chunk ends with CRLF");
        raw = &raw[size + 2..];
    }
}

/// GET the scrape path and parse every sample line into `series text → value`.
pub fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let response = request(addr, "GET", "/metrics", &[]);
    assert_eq!(response.status, 200);
    parse_exposition(&response.text())
}

pub fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("sample line has a value");
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().expect("numeric value"),
            };
            (series.to_string(), value)
        })
        .collect()
}

/// Scrapes until `ready` holds (bounded by [`WAIT_LIMIT`]), returning that scrape.
pub fn scrape_until(
    addr: SocketAddr,
    what: &str,
    ready: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let metrics = scrape(addr);
        if ready(&metrics) {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last scrape: {metrics:#?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `statsd_exporter_lines_total` reaches `n`.
pub fn wait_for_lines(addr: SocketAddr, n: f64) -> BTreeMap<String, f64> {
    scrape_until(addr, &format!("{n} lines"), |m| {
        m.get("statsd_exporter_lines_total").copied().unwrap_or(0.0) >= n
    })
}

/// Starts the app in-process on a two-worker runtime (as the binary does on two cores).
pub fn start_app(
    config: statsd_proxy::app::Config,
) -> (tokio::runtime::Runtime, statsd_proxy::app::Running) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let running = rt
        .block_on(statsd_proxy::app::start(config))
        .expect("app starts on loopback");
    (rt, running)
}

/// Stops an app started by [`start_app`], asserting that every task stopped in the grace period.
pub fn stop_app(rt: tokio::runtime::Runtime, running: statsd_proxy::app::Running) {
    assert!(
        rt.block_on(running.shutdown(Duration::from_secs(5))),
        "tasks stop within the grace period"
    );
}

/// Sends SIGTERM to process `pid`, as systemd does to stop a unit.
pub fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// A running `statsd-proxy` binary, killed when dropped.
pub struct Proxy {
    pub child: Child,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub http: SocketAddr,
    /// Every log line, from the first one on (stderr, drained by a thread until the proxy exits).
    pub logs: mpsc::Receiver<String>,
    /// The lines read before the listen addresses were known.
    pub startup_logs: Vec<String>,
}

impl Proxy {
    /// Stops the proxy with SIGTERM and returns every log line it wrote after startup.
    pub fn stop_and_collect_logs(mut self) -> Vec<String> {
        sigterm(self.child.id());
        let mut lines = std::mem::take(&mut self.startup_logs);
        // The drain thread ends at EOF, when the proxy has exited; bounded by WAIT_LIMIT per line.
        while let Ok(line) = self.logs.recv_timeout(WAIT_LIMIT) {
            lines.push(line);
        }
        lines
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's standard error (piped), line by line, read by a thread until the child closes it.
pub fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("standard error is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Reads the log (JSON, or logfmt when `extra` asks for it) until the UDP, TCP and HTTP listeners
/// report their addresses.
pub fn spawn(extra: &[&str]) -> Proxy {
    spawn_command(Command::new(env!("CARGO_BIN_EXE_statsd-proxy")), extra)
}

/// Like [`spawn`], with the open-files limit (soft and hard) set to `nofile` by `prlimit`, as a unit's
/// `LimitNOFILE=` would.
pub fn spawn_with_nofile(nofile: u64, extra: &[&str]) -> Proxy {
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg(env!("CARGO_BIN_EXE_statsd-proxy"));
    spawn_command(command, extra)
}

fn spawn_command(mut command: Command, extra: &[&str]) -> Proxy {
    let mut child = command
        .args([
            "--statsd.listen-udp=127.0.0.1:0",
            "--statsd.listen-tcp=127.0.0.1:0",
            "--web.listen-address=127.0.0.1:0",
            "--log.format=json",
        ])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the statsd-proxy binary");
    // Kept draining after the addresses are known, so the proxy never writes to a closed pipe.
    let rx = stderr_lines(&mut child);
    let (mut udp, mut tcp, mut http) = (None, None, None);
    let mut startup_logs = Vec::new();
    while udp.is_none() || tcp.is_none() || http.is_none() {
        let line = rx.recv_timeout(WAIT_LIMIT).unwrap_or_else(|_| {
            panic!("the proxy logs its listen addresses; it wrote {startup_logs:#?}")
        });
        let address = line
            .split("\"address\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .or_else(|| {
                line.split(" address=")
                    .nth(1)
                    .and_then(|rest| rest.split(' ').next())
            })
            .and_then(|a| a.parse::<SocketAddr>().ok());
        if line.contains("StatsD on UDP") {
            udp = address;
        } else if line.contains("StatsD on TCP") {
            tcp = address;
        } else if line.contains("metrics over HTTP") {
            http = address;
        }
        startup_logs.push(line);
    }
    Proxy {
        child,
        udp: udp.unwrap(),
        tcp: tcp.unwrap(),
        http: http.unwrap(),
        logs: rx,
        startup_logs,
    }
}

/// The RSS of a process in KiB, from /proc (Linux).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc status")
}

/// CPU time (user + system) of a process in seconds, from /proc (Linux; 100 ticks per second).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}
