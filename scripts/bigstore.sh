#!/usr/bin/env bash
# GET on a big store against a small one: starts two userd --in-memory, fills one with
# BIG users and the other with SMALL (through wrk, scripts/fill.lua), samples SAMPLE ids spread
# evenly across each whole store (by paging GET /users), then runs interleaved rounds of
# GET /users/{id} of random sampled ids against each (wrk, scripts/bench.lua) and prints, per
# round and as the mean, the server CPU per request (utime + stime from /proc) and the p99.
# Server on core 0, wrk on core 1 where the machine has two cores.
#
#   scripts/bigstore.sh [--big N] [--small N] [--rounds N] [--duration S] [--conns N] [--bin PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
big=2000000 small=10000 rounds=2 duration=10 conns=64 bin="" sample=100000
while [ $# -gt 0 ]; do
  case "$1" in
    --big) big=$2; shift 2 ;;
    --small) small=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "usage: $0 [--big N] [--small N] [--rounds N] [--duration S] [--conns N] [--bin PATH]" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "bigstore.sh needs wrk (apt-get install -y wrk)" >&2; exit 1; }
if [ -z "$bin" ]; then cargo build --release -q; bin=target/release/userd; fi
server_cpu="" load_cpu=""
if [ "$(nproc)" -ge 2 ]; then server_cpu="taskset -c 0" load_cpu="taskset -c 1"; fi
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start NAME USERS: a server filled with USERS users; leaves its port and pid in $work/NAME.*
start() {
  local name=$1 users=$2 port
  port=$(free_port)
  # shellcheck disable=SC2086
  $server_cpu "$bin" --addr "127.0.0.1:$port" --in-memory >/dev/null &
  pids+=($!)
  echo "$port" >"$work/$name.port"; echo $! >"$work/$name.pid"
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  mkdir -p "$work/$name.done"
  local threads=2
  DONE_DIR=$work/$name.done LIMIT=$(( (users + threads - 1) / threads )) \
    wrk -t$threads -c32 -d3600s -s scripts/fill.lua "http://127.0.0.1:$port" >/dev/null &
  local wrk=$!
  while [ "$(find "$work/$name.done" -type f | wc -l)" -lt $threads ]; do
    kill -0 $wrk 2>/dev/null || { echo "wrk ended early" >&2; exit 1; }
    sleep 0.5
  done
  kill -INT $wrk 2>/dev/null || true; wait $wrk 2>/dev/null || true
  python3 - "$port" "$sample" >"$work/$name.ids" <<'PY'
import json, sys, urllib.request
port, want = int(sys.argv[1]), int(sys.argv[2])
ids, cursor = [], None
while True:
    url = f"http://127.0.0.1:{port}/users?limit=1000" + (f"&cursor={cursor}" if cursor else "")
    page = json.load(urllib.request.urlopen(url))["data"]
    ids.extend(u["id"] for u in page["users"])
    cursor = page["next_cursor"]
    if not cursor:
        break
step = max(1, len(ids) // want)
print("\n".join(ids[::step]))
PY
  echo "$name: $(awk -F: '/^VmRSS/ {print $2}' "/proc/$(cat "$work/$name.pid")/status" | xargs) RSS, $(wc -l <"$work/$name.ids") ids sampled" >&2
}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure NAME: one wrk round; prints "cpu_us_per_request p99_us rps"
measure() {
  local name=$1 port pid t0 t1 out
  port=$(cat "$work/$name.port") pid=$(cat "$work/$name.pid")
  t0=$(ticks "$pid")
  out=$(SCENARIO=get IDS_FILE=$work/$name.ids $load_cpu wrk -t1 -c"$conns" -d"${duration}s" \
    -s scripts/bench.lua "http://127.0.0.1:$port" | sed -n 's/^WRKJSON //p')
  t1=$(ticks "$pid")
  python3 - "$out" "$t0" "$t1" "$(getconf CLK_TCK)" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); t0, t1, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if r["status_err"] or r["unexpected"] > 0:
    sys.exit(f"errors during the round: {r}")
print(f"{(t1 - t0) / hz * 1e6 / r['requests']:.3f} {r['p99_us']} {r['rps']:.0f}")
PY
}

start small "$small"
start big "$big"
python3 - "$rounds" > "$work/rounds" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print("small big" if i % 2 == 0 else "big small")
PY
declare -A cpu_sum=( [small]=0 [big]=0 )
round=0
while read -r order; do
  round=$((round + 1))
  for name in $order; do
    read -r cpu p99 rps < <(measure "$name")
    echo "round $round $name: ${cpu} us CPU/request, p99 ${p99} us, ${rps} req/s"
    cpu_sum[$name]=$(python3 -c "print(${cpu_sum[$name]} + $cpu)")
  done
done <"$work/rounds"
python3 -c "import sys; s, b = float(sys.argv[1]), float(sys.argv[2]); print(f'big/small CPU per request (mean of rounds): {b / s:.3f}x')" "${cpu_sum[small]}" "${cpu_sum[big]}"
