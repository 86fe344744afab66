#!/usr/bin/env bash
# Registers a Placement service (Allot, or upstream Placement) in Keystone's catalog: service `placement`
# (type `placement`) with public, internal and admin endpoints in a region, all at one URL. Idempotent: an
# existing service is kept, an endpoint with another URL is updated, a missing one is created.
#
#   register-keystone.sh --url PLACEMENT_URL [--keystone-fixture FIXTURE] [--region RegionOne]
#
#   --url URL               Placement's base URL, e.g. http://127.0.0.1:8778 (env PLACEMENT_URL)
#   --keystone-fixture F    fixture.json of scripts/keystone.sh start (env ALLOT_KEYSTONE_FIXTURE): log in as its
#                           bootstrap admin. Without it the usual OS_* variables of an admin's openrc are used
#                           (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, OS_USER_DOMAIN_NAME, ...).
#   --region R              region of the endpoints (default RegionOne)
#   --openstack PATH        the openstack client (default: the keystone venv's, else `openstack` on PATH)
#
# The plain commands it runs, which an operator may type instead (admin credentials in the environment):
#   openstack service create --name placement --description "Placement API" placement
#   openstack endpoint create --region RegionOne placement public   http://placement.example:8778
#   openstack endpoint create --region RegionOne placement internal http://placement.example:8778
#   openstack endpoint create --region RegionOne placement admin    http://placement.example:8778
# (and `openstack endpoint set --url URL ENDPOINT_ID` where an endpoint exists with another URL).
# The service user (here `placement`, with the service and admin roles on project service) is created by
# scripts/keystone.sh; see docs/keystone-setup.md for the commands.
set -uo pipefail

url=${PLACEMENT_URL:-}
fixture=${ALLOT_KEYSTONE_FIXTURE:-}
region=RegionOne
osc=""
venv=${ALLOT_KEYSTONE_VENV:-$HOME/.cache/allot-bench/keystone-venv}

die() { echo "register-keystone.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --url) url=${2:-}; shift ;;
    --keystone-fixture) fixture=${2:-}; shift ;;
    --region) region=${2:-}; shift ;;
    --openstack) osc=${2:-}; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "register-keystone.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$url" ] || { echo "register-keystone.sh: --url PLACEMENT_URL is required (see --help)" >&2; exit 2; }
url=${url%/}
if [ -z "$osc" ]; then
  if [ -x "$venv/bin/openstack" ]; then osc=$venv/bin/openstack; else osc=$(command -v openstack) || true; fi
fi
[ -n "$osc" ] && [ -x "$osc" ] || die "no openstack client (run scripts/keystone.sh install, or pass --openstack)"

if [ -n "$fixture" ]; then
  [ -r "$fixture" ] || die "cannot read the Keystone fixture $fixture"
  py=$(dirname "$osc")/python; [ -x "$py" ] || py=python3
  # Only the admin's credentials from the fixture; everything else OS_* is dropped.
  for v in $(env | sed -n 's/^\(OS_[A-Za-z_]*\)=.*/\1/p'); do unset "$v"; done
  eval "$("$py" - "$fixture" <<'PY'
import json, shlex, sys
fx = json.load(open(sys.argv[1]))
a = fx['users']['admin']
for k, v in [('OS_AUTH_URL', fx['url']), ('OS_IDENTITY_API_VERSION', '3'), ('OS_AUTH_TYPE', 'password'),
             ('OS_USERNAME', a['name']), ('OS_PASSWORD', a['password']), ('OS_PROJECT_NAME', a['project']),
             ('OS_USER_DOMAIN_NAME', a['domain']), ('OS_PROJECT_DOMAIN_NAME', fx['domain']['name']),
             ('OS_REGION_NAME', fx['region']), ('OS_INTERFACE', 'public')]:
    print('export %s=%s' % (k, shlex.quote(v)))
PY
)" || die "cannot read the admin's credentials from $fixture"
fi
[ -n "${OS_AUTH_URL:-}" ] || die "no Keystone credentials: pass --keystone-fixture or set OS_AUTH_URL, OS_USERNAME, ..."

run() {  # run openstack ARGS...; prints stdout; dies with the client's error
  local out rc
  out=$("$osc" "$@" 2>/tmp/register-keystone.$$.err); rc=$?
  if [ $rc -ne 0 ]; then
    echo "register-keystone.sh: openstack $* failed:" >&2; sed 's/^/  /' /tmp/register-keystone.$$.err >&2
    rm -f /tmp/register-keystone.$$.err; exit 1
  fi
  rm -f /tmp/register-keystone.$$.err
  printf '%s\n' "$out"
}

service=$(run service list -f value -c ID -c Type | awk '$2 == "placement" { print $1; exit }') || exit 1
if [ -z "$service" ]; then
  service=$(run service create --name placement --description "Placement API" placement -f value -c id) || exit 1
  echo "created service placement (type placement): $service"
else
  echo "service placement exists: $service"
fi
for iface in public internal admin; do
  existing=$(run endpoint list --service "$service" --interface "$iface" --region "$region" -f value -c ID -c URL) || exit 1
  if [ -z "$existing" ]; then
    id=$(run endpoint create --region "$region" "$service" "$iface" "$url" -f value -c id) || exit 1
    echo "created $iface endpoint $url in $region: $id"
  else
    while read -r id eurl; do
      if [ "$eurl" = "$url" ]; then
        echo "$iface endpoint in $region is $url already: $id"
      else
        run endpoint set --url "$url" "$id" >/dev/null || exit 1
        echo "updated $iface endpoint $id in $region: $eurl -> $url"
      fi
    done <<<"$existing"
  fi
done
