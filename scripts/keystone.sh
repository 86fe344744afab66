#!/usr/bin/env bash
# A real OpenStack Keystone (PyPI keystone 30.0.0) on loopback, with test personas, for the Keystone
# authentication tests of Allot and of upstream Placement.
#
#   keystone.sh install              venv $ALLOT_KEYSTONE_VENV (default ~/.cache/allot-bench/keystone-venv) with
#                                    keystone 30.0.0, uWSGI, python-openstackclient, osc-placement (skipped
#                                    when already there; ~1 minute the first time)
#   keystone.sh install-nova         Nova's venv (../shared/bench/setup_nova_venv.sh; ~/.cache/allot-bench/nova-venv)
#                                    for scripts/nova-report-client-check.py (skipped when already there)
#   keystone.sh start PORT DIR       a fresh Keystone on http://127.0.0.1:PORT/v3: SQLite, fernet keys, config
#                                    and logs in DIR; writes DIR/fixture.json; prints the uWSGI master's PID as
#                                    the last line of stdout (stop: kill PID, or keystone.sh stop DIR)
#   keystone.sh stop DIR             stops the Keystone started with DIR
#   keystone.sh resume PORT DIR      starts the stopped Keystone of DIR again (same database, keys and personas;
#                                    PORT should be the one it had, as the catalog and fixture name it)
#   keystone.sh token FIXTURE NAME   prints a fresh token of persona NAME (a key of users in fixture.json)
#   keystone.sh expired-token FIXTURE [NAME]   prints a token of NAME (default admin) that has expired (~4 s)
#   keystone.sh revoked-token FIXTURE [NAME]   prints a token of NAME (default admin) revoked by admin
#   keystone.sh expiring-token FIXTURE [NAME [SECONDS]]   prints a valid token of NAME that expires in SECONDS
#                                    (default 5), then its expires_at on a second line
#
# Exit status: 0 ok, 1 error, 2 usage, 3 PORT is taken (the caller may retry another port).
#
# What start does: keystone.conf in DIR ([database] sqlite:///DIR/keystone.sqlite, [token] provider fernet,
# [fernet_tokens]/[fernet_receipts]/[credential] key repositories in DIR, [identity] password_hash_rounds 4 so
# that a password login costs milliseconds), then keystone-manage db_sync (the first time; later starts copy
# the migrated empty schema kept in the venv) and bootstrap, with fernet_setup, receipt_setup and credential_setup
# beside them,
# bootstrap (user admin, project admin, region RegionOne, roles reader < member < manager < admin and service,
# the identity endpoint), then uWSGI --http with the public WSGI app keystone.wsgi.api:application
# (OS_KEYSTONE_CONFIG_DIR=DIR). Once GET /v3 answers, scripts/keystone_fixture.py creates the personas
# (projects service, alpha, beta; users below, random passwords) and writes DIR/fixture.json.
#
#   user          roles                         scope
#   admin         admin (bootstrap)             project admin (also admin on system scope, as bootstrap grants)
#   placement     service, admin                project service   (the user an API service validates tokens with)
#   nova          service                       project service   (like Nova's service user)
#   alpha-admin   admin                         project alpha
#   alpha-member  member                        project alpha
#   alpha-reader  reader                        project alpha
#   beta-reader   reader                        project beta
#   sysadmin      admin                         system all
# Implied roles: a token of an admin carries admin, manager, member and reader; of a member, member and reader
# (fixture.json lists them as effective_roles, read from a real token of each persona).
#
# Token expiry: [token] expiration is $ALLOT_KEYSTONE_TOKEN_EXPIRATION seconds (default 3600), so the personas'
# tokens last a whole test. An expired token comes from an application credential that expires 2 s ahead:
# keystone caps a token issued with an application credential at the credential's expires_at (see
# keystone_fixture.py); `keystone.sh expired-token` waits until that moment has passed (~4 s in all).
#
# Environment: ALLOT_KEYSTONE_VENV, ALLOT_KEYSTONE_TOKEN_EXPIRATION (seconds, default 3600),
# ALLOT_KEYSTONE_PROCESSES (uWSGI worker processes, default 2), ALLOT_NOVA_VENV (install-nova).
set -euo pipefail
VENV=${ALLOT_KEYSTONE_VENV:-$HOME/.cache/allot-bench/keystone-venv}
HERE=$(cd "$(dirname "$0")" && pwd)
KEYSTONE_VERSION=30.0.0

