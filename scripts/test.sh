#!/usr/bin/env bash
# Runs every test of the package: one `swift test` (one build in the default `.build`, suites in parallel).
#
# PostgreSQL: when ALLOT_TEST_POSTGRES_URL is set, the storage and replica tests also run against that server
# (the role needs CREATEDB: each test creates and drops a database of its own). When it is not set and
# PostgreSQL's server binaries are installed (Debian: `apt-get install postgresql`), this script starts a
# private, throw-away cluster on 127.0.0.1:$ALLOT_TEST_PG_PORT (default: the first free port from 15432) with trust authentication,
# uses it, and removes it on exit. Without either, the PostgreSQL tests are skipped and the rest runs on SQLite.
#
# Upstream Placement: the agent's test against upstream OpenStack Placement runs when its venv can be made
# (`scripts/upstream-placement.sh install`, from PyPI; ALLOT_TEST_UPSTREAM=0 skips it).
#
# Keystone: the tests of `--auth keystone` against a real Keystone (PyPI keystone in a venv, scripts/keystone.sh)
# and Nova's report client (PyPI nova in a venv) run when those venvs can be made (ALLOT_TEST_KEYSTONE=0 skips them).
#
# Conformance: upstream Placement's own gabbi tests (../shared/conformance/run.py: the main suite, and the policy
# and RBAC files of the openstack-placement package) run when the runner is beside the repository and its venv
# can be made (ALLOT_TEST_CONFORMANCE=0 skips them).
#
# schemathesis: scripts/schemathesis.sh fuzzes `allot serve` from GET /openapi.json (ALLOT_TEST_SCHEMATHESIS=0 skips it).
# Console: scripts/console-check.py drives headless Chromium against `allot serve` (ALLOT_TEST_CHROMIUM=0 skips it).
#
# In CI (CI set) a failed install fails the run; elsewhere those tests are skipped with a message.
#
# Extra arguments go to `swift test` (e.g. `--filter AllotStoreTests`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "test.sh: $*" >&2; }

