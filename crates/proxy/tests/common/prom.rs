//! A real Prometheus for the end-to-end tests (Debian's `prometheus`, installed by scripts/test), and
//! what they ask it.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::request;

/// Kills a child process when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fails the test with how to get `tool` when it does not run.
pub fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{tool} is missing: run ./scripts/test, which installs the Debian packages prometheus and ruby-statsd"
    );
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `s` for a URL's query string.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Prometheus scraping one job every second (`job` is the rest of the scrape config after its name,
/// indented for it: `static_configs:` and whatever else), with `args`; its data in `dir/name`.
pub fn start(dir: &Path, name: &str, job: &str, args: &[&str]) -> (Killed, SocketAddr) {
    require("prometheus");
    let config = dir.join(format!("{name}.yml"));
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: statsd-proxy\n    {job}"
        ),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new("prometheus")
        .args(args)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join(name).display()))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    (Killed(child), addr)
}

/// The first value of an instant query, once Prometheus answers it with data.
pub fn query_value(prometheus: SocketAddr, query: &str) -> Option<f64> {
    if std::net::TcpStream::connect(prometheus).is_err() {
        return None;
    }
    let response = request(
        prometheus,
        "GET",
        &format!("/api/v1/query?query={}", percent_encode(query)),
        &[],
    );
    let body = serde_json::from_slice::<serde_json::Value>(&response.body).ok()?;
    body["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
}
