#!/usr/bin/env bash
# Reproduces the README's comparison with the article's server and its peers, using the
# shared harness (../shared/bench): each server pinned to CPU 0, wrk pinned to CPU 1, rounds
# interleaved, medians and ratios to userd printed per scenario. Needs wrk (installed when
# missing and root) and builds the peers outside the tree on first use.
#
#   scripts/compare.sh [--rounds N] [--duration SECS] [--only plain|pipelined|growth|instr|durable]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
rounds=3 duration=8 only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--duration SECS] [--only plain|pipelined|growth|instr|durable]" >&2; exit 2 ;;
  esac
done
bench=../shared/bench
[ -d "$bench" ] || { echo "needs the shared harness at $bench" >&2; exit 1; }
need_pkg wrk wrk
peers=${PEERS_DIR:-${TMPDIR:-/tmp}/userd-peers}
if [ ! -x "$peers/release/seed-axum" ] || [ ! -x "$peers/release/hyper-floor" ] || [ ! -x "$peers/release/actix-peer" ]; then
  PEERS_DIR=$peers sh "$bench/build-peers.sh" seed-axum hyper-floor actix
fi
cargo build --release -q
userd="userd=target/release/userd --addr {addr} --in-memory"
seed="seed-axum=$peers/release/seed-axum"
floor="hyper-floor=$peers/release/hyper-floor"
actix="actix=$peers/release/actix-peer"
run() { echo "\$ compare.py $*" | sed "s|$PWD/||g"; python3 "$bench/compare.py" "$@" 2>/dev/null; echo; }
if [ -z "$only" ] || [ "$only" = plain ]; then
  run --server "$userd" --server "$seed" --server "$floor" --server "$actix" \
      --rounds "$rounds" --duration "$duration"
fi
if [ -z "$only" ] || [ "$only" = pipelined ]; then
  run --server "$userd" --server "$seed" --server "$floor" --server "$actix" \
      --scenarios get --pipeline 16 --conns 32 --rounds "$rounds" --duration "$duration"
fi
if [ -z "$only" ] || [ "$only" = growth ]; then
  # 15 s of POSTs at ~80k/s takes userd's store past a million users.
  run --server "$userd" --server "$seed" --scenarios post --seed-users 1000 --rounds 1 --duration 15
fi
if [ -z "$only" ] || [ "$only" = instr ]; then
  echo "\$ instr.py (callgrind, instructions per request)"
  python3 "$bench/instr.py" --requests 5000 "userd=target/release/userd --addr {addr} --in-memory --threads 1" \
      "seed-axum=$peers/release/seed-axum" "hyper-floor=$peers/release/hyper-floor" | head -4
fi
if [ -z "$only" ] || [ "$only" = durable ]; then
  # The durable store (default --sync always) beside --in-memory; each start gets a fresh data
  # directory (compare.py restarts the server every round).
  run --server "$userd" \
      --server "durable=target/release/userd --addr {addr} --data-dir \$(mktemp -d $TMP/data.XXXXXX)" \
      --scenarios post,get --rounds "$rounds" --duration "$duration"
fi
