//! Load generator for statsd-proxy: sends StatsD lines over loopback UDP, receives them in a do-nothing
//! sink, and compares the proxy against that sink on the same traffic.
//!
//! ```text
//! loadgen send    --target 127.0.0.1:9125 [--rate LINES/S] [--lines-per-datagram N] [--namespaces N]
//!                 [--senders N] [--seconds S]
//! loadgen sink    --listen 127.0.0.1:9999 [--seconds S]        # prints what it received and its CPU
//! loadgen compare [--seconds S] [--rate LINES/S] [--lines-per-datagram N[,N…]] [--namespaces N]
//!                 [--senders N] [--proxy PATH] [--mapping FILE] [--workers N] [--reuseport]
//!                 [--summary-window DURATION]
//! ```
//!
//! `compare` runs, one after the other on the same traffic: the sink (a child process), then the proxy
//! (the release binary, default flags, the community Mastodon mapping, the Mastodon corpus), for each
//! number of lines per datagram asked (1 and 20 by default: Mastodon's one metric per datagram, and a
//! batching client's). It prints the lines sent, what each accounted for, the proxy/sink ratio, CPU
//! seconds per million lines (proxy) and per million datagrams (sink), the proxy's CPU per line against
//! the sink's per datagram and per line (the floor), and the proxy's RSS. Everything stays on 127.0.0.1
//! and stops by itself.
//!
//! `--summary-window 2500ms` runs the proxy with the mapping plus `defaults.summary_options: {max_age:
//! 2500ms, age_buckets: 5}` (a copy in the temporary directory): summaries rotate every 0.5 s, so a
//! run of a few seconds measures their steady state (every age bucket's stream distinct) rather than
//! young summaries, which the default 10-minute window gives.

use std::io::{BufRead, BufReader, IoSlice, IoSliceMut, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrIn, recvmmsg, sendmmsg};

