#!/usr/bin/env bash
# Memory per stored user: starts userd --in-memory, fills it with N users through wrk
# (documents like the benchmark's: {"id":..,"name":"Load User 3-123456","email":"load3-123456@example.com"}),
# and prints the growth of the server's resident memory divided by N.
#
#   scripts/rss.sh [--users N] [--bin PATH] [--server-args "..."]
set -euo pipefail
cd "$(dirname "$0")/.."
users=1000000 bin="" args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --server-args) args=$2; shift 2 ;;
    *) echo "usage: $0 [--users N] [--bin PATH] [--server-args ARGS]" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "rss.sh needs wrk (apt-get install -y wrk)" >&2; exit 1; }
if [ -z "$bin" ]; then cargo build --release -q; bin=target/release/userd; fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086
"$bin" --addr "127.0.0.1:$port" --in-memory $args >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
rss() { awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$pid/status"; }
before=$(rss)
threads=4 conns=32
done_dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; kill $wrk 2>/dev/null || true; rm -rf "$done_dir"' EXIT
DONE_DIR=$done_dir LIMIT=$(( (users + threads - 1) / threads )) \
  wrk -t$threads -c$conns -d3600s -s scripts/fill.lua "http://127.0.0.1:$port" >/dev/null &
wrk=$!
while [ "$(find "$done_dir" -type f | wc -l)" -lt $threads ]; do
  kill -0 $wrk 2>/dev/null || { echo "wrk ended early" >&2; exit 1; }
  sleep 0.2
done
kill -INT $wrk 2>/dev/null || true
wait $wrk 2>/dev/null || true
after=$(rss)
stored=$(cat "$done_dir"/* | awk '{n += $1} END {print n}')
python3 - "$before" "$after" "$stored" <<'PY'
import sys
before, after, n = (int(x) for x in sys.argv[1:])
print(f"users stored (at least): {n}")
print(f"RSS before: {before/2**20:.1f} MiB, after: {after/2**20:.1f} MiB")
print(f"RSS per user: {(after - before) / n:.0f} bytes")
PY
