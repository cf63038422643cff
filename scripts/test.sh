#!/usr/bin/env bash
# The one test command of userd, for people and CI alike (.ci/run calls it):
#
#   scripts/test.sh
#
# It checks formatting, lints every target, runs every test (unit, integration, doc) and runs
# each criterion bench once as a smoke test (`cargo test --all-targets` does that; measuring
# is `cargo bench` or scripts/bench.sh). It works on a fresh clone on a fresh Debian machine
# with a Rust toolchain: whatever else it needs it installs with apt-get when run as root, or
# names and stops when not. Throwaway servers it starts (later: nginx, PostgreSQL) listen on
# free loopback ports, keep their files in a temporary directory, and are stopped on exit.
#
# Budget: under 15 minutes on 2 cores from a cold cargo cache.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
SUITE_START=$SECONDS

step "toolchain"
if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed; install Rust with rustup (https://rustup.rs)." >&2
    exit 1
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    if ! command -v rustup >/dev/null 2>&1; then
        echo "error: rustfmt or clippy is missing and there is no rustup to add them." >&2
        exit 1
    fi
    rustup component add rustfmt clippy
fi
cargo --version
cargo fmt --version
cargo clippy --version

step "format (cargo fmt --check)"
# rustfmt colours its diff even into a log file unless told not to.
cargo fmt --all -- --check --color "$([[ $CARGO_TERM_COLOR == never ]] && echo never || echo auto)"

step "lint (cargo clippy --all-targets -D warnings)"
cargo clippy --all-targets -- -D warnings

step "tests and bench smoke run (cargo test --all-targets; tests/api on the in-memory store)"
# --no-fail-fast: one failing test binary still lets the others run, so one CI run shows every
# failure. Criterion benches run here in test mode: each bench once, in a second or two.
USERD_TEST_STORE=memory cargo test --all-targets --no-fail-fast 2>&1 | tee "$TMP/cargo-test.log"

# The API suite once more for every other store: the same tests, not copies (see
# tests/api/helpers). Adding a store is one line here and one arm in spawn_app_with.
for store in durable; do
    step "tests/api on the $store store"
    USERD_TEST_STORE=$store cargo test --test api --no-fail-fast 2>&1 | tee -a "$TMP/cargo-test.log"
done

step "doc tests (cargo test --doc)"
cargo test --doc 2>&1 | tee -a "$TMP/cargo-test.log"

step "OpenAPI conformance (schemathesis against openapi.yaml)"
# schemathesis (PyPI) in a virtualenv kept under target/ (gitignored), so that a rerun skips
# the download; pinned, so that every run checks the same way. It runs every check and every
# phase (examples, coverage, fuzzing, stateful via the links from POST) against a real userd,
# with fixed seeds so that a failure can be replayed.
need_pkg python3 python3
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    # Debian splits venv and ensurepip out of python3 (and need_pkg checks for commands).
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "--> python3's venv module is missing: installing the Debian package python3-venv"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv
    else
        echo "error: python3's venv module is missing." >&2
        echo "       Install it (Debian/Ubuntu: sudo apt-get install -y python3-venv) and run again." >&2
        exit 1
    fi
fi
SCHEMATHESIS_VERSION=4.32.5
VENV=target/schemathesis-venv
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
cargo build --quiet
port=$(free_port)
start_bg userd target/debug/userd --addr "127.0.0.1:$port" --in-memory --threads 2
USERD_PID=$BG_PID
wait_port "$port"
check_alive "$USERD_PID" userd
# From $TMP, a fresh directory per seed: schemathesis keeps a cache of the failures it found
# in its working directory and would replay them. Two seeds, so that a schema that is loose
# somewhere one seed does not reach is still caught; a schema-mismatch warning ("mostly
# rejected generated data") fails the step too: it means the schema allows what userd refuses.
ROOT=$PWD
for seed in 1 2; do
    mkdir -p "$TMP/st-$seed"
    (cd "$TMP/st-$seed" && "$ROOT/$VENV/bin/st" --config-file "$ROOT/scripts/schemathesis.toml" \
        run "$ROOT/openapi.yaml" --url "http://127.0.0.1:$port" --checks all --max-examples 50 \
        --seed "$seed" --workers 1 --no-color) 2>&1 | tee "$TMP/st-$seed.log"
    if grep -qi "mismatch\|mostly rejected" "$TMP/st-$seed.log"; then
        echo "error: schemathesis warns that openapi.yaml and userd disagree (seed $seed)" >&2
        exit 1
    fi
done
check_alive "$USERD_PID" userd

# --- Later steps go here. -------------------------------------------------------------------
# A step that needs a real server starts it on a free loopback port with its files under $TMP,
# and lets cleanup stop it. For example, nginx in front of userd:
#
#   step "nginx in front of userd"
#   need_pkg nginx nginx
#   port=$(free_port)
#   mkdir -p "$TMP/nginx"
#   sed "s/@PORT@/$port/" scripts/nginx.conf >"$TMP/nginx/nginx.conf"
#   start_bg nginx nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;'
#   wait_port "$port"
#   USERD_NGINX_URL="http://127.0.0.1:$port" cargo test --test api -- --ignored nginx
#
# and PostgreSQL (need_pkg initdb does not work: initdb lives in /usr/lib/postgresql/*/bin):
#
#   need_pkg pg_ctlcluster postgresql
#   PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
#   port=$(free_port)
#   "$PG_BIN/initdb" -D "$TMP/pg" -A trust -U postgres   # as a non-root user (runuser -u ...)
#   start_bg postgres "$PG_BIN/postgres" -D "$TMP/pg" -p "$port" -k "$TMP" -c listen_addresses=127.0.0.1
#   wait_port "$port"
# ---------------------------------------------------------------------------------------------

step_done
printf '\n==> all steps passed in %ss\n' "$((SECONDS - SUITE_START))"
printf '%s\n' "${STEP_TIMES[@]}"
# One closing line for every cargo test binary together (the last binary alone, the doc
# tests, has none to run, so its own "0 passed" would misstate the run).
awk '/^test result:/ { for (i = 2; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i - 1); if ($i ~ /^failed;?$/) f += $(i - 1) } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$TMP/cargo-test.log"
