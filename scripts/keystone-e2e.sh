#!/usr/bin/env bash
# End to end through a real Keystone: starts Keystone (scripts/keystone.sh), a reference upstream Placement A
# and a Placement B under test, registers B in Keystone's catalog, runs scripts/interop-check.py (openstack
# client), scripts/nova-report-client-check.py (Nova's report client) against B through the catalog and
# scripts/policy-matrix.py A B, stops everything and prints the totals.
#
#   bash scripts/keystone-e2e.sh [-v] [--no-nova] [--allot BIN] [--keep]
#
#   (default)     B is a second upstream Placement 16.0.0 with keystonemiddleware (proves the harness)
#   --allot BIN   B is `BIN serve --auth keystone --keystone-url ... --keystone-username placement
#                 --keystone-project service` (password in ALLOT_KEYSTONE_PASSWORD) on a fresh SQLite database
#   --no-nova     skip the Nova report-client check (no Nova venv needed)
#   -v            pass -v to the checks (policy-matrix prints the whole route x persona grid)
#   --keep        keep the work directory (logs, fixture.json, databases)
#
# Installs what is missing first: keystone.sh install, upstream-placement.sh install, keystone.sh install-nova.
# Ports are drawn from 28000-32000 (the Swift tests' own servers use 20000-27999) and retried when taken.
# Last line: `N passed, N failed` (all checks);
# exit status 0 only if every check passed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
verbose=() nova=1 allot="" keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    -v|--verbose) verbose=(-v) ;;
    --no-nova) nova=0 ;;
    --allot) allot=${2:?--allot needs the allot binary}; shift ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "keystone-e2e.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$allot" ]; then
  case "$allot" in /*) ;; *) allot="$PWD/$allot" ;; esac
  [ -x "$allot" ] || { echo "keystone-e2e.sh: not an executable: $allot" >&2; exit 2; }
fi

kvenv=${ALLOT_KEYSTONE_VENV:-$HOME/.cache/allot-bench/keystone-venv}
nvenv=${ALLOT_NOVA_VENV:-$HOME/.cache/allot-bench/nova-venv}
work=$(mktemp -d "${TMPDIR:-/tmp}/allot-keystone-e2e.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  if [ "$keep" = 1 ]; then echo "keystone-e2e: work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
die() { echo "keystone-e2e: $*" >&2; keep=1; exit 2; }

bash "$here/keystone.sh" install || die "keystone.sh install failed"
bash "$here/upstream-placement.sh" install || die "upstream-placement.sh install failed"
[ "$nova" = 1 ] && { bash "$here/keystone.sh" install-nova || die "keystone.sh install-nova failed"; }

# start_on NAME CMD...: runs CMD with a random port as its first argument until the port is free (exit 3);
# sets $port and $pid (the last line of CMD's stdout).
start_on() {
  local name=$1 out rc; shift
  for _ in 1 2 3 4 5; do
    port=$(( 28000 + RANDOM % 4000 ))
    out=$("$@" "$port" 2>"$work/$name.err"); rc=$?
    [ $rc -eq 3 ] && continue
    [ $rc -eq 0 ] || { cat "$work/$name.err" >&2; die "starting $name failed"; }
    pid=$(printf '%s\n' "$out" | tail -n 1)
    pids+=("$pid")
    return 0
  done
  die "no free port for $name"
}

t0=$(date +%s)
start_on keystone bash -c 'exec bash "$0" start "$2" "$1"' "$here/keystone.sh" "$work/keystone"
fixture=$work/keystone/fixture.json
echo "keystone on port $port (PID $pid) in $(( $(date +%s) - t0 )) s"
start_on placement-a bash -c 'exec bash "$0" start-keystone "$3" "$1" "$2"' "$here/upstream-placement.sh" "$work/placement-a" "$fixture"
url_a=http://127.0.0.1:$port
echo "A: upstream placement $url_a (PID $pid)"
if [ -z "$allot" ]; then
  start_on placement-b bash -c 'exec bash "$0" start-keystone "$3" "$1" "$2"' "$here/upstream-placement.sh" "$work/placement-b" "$fixture"
  url_b=http://127.0.0.1:$port
  echo "B: upstream placement $url_b (PID $pid)"
else
  mkdir -p "$work/allot"
  read -r ks_url ks_password < <("$kvenv/bin/python" -c 'import json, sys
f = json.load(open(sys.argv[1])); print(f["url"], f["users"]["placement"]["password"])' "$fixture")
  for _ in 1 2 3 4 5; do
    port=$(( 28000 + RANDOM % 4000 ))
    ALLOT_KEYSTONE_PASSWORD=$ks_password "$allot" serve --host 127.0.0.1 --port "$port" \
      --database "$work/allot/allot.sqlite" --auth keystone --keystone-url "$ks_url" \
      --keystone-username placement --keystone-project service >"$work/allot/server.log" 2>&1 &
    pid=$!
    up=0
    for _ in $(seq 1 300); do
      curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && { up=1; break; }
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    [ "$up" = 1 ] && break
    grep -qi 'address already in use' "$work/allot/server.log" && continue
    tail -20 "$work/allot/server.log" >&2; die "allot serve --auth keystone did not start"
  done
  [ "$up" = 1 ] || die "no free port for allot"
  pids+=("$pid")
  url_b=http://127.0.0.1:$port
  echo "B: allot $url_b (PID $pid)"
fi

bash "$here/register-keystone.sh" --keystone-fixture "$fixture" --url "$url_b" >"$work/register.log" 2>&1 ||
  { cat "$work/register.log" >&2; die "register-keystone.sh failed"; }
echo "registered $url_b as the catalog's placement endpoint"

passed=0 failed=0
# run_check NAME CMD...: runs a check, shows its output, adds its closing `N passed, N failed`.
run_check() {
  local name=$1 out rc line; shift
  echo "== $name"
  out=$("$@" 2>"$work/$name.err"); rc=$?
  printf '%s\n' "$out"
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
  if [ -z "$line" ]; then
    tail -20 "$work/$name.err" >&2
    echo "FAIL $name: no result line (exit status $rc)"
    failed=$((failed + 1)); keep=1; return
  fi
  passed=$((passed + ${line%% *}))
  line=${line#*, }; failed=$((failed + ${line%% *}))
  [ $rc -eq 0 ] || keep=1
}
run_check interop-check "$kvenv/bin/python" "$here/interop-check.py" --keystone-fixture "$fixture" --url "$url_b" "${verbose[@]}"
if [ "$nova" = 1 ]; then
  run_check nova-report-client-check "$nvenv/bin/python" "$here/nova-report-client-check.py" \
    --keystone-fixture "$fixture" --url "$url_b" "${verbose[@]}"
fi
run_check policy-matrix "$kvenv/bin/python" "$here/policy-matrix.py" --keystone-fixture "$fixture" \
  "${verbose[@]}" --json "$work/policy-matrix.json" "$url_a" "$url_b"
echo "total time $(( $(date +%s) - t0 )) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
