//! The proxy under a stressed host and hostile clients: file descriptors running out, a fleet of idle
//! TCP clients. The real binary, with its open-files limit lowered by `prlimit`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{WAIT_LIMIT, cpu_seconds, scrape_until, spawn, spawn_with_nofile};

/// Connects `n` TCP clients that send nothing.
fn idle_clients(to: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n).filter_map(|_| TcpStream::connect(to).ok()).collect()
}

/// At the connection cap, a new client closes the longest-idle one instead of being locked out.
#[test]
fn idle_clients_make_room_for_live_ones() {
    let proxy = spawn(&[
        "--statsd.tcp-max-connections=3",
        "--statsd.tcp-idle-timeout=0",
    ]);
    let mut idle = idle_clients(proxy.tcp, 3);
    // Let the proxy register all three before the fourth arrives.
    scrape_until(proxy.http, "three TCP connections", |m| {
        m.get("statsd_exporter_tcp_connections_total").copied() == Some(3.0)
    });
    let mut live = TcpStream::connect(proxy.tcp).unwrap();
    live.write_all(b"live:1|c\n").unwrap();
    // Our counters are gathered before the store is read: a scrape can show the line and not yet
    // the eviction that let it in, so wait for both.
    let m = scrape_until(proxy.http, "the live client's line and one eviction", |m| {
        m.get("live").copied() == Some(1.0)
            && m.get("statsd_proxy_tcp_connections_evicted_total")
                .is_some_and(|&e| e >= 1.0)
    });
    assert_eq!(
        m.get("statsd_proxy_tcp_connections_evicted_total"),
        Some(&1.0)
    );
    // The first idle client was the one closed.
    idle[0].set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        idle[0].read(&mut buf).expect("closed, not timed out"),
        0,
        "the oldest idle client was closed by the proxy"
    );
    idle.clear();
}

/// A connection we close for idleness in the middle of a line: the part received is not taken as a
/// line (`@0.25` cut to `@0.2` would count 5, not 4), and it is counted.
#[test]
fn a_line_cut_by_the_idle_timeout_is_dropped_and_counted() {
    let proxy = spawn(&["--statsd.tcp-idle-timeout=1s"]);
    let mut client = TcpStream::connect(proxy.tcp).unwrap();
    client.write_all(b"whole:1|c\ncut:1|c|@0.2").unwrap();
    client.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        client
            .read(&mut buf)
            .expect("closed by the proxy, not timed out"),
        0
    );
    let m = scrape_until(proxy.http, "the cut line counted", |m| {
        m.get("statsd_proxy_tcp_cut_lines_total").copied() == Some(1.0)
    });
    assert_eq!(m.get("whole"), Some(&1.0));
    assert!(
        !m.keys().any(|k| k.starts_with("cut")),
        "the cut line made no series: {m:#?}"
    );
}

/// With the open-files limit at 128, 160 idle clients: the proxy derives its caps from the limit, so
/// it keeps file descriptors for scrapes, stays quiet and idle, and a new client's lines arrive.
#[test]
fn a_low_open_files_limit_does_not_lock_out_scrapes_or_clients() {
    let proxy = spawn_with_nofile(128, &["--statsd.tcp-idle-timeout=0"]);
    let before = cpu_seconds(proxy.child.id());
    let idle = idle_clients(proxy.tcp, 160);
    let start = Instant::now();
    let mut live = TcpStream::connect(proxy.tcp).unwrap();
    live.write_all(b"alive:1|c\n").unwrap();
    // Both: our counters are gathered before the store is read (see above).
    scrape_until(proxy.http, "the new client's line and an eviction", |m| {
        m.get("alive").copied() == Some(1.0)
            && m.get("statsd_proxy_tcp_connections_evicted_total")
                .is_some_and(|&e| e >= 1.0)
    });
    // Two seconds of the fleet sitting there.
    std::thread::sleep(Duration::from_secs(2));
    let cpu = cpu_seconds(proxy.child.id()) - before;
    let wall = start.elapsed().as_secs_f64();
    assert!(cpu < 0.2 * wall + 0.1, "CPU {cpu:.2} s in {wall:.1} s");
    drop(idle);
    drop(live);
    let logs = proxy.stop_and_collect_logs();
    let bytes: usize = logs.iter().map(String::len).sum();
    assert!(bytes < 8 * 1024, "{bytes} bytes of logs: {logs:#?}");
}

