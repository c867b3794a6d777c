#!/usr/bin/env python3
"""End-to-end hardening measurements of a statsd-proxy (or statsd_exporter) binary, on loopback.

    hardening.py scrapes BINARY          100k series: median of 21 curl scrapes (plain, gzip), then RSS
                                         before/after two rounds of 50 concurrent scrapes
    hardening.py stalled BINARY N [gzip] 100k series: RSS with N clients that request /metrics, never read
    hardening.py idle BINARY N           RSS per idle StatsD TCP connection (N connections)
    hardening.py fds BINARY              under `prlimit --nofile=1024:1024`, 1,100 idle StatsD TCP clients:
                                         10 s of CPU and log output, a scrape, a new client's line

Figures go to BENCHMARKS.md with the commit they were taken on. Needs curl.
"""
import re
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request


def start(binary, prefix=(), extra=()):
    proxy = subprocess.Popen(
        [*prefix, binary, *extra, "--statsd.listen-udp=", "--statsd.listen-tcp=127.0.0.1:0",
         "--web.listen-address=127.0.0.1:0", "--log.format=json", "--statsd.max-series=200000"],
        stderr=subprocess.PIPE, text=True)
    tcp = http = None
    while not (tcp and http):
        line = proxy.stderr.readline()
        m = re.search(r'"address":"([^"]+)"', line)
        if m and "TCP" in line:
            tcp = m.group(1)
        if m and "HTTP" in line:
            http = m.group(1)
    proxy.log_bytes = 0

    def drain():
        for rest in proxy.stderr:
            proxy.log_bytes += len(rest)
    threading.Thread(target=drain, daemon=True).start()
    return proxy, tcp, http


def addr(a):
    host, port = a.rsplit(":", 1)
    return host, int(port)


def rss(proxy):
    return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{proxy.pid}/status").read()).group(1))


def get(http, gzip):
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    with urllib.request.urlopen(urllib.request.Request(f"http://{http}/metrics", headers=headers)) as r:
        return r.read()


def load_series(tcp, http, n=100_000):
    s = socket.create_connection(addr(tcp))
    s.sendall("".join(
        f"load_{i % 100}:1|c|#id:{i},host:web-{i % 7}.example.social,endpoint:api.v1.timelines.home\n"
        for i in range(n)).encode())
    s.close()
    while f"statsd_exporter_lines_total {n}".encode() not in get(http, False):
        time.sleep(0.1)


def scrapes(binary):
    proxy, tcp, http = start(binary)
    load_series(tcp, http)
    for gzip in (False, True):
        times = []
        for _ in range(21):
            out = subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}"]
                + (["-H", "Accept-Encoding: gzip"] if gzip else []) + [f"http://{http}/metrics"],
                capture_output=True, text=True, check=True).stdout.split()
            times.append(float(out[0]))
        print(f"{'gzip' if gzip else 'plain'} scrape, {out[1]} bytes: median {statistics.median(times) * 1000:.1f} ms")
    before = rss(proxy)
    for round_ in range(2):
        threads = [threading.Thread(target=get, args=(http, (i + round_) % 2 == 0)) for i in range(50)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    time.sleep(1)
    print(f"2 rounds of 50 concurrent scrapes: RSS {before} -> {rss(proxy)} KiB")
    proxy.kill()


def stalled(binary, n, gzip):
    proxy, tcp, http = start(binary)
    load_series(tcp, http)
    before = rss(proxy)
    clients = []
    for _ in range(n):
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.connect(addr(http))
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + (b"Accept-Encoding: gzip\r\n" if gzip else b"") + b"\r\n")
        clients.append(c)
    time.sleep(3)
    print(f"{n} stalled {'gzip' if gzip else 'plain'} scrapes: RSS {before} -> {rss(proxy)} KiB")
    proxy.kill()


def idle(binary, n):
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 1000, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    proxy, tcp, _ = start(binary)
    time.sleep(0.5)
    before = rss(proxy)
    conns = [socket.create_connection(addr(tcp)) for _ in range(n)]
    time.sleep(2)
    after = rss(proxy)
    print(f"{n} idle TCP connections: RSS {before} -> {after} KiB, {(after - before) / n:.1f} KiB each")
    proxy.kill()
    del conns


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def fds(binary):
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    proxy, tcp, http = start(binary, ["prlimit", "--nofile=1024:1024"], ["--statsd.tcp-idle-timeout=0"])
    clients = []
    for _ in range(1100):
        try:
            clients.append(socket.create_connection(addr(tcp), timeout=2))
        except OSError:
            pass
    time.sleep(1)
    t0, c0, l0 = time.time(), cpu_seconds(proxy.pid), proxy.log_bytes
    time.sleep(10)
    t1, c1, l1 = time.time(), cpu_seconds(proxy.pid), proxy.log_bytes
    start_scrape = time.time()
    try:
        get(http, False)
        scrape = f"{(time.time() - start_scrape) * 1000:.0f} ms"
    except OSError as e:
        scrape = f"failed: {e}"
    arrived = False
    try:
        live = socket.create_connection(addr(tcp), timeout=5)
        live.sendall(b"fdtest_live:1|c\n")
        for _ in range(50):
            time.sleep(0.1)
            if b"\nfdtest_live 1" in get(http, False):
                arrived = True
                break
    except OSError:
        pass
    print(f"{len(clients)} idle clients: CPU {(c1 - c0) / (t1 - t0):.3f} of a core, logs {(l1 - l0) / (t1 - t0):.0f} B/s, "
          f"scrape {scrape}, new client's line {'arrives' if arrived else 'lost'}")
    proxy.kill()


if __name__ == "__main__":
    mode, binary = sys.argv[1], sys.argv[2]
    if mode == "scrapes":
        scrapes(binary)
    elif mode == "stalled":
        stalled(binary, int(sys.argv[3]), sys.argv[4:] == ["gzip"])
    elif mode == "idle":
        idle(binary, int(sys.argv[3]))
    elif mode == "fds":
        fds(binary)
    else:
        sys.exit(__doc__)