const BATCH: usize = 32;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn arg_str(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// (user, system) CPU seconds of a process, from /proc.
fn cpu_split(pid: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |v| v as f64);
    (ticks(11) / hz, ticks(12) / hz)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Datagrams of `per` lines each from the Mastodon corpus, in the default namespace, or spread over
/// `namespaces` instances (`Mastodon.instance0` …, their lines interleaved) when it is above 1.
fn datagrams(per: usize, namespaces: usize) -> Vec<Vec<u8>> {
    let lines = if namespaces > 1 {
        let each: Vec<Vec<String>> = (0..namespaces)
            .map(|i| statsd_benches::mastodon_lines_in(&format!("Mastodon.instance{i}")))
            .collect();
        let len = each[0].len();
        (0..len * namespaces)
            .map(|k| each[k % namespaces][k / namespaces].clone())
            .collect()
    } else {
        statsd_benches::mastodon_lines()
    };
    (0..lines.len())
        .map(|i| {
            (0..per)
                .map(|j| lines[(i + j) % lines.len()].as_str())
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes()
        })
        .collect()
}

/// Sends for `seconds` at `rate` lines/s in all (0: as fast as possible) from `senders` sockets (each
/// its own thread and source port, as separate client processes would); returns (datagrams, lines).
fn send(
    target: SocketAddr,
    rate: u64,
    per: usize,
    namespaces: usize,
    seconds: f64,
    senders: usize,
) -> (u64, u64) {
    let senders = senders.max(1);
    let threads: Vec<_> = (0..senders)
        .map(|_| {
            let rate = rate / senders as u64;
            std::thread::spawn(move || send_one(target, rate, per, namespaces, seconds))
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("sender thread"))
        .fold((0, 0), |(d, l), (d1, l1)| (d + d1, l + l1))
}

/// One sender of [`send`].
fn send_one(
    target: SocketAddr,
    rate: u64,
    per: usize,
    namespaces: usize,
    seconds: f64,
) -> (u64, u64) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the sender");
    let SocketAddr::V4(v4) = target else {
        panic!("the load generator sends over IPv4 loopback");
    };
    let dest = SockaddrIn::from(v4);
    let payloads = datagrams(per, namespaces);
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BATCH, None);
    let addrs = vec![Some(dest); BATCH];
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let (mut sent, mut next) = (0u64, 0usize);
    while Instant::now() < deadline {
        let slices: Vec<[IoSlice<'_>; 1]> = (0..BATCH)
            .map(|k| [IoSlice::new(&payloads[(next + k) % payloads.len()])])
            .collect();
        match sendmmsg(
            socket.as_raw_fd(),
            &mut headers,
            &slices,
            &addrs,
            [],
            MsgFlags::empty(),
        ) {
            Ok(results) => {
                let n = results.count();
                sent += n as u64;
                next = (next + n) % payloads.len();
            }
            Err(nix::errno::Errno::ENOBUFS | nix::errno::Errno::EAGAIN) => std::thread::yield_now(),
            Err(e) => panic!("sendmmsg: {e}"),
        }
        if rate > 0 {
            let due = Duration::from_secs_f64((sent * per as u64) as f64 / rate as f64);
            if let Some(ahead) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
    }
    (sent, sent * per as u64)
}

/// Receives for `seconds` (stopping early after 1 s of silence once traffic began); prints a report.
fn sink(listen: &str, seconds: f64) {
    let socket = UdpSocket::bind(listen).expect("bind the sink");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    println!("ready {}", socket.local_addr().expect("bound"));
    std::io::stdout().flush().ok();
    let mut buffers: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; 65_535]).collect();
    let mut headers = MultiHeaders::<()>::preallocate(BATCH, None);
    let (mut datagrams, mut lines) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut last = Instant::now();
    while Instant::now() < deadline {
        let mut lens = [0usize; BATCH];
        let n = {
            let mut it = buffers.iter_mut();
            let mut slices: [[IoSliceMut<'_>; 1]; BATCH] =
                std::array::from_fn(|_| [IoSliceMut::new(it.next().expect("BATCH buffers"))]);
            match recvmmsg(
                socket.as_raw_fd(),
                &mut headers,
                slices.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(r) => r.enumerate().map(|(i, m)| lens[i] = m.bytes).count(),
                Err(_) => 0,
            }
        };
        if n == 0 {
            if datagrams > 0 && last.elapsed() > Duration::from_secs(1) {
                break;
            }
            continue;
        }
        last = Instant::now();
        datagrams += n as u64;
        // Count lines, as the proxy does, so both sides do the least work that sees every line.
        for (b, &len) in buffers.iter().zip(&lens[..n]) {
            lines += 1 + b[..len].iter().filter(|&&c| c == b'\n').count() as u64;
        }
    }
    let (user, system) = cpu_split("self");
    println!(
        "received {datagrams} {lines} {:.4} {user:.4} {system:.4}",
        user + system
    );
}

fn scrape_lines(http: SocketAddr) -> f64 {
    let Ok(mut s) = TcpStream::connect(http) else {
        return 0.0;
    };
    let _ = write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.lines()
        .find_map(|l| l.strip_prefix("statsd_exporter_lines_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `compare` for each value of `--lines-per-datagram` (a comma-separated list; default `1,20`).
fn compare_all(args: &[String]) {
    let list = arg_str(args, "--lines-per-datagram").unwrap_or_else(|| "1,20".into());
    for per in list
        .split(',')
        .filter_map(|p| p.trim().parse::<usize>().ok())
    {
        compare(args, per);
    }
}

/// A copy of the mapping at `path` whose summaries default to a `window` of five age buckets.
fn with_summary_window(path: &str, window: &str) -> String {
    let text = std::fs::read_to_string(path).expect("read the mapping");
    assert!(
        !text.lines().any(|l| l.starts_with("defaults:")),
        "--summary-window: {path} has its own defaults"
    );
    let copy = std::env::temp_dir().join(format!("loadgen-mapping-{}.yaml", std::process::id()));
    std::fs::write(
        &copy,
        format!("defaults:\n  summary_options:\n    max_age: {window}\n    age_buckets: 5\n{text}"),
    )
    .expect("write the mapping copy");
    copy.display().to_string()
}

fn compare(args: &[String], per: usize) {
    let seconds: f64 = arg(args, "--seconds", 5.0);
    let rate: u64 = arg(args, "--rate", 0);
    let namespaces: usize = arg(args, "--namespaces", 1);
    let senders: usize = arg(args, "--senders", 1);
    let reuseport = args.iter().any(|a| a == "--reuseport");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let proxy = arg_str(args, "--proxy").unwrap_or_else(|| {
        root.join("target/release/statsd-proxy")
            .display()
            .to_string()
    });
    let mapping = arg_str(args, "--mapping").unwrap_or_else(|| {
        root.join("mappings/testdata/ipng-mastodon-mapping.yaml")
            .display()
            .to_string()
    });
    let workers: Option<usize> = arg_str(args, "--workers").and_then(|w| w.parse().ok());
    let mapping = match arg_str(args, "--summary-window") {
        Some(window) => with_summary_window(&mapping, &window),
        None => mapping,
    };

    // 1. The sink, in its own process (so its CPU is its own).
    let me = std::env::current_exe().expect("own path");
    let mut sink_child = Command::new(&me)
        .args([
            "sink",
            "--listen",
            "127.0.0.1:0",
            "--seconds",
            &format!("{}", seconds + 5.0),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the sink");
    let mut out = BufReader::new(sink_child.stdout.take().expect("sink stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("sink ready line");
    let sink_addr: SocketAddr = line
        .trim()
        .strip_prefix("ready ")
        .and_then(|a| a.parse().ok())
        .expect("sink address");
    let (_, sink_sent_lines) = send(sink_addr, rate, per, namespaces, seconds, senders);
    line.clear();
    out.read_line(&mut line).expect("sink report");
    let _ = sink_child.wait();
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let (sink_datagrams, sink_lines, sink_cpu, sink_user, sink_system) =
        (f[0], f[1], f[2], f[3], f[4]);

    // 2. The proxy, on the same traffic.
    let (udp, http) = (free_port(), free_port());
    let mut cmd = Command::new(&proxy);
    cmd.args([
        format!("--statsd.listen-udp=127.0.0.1:{udp}"),
        "--statsd.listen-tcp=".into(),
        format!("--web.listen-address=127.0.0.1:{http}"),
        format!("--statsd.mapping-config={mapping}"),
        "--log.level=warn".into(),
    ]);
    if let Some(w) = workers {
        cmd.arg(format!("--statsd.udp-workers={w}"));
    }
    if reuseport {
        cmd.arg("--statsd.udp-reuseport");
    }
    let mut child: Child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the proxy");
    let http_addr: SocketAddr = format!("127.0.0.1:{http}").parse().expect("address");
    let ready_deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(http_addr).is_err() {
        assert!(Instant::now() < ready_deadline, "the proxy did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    if args.iter().any(|a| a == "--summary-window") {
        // Read at start: the copy is not needed any more.
        let _ = std::fs::remove_file(&mapping);
    }
    let pid = child.id().to_string();
    let (user_before, system_before) = cpu_split(&pid);
    let (_, proxy_sent_lines) = send(
        format!("127.0.0.1:{udp}").parse().expect("address"),
        rate,
        per,
        namespaces,
        seconds,
        senders,
    );
    // Let the proxy drain its socket: wait until its count stops moving.
    let mut accounted = scrape_lines(http_addr);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = scrape_lines(http_addr);
        if now == accounted {
            break;
        }
        accounted = now;
    }
    let (user_after, system_after) = cpu_split(&pid);
    let (proxy_user, proxy_system) = (user_after - user_before, system_after - system_before);
    let proxy_cpu = proxy_user + proxy_system;
    let rss = rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();

    let sink_per = sink_cpu / sink_datagrams * 1e6;
    let proxy_per = proxy_cpu / accounted * 1e6;
    println!(
        "seconds {seconds}, rate {}, lines per datagram {per}, namespaces {namespaces}, senders {senders}",
        if rate == 0 {
            "max".to_string()
        } else {
            rate.to_string()
        }
    );
    println!(
        "sink:  sent {sink_sent_lines} lines, received {sink_datagrams} datagrams / {sink_lines} lines, \
         CPU {sink_cpu:.3} s (user {sink_user:.2}, system {sink_system:.2}) = {sink_per:.3} s per million datagrams"
    );
    println!(
        "proxy: sent {proxy_sent_lines} lines, accounted {accounted} lines, \
         CPU {proxy_cpu:.3} s (user {proxy_user:.2}, system {proxy_system:.2}) = {proxy_per:.3} s per million lines, RSS {rss} KiB"
    );
    println!(
        "ratios: accepted/sink-received {:.3}; proxy CPU per line / sink CPU per datagram {:.3}; \
         proxy CPU per line / sink CPU per line {:.2}",
        accounted / sink_lines,
        proxy_per / sink_per,
        proxy_per / (sink_cpu / sink_lines * 1e6)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("send") => {
            let target: SocketAddr = arg_str(&args, "--target")
                .and_then(|t| t.parse().ok())
                .expect("--target host:port");
            let (d, l) = send(
                target,
                arg(&args, "--rate", 0),
                arg(&args, "--lines-per-datagram", 1),
                arg(&args, "--namespaces", 1),
                arg(&args, "--seconds", 5.0),
                arg(&args, "--senders", 1),
            );
            println!("sent {d} datagrams, {l} lines");
        }
        Some("sink") => sink(
            &arg_str(&args, "--listen").unwrap_or_else(|| "127.0.0.1:0".into()),
            arg(&args, "--seconds", 10.0),
        ),
        Some("compare") => compare_all(&args),
        _ => {
            eprintln!(
                "usage: loadgen send|sink|compare [options]  (see the source's documentation)"
            );
            std::process::exit(2);
        }
    }
}