die() { echo "keystone.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

venv_ok() {
  [ -x "$VENV/bin/uwsgi" ] && [ -x "$VENV/bin/keystone-manage" ] && [ -x "$VENV/bin/openstack" ] &&
    "$VENV/bin/python" -c 'import keystone, osc_placement, keystoneauth1, requests' 2>/dev/null
}

install() {
  venv_ok && return 0
  echo "keystone.sh: installing keystone $KEYSTONE_VERSION, uWSGI, python-openstackclient and osc-placement into $VENV (about a minute)" >&2
  mkdir -p "$(dirname "$VENV")"
  local log; log=$(mktemp "${TMPDIR:-/tmp}/keystone-install.XXXXXX")
  if ! { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; } >"$log" 2>&1 ||
     ! "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip >>"$log" 2>&1 ||
     ! "$VENV/bin/pip" install -q --disable-pip-version-check "keystone==$KEYSTONE_VERSION" uwsgi \
         python-openstackclient osc-placement requests >>"$log" 2>&1 || ! venv_ok; then
    tail -30 "$log" >&2
    die "could not install Keystone into $VENV (log: $log)"
  fi
  rm -f "$log"
}

install_nova() {
  local nvenv=${ALLOT_NOVA_VENV:-$HOME/.cache/allot-bench/nova-venv}
  if [ -x "$nvenv/bin/python" ] && "$nvenv/bin/python" -c 'import nova.scheduler.client.report' 2>/dev/null; then
    return 0
  fi
  local setup="$HERE/../../shared/bench/setup_nova_venv.sh"
  [ -f "$setup" ] || die "Nova's venv setup script not found: $setup"
  echo "keystone.sh: installing nova 34.0.0 into $nvenv (several minutes)" >&2
  ALLOT_NOVA_VENV=$nvenv bash "$setup" >&2 || die "could not install Nova into $nvenv"
}

port_free() {  # exit status 0 when 127.0.0.1:$1 can be bound
  python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"
}

start() {
  local port=$1 dir=$2
  [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -gt 0 ] && [ "$port" -lt 65536 ] || { echo "keystone.sh: PORT must be a number below 65536: $port" >&2; exit 2; }
  install
  if ! port_free "$port"; then echo "keystone.sh: port $port on 127.0.0.1 is taken" >&2; exit 3; fi
  mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
  if [ -f "$dir/keystone.pid" ] && kill -0 "$(cat "$dir/keystone.pid")" 2>/dev/null; then
    die "a Keystone started with $dir still runs (PID $(cat "$dir/keystone.pid")); stop it first"
  fi
  rm -rf "$dir/keystone.sqlite" "$dir/fernet-keys" "$dir/fernet-receipts" "$dir/credential-keys" \
    "$dir/fixture.json" "$dir/keystone.log" "$dir/uwsgi.log" "$dir/keystone.pid" "$dir"/keystone-manage*.log
  local url="http://127.0.0.1:$port/v3" pid
  local expiration=${ALLOT_KEYSTONE_TOKEN_EXPIRATION:-3600}
  cat >"$dir/keystone.conf" <<EOF
[DEFAULT]
log_file = $dir/keystone.log
use_stderr = false
[database]
connection = sqlite:///$dir/keystone.sqlite
[token]
provider = fernet
expiration = $expiration
[fernet_tokens]
key_repository = $dir/fernet-keys
[fernet_receipts]
key_repository = $dir/fernet-receipts
[credential]
key_repository = $dir/credential-keys
[identity]
password_hash_rounds = 4
EOF
  local km=("$VENV/bin/keystone-manage" --config-file "$dir/keystone.conf")
  local owner=(--keystone-user "$(id -un)" --keystone-group "$(id -gn)")
  local admin_password; admin_password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
  # The key repositories do not touch the database: the three are set up side by side while the database is
  # made (each keystone-manage spends seconds importing keystone). Bootstrap waits for them: it reads the key
  # repositories, and running beside a half-made one failed now and then.
  local what key_pids=()
  for what in fernet_setup receipt_setup credential_setup; do
    "${km[@]}" "$what" "${owner[@]}" >"$dir/keystone-manage-$what.log" 2>&1 &
    key_pids+=($!)
  done
  # db_sync of an empty database gives the same schema every time: the first start keeps a copy in the venv,
  # later starts copy it.
  local template="$VENV/keystone-$KEYSTONE_VERSION-empty-schema.sqlite" db_ok=1
  if [ -s "$template" ]; then
    cp "$template" "$dir/keystone.sqlite" && echo "copied the migrated empty schema from $template" >"$dir/keystone-manage.log" || db_ok=0
  elif "${km[@]}" db_sync >"$dir/keystone-manage.log" 2>&1; then
    { cp "$dir/keystone.sqlite" "$template.$$" && mv "$template.$$" "$template"; } || rm -f "$template.$$"
  else
    db_ok=0
  fi
  local i keys_ok=1 status setups=(fernet_setup receipt_setup credential_setup)
  for i in 0 1 2; do
    status=0; wait "${key_pids[$i]}" || status=$?
    [ "$status" = 0 ] && continue
    # Seen once in a clean-clone CI run: a setup side by side with the others exited non-zero although its keys
    # were written. Run alone once more (a set-up repository is left as it is); only a second failure counts.
    what=${setups[$i]}
    echo "keystone.sh: $what beside the others exited $status; running it again alone" >>"$dir/keystone-manage-$what.log"
    "${km[@]}" "$what" "${owner[@]}" >>"$dir/keystone-manage-$what.log" 2>&1 || keys_ok=0
  done
  if [ "$db_ok" = 1 ] && [ "$keys_ok" = 1 ]; then
    "${km[@]}" bootstrap --bootstrap-password "$admin_password" --bootstrap-username admin \
      --bootstrap-project-name admin --bootstrap-role-name admin --bootstrap-service-name keystone \
      --bootstrap-region-id RegionOne --bootstrap-admin-url "$url" --bootstrap-public-url "$url" \
      --bootstrap-internal-url "$url" >>"$dir/keystone-manage.log" 2>&1 || db_ok=0
  fi
  if [ "$db_ok" != 1 ]; then
    tail -20 "$dir/keystone-manage.log" >&2; die "keystone-manage db_sync/bootstrap failed (log: $dir/keystone-manage.log)"
  fi
  if [ "$keys_ok" != 1 ]; then
    tail -n 5 "$dir"/keystone-manage-*_setup.log >&2
    die "keystone-manage fernet_setup/receipt_setup/credential_setup failed (logs: $dir/keystone-manage-*_setup.log)"
  fi

  serve "$port" "$dir" "$url"
  if ! "$VENV/bin/python" "$HERE/keystone_fixture.py" create "$url" "$dir" "$admin_password" "$expiration" >&2; then
    kill "$pid" 2>/dev/null || true
    tail -20 "$dir/keystone.log" >&2 || true
    die "creating the fixture failed (Keystone stopped; logs in $dir)"
  fi
  echo "keystone: $url (fixture $dir/fixture.json, logs $dir/keystone.log $dir/uwsgi.log)"
  echo "$pid"
}

# Runs uWSGI with the Keystone of DIR on PORT and waits until URL answers (exit 3 when the port is taken).
serve() {
  local port=$1 dir=$2 url=$3
  (
    cd "$dir"
    export OS_KEYSTONE_CONFIG_DIR=$dir
    unset OS_KEYSTONE_CONFIG_FILES
    # --lazy-apps: each worker opens its own database connections (none shared across fork).
    exec nohup "$VENV/bin/uwsgi" --master --die-on-term --need-app --lazy-apps --http "127.0.0.1:$port" \
      --http-keepalive --module keystone.wsgi.api:application --processes "${ALLOT_KEYSTONE_PROCESSES:-2}" \
      --threads 1 --pidfile "$dir/keystone.pid" >"$dir/uwsgi.log" 2>&1 </dev/null
  ) &
  pid=$!  # the caller's (start, resume) local
  local up=0
  for _ in $(seq 1 240); do
    if curl -sf "$url" >/dev/null 2>&1; then up=1; break; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      if grep -q 'Address already in use' "$dir/uwsgi.log"; then
        echo "keystone.sh: port $port on 127.0.0.1 is taken" >&2; exit 3
      fi
      tail -20 "$dir/uwsgi.log" >&2; die "Keystone failed to start (log: $dir/uwsgi.log)"
    fi
    sleep 0.25
  done
  if [ "$up" != 1 ]; then
    kill "$pid" 2>/dev/null || true
    tail -20 "$dir/uwsgi.log" >&2; die "Keystone did not answer on $url within 60 s"
  fi
}

# Starts the Keystone of DIR again (after stop), with its database, keys and fixture as they were.
resume() {
  local port=$1 dir=$2 pid
  [ -f "$dir/keystone.conf" ] && [ -f "$dir/fixture.json" ] || die "$dir holds no Keystone made by start"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/keystone.pid" ] && kill -0 "$(cat "$dir/keystone.pid")" 2>/dev/null; then
    die "the Keystone of $dir still runs (PID $(cat "$dir/keystone.pid"))"
  fi
  if ! port_free "$port"; then echo "keystone.sh: port $port on 127.0.0.1 is taken" >&2; exit 3; fi
  serve "$port" "$dir" "http://127.0.0.1:$port/v3"
  echo "$pid"
}

stop() {
  local dir=$1 pid
  [ -f "$dir/keystone.pid" ] || die "no $dir/keystone.pid"
  pid=$(cat "$dir/keystone.pid")
  kill "$pid" 2>/dev/null || { echo "keystone.sh: PID $pid is not running" >&2; return 0; }
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

fixture_cmd() {
  local py="$VENV/bin/python"
  [ -x "$py" ] || py=python3
  exec "$py" "$HERE/keystone_fixture.py" "$@"
}

case "${1:-}" in
  install) install ;;
  install-nova) install_nova ;;
  start)
    [ $# -eq 3 ] || { echo "usage: $0 start PORT DIR" >&2; exit 2; }
    start "$2" "$3" ;;
  resume)
    [ $# -eq 3 ] || { echo "usage: $0 resume PORT DIR" >&2; exit 2; }
    resume "$2" "$3" ;;
  stop)
    [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
    stop "$2" ;;
  token)
    [ $# -eq 3 ] || { echo "usage: $0 token FIXTURE NAME" >&2; exit 2; }
    fixture_cmd token "$2" "$3" ;;
  expired-token|revoked-token)
    [ $# -ge 2 ] && [ $# -le 3 ] || { echo "usage: $0 $1 FIXTURE [NAME]" >&2; exit 2; }
    fixture_cmd "$@" ;;
  expiring-token)
    [ $# -ge 2 ] && [ $# -le 4 ] || { echo "usage: $0 $1 FIXTURE [NAME [SECONDS]]" >&2; exit 2; }
    fixture_cmd "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
