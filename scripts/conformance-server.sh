#!/usr/bin/env bash
# Starts `allot serve` for ../shared/conformance/run.py (its server contract):
#   bash scripts/conformance-server.sh PORT DBDIR
# noauth, a fresh SQLite database in DBDIR, CORS as cors.yaml expects when the fixture asks for it, and the policy
# each upstream fixture configures (placement/tests/functional/fixtures/gabbits.py):
#   SecureRBACPolicyFixture   upstream's defaults (enforce_new_defaults = True): no policy option
#   OpenPolicyFixture         every rule but admin_api set to "@", with the deprecated defaults: --legacy-policy and
#                             a policy file made from `allot policy`
#   any other fixture         enforce_new_defaults = False: --legacy-policy
# Prints the server's PID as the last line once GET / answers. Uses the newer of .build/release/allot and
# .build/debug/allot; ALLOT_BIN overrides.
set -euo pipefail
port=${1:?usage: conformance-server.sh PORT DBDIR}
dbdir=${2:?usage: conformance-server.sh PORT DBDIR}
cd "$(dirname "$0")/.."
bin=${ALLOT_BIN:-}
if [ -z "$bin" ]; then
    # The most recently built of the release and debug binaries (a stale release build must not win).
    for candidate in .build/release/allot .build/debug/allot; do
        if [ -x "$candidate" ] && { [ -z "$bin" ] || [ "$candidate" -nt "$bin" ]; }; then bin=$candidate; fi
    done
fi
if [ -z "$bin" ]; then
    swift build --product allot >&2
    bin=.build/debug/allot
fi
mkdir -p "$dbdir"
args=(serve --no-agent --auth noauth --host 127.0.0.1 --port "$port" --database "$dbdir/allot.sqlite"
      --log-format text --log-level warning)
case ",${PLACEMENT_CONFORMANCE_FIXTURE:-}," in
    *,CORSFixture,*) args+=(--cors-allowed-origin http://valid.example.com --cors-allow-header openstack-api-version) ;;
esac
case ",${PLACEMENT_CONFORMANCE_FIXTURE:-}," in
    *,SecureRBACPolicyFixture,*) ;;
    *,OpenPolicyFixture,*)
        "$bin" policy | sed -e '/^"admin_api":/d' -e 's/^\("[^"]*"\): .*/\1: "@"/' > "$dbdir/open-policy.yaml"
        args+=(--legacy-policy --policy-file "$dbdir/open-policy.yaml") ;;
    *) args+=(--legacy-policy) ;;
esac
"$bin" "${args[@]}" > "$dbdir/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/"; then
        echo "$pid"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "allot serve exited early; log follows" >&2
        cat "$dbdir/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
echo "allot serve did not answer on port $port" >&2
kill "$pid" 2>/dev/null || true
exit 1
