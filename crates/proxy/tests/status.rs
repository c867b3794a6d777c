//! The status page in a real browser: the release-shaped binary receives mapped, unmapped, dropped and
//! conflicting StatsD traffic; headless Chromium (Debian's `chromium`, which `scripts/test` installs)
//! loads `/status`, and the test reads the rendered DOM over the DevTools protocol: the unmapped names
//! with their counts, the rules' hits and live series, the conflict. Then it fills in the explain
//! form, submits it in the browser, and reads what the page says the line becomes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::WAIT_LIMIT;
use serde_json::{Value, json};

const MAPPING: &str = r#"mappings:
  - match: "app.*.requests"
    name: "app_requests"
    labels: { service: "$1" }
  - match: "app.*.latency"
    match_metric_type: observer
    name: "app_latency"
    labels: { service: "$1" }
  - match: "noise.*"
    action: drop
  - match: "never.*"
    name: "never"
"#;

/// Headless Chromium, driven over the DevTools protocol (one page).
struct Browser {
    child: Child,
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    next_id: u64,
    events: Vec<Value>,
    _profile: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Browser {
    fn start() -> Self {
        let profile = TempDir(std::env::temp_dir().join(format!(
            "statsd-proxy-chromium-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        )));
        std::fs::create_dir_all(&profile.0).unwrap();
        let mut child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium (scripts/test installs Debian's chromium)");
        let rx = common::stderr_lines(&mut child);
        let mut seen = Vec::new();
        let browser_ws = loop {
            let line = rx.recv_timeout(WAIT_LIMIT).unwrap_or_else(|_| {
                panic!("chromium reports its DevTools address; it wrote {seen:#?}")
            });
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                break url.to_string();
            }
            seen.push(line);
        };
        // ws://127.0.0.1:PORT/devtools/browser/ID → the page target from /json/list.
        let port: SocketAddr = browser_ws
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let list = devtools_targets(port);
        let page = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target")["webSocketDebuggerUrl"]
            .as_str()
            .unwrap()
            .to_string();
        let (mut socket, _) = tungstenite::connect(page).expect("DevTools websocket");
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = socket.get_mut() {
            s.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
        }
        let mut browser = Self {
            child,
            socket,
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        };
        browser.call("Page.enable", json!({}));
        browser
    }

    fn read(&mut self) -> Value {
        loop {
            match self.socket.read().expect("a DevTools message") {
                tungstenite::Message::Text(t) => return serde_json::from_str(&t).unwrap(),
                tungstenite::Message::Close(_) => panic!("DevTools closed the connection"),
                _ => {}
            }
        }
    }

    /// Calls a DevTools method and returns its result (events that arrive meanwhile are kept).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(tungstenite::Message::text(msg.to_string()))
            .unwrap();
        let deadline = Instant::now() + WAIT_LIMIT;
        while Instant::now() < deadline {
            let m = self.read();
            if m["id"] == id {
                assert!(m.get("error").is_none(), "{method}: {m}");
                return m["result"].clone();
            }
            self.events.push(m);
        }
        panic!("no answer to {method}");
    }

    /// Waits for a page load that began after `events` was last cleared.
    fn wait_for_load(&mut self) {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            if self
                .events
                .iter()
                .any(|e| e["method"] == "Page.loadEventFired")
            {
                self.events.clear();
                return;
            }
            assert!(Instant::now() < deadline, "the page did not load");
            let m = self.read();
            self.events.push(m);
        }
    }

    fn navigate(&mut self, url: &str) {
        self.events.clear();
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_for_load();
    }

    /// Evaluates `expression` in the page and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// The cells of the table with id `id`, row by row (header row first), as rendered text.
    fn table(&mut self, id: &str) -> Vec<Vec<String>> {
        let v = self.eval(&format!(
            "Array.from(document.querySelectorAll('#{id} tr')).map(r => Array.from(r.cells).map(c => c.innerText.trim()))"
        ));
        serde_json::from_value(v).unwrap_or_else(|e| panic!("table #{id}: {e}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /json/list` from Chromium's DevTools server, which keeps the connection open: the body is
/// read by its Content-Length.
fn devtools_targets(addr: SocketAddr) -> Value {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    write!(stream, "GET /json/list HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn row<'a>(table: &'a [Vec<String>], first: &str) -> &'a [String] {
    table
        .iter()
        .find(|r| r.first().is_some_and(|c| c == first))
        .unwrap_or_else(|| panic!("no row for {first:?} in {table:#?}"))
}

#[test]
fn the_status_page_in_chromium_shows_unmapped_names_rule_hits_conflicts_and_explains_lines() {
    let dir = std::env::temp_dir().join(format!("statsd-proxy-status-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mapping.yaml");
    std::fs::write(&file, MAPPING).unwrap();
    let proxy = common::spawn(&[&format!("--statsd.mapping-config={}", file.display())]);

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |line: &str, times: usize| {
        for _ in 0..times {
            socket.send_to(line.as_bytes(), proxy.udp).unwrap();
        }
    };
    send("app.web.requests:1|c", 3);
    send("app.api.requests:1|c", 2);
    send("app.web.latency:12|ms", 1);
    send("noise.tick:1|c", 2);
    send("legacy.queue.depth:5|g", 4);
    send("legacy.jobs-done:1|c", 1);
    // A gauge under the counter rule's name: a type conflict on app_requests.
    send("app.web.requests:7|g", 1);

    // Ready when the JSON report has it all (unmapped names are handed over once a second).
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let report: Value =
            serde_json::from_slice(&common::request(proxy.http, "GET", "/api/v1/status", &[]).body)
                .unwrap();
        let unmapped: u64 = report["unmapped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["count"].as_u64().unwrap())
            .sum();
        if unmapped == 5 && report["traffic"]["lines_total"] == 14 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the report never showed the traffic: {report:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let mut browser = Browser::start();
    let url = format!("http://{}/status", proxy.http);
    browser.navigate(&url);
    assert_eq!(browser.eval("document.title"), "statsd-proxy status");

    let unmapped = browser.table("unmapped-names");
    assert_eq!(
        row(&unmapped, "legacy.queue.depth"),
        ["legacy.queue.depth", "legacy_queue_depth", "4"]
    );
    assert_eq!(
        row(&unmapped, "legacy.jobs-done"),
        ["legacy.jobs-done", "legacy_jobs_done", "1"]
    );
    assert_eq!(unmapped.len(), 3, "header and two names: {unmapped:#?}");

    // #, at, match, name, hits, live series.
    let rules = browser.table("rule-hits");
    let requests = row(&rules, "0");
    assert!(requests[2].starts_with("app.*.requests"), "{requests:?}");
    // The conflicting gauge matched the rule too (its refusal is counted below).
    assert_eq!((&*requests[4], &*requests[5]), ("6", "2"));
    let latency = row(&rules, "1");
    assert_eq!((&*latency[4], &*latency[5]), ("1", "1"));
    let noise = row(&rules, "2");
    assert_eq!((&*noise[3], &*noise[4], &*noise[5]), ("drop", "2", "0"));
    let never = row(&rules, "3");
    assert_eq!((&*never[4], &*never[5]), ("0", "0"));
    assert_eq!(rules[1][1], "2:5", "{rules:?}");

    let refusals = browser.table("refusal-list");
    assert_eq!(
        row(&refusals, "app_requests"),
        ["app_requests", "conflict", "gauge", "1"]
    );
    let drops = browser.eval("document.getElementById('drops').innerText");
    assert!(
        drops
            .as_str()
            .unwrap()
            .contains("dropped by a mapping rule"),
        "{drops}"
    );

    // The explain form, filled in and submitted in the browser.
    browser.call(
        "Runtime.evaluate",
        json!({ "expression": "document.getElementById('explain-input').value = 'app.db.requests:1|c\\nlegacy.x:1|ms'; document.getElementById('explain-submit').click()" }),
    );
    browser.wait_for_load();
    let result = browser.eval("document.getElementById('explain-result').innerText");
    let result = result.as_str().expect("an explain result on the page");
    assert!(
        result.contains("series: app_requests{service=\"db\"}")
            && result.contains("rule: mappings[0] at ")
            && result.contains("series: legacy_x")
            && result.contains("rule: none matched (unmapped)"),
        "{result}"
    );
    // Explaining ingested nothing.
    let metrics = common::scrape(proxy.http);
    assert_eq!(metrics.get(r#"app_requests{service="db"}"#), None);
    assert_eq!(metrics.get("statsd_exporter_lines_total"), Some(&14.0));
    std::fs::remove_dir_all(&dir).ok();
}

/// A failed reload shows on the status page and in its JSON with the error's file:line:column, the
/// previous mapping's rules still listed; hits of a rule the good reload kept carry over.
#[test]
fn a_failed_reload_is_reported_with_its_position_and_the_old_rules_stay() {
    let dir =
        std::env::temp_dir().join(format!("statsd-proxy-status-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mapping.yaml");
    std::fs::write(&file, MAPPING).unwrap();
    let proxy = common::spawn(&[
        &format!("--statsd.mapping-config={}", file.display()),
        "--web.enable-lifecycle",
    ]);
    let status = |proxy: &common::Proxy| -> Value {
        serde_json::from_slice(&common::request(proxy.http, "GET", "/api/v1/status", &[]).body)
            .unwrap()
    };
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(b"app.web.requests:1|c", proxy.udp).unwrap();
    common::scrape_until(proxy.http, "the line", |m| {
        m.get("statsd_exporter_lines_total") == Some(&1.0)
    });
    let before = status(&proxy);
    assert_eq!(before["mapping"]["last_load_error"], Value::Null);
    assert_eq!(before["mapping"]["source"], "file");
    assert_eq!(before["rules"][0]["hits"], 1);

    // A good reload that adds a rule above: the kept rule keeps its hits, now at index 1.
    std::fs::write(
        &file,
        format!(
            "mappings:\n  - match: \"first.*\"\n    name: \"first\"\n{}",
            &MAPPING[10..]
        ),
    )
    .unwrap();
    let r = common::request(proxy.http, "POST", "/-/reload", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let reloaded = status(&proxy);
    assert_eq!(reloaded["rules"].as_array().unwrap().len(), 5);
    assert_eq!(reloaded["rules"][1]["match"], "app.*.requests");
    assert_eq!(reloaded["rules"][1]["hits"], 1);
    assert_eq!(reloaded["rules"][1]["series"], 1);
    assert_eq!(reloaded["rules"][1]["line"], 4);

    // A broken one: the error with its position, the previous rules still in use.
    std::fs::write(
        &file,
        "mappings:\n  - match: \"x(\"\n    match_type: regex\n    name: x\n",
    )
    .unwrap();
    let r = common::request(proxy.http, "POST", "/-/reload", &[]);
    assert_eq!(r.status, 500);
    let failed = status(&proxy);
    let error = failed["mapping"]["last_load_error"].as_str().unwrap();
    assert!(error.contains("mapping.yaml:2:5"), "{error}");
    assert_eq!(failed["rules"].as_array().unwrap().len(), 5);
    let page = common::request(proxy.http, "GET", "/status", &[]).text();
    assert!(
        page.contains("the previous mapping stays in use") && page.contains("mapping.yaml:2:5"),
        "{page}"
    );
    assert_eq!(
        common::request(proxy.http, "POST", "/status", &[]).status,
        405
    );
    std::fs::remove_dir_all(&dir).ok();
}
