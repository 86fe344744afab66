#!/usr/bin/env bash
# Upstream OpenStack Placement (PyPI openstack-placement 16.0.0, microversions up to 1.39) for the agent tests
# and for trying `allot agent` against it. Same setup as ../shared/bench/start_upstream_placement.sh: uWSGI, a
# fresh SQLite database, noauth2 (token "admin").
#   upstream-placement.sh install          creates the venv ($ALLOT_UPSTREAM_VENV, default ~/.cache/allot-bench/venv)
#   upstream-placement.sh start PORT DBDIR  starts it on 127.0.0.1:PORT; prints the uWSGI master's PID (stop: kill PID);
#       exit status 3 = port taken
#   upstream-placement.sh start-keystone PORT DBDIR KEYSTONE_FIXTURE_JSON
#       the same with Keystone authentication instead of noauth2: DBDIR/placement.conf (read through
#       OS_PLACEMENT_CONFIG_DIR=DBDIR) sets [api] auth_strategy = keystone and keystonemiddleware's
#       [keystone_authtoken] against the Keystone of the fixture (scripts/keystone.sh start), validating tokens
#       as its `placement` user (project service). No policy file: upstream 16.0.0's own defaults, i.e. the
#       secure-RBAC rules with scope_types ['project'] (oslo.policy 6.0.1 in this venv has no enforce_scope
#       option any more, scope is always checked, and [oslo_policy] enforce_new_defaults defaults to True;
#       placement sets neither). Prints the uWSGI master's PID as the last line; exit status 3 = port taken.
#     ALLOT_UPSTREAM_POLICY=default: no policy file, upstream's own defaults (only the service role reshapes)
set -euo pipefail
VENV=${ALLOT_UPSTREAM_VENV:-$HOME/.cache/allot-bench/venv}

# Starts upstream's API under uWSGI on 127.0.0.1:$PORT from $DBDIR and waits until GET / answers (extra
# arguments go to curl); sets PID to the uWSGI master's. Exits 3 when the port is taken, 1 on any other failure.
launch() {
  cd "$DBDIR"
  # One process, one thread: with SQLite more give "database is locked" errors.
  nohup "$VENV/bin/uwsgi" --master --die-on-term --need-app --http "127.0.0.1:$PORT" --http-keepalive \
      --module placement.wsgi.api:application --processes 1 --threads 1 \
      --pidfile "$DBDIR/uwsgi.pid" > "$DBDIR/placement-api.log" 2>&1 < /dev/null &
  PID=$!
  for _ in $(seq 1 240); do
    # Only this uWSGI counts: another server may answer on the port (this one then exits, not binding it).
    if curl -sf "$@" "http://127.0.0.1:$PORT/" > /dev/null 2>&1; then
      sleep 0.5
      if kill -0 "$PID" 2>/dev/null; then return 0; fi
    fi
    if ! kill -0 "$PID" 2>/dev/null; then
      if grep -q 'Address already in use' "$DBDIR/placement-api.log"; then
        echo "upstream-placement.sh: port $PORT on 127.0.0.1 is taken" >&2; exit 3
      fi
      echo "placement failed to start:" >&2; tail -20 "$DBDIR/placement-api.log" >&2; exit 1
    fi
    sleep 0.5
  done
  echo "placement did not answer on port $PORT within 120 s" >&2; kill "$PID" 2>/dev/null || true; exit 1
}

install() {
  if [ ! -x "$VENV/bin/uwsgi" ] || ! "$VENV/bin/python" -c 'import placement' 2>/dev/null; then
    echo "upstream-placement.sh: installing openstack-placement 16.0.0 and uWSGI into $VENV (takes a few minutes)" >&2
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install -q --upgrade pip >&2
    "$VENV/bin/pip" install -q openstack-placement==16.0.0 uwsgi psycopg2-binary requests >&2
  fi
}

