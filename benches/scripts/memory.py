#!/usr/bin/env python3
"""End-to-end memory and scrape measurements of a statsd-proxy (or statsd_exporter) binary, on loopback.

    memory.py scrapes BINARY          100k series: median of 21 curl scrapes (plain, gzip), then RSS
                                      before/after two rounds of 50 concurrent scrapes
    memory.py stalled BINARY N [gzip] 100k series: RSS with N clients that request /metrics and never read
    memory.py idle BINARY N           RSS per idle StatsD TCP connection (N connections)

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


def start(binary):
    proxy = subprocess.Popen(
        [binary, "--statsd.listen-udp=", "--statsd.listen-tcp=127.0.0.1:0",
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
    threading.Thread(target=lambda: [None for _ in proxy.stderr], daemon=True).start()
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


if __name__ == "__main__":
    mode, binary = sys.argv[1], sys.argv[2]
    if mode == "scrapes":
        scrapes(binary)
    elif mode == "stalled":
        stalled(binary, int(sys.argv[3]), sys.argv[4:] == ["gzip"])
    elif mode == "idle":
        idle(binary, int(sys.argv[3]))
    else:
        sys.exit(__doc__)
