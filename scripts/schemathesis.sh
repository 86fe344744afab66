#!/usr/bin/env bash
# Property-based API testing of Allot with schemathesis, driven by the server's own OpenAPI document.
#
#   bash scripts/schemathesis.sh install   # the venv only (~/.cache/allot-bench/schemathesis-venv, from PyPI)
#   bash scripts/schemathesis.sh [run]     # install if needed, start `allot serve`, run schemathesis, stop it
#
# `run` starts `allot serve` on a fresh SQLite database in a temporary directory, with token authentication and
# one admin token (with the service role, which POST /reshaper needs), on a free port below 32768 (another one if it was taken meanwhile), and always stops it.
# schemathesis then loads /openapi.json and tests every operation (examples, coverage, fuzzing and the stateful
# phase, which follows the document's links) with the checks not_a_server_error, status_code_conformance,
# content_type_conformance and response_schema_conformance. GET /compute/v1/events is left out: it is a
# Server-Sent Events stream that never ends.
#
# Prints `schemathesis: N requests, M server errors` and exits non-zero on any 5xx, any failed check or fewer
# than ALLOT_SCHEMATHESIS_MIN_REQUESTS (default 5000) requests. Environment:
#   ALLOT_BIN                         the allot binary (default: the newer of .build/release and .build/debug)
#   ALLOT_SCHEMATHESIS_VENV           the venv (default ~/.cache/allot-bench/schemathesis-venv)
#   ALLOT_SCHEMATHESIS_MAX_EXAMPLES   test cases per operation and phase (default 100)
#   ALLOT_SCHEMATHESIS_SEED           schemathesis' seed (default: random; printed)
#   ALLOT_SCHEMATHESIS_MIN_REQUESTS   the least number of requests a run must send (default 5000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "schemathesis.sh: $*" >&2; }

venv=${ALLOT_SCHEMATHESIS_VENV:-$HOME/.cache/allot-bench/schemathesis-venv}
command=${1:-run}

install() {
    if [[ -x "$venv/bin/schemathesis" ]]; then return 0; fi
    log "installing schemathesis into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "schemathesis>=4,<5"
}

case "$command" in
    install) install; exit 0 ;;
    run) ;;
    *) log "usage: schemathesis.sh [install|run]"; exit 2 ;;
esac

install
bin=${ALLOT_BIN:-}
if [[ -z "$bin" ]]; then
    for candidate in .build/release/allot .build/debug/allot; do
        if [[ -x "$candidate" ]] && { [[ -z "$bin" ]] || [[ "$candidate" -nt "$bin" ]]; }; then bin=$candidate; fi
    done
fi
[[ -n "$bin" ]] || { log "no allot binary: swift build first"; exit 1; }

work=$(mktemp -d /tmp/allot-schemathesis.XXXXXX)
server=""
cleanup() {
    local status=$?
    if [[ -n "$server" ]] && kill -0 "$server" 2> /dev/null; then
        kill "$server" 2> /dev/null || true
        wait "$server" 2> /dev/null || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

token="schemathesis-admin-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export ALLOT_TOKENS="{\"tokens\": [{\"token\": \"$token\", \"user\": \"admin\", \"project\": \"admin\", \"roles\": [\"admin\", \"service\"]}]}"

# A free port below 32768 (Linux hands out outgoing ports from 32768 up), tried again if another process takes it
# between the probe and the bind.
port=""
for attempt in 1 2 3 4 5; do
    port=$((28000 + RANDOM % 4000))
    if (echo > "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then continue; fi
    "$bin" serve --auth token --host 127.0.0.1 --port "$port" --database "$work/allot.sqlite" \
        --log-format text --log-level error > "$work/server.log" 2>&1 &
    server=$!
    for _ in $(seq 1 100); do
        if curl -fsS "http://127.0.0.1:$port/" > /dev/null 2>&1; then break 2; fi
        kill -0 "$server" 2> /dev/null || break
        sleep 0.1
    done
    log "the server did not start on port $port (attempt $attempt)"
    kill "$server" 2> /dev/null || true
    wait "$server" 2> /dev/null || true
    server=""
done
[[ -n "$server" ]] || { cat "$work/server.log" >&2; log "could not start allot serve"; exit 1; }

seed=${ALLOT_SCHEMATHESIS_SEED:-$RANDOM}
log "allot on port $port, seed $seed"
status=0
# From the temporary directory: schemathesis keeps a cache in its working directory.
(cd "$work" && "$venv/bin/schemathesis" --no-color run "http://127.0.0.1:$port/openapi.json" \
    --header "X-Auth-Token: $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing,stateful \
    --exclude-operation-id computeEvents \
    --max-examples "${ALLOT_SCHEMATHESIS_MAX_EXAMPLES:-100}" \
    --seed "$seed" --workers 1 --request-timeout 30 --suppress-health-check all --generation-database none \
    --report har --report-har-path "$work/requests.har") \
    || status=$?

# Count what was sent and how often the server failed, from the HAR file of every exchange.
read -r requests errors < <("$venv/bin/python" - "$work/requests.har" << 'EOF'
import json, sys
try:
    entries = json.load(open(sys.argv[1]))["log"]["entries"]
except (OSError, ValueError, KeyError):
    entries = []
print(len(entries), sum(1 for entry in entries if entry["response"]["status"] >= 500))
EOF
)
echo "schemathesis: $requests requests, $errors server errors"
if ! kill -0 "$server" 2> /dev/null; then
    log "the server exited during the run; its log follows"
    cat "$work/server.log" >&2
    status=1
fi
minimum=${ALLOT_SCHEMATHESIS_MIN_REQUESTS:-5000}
if (( requests < minimum )); then
    log "only $requests requests (at least $minimum expected)"
    status=1
fi
if (( errors > 0 )); then status=1; fi
exit "$status"
