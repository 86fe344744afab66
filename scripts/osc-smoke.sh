#!/usr/bin/env bash
# Smoke test: the real OpenStack command-line client (python-openstackclient + osc-placement)
# against `allot serve`.
#
#   bash scripts/osc-smoke.sh [-v] [--upstream-tests] [ALLOT_BIN]
#
# ALLOT_BIN defaults to .build/debug/allot (relative to the repository root). The script
# creates or reuses a virtualenv with the client, starts `allot serve` with token auth on a
# free loopback port and a fresh SQLite database in a temporary directory, runs the
# `openstack resource ...` commands at several placement microversions, checks their output,
# prints `N passed, N failed` and stops the server. Exit status is 0 only if nothing failed.
#
# Client settings (no Keystone; the client talks straight to Allot):
#   OS_AUTH_TYPE=admin_token  OS_TOKEN=<allot token>  OS_ENDPOINT=http://127.0.0.1:PORT
#   openstack --os-placement-api-version 1.39 resource provider list
# (osc-placement's own functional tests use the same admin_token + endpoint combination.)
#
# Options:
#   -v, --verbose       print every check, not only failures
#   --upstream-tests    also run osc-placement's own functional test suite
#                       (osc_placement/tests/functional, ~160 tests, ~1 minute), each test against
#                       a fresh `allot serve`, in place of upstream's in-process Placement fixture.
#                       Allocation-candidate tests are deselected (Allot answers 501 there); set
#                       OSC_SMOKE_UPSTREAM_DESELECT to change that pytest -k expression ('' = none).
#                       Each failing test is named; the details are in the kept pytest.log.
#
# Environment:
#   ALLOT_OSC_VENV       virtualenv to create or reuse (default ~/.cache/allot-osc/venv)
#   OSC_SMOKE_VERSIONS   microversions to exercise (default "1.0 1.20 1.28 1.38 1.39")
#   OSC_SMOKE_KEEP=1     keep the temporary directory (database, server log, client logs)
#   PYTHON               interpreter used to create the virtualenv (default python3)
set -uo pipefail

verbose=0
upstream=0
bin=""
while [ $# -gt 0 ]; do
    case "$1" in
        -v|--verbose) verbose=1 ;;
        --upstream-tests) upstream=1 ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "osc-smoke: unknown option $1" >&2; exit 2 ;;
        *) bin=$1 ;;
    esac
    shift
