#!/usr/bin/env bash
# Upstream OpenStack Placement (PyPI openstack-placement 16.0.0, microversions up to 1.39) for the agent tests
# and for trying `allot agent` against it. Same setup as ../shared/bench/start_upstream_placement.sh: uWSGI, a
# fresh SQLite database, noauth2 (token "admin").
#   upstream-placement.sh install          creates the venv ($ALLOT_UPSTREAM_VENV, default ~/.cache/allot-bench/venv)
#   upstream-placement.sh start PORT DBDIR  starts it on 127.0.0.1:PORT; prints the uWSGI master's PID (stop: kill PID)
#     ALLOT_UPSTREAM_POLICY=default: no policy file, upstream's own defaults (only the service role reshapes)
set -euo pipefail
VENV=${ALLOT_UPSTREAM_VENV:-$HOME/.cache/allot-bench/venv}

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
    cd "$DBDIR"
    # One process, one thread: with SQLite more give "database is locked" errors.
    nohup "$VENV/bin/uwsgi" --master --die-on-term --need-app --http "127.0.0.1:$PORT" --http-keepalive \
        --module placement.wsgi.api:application --processes 1 --threads 1 \
        --pidfile "$DBDIR/uwsgi.pid" > "$DBDIR/placement-api.log" 2>&1 < /dev/null &
    PID=$!
    for _ in $(seq 1 240); do
      if curl -sf -H 'x-auth-token: admin' "http://127.0.0.1:$PORT/" > /dev/null 2>&1; then echo "$PID"; exit 0; fi
      kill -0 "$PID" 2>/dev/null || { echo "placement failed to start:" >&2; tail -20 "$DBDIR/placement-api.log" >&2; exit 1; }
      sleep 0.5
    done
    echo "placement did not answer on port $PORT within 120 s" >&2; kill "$PID" 2>/dev/null || true; exit 1
    ;;
  *) echo "usage: $0 install | start PORT DBDIR" >&2; exit 2 ;;
esac
