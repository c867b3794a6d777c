#!/usr/bin/env bash
# RSS and scrape time of a proxy holding ~10,000 Mastodon series: 113 namespaces of loadgen's Mastodon
# corpus, the shipped mapping, 3 s of traffic at 300k lines/s, then the median of 31 curl scrapes, plain and
# gzipped (as Prometheus asks), and the gzipped page's size.
# Usage: benches/scripts/scrape-10k.sh [BINARY]   (build first: cargo build --release -p statsd-proxy
# -p statsd-benches --bins). Uses loopback ports 19125/19126/19102.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/release/statsd-proxy}
"$bin" --web.listen-address=127.0.0.1:19102 --statsd.listen-udp=127.0.0.1:19125 \
    --statsd.listen-tcp=127.0.0.1:19126 --statsd.mapping-config=mappings/mastodon.yaml >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf 127.0.0.1:19102/-/ready >/dev/null && break; sleep 0.05; done
target/release/loadgen send --target 127.0.0.1:19125 --namespaces 113 --seconds 3 --rate 300000 >/dev/null
sleep 1
series=$(curl -s 127.0.0.1:19102/api/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["series"]["total"])')
median=$(for _ in $(seq 31); do curl -s -o /dev/null -w '%{time_total}\n' 127.0.0.1:19102/metrics; done | sort -n | sed -n 16p)
# As Prometheus scrapes: gzip (it always sends Accept-Encoding: gzip).
gzip_median=$(for _ in $(seq 31); do curl -s -H 'Accept-Encoding: gzip' -o /dev/null -w '%{time_total}\n' 127.0.0.1:19102/metrics; done | sort -n | sed -n 16p)
gzip_bytes=$(curl -s -H 'Accept-Encoding: gzip' 127.0.0.1:19102/metrics | wc -c)
echo "$bin: series=$series rss_kib=$(awk '/VmRSS/ {print $2}' /proc/$pid/status) scrape_median_s=$median gzip_median_s=$gzip_median gzip_bytes=$gzip_bytes"