done

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${bin:-.build/debug/allot}
case "$bin" in /*) ;; *) bin="$root/$bin" ;; esac
venv=${ALLOT_OSC_VENV:-$HOME/.cache/allot-osc/venv}
versions=${OSC_SMOKE_VERSIONS:-1.0 1.20 1.28 1.38 1.39}
deselect=${OSC_SMOKE_UPSTREAM_DESELECT-TestAllocationCandidate}

die() { echo "osc-smoke: $*" >&2; exit 2; }

# The binary may be missing for a moment while a rebuild links it.
for _ in $(seq 1 60); do [ -x "$bin" ] && break; sleep 2; done
[ -x "$bin" ] || die "allot binary not found or not executable: $bin"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/allot-osc-smoke.XXXXXX") || die "mktemp failed"
server_pid=""
passed=0
failed=0
cleanup() {
    local rc=$?
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    if [ "${OSC_SMOKE_KEEP:-0}" = 1 ] || [ "$failed" -gt 0 ] || [ "$rc" -ne 0 ]; then
        echo "osc-smoke: logs kept in $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- virtualenv ---------------------------------------------------------------------------
venv_ok() { [ -x "$venv/bin/openstack" ] && "$venv/bin/python" -c 'import osc_placement' 2>/dev/null; }
if ! venv_ok; then
    [ "$verbose" = 1 ] && echo "osc-smoke: installing python-openstackclient and osc-placement into $venv"
    mkdir -p "$(dirname "$venv")"
    if ! { [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"; } >"$tmp/pip.log" 2>&1 ||
       ! "$venv/bin/python" -m pip install -q --disable-pip-version-check \
            python-openstackclient osc-placement >>"$tmp/pip.log" 2>&1 || ! venv_ok; then
        cat "$tmp/pip.log" >&2
        die "could not set up the client virtualenv in $venv"
    fi
fi
if [ "$upstream" = 1 ] && ! "$venv/bin/python" -c 'import oslotest, pytest' 2>/dev/null; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check oslotest pytest >>"$tmp/pip.log" 2>&1 ||
        { cat "$tmp/pip.log" >&2; die "could not install oslotest and pytest into $venv"; }
fi
py="$venv/bin/python"

# --- server -------------------------------------------------------------------------------
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
"$bin" serve --host 127.0.0.1 --port "$port" --database "$tmp/allot.sqlite" --auth token \
    --log-format text --log-level info >"$tmp/server.log" 2>&1 &
server_pid=$!
up=0
for _ in $(seq 1 300); do
    if "$py" -c "import urllib.request as u; u.urlopen('$endpoint/', timeout=1).read()" 2>/dev/null; then up=1; break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ "$up" != 1 ]; then
    cat "$tmp/server.log" >&2
    die "allot serve did not answer on $endpoint"
fi
token=$("$bin" token --database "$tmp/allot.sqlite" 2>"$tmp/token.err" | tail -n 1)
[ -n "$token" ] || { cat "$tmp/token.err" >&2; die "allot token printed no token"; }

# --- checks -------------------------------------------------------------------------------
mkdir -p "$tmp/home" "$tmp/osc"
ver=""        # microversion of the current block ("" = the client's default, negotiated)
label=""      # description of the last command
n=0
out=""        # stdout of the last command
err=""        # file holding stderr (with --debug HTTP traces) of the last command
last_rc=0
last_cmd=""

# Runs the openstack client with a clean environment; sets out, err, last_rc.
osc() {
    n=$((n + 1))
    err="$tmp/osc/$(printf '%03d' "$n").log"
    local args=(--debug)
    [ -n "$ver" ] && args+=(--os-placement-api-version "$ver")
    last_cmd="openstack ${args[*]} $*"
    out=$(env -i PATH="$venv/bin:/usr/bin:/bin" HOME="$tmp/home" LANG=C.UTF-8 \
        OS_AUTH_TYPE=admin_token OS_TOKEN="$token" OS_ENDPOINT="$endpoint" \
        "$venv/bin/openstack" "${args[@]}" "$@" 2>"$err")
    last_rc=$?
    printf '%s\n' "$last_cmd" "$out" >"$err.out"
}

# Prints what the last command did, for a failure report (in full once per command).
explained=0
explain() {
    if [ "$explained" = "$n" ]; then echo "    (same command as above; full log: $err)"; return; fi
    explained=$n
    echo "    command: $last_cmd"
    echo "    exit status: $last_rc"
    if [ -n "$out" ]; then echo "    stdout:"; printf '%s\n' "$out" | head -n 15 | cut -c1-300 | sed 's/^/      /'; fi
    if [ "$last_rc" -ne 0 ]; then
        local msg
        msg=$(grep -vE '^(REQ:|RESP|START with|options:|  )' "$err" |
            grep -E '\(HTTP [0-9]{3}\)|[A-Za-z]+(Error|Exception):|error:|not supported|required' | tail -n 2 | cut -c1-400)
        [ -n "$msg" ] && { echo "    error:"; printf '%s\n' "$msg" | sed 's/^/      /'; }
    fi
    # The last two HTTP exchanges keystoneauth logged (tokens are already hashed there).
    local http
    http=$(grep -E '^(REQ: curl|RESP: \[|RESP BODY:)' "$err" | tail -n 6 | cut -c1-600)
    [ -n "$http" ] && { echo "    http:"; printf '%s\n' "$http" | sed 's/^/      /'; }
    echo "    full log: $err"
}

pass() { passed=$((passed + 1)); [ "$verbose" = 1 ] && echo "ok   [${ver:-auto}] $label${1:+ ($1)}"; return 0; }
fail() {
    failed=$((failed + 1))
    echo "FAIL [${ver:-auto}] $label: $1"
    explain
    return 1
}

# run LABEL ARGS...: the command must succeed.
run() {
    label=$1; shift
    osc "$@"
    if [ "$last_rc" -eq 0 ]; then pass; else fail "command failed"; fi
}
# expect PATTERN...: each extended regex must match a line of the last command's stdout.
expect() {
    [ "$last_rc" -eq 0 ] || return 1   # the failure is counted already
    local p
    for p in "$@"; do
        if printf '%s\n' "$out" | grep -Eq -- "$p"; then pass "/$p/"; else fail "output does not match /$p/"; fi
    done
}
# expect_not PATTERN: the regex must not match the last command's stdout.
expect_not() {
    [ "$last_rc" -eq 0 ] || return 1
    if printf '%s\n' "$out" | grep -Eq -- "$1"; then fail "output unexpectedly matches /$1/"; else pass "not /$1/"; fi
}
# refuse LABEL PATTERN ARGS...: the command must fail and its stderr must match PATTERN.
refuse() {
    label=$1; local p=$2; shift 2
    osc "$@"
    if [ "$last_rc" -eq 0 ]; then fail "command succeeded but should have failed"
    elif grep -Eq -- "$p" "$err"; then pass "refused: /$p/"
    else fail "command failed without /$p/ in its error"
    fi
}
# at_least X.Y: whether the current microversion is at least X.Y.
at_least() {
    local v=${ver:-1.29}
    [ "${v%%.*}" -gt "${1%%.*}" ] || { [ "${v%%.*}" -eq "${1%%.*}" ] && [ "${v#*.}" -ge "${1#*.}" ]; }
}
new_uuid() { "$py" -c 'import uuid; print(uuid.uuid4())'; }
uuid_re='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'

# Version negotiation: no --os-placement-api-version means "1", and osc-placement negotiates
# the highest version both sides know (1.29 for osc-placement 4.x).
ver=""
run "resource provider list (negotiated microversion)" resource provider list -f value
if [ "$last_rc" -eq 0 ]; then
    if grep -Eq 'OpenStack-API-Version: placement 1\.[0-9]+' "$err" &&
       grep -Eq '^RESP: \[200\].*openstack-api-version: placement 1\.[0-9]+' "$err"; then
        pass "microversion header sent and echoed"
    else
        fail "no OpenStack-API-Version request header, or no openstack-api-version response header"
    fi
fi

for ver in $versions; do
    tag=${ver//./_}
    name="osc-smoke-rp-$tag"
    rc_name="CUSTOM_OSC_SMOKE_RC_$tag"
    trait="CUSTOM_OSC_SMOKE_TRAIT_$tag"
    consumer=$(new_uuid)
    project="osc-smoke-project-$tag"
    user="osc-smoke-user-$tag"

    # Resource providers.
    run "resource provider create" resource provider create "$name" -f value -c uuid -c name
    rp=$(printf '%s\n' "$out" | grep -Eo "^$uuid_re$" | head -n 1)
    if [ -z "$rp" ]; then
        [ "$last_rc" -eq 0 ] && { label="resource provider create"; fail "no provider UUID in the output"; }
        continue   # nothing else in this block can work without the provider
    fi
    expect "^$name\$"
    run "resource provider list" resource provider list -f value -c uuid -c name
    expect "^$rp $name\$"
    run "resource provider show" resource provider show "$rp" -f value -c uuid -c name -c generation
    expect "^$rp\$" "^$name\$" '^0$'
    if at_least 1.14; then
        run "resource provider show (tree fields)" resource provider show "$rp" -f value -c root_provider_uuid -c parent_provider_uuid
        expect "^$rp\$" '^None$'
    fi
    run "resource provider set (rename)" resource provider set "$rp" --name "$name-renamed" -f value -c name
    expect "^$name-renamed\$"

    # Resource classes (1.2+).
    if at_least 1.2; then
        run "resource class create" resource class create "$rc_name"
        run "resource class list" resource class list -f value
        expect "^$rc_name\$" '^VCPU$' '^MEMORY_MB$'
        run "resource class show" resource class show "$rc_name" -f value
        expect "^$rc_name\$"
    fi

    # Traits (1.6+).
    if at_least 1.6; then
        run "trait create" trait create "$trait"
        run "trait list" trait list -f value
        expect "^$trait\$" '^HW_CPU_X86_AVX$'
        run "trait list --name startswith:" trait list --name startswith:CUSTOM_OSC_SMOKE_TRAIT -f value
        expect "^$trait\$"
        expect_not '^HW_CPU_X86_AVX$'
        run "resource provider trait set" resource provider trait set "$rp" --trait "$trait" --trait HW_CPU_X86_AVX -f value
        expect "^$trait\$" '^HW_CPU_X86_AVX$'
        run "resource provider trait list" resource provider trait list "$rp" -f value
        expect "^$trait\$" '^HW_CPU_X86_AVX$'
    fi

    # Inventories.
    inv=(--resource VCPU=8 --resource MEMORY_MB=4096)
    at_least 1.2 && inv+=(--resource "$rc_name=10")
    run "resource provider inventory set" resource provider inventory set "$rp" "${inv[@]}" -f value -c resource_class -c total
    expect '^VCPU 8$' '^MEMORY_MB 4096$'
    run "resource provider inventory list" resource provider inventory list "$rp" -f value -c resource_class -c total
    expect '^VCPU 8$' '^MEMORY_MB 4096$'
    at_least 1.2 && expect "^$rc_name 10\$"
    run "resource provider inventory show" resource provider inventory show "$rp" VCPU -f value -c total -c max_unit
    expect '^8$'
    run "resource provider inventory class set" resource provider inventory class set "$rp" MEMORY_MB --total 8192 --max_unit 4096 -f value -c total -c max_unit
    expect '^8192$' '^4096$'

    # Aggregates (1.1+; --generation from 1.19).
    if at_least 1.1; then
        agg=$(new_uuid)
        agg_args=(--aggregate "$agg")
        if at_least 1.19; then
            osc resource provider show "$rp" -f value -c generation
            agg_args+=(--generation "$out")
        fi
        run "resource provider aggregate set" resource provider aggregate set "$rp" "${agg_args[@]}" -f value
        expect "^$agg"
        run "resource provider aggregate list" resource provider aggregate list "$rp" -f value
        expect "^$agg"
    fi

    # Allocations.
    alloc=(--allocation "rp=$rp,VCPU=2,MEMORY_MB=512")
    at_least 1.8 && alloc+=(--project-id "$project" --user-id "$user")
    at_least 1.38 && alloc+=(--consumer-type INSTANCE)
    run "resource provider allocation set" resource provider allocation set "$consumer" "${alloc[@]}" -f value
    expect "^$rp [0-9]+ .*'VCPU': 2"
    run "resource provider allocation show" resource provider allocation show "$consumer" -f value
    expect "^$rp [0-9]+ .*'MEMORY_MB': 512" "'VCPU': 2"
    at_least 1.12 && expect " $project $user( |\$)"
    at_least 1.38 && expect ' INSTANCE$'
    run "resource provider usage show" resource provider usage show "$rp" -f value
    expect '^VCPU 2$' '^MEMORY_MB 512$'
    if at_least 1.9; then
        run "resource usage show (project)" resource usage show "$project" -f value
        if at_least 1.38; then
            expect "^INSTANCE .*'VCPU': 2" "'MEMORY_MB': 512" "'consumer_count': 1"
        else
            expect '^VCPU 2$' '^MEMORY_MB 512$'
        fi
        run "resource usage show (project and user)" resource usage show "$project" --user-id "$user" -f value
        expect "VCPU'?:? 2"
        run "resource usage show (unknown project)" resource usage show "osc-smoke-nobody-$tag" -f value
        expect_not 'VCPU'
    fi
    run "resource provider show --allocations" resource provider show "$rp" --allocations -f value -c allocations
    expect "'$consumer'"
    refuse "resource provider delete (in use)" 'HTTP 409' resource provider delete "$rp"
    if at_least 1.12; then
        run "resource provider allocation unset --resource-class" resource provider allocation unset "$consumer" --resource-class MEMORY_MB -f value
        expect "^$rp [0-9]+ \{'VCPU': 2\}"
        expect_not 'MEMORY_MB'
    fi
    run "resource provider allocation delete" resource provider allocation delete "$consumer"
    run "resource provider allocation show (deleted)" resource provider allocation show "$consumer" -f value
    expect_not "$rp"
    run "resource provider usage show (after delete)" resource provider usage show "$rp" -f value
    expect '^VCPU 0$'

    # Clean-up, through the client too.
    if at_least 1.6; then
        run "resource provider trait delete" resource provider trait delete "$rp"
        run "resource provider trait list (empty)" resource provider trait list "$rp" -f value
        expect_not "$trait"
    fi
    run "resource provider inventory delete --resource-class" resource provider inventory delete "$rp" --resource-class MEMORY_MB
    run "resource provider delete" resource provider delete "$rp"
    refuse "resource provider show (deleted)" 'HTTP 404' resource provider show "$rp"
    if at_least 1.6; then
        run "trait delete" trait delete "$trait"
        refuse "trait show (deleted)" 'HTTP 404' trait show "$trait"
    fi
    if at_least 1.2; then
        run "resource class delete" resource class delete "$rc_name"
        refuse "resource class show (deleted)" 'HTTP 404' resource class show "$rc_name"
    fi
done
ver=""
smoke_failed=$failed

# --- osc-placement's own functional tests (optional) ----------------------------------------
if [ "$upstream" = 1 ]; then
    label="osc-placement functional tests"
    shim="$tmp/shim/placement/tests/functional/fixtures"
    mkdir -p "$shim" "$tmp/upstream"
    touch "$tmp/shim/placement/__init__.py" "$tmp/shim/placement/tests/__init__.py" \
        "$tmp/shim/placement/tests/functional/__init__.py" "$shim/__init__.py"
    cat >"$shim/capture.py" <<'EOF'
import fixtures


class Logging(fixtures.Fixture):
    """Stand-in for placement's log-capturing fixture: does nothing."""

    def _setUp(self):
        pass
EOF
    cat >"$shim/placement.py" <<'EOF'
"""Stand-in for placement's PlacementFixture: a fresh `allot serve` (token auth) per test."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import fixtures

TOKEN = 'osc-placement-functional-admin'


class PlacementFixture(fixtures.Fixture):
    def __init__(self, *args, **kwargs):
        super().__init__()
        self.token = TOKEN

    def _setUp(self):
        work = tempfile.mkdtemp(prefix='t-', dir=os.environ['OSC_SMOKE_UPSTREAM_DIR'])
        sock = socket.socket()
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
        sock.close()
        env = dict(os.environ, ALLOT_TOKENS=json.dumps({'tokens': [
            {'token': TOKEN, 'user': 'admin', 'project': 'admin', 'roles': ['admin']}]}))
        log = open(os.path.join(work, 'server.log'), 'w')
        proc = subprocess.Popen(
            [os.environ['ALLOT_BIN'], 'serve', '--host', '127.0.0.1', '--port', str(port),
             '--database', os.path.join(work, 'allot.sqlite'), '--auth', 'token',
             '--log-format', 'text', '--log-level', 'warning'],
            stdout=log, stderr=subprocess.STDOUT, env=env)

        def stop():
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            shutil.rmtree(work, True)
        self.addCleanup(stop)
        self.endpoint = 'http://127.0.0.1:%d' % port
        for _ in range(300):
            try:
                urllib.request.urlopen(self.endpoint + '/', timeout=1).read()
                return
            except Exception:
                if proc.poll() is not None:
                    raise RuntimeError('allot serve exited early')
                time.sleep(0.05)
        raise RuntimeError('allot serve did not answer on %s' % self.endpoint)
EOF
    k_args=()
    [ -n "$deselect" ] && k_args=(-k "not ($deselect)")
    (cd "$tmp/upstream" && env PATH="$venv/bin:/usr/bin:/bin" HOME="$tmp/home" LANG=C.UTF-8 \
        PYTHONPATH="$tmp/shim" ALLOT_BIN="$bin" OSC_SMOKE_UPSTREAM_DIR="$tmp/upstream" \
        "$py" -m pytest -q -p no:cacheprovider -p no:warnings -rf --junitxml="$tmp/upstream/junit.xml" \
        "${k_args[@]}" --pyargs osc_placement.tests.functional >"$tmp/upstream/pytest.log" 2>&1)
    counts=$("$py" - "$tmp/upstream/junit.xml" <<'EOF' 2>/dev/null
import sys
import xml.etree.ElementTree as ET
ok = bad = 0
names = []
for case in ET.parse(sys.argv[1]).iter('testcase'):
    if case.find('skipped') is not None:
        continue
    if case.find('failure') is not None or case.find('error') is not None:
        bad += 1
        names.append(case.get('classname', '').rsplit('.', 1)[-1] + '.' + case.get('name', ''))
    else:
        ok += 1
print(ok, bad)
for name in names:
    print(name)
EOF
)
    if [ -z "$counts" ]; then
        failed=$((failed + 1))
        echo "FAIL $label: pytest produced no results"
        tail -n 30 "$tmp/upstream/pytest.log" | sed 's/^/    /'
    else
        read -r ok bad <<<"$(printf '%s\n' "$counts" | head -n 1)"
        passed=$((passed + ok))
        failed=$((failed + bad))
        [ "$verbose" = 1 ] && echo "ok   $label: $ok passed"
        if [ "$bad" -gt 0 ]; then
            echo "FAIL $label: $bad test(s) failed (log: $tmp/upstream/pytest.log)"
            printf '%s\n' "$counts" | tail -n +2 | sed 's/^/    /'
        fi
    fi
fi

if [ "$smoke_failed" -gt 0 ]; then
    echo "server log (last 20 lines of $tmp/server.log):"
    tail -n 20 "$tmp/server.log" | sed 's/^/    /'
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