/// Unlimited TCP connections and an open-files limit of 128: accept fails with EMFILE, and the proxy
/// backs off — no busy loop, at most a log line a second — and recovers when the clients leave.
#[test]
fn running_out_of_file_descriptors_backs_off() {
    let proxy = spawn_with_nofile(
        128,
        &[
            "--statsd.tcp-max-connections=0",
            "--statsd.tcp-idle-timeout=0",
        ],
    );
    let before = cpu_seconds(proxy.child.id());
    let start = Instant::now();
    let idle = idle_clients(proxy.tcp, 200);
    std::thread::sleep(Duration::from_secs(2));
    let cpu = cpu_seconds(proxy.child.id()) - before;
    let wall = start.elapsed().as_secs_f64();
    assert!(cpu < 0.2 * wall + 0.1, "CPU {cpu:.2} s in {wall:.1} s");
    drop(idle);
    // Recovered: a scrape answers and counts the accept errors.
    let m = scrape_until(proxy.http, "accept errors counted", |m| {
        m.get("statsd_exporter_tcp_connection_errors_total")
            .copied()
            .unwrap_or(0.0)
            >= 1.0
    });
    assert!(m.contains_key("statsd_exporter_lines_total"));
    let logs = proxy.stop_and_collect_logs();
    let backoff_lines = logs.iter().filter(|l| l.contains("backing off")).count();
    assert!(
        (1..=2 * (wall.ceil() as usize + WAIT_LIMIT.as_secs() as usize)).contains(&backoff_lines),
        "{backoff_lines} backoff log lines in {wall:.1} s"
    );
}

/// 500 slow-header clients hold connections, concurrent scrapes queue for a render slot: a normal
/// scrape still answers, and so does every one of 20 concurrent scrapes.
#[test]
fn slow_header_clients_and_concurrent_scrapes_do_not_block_scrapes() {
    let limit = statsd_proxy::listen::fds::raise_nofile_limit();
    assert!(
        limit.soft >= 1_024,
        "the test process needs 1,024 open files"
    );
    // An open-files limit that gives the web port room for them (a cap of about 1,000 connections).
    let proxy = spawn_with_nofile(4_096, &[]);
    let mut slow: Vec<TcpStream> = (0..500)
        .filter_map(|_| TcpStream::connect(proxy.http).ok())
        .collect();
    assert_eq!(slow.len(), 500);
    for s in &mut slow {
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
    }
    let m = common::scrape(proxy.http);
    assert!(m.contains_key("statsd_exporter_lines_total"));
    let scrapes: Vec<_> = (0..20)
        .map(|_| {
            let addr = proxy.http;
            std::thread::spawn(move || common::request(addr, "GET", "/metrics", &[]).status)
        })
        .collect();
    for s in scrapes {
        assert_eq!(s.join().unwrap(), 200);
    }
    drop(slow);
}

/// Sends `n` distinct series over one TCP connection: 100 counter families, tagged `id:<i>`.
fn send_series(to: std::net::SocketAddr, n: usize) {
    let mut tcp = TcpStream::connect(to).unwrap();
    let mut batch = String::with_capacity(64 * 1024);
    for i in 0..n {
        use std::fmt::Write as _;
        writeln!(
            batch,
            "load_{}:1|c|#id:{i},host:web-{}.example.social,endpoint:api.v1.timelines.home",
            i % 100,
            i % 7
        )
        .unwrap();
        if batch.len() > 60 * 1024 {
            tcp.write_all(batch.as_bytes()).unwrap();
            batch.clear();
        }
    }
    tcp.write_all(batch.as_bytes()).unwrap();
}

/// Requests the page with a small receive buffer and never reads it.
fn stalled_scrape(to: std::net::SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&to.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    stream
}