case "${1:-}" in
  install) install ;;
  start)
    PORT=${2:?usage: $0 start PORT DBDIR}
    DBDIR=${3:?usage: $0 start PORT DBDIR}
    install
    mkdir -p "$DBDIR"; DBDIR=$(cd "$DBDIR" && pwd); rm -f "$DBDIR/placement.sqlite"
    export OS_PLACEMENT_DATABASE__CONNECTION=sqlite:///$DBDIR/placement.sqlite
    export OS_PLACEMENT_DATABASE__SYNC_ON_STARTUP=True OS_API__AUTH_STRATEGY=noauth2
    # noauth2's "admin" token has the admin role only, and upstream lets only the service role reshape (Nova's
    # compute uses a service token): allow admin too, so an agent with that token can reshape here.
    if [ "${ALLOT_UPSTREAM_POLICY:-}" = default ]; then
      rm -f "$DBDIR/policy.yaml"
    else
      printf '"placement:reshaper:reshape": "role:admin or role:service"\n' > "$DBDIR/policy.yaml"
      export OS_OSLO_POLICY__POLICY_FILE="$DBDIR/policy.yaml"
    fi
    unset OS_PLACEMENT_CONFIG_DIR
    launch -H 'x-auth-token: admin'
    echo "$PID"
    ;;
  start-keystone)
    [ $# -eq 4 ] || { echo "usage: $0 start-keystone PORT DBDIR KEYSTONE_FIXTURE_JSON" >&2; exit 2; }
    PORT=$2 DBDIR=$3 FIXTURE=$4
    [[ "$PORT" =~ ^[0-9]+$ ]] || { echo "upstream-placement.sh: PORT must be a number: $PORT" >&2; exit 2; }
    [ -r "$FIXTURE" ] || { echo "upstream-placement.sh: cannot read the Keystone fixture $FIXTURE" >&2; exit 1; }
    install
    "$VENV/bin/python" -c 'import keystonemiddleware.auth_token' 2>/dev/null ||
      { echo "upstream-placement.sh: keystonemiddleware is missing from $VENV" >&2; exit 1; }
    if ! "$VENV/bin/python" -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$PORT"; then
      echo "upstream-placement.sh: port $PORT on 127.0.0.1 is taken" >&2; exit 3
    fi
    mkdir -p "$DBDIR"; DBDIR=$(cd "$DBDIR" && pwd); rm -f "$DBDIR/placement.sqlite"
    # A policy.yaml beside placement.conf (left by `start`) would be read: upstream defaults only here.
    rm -f "$DBDIR/policy.yaml" "$DBDIR/policy.json"
    "$VENV/bin/python" - "$FIXTURE" "$DBDIR" > "$DBDIR/placement.conf" <<'PY'
import json, sys
fx = json.load(open(sys.argv[1]))
user = fx['users']['placement']
print(f"""[DEFAULT]
debug = false
[api]
auth_strategy = keystone
[placement_database]
connection = sqlite:///{sys.argv[2]}/placement.sqlite
sync_on_startup = true
[keystone_authtoken]
www_authenticate_uri = {fx['url']}
auth_url = {fx['url']}
auth_type = password
username = {user['name']}
password = {user['password']}
user_domain_name = {user['domain']}
project_name = {user['project']}
project_domain_name = {fx['domain']['name']}
region_name = {fx['region']}
interface = public
service_type = placement
""")
PY
    chmod 600 "$DBDIR/placement.conf"
    # Nothing from the environment may override placement.conf.
    for v in $(env | sed -n 's/^\(OS_[A-Z_]*__[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
    export OS_PLACEMENT_CONFIG_DIR=$DBDIR
    # GET / needs no token under keystonemiddleware (placement lets the root through).
    launch
    echo "placement (keystone auth): http://127.0.0.1:$PORT (config $DBDIR/placement.conf, log $DBDIR/placement-api.log)"
    echo "$PID"
    ;;
  *) echo "usage: $0 install | start PORT DBDIR | start-keystone PORT DBDIR KEYSTONE_FIXTURE_JSON" >&2; exit 2 ;;
esac