start_private_cluster() {
    local initdb port
    initdb=$(ls -1d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -z "$initdb" ]]; then
        log "PostgreSQL is not installed and ALLOT_TEST_POSTGRES_URL is not set; PostgreSQL tests will be skipped"
        return 0
    fi
    pg_bin=$(dirname "$initdb")
    port="${ALLOT_TEST_PG_PORT:-}"
    if [[ -z "$port" ]]; then
        # The first free port from 15432 on, below the kernel's ephemeral range (32768-60999 here, where an outgoing
        # connection may hold any port); another cluster may already listen there.
        for candidate in $(seq 15432 15532); do
            if ! (echo > "/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
                port=$candidate
                break
            fi
        done
    fi
    # PostgreSQL refuses to run as root: as root the cluster belongs to `postgres`.
    as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
    pgdata=$(mktemp -d /tmp/allot-test-pg.XXXXXX)
    [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$pgdata"
    chmod 700 "$pgdata"
    cleanup() {
        local status=$?
        if [[ -f "$pgdata/postmaster.pid" ]]; then
            as_pg "$pg_bin/pg_ctl" -D "$pgdata" -m fast -w stop > /dev/null 2>&1 || log "could not stop PostgreSQL"
        fi
        rm -rf "$pgdata"
        exit "$status"
    }
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    if ! as_pg "$pg_bin/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 --no-sync > "$pgdata.initdb.log" 2>&1; then
        cat "$pgdata.initdb.log" >&2
        rm -f "$pgdata.initdb.log"
        exit 1
    fi
    rm -f "$pgdata.initdb.log"
    # A port free a moment ago may be taken meanwhile (an outgoing connection's local port can be any of these):
    # then the next free one, a few times.
    local tries=0
    until as_pg "$pg_bin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $pgdata -c fsync=off" start > /dev/null; do
        tries=$((tries + 1))
        if [[ -n "${ALLOT_TEST_PG_PORT:-}" || $tries -ge 5 ]] || ! grep -q "Address already in use" "$pgdata/server.log"; then
            log "PostgreSQL did not start; its log follows"
            cat "$pgdata/server.log" >&2 || true
            exit 1
        fi
        log "port $port was taken meanwhile; trying the next free one"
        for candidate in $(seq $((port + 1)) 15532); do
            if ! (echo > "/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
        done
    done
    log "private PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
    export ALLOT_TEST_POSTGRES_URL="postgres://postgres:allot-test-db-password@127.0.0.1:$port/postgres?sslmode=disable"
}

if [[ -z "${ALLOT_TEST_POSTGRES_URL:-}" ]]; then
    start_private_cluster
fi

# The agent's test against upstream OpenStack Placement needs its Python package (from PyPI, once, into a venv).
# ALLOT_TEST_UPSTREAM=0 skips it; in CI a failed install fails the run.
if [[ "${ALLOT_TEST_UPSTREAM:-1}" != 0 ]]; then
    if bash scripts/upstream-placement.sh install; then
        export ALLOT_TEST_UPSTREAM_PLACEMENT="$PWD/scripts/upstream-placement.sh"
    elif [[ -n "${CI:-}" ]]; then
        log "upstream Placement could not be installed"
        exit 1
    else
        log "upstream Placement could not be installed (no PyPI?); the agent's upstream test is skipped"
    fi
fi

# Keystone and Nova's report client, from PyPI into venvs of their own.
if [[ "${ALLOT_TEST_KEYSTONE:-1}" != 0 && -n "${ALLOT_TEST_UPSTREAM_PLACEMENT:-}" ]]; then
    if bash scripts/keystone.sh install >&2; then
        export ALLOT_TEST_KEYSTONE=1
        if bash scripts/keystone.sh install-nova >&2; then
            export ALLOT_TEST_NOVA=1
        elif [[ -n "${CI:-}" ]]; then
            log "Nova's venv could not be made"
            exit 1
        else
            log "Nova's venv could not be made; the report client's check is skipped"
        fi
    elif [[ -n "${CI:-}" ]]; then
        log "Keystone could not be installed"
        exit 1
    else
        log "Keystone could not be installed (no PyPI?); the Keystone tests are skipped"
    fi
fi

# schemathesis against the server's own OpenAPI document (scripts/schemathesis.sh; a venv from PyPI).
# ALLOT_TEST_SCHEMATHESIS=0 skips it; in CI a failed install fails the run.
if [[ "${ALLOT_TEST_SCHEMATHESIS:-1}" != 0 ]]; then
    if bash scripts/schemathesis.sh install >&2; then
        export ALLOT_TEST_SCHEMATHESIS=1
    elif [[ -n "${CI:-}" ]]; then
        log "schemathesis could not be installed"
        exit 1
    else
        log "schemathesis could not be installed (no PyPI?); its test is skipped"
        unset ALLOT_TEST_SCHEMATHESIS
    fi
else
    unset ALLOT_TEST_SCHEMATHESIS
fi

# The console in a real headless Chromium (scripts/console-check.py, the DevTools protocol over a pipe: no package
# to install). ALLOT_TEST_CHROMIUM=0 skips it; in CI a missing browser fails the run (.ci/run installs it).
if [[ "${ALLOT_TEST_CHROMIUM:-1}" != 0 ]]; then
    browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
    if [[ -n "$browser" ]]; then
        export ALLOT_TEST_CHROMIUM="$browser"
    elif [[ -n "${CI:-}" ]]; then
        log "Chromium is not installed (apt-get install chromium)"
        exit 1
    else
        log "Chromium is not installed (apt-get install chromium); the console's browser test is skipped"
        unset ALLOT_TEST_CHROMIUM
    fi
else
    unset ALLOT_TEST_CHROMIUM
fi

# Upstream's functional tests through ../shared/conformance (gabbi in its own venv).
runner="$(cd .. && pwd)/shared/conformance/run.py"
if [[ "${ALLOT_TEST_CONFORMANCE:-1}" != 0 && -f "$runner" ]]; then
    if bash "$(dirname "$runner")/setup.sh" >&2; then
        export ALLOT_TEST_CONFORMANCE_RUNNER="$runner"
        if [[ -n "${ALLOT_TEST_UPSTREAM_PLACEMENT:-}" ]]; then
            venv=${ALLOT_UPSTREAM_VENV:-$HOME/.cache/allot-bench/venv}
            ALLOT_TEST_UPSTREAM_GABBITS=$("$venv/bin/python" -c \
                'import os, placement.tests.functional as f; print(os.path.join(os.path.dirname(f.__file__), "gabbits"))')
            export ALLOT_TEST_UPSTREAM_GABBITS
        fi
    elif [[ -n "${CI:-}" ]]; then
        log "the conformance runner's venv could not be made"
        exit 1
    else
        log "the conformance runner's venv could not be made; upstream's gabbi tests are skipped"
    fi
elif [[ "${ALLOT_TEST_CONFORMANCE:-1}" != 0 ]]; then
    log "no conformance runner at $runner; upstream's gabbi tests are skipped"
fi

swift test "$@" < /dev/null
