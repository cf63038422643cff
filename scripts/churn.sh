#!/usr/bin/env bash
# Memory under write churn: starts userd, sends REQUESTS unconditional PATCHes of one user, then
# REQUESTS create+delete requests (each connection creates a user and deletes it again), and
# prints the server's resident memory before, between and after. Memory should follow the live
# data (one user, then about as many as there are connections), not the write history.
#
#   scripts/churn.sh [--requests N] [--bin PATH] [--durable] [--server-args "..."]
#
# --durable runs the embedded durable store (--sync interval) in a temporary directory instead
# of --in-memory.
set -euo pipefail
cd "$(dirname "$0")/.."
requests=1000000 bin="" args="" durable=0
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) requests=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --durable) durable=1; shift ;;
    --server-args) args=$2; shift 2 ;;
    *) echo "usage: $0 [--requests N] [--bin PATH] [--durable] [--server-args ARGS]" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "churn.sh needs wrk (apt-get install -y wrk)" >&2; exit 1; }
if [ -z "$bin" ]; then cargo build --release -q; bin=target/release/userd; fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
if [ $durable = 1 ]; then store="--data-dir $work/data --sync interval"; else store="--in-memory"; fi
# shellcheck disable=SC2086
"$bin" --addr "127.0.0.1:$port" $store $args >/dev/null &
pid=$!
wrk=""
trap 'kill $pid 2>/dev/null || true; [ -n "$wrk" ] && kill $wrk 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
rss() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
id=$(curl -fs -H 'Content-Type: application/json' -d '{"name":"Churn","email":"churn@example.com"}' \
  "http://127.0.0.1:$port/users" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
threads=4 conns=16
run() {
  rm -rf "$work/done"; mkdir -p "$work/done"
  MODE=$1 USER_ID=$id DONE_DIR=$work/done LIMIT=$(( (requests + threads - 1) / threads )) \
    wrk -t$threads -c$conns -d3600s -s scripts/churn.lua "http://127.0.0.1:$port" >/dev/null &
  wrk=$!
  while [ "$(find "$work/done" -type f | wc -l)" -lt $threads ]; do
    kill -0 $wrk 2>/dev/null || { echo "wrk ended early" >&2; exit 1; }
    sleep 0.2
  done
  kill -INT $wrk 2>/dev/null || true
  wait $wrk 2>/dev/null || true
  wrk=""
  failed=$(cat "$work"/done/* | awk -F'\t' '{n += $1} END {print n}')
  echo "$1: $requests requests, $failed not 2xx; RSS $(rss) MiB"
  if [ "$failed" != 0 ]; then cut -f2 "$work"/done/* | grep -v '^$' | sort -u | sed 's/^/  first failure: /'; fi
}
before=$(rss)
echo "store: $store; RSS at start (one user): $before MiB"
run patch
run cycle
after=$(rss)
python3 -c "import sys; print(f'growth: {float(sys.argv[2]) - float(sys.argv[1]):.1f} MiB')" "$before" "$after"