/// 50 concurrent scrapes of 100k series: memory afterwards stays within 2× of before, and ingest
/// goes on throughout (a client keeps sending while the scrapes run, and all of its lines arrive), and
/// clients that stopped reading their page hold up no one.
#[test]
fn concurrent_scrapes_of_a_large_store_return_their_memory() {
    const SERIES: usize = 100_000;
    let proxy = spawn(&["--statsd.max-series=200000"]);
    send_series(proxy.tcp, SERIES);
    common::wait_for_lines(proxy.http, SERIES as f64);
    // One ordinary scrape first: the steady state of a scraped proxy.
    let page = common::request(proxy.http, "GET", "/metrics", &[]);
    assert!(page.body.len() > 5_000_000, "{} bytes", page.body.len());
    let before = common::rss_kib(proxy.child.id());
    // Clients that ask for the page and never read it: they must not hold up anyone else.
    let stalled: Vec<_> = (0..5).map(|_| stalled_scrape(proxy.http)).collect();

    let feeding = {
        let tcp = proxy.tcp;
        std::thread::spawn(move || {
            let mut c = TcpStream::connect(tcp).unwrap();
            for _ in 0..2_000 {
                c.write_all(b"during:1|c\n").unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let mut peak = before;
    for round in 0..2 {
        let scrapes: Vec<_> = (0..50)
            .map(|i| {
                let addr = proxy.http;
                let gzip = (i + round) % 2 == 0;
                std::thread::spawn(move || {
                    let headers: &[(&str, &str)] = if gzip {
                        &[("Accept-Encoding", "gzip")]
                    } else {
                        &[]
                    };
                    common::request(addr, "GET", "/metrics", headers).status
                })
            })
            .collect();
        for s in scrapes {
            assert_eq!(s.join().unwrap(), 200);
            peak = peak.max(common::rss_kib(proxy.child.id()));
        }
    }
    feeding.join().unwrap();
    drop(stalled);
    let m = scrape_until(proxy.http, "every line sent during the scrapes", |m| {
        m.get("during").copied() == Some(2_000.0)
    });
    assert!(m.contains_key("statsd_exporter_lines_total"));
    let after = common::rss_kib(proxy.child.id());
    eprintln!("RSS before {before} KiB, peak {peak} KiB, after {after} KiB");
    assert!(
        after <= 2 * before,
        "RSS {after} KiB after the scrapes, {before} KiB before (peak {peak} KiB)"
    );
}

/// 2,000 idle StatsD TCP clients (statsd_exporter 0.30 held as many and served the next one), then a
/// live client: its lines arrive, no idle client had to be closed for it, and the fleet costs no CPU.
#[test]
fn two_thousand_idle_clients_then_a_live_one() {
    let limit = statsd_proxy::listen::fds::raise_nofile_limit();
    assert!(
        limit.soft >= 4_096,
        "this test needs 4,096 open files in the test process; the hard limit allows {}",
        limit.soft
    );
    let proxy = spawn_with_nofile(4_096, &[]);
    let rss_before = common::rss_kib(proxy.child.id());
    let before = cpu_seconds(proxy.child.id());
    let start = Instant::now();
    let idle = idle_clients(proxy.tcp, 2_000);
    assert_eq!(idle.len(), 2_000);
    scrape_until(proxy.http, "2,000 TCP connections", |m| {
        m.get("statsd_exporter_tcp_connections_total").copied() == Some(2_000.0)
    });
    let mut live = TcpStream::connect(proxy.tcp).unwrap();
    live.write_all(b"live:1|c\nlive:2|c\n").unwrap();
    let m = scrape_until(proxy.http, "the live client's lines", |m| {
        m.get("live").copied() == Some(3.0)
    });
    assert_eq!(
        m.get("statsd_proxy_tcp_connections_evicted_total"),
        Some(&0.0)
    );
    let cpu = cpu_seconds(proxy.child.id()) - before;
    let wall = start.elapsed().as_secs_f64();
    assert!(cpu < 0.2 * wall + 0.2, "CPU {cpu:.2} s in {wall:.1} s");
    let rss = common::rss_kib(proxy.child.id());
    eprintln!(
        "2,000 idle clients: RSS {rss_before} → {rss} KiB ({:.1} KiB per connection), CPU {cpu:.2} s in {wall:.1} s",
        (rss - rss_before) as f64 / 2_000.0
    );
    drop(idle);
}
