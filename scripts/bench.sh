#!/usr/bin/env bash
# Load-tests userd over real sockets: builds the release binary, starts it on a free loopback
# port, seeds users, drives it with wrk (and with oha too when oha is installed), and prints
# one table of requests/s and latency percentiles per scenario and tool.
#
#   scripts/bench.sh [options]
#
#   --duration SECS       seconds per scenario and tool               (default 10)
#   --connections N       open connections                             (default 64)
#   --pipeline N          requests per write, HTTP/1.1 pipelining (wrk) (default 1)
#   --threads N           wrk threads                                  (default 1)
#   --seed N              users created before the runs                (default 10000)
#   --scenarios LIST      comma-separated: health,get,post,mixed,miss  (default health,get,post,mixed)
#   --server-args "ARGS"  more arguments for the server, e.g. "--shards 64"
#   --bin PATH            serve with this binary instead of building target/release/userd
#   --out DIR             keep raw outputs and the table here          (default target/bench)
#
# With 2 or more CPUs the server is pinned to CPU 0 and the load generator to CPU 1, so they do
# not steal each other's cycles (and userd, seeing one CPU, runs its single-thread runtime).
# Machines here are shared and noisy: compare figures from one run, not across runs.
#
# Scenarios (scripts/bench.lua): health = GET /health; get = GET /users/{id} of random seeded
# users; post = POST /users; mixed = 90% get, 10% post; miss = GET of ids no user has.
# oha runs health and get (get with one seeded user's URL; oha cannot vary the URL).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

DURATION=10
CONNECTIONS=64
PIPELINE=1
THREADS=1
SEED=10000
SCENARIOS="health,get,post,mixed"
SERVER_ARGS=""
BIN=""
OUT="target/bench"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    if [[ $1 == --* && $1 != --help && $# -lt 2 ]]; then
        echo "error: $1 needs a value (see --help)" >&2
        exit 2
    fi
    case $1 in
        --duration) DURATION=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --pipeline) PIPELINE=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        --server-args) SERVER_ARGS=$2; shift 2 ;;
        --bin) BIN=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

for n in DURATION CONNECTIONS PIPELINE THREADS SEED; do
    if ! [[ ${!n} =~ ^[0-9]+$ ]]; then
        echo "error: --${n,,} wants a whole number, not '${!n}'" >&2
        exit 2
    fi
done
if ((DURATION < 1 || PIPELINE < 1 || THREADS < 1 || CONNECTIONS < THREADS)); then
    echo "error: --duration, --pipeline and --threads must be 1 or more, and" \
        "--connections at least --threads" >&2
    exit 2
fi
IFS=, read -r -a SCENARIO_LIST <<<"$SCENARIOS"
for s in "${SCENARIO_LIST[@]}"; do
    case $s in
        health | post | miss) ;;
        get | mixed)
            if [[ $SEED -eq 0 ]]; then
                echo "error: scenario $s reads seeded users; use --seed 1 or more" >&2
                exit 2
            fi
            ;;
        *) echo "error: unknown scenario '$s' (health, get, post, mixed, miss)" >&2; exit 2 ;;
    esac
done

need_pkg python3 python3
need_pkg wrk wrk

# Pinning: server on CPU 0, load generator on CPU 1.
SERVER_PIN=()
LOAD_PIN=()
if command -v taskset >/dev/null 2>&1 && [[ $(nproc) -ge 2 ]]; then
    SERVER_PIN=(taskset -c 0)
    LOAD_PIN=(taskset -c 1)
else
    echo "note: fewer than 2 CPUs (or no taskset): server and load generator share the CPUs"
fi

if [[ -z $BIN ]]; then
    step "build (cargo build --release)"
    cargo build --release
    BIN="${CARGO_TARGET_DIR:-target}/release/userd"
fi
if [[ ! -x $BIN ]]; then
    echo "error: $BIN is not an executable" >&2
    exit 1
fi

step "start the server"
PORT=$(free_port)
# Word splitting of --server-args is wanted: it is a list of arguments.
# shellcheck disable=SC2206
SERVER_CMD=("$BIN" --addr "127.0.0.1:$PORT" --in-memory $SERVER_ARGS)
echo "${SERVER_PIN[*]} ${SERVER_CMD[*]}"
start_bg server "${SERVER_PIN[@]}" "${SERVER_CMD[@]}"
SERVER_PID=$BG_PID
if ! wait_port "$PORT" 30; then
    check_alive "$SERVER_PID" server
    exit 1
fi
check_alive "$SERVER_PID" server

step "seed $SEED users"
IDS_FILE="$TMP/ids.txt"
python3 scripts/bench.py seed --port "$PORT" --count "$SEED" --ids-file "$IDS_FILE"
FIRST_ID=$(head -n 1 "$IDS_FILE")

mkdir -p "$OUT"
ROWS="$OUT/results.tsv"
: >"$ROWS"
URL="http://127.0.0.1:$PORT"

HAVE_OHA=0
OHA_FORMAT=(--json)
if command -v oha >/dev/null 2>&1; then
    HAVE_OHA=1
    # Newer oha spells it --output-format json; older ones only know --json.
    if oha --help 2>/dev/null | grep -q -- '--output-format'; then
        OHA_FORMAT=(--output-format json)
    fi
else
    echo "note: oha is not installed; wrk only (cargo install oha to compare)"
fi

run_wrk() {
    local scenario=$1 raw="$OUT/wrk-$1.txt"
    step "wrk: $scenario (${DURATION}s, $CONNECTIONS connections, pipeline $PIPELINE, $THREADS thread(s))"
    if ! SCENARIO=$scenario IDS_FILE=$IDS_FILE PIPELINE=$PIPELINE \
        "${LOAD_PIN[@]}" wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency \
        -s scripts/bench.lua "$URL" >"$raw" 2>&1; then
        echo "error: wrk failed on $scenario:" >&2
        tail -n 20 "$raw" >&2
        exit 1
    fi
    grep -E '^\s+(Latency|Req/Sec)\s+[0-9]|requests in|Non-2xx|Socket errors' "$raw" || true
    python3 scripts/bench.py wrk "$scenario" "$raw" >>"$ROWS"
}

run_oha() {
    local scenario=$1 path=$2 raw="$OUT/oha-$1.json"
    step "oha: $scenario (${DURATION}s, $CONNECTIONS connections)"
    if ! "${LOAD_PIN[@]}" oha -z "${DURATION}s" -c "$CONNECTIONS" --no-tui "${OHA_FORMAT[@]}" \
        "$URL$path" >"$raw" 2>"$OUT/oha-$1.err"; then
        echo "error: oha failed on $scenario:" >&2
        tail -n 20 "$OUT/oha-$1.err" "$raw" >&2
        exit 1
    fi
    python3 scripts/bench.py oha "$scenario" "$raw" >>"$ROWS"
}

for s in "${SCENARIO_LIST[@]}"; do
    run_wrk "$s"
    check_alive "$SERVER_PID" server
    if [[ $HAVE_OHA -eq 1 ]]; then
        case $s in
            health) run_oha health /health ;;
            get) run_oha get "/users/$FIRST_ID" ;;
        esac
        check_alive "$SERVER_PID" server
    fi
done
step_done

{
    echo "userd load test: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, ${DURATION}s per run,"
    echo "$CONNECTIONS connections, pipeline $PIPELINE, $THREADS wrk thread(s), $SEED seeded users"
    echo "server: ${SERVER_PIN[*]} ${SERVER_CMD[*]}"
    echo
    python3 scripts/bench.py table "$ROWS"
} | tee "$OUT/table.txt"
echo
echo "raw outputs and this table: $OUT/"
