# shellcheck shell=bash
# Helpers shared by scripts/test.sh and scripts/bench.sh. Source it; it runs nothing itself
# except setting up a temporary directory and the trap that removes it.
#
# What it gives:
#   step NAME               print a header for the next step (and time the previous one)
#   need_pkg CMD DEB_PKG    make sure CMD exists: apt-get install DEB_PKG when root, else fail
#   free_port               print a TCP port nothing listens on at 127.0.0.1
#   wait_port PORT [SECS]   wait until something accepts connections on 127.0.0.1:PORT
#   start_bg NAME CMD...    start a throwaway server in the background, logging to $TMP/NAME.log;
#                           cleanup stops it on exit
#   on_cleanup 'CMD'        eval CMD on exit (e.g. 'pg_ctl -D "$TMP/pg" stop'), newest first,
#                           before the background processes are stopped and $TMP is removed
#   $TMP                    a private temporary directory, removed on exit

# Colour only for people: logs of CI runs stay plain.
if [[ -t 1 ]]; then
    export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"
else
    export CARGO_TERM_COLOR=never
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/userd.XXXXXX")"
BG_PIDS=()
BG_NAMES=()
CLEANUP_CMDS=()

# Stops what this script started, newest first, then removes $TMP. Runs once, on any exit.
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local i
    if [[ $rc -ne 0 && -n "${STEP_NAME:-}" ]]; then
        printf '\n==> FAILED (exit %s) in step: %s, after %ss\n' "$rc" "$STEP_NAME" \
            "$((SECONDS - STEP_START))" >&2
    fi
    for ((i = ${#CLEANUP_CMDS[@]} - 1; i >= 0; i--)); do
        eval "${CLEANUP_CMDS[i]}" >/dev/null 2>&1 || true
    done
    for ((i = ${#BG_PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${BG_PIDS[i]}" "${BG_NAMES[i]}"
    done
    rm -rf -- "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Sends TERM to one process we started, waits up to 5 s for it to go, then KILLs it.
stop_pid() {
    local pid=$1 name=${2:-process} _
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "warning: $name (pid $pid) ignored SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# on_cleanup 'CMD': CMD (one string, evaluated then) runs on exit, before $TMP is removed.
on_cleanup() {
    CLEANUP_CMDS+=("$1")
}

STEP_NAME=""
STEP_START=0
STEP_TIMES=()

# Prints a header for the next step; the previous step's duration goes into the summary.
step() {
    step_done
    STEP_NAME=$1
    STEP_START=$SECONDS
    printf '\n==> %s\n' "$STEP_NAME"
}

step_done() {
    if [[ -n "$STEP_NAME" ]]; then
        STEP_TIMES+=("$(printf '%5ss  %s' "$((SECONDS - STEP_START))" "$STEP_NAME")")
        STEP_NAME=""
    fi
}

APT_UPDATED=0

# need_pkg CMD DEB_PKG: makes sure CMD is on PATH. When it is not, installs the Debian package
# DEB_PKG with apt-get if we are root (running `apt-get update` once first), and otherwise
# says what to install and exits non-zero.
need_pkg() {
    local cmd=$1 pkg=$2
    command -v "$cmd" >/dev/null 2>&1 && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "--> $cmd is missing: installing the Debian package $pkg"
        if [[ $APT_UPDATED -eq 0 ]]; then
            DEBIAN_FRONTEND=noninteractive apt-get update -q
            APT_UPDATED=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg"
        command -v "$cmd" >/dev/null 2>&1 && return 0
        echo "error: installed $pkg but $cmd is still not on PATH" >&2
        exit 1
    fi
    echo "error: $cmd is needed but not installed." >&2
    echo "       Install it (Debian/Ubuntu: sudo apt-get install -y $pkg) and run again." >&2
    exit 1
}

# Returns 0 if and only if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints a loopback port that nothing listens on now. Another process may still take it
# before we bind it, so a server that fails to start on it should be retried on a fresh one.
free_port() {
    local port _
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 40000))
        if ! port_open "$port"; then
            echo "$port"
            return 0
        fi
    done
    echo "error: found no free port on 127.0.0.1" >&2
    return 1
}

# wait_port PORT [SECS]: waits until 127.0.0.1:PORT accepts connections (default 30 s).
wait_port() {
    local port=$1 secs=${2:-30} _
    for _ in $(seq $((secs * 10))); do
        port_open "$port" && return 0
        sleep 0.1
    done
    echo "error: nothing listens on 127.0.0.1:$port after ${secs}s" >&2
    return 1
}

# start_bg NAME CMD...: starts CMD in the background with its output in $TMP/NAME.log; the
# pid is in $BG_PID. cleanup stops it when the script exits, however it exits.
start_bg() {
    local name=$1
    shift
    "$@" >"$TMP/$name.log" 2>&1 &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
    BG_NAMES+=("$name")
}

# Fails with the tail of NAME's log when the background process BG_PID has died.
check_alive() {
    local pid=$1 name=$2
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "error: $name exited early; the end of its log:" >&2
        tail -n 30 "$TMP/$name.log" >&2 || true
        exit 1
    fi
}
