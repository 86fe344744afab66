#!/usr/bin/env python3
"""The OpenStack client against a Placement service found through Keystone's catalog.

  ~/.cache/allot-bench/keystone-venv/bin/python scripts/interop-check.py \\
      --keystone-fixture DIR/fixture.json --url PLACEMENT_URL [-v]

Runs `openstack resource provider ...` (python-openstackclient + osc-placement of the venv whose python runs
this script) with password authentication only: OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, ...
and no OS_ENDPOINT, so the client finds Placement in the catalog (scripts/register-keystone.sh registers it).
Checks: the catalog's public and internal placement endpoints are PLACEMENT_URL; as the bootstrap admin
(project admin) `resource provider create NAME`, `list` (the client's requests go to PLACEMENT_URL), `show`;
the service user nova can list; a project reader (alpha-reader) and a project member (alpha-member) get
HTTP 403 on list (upstream's secure-RBAC defaults); admin deletes the provider. One line per check, then
`N passed, N failed`; exit status 1 if any check failed, 2 on bad arguments.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keystone_fixture  # noqa: E402

passed = failed = 0
verbose = False


def check(label, ok, detail=''):
    global passed, failed
    if ok:
        passed += 1
        print('ok   %s' % label)
    else:
        failed += 1
        print('FAIL %s%s' % (label, ': ' + detail if detail else ''))
    return ok


def openstack(fx, persona, *args, version=None):
    """(exit status, stdout, stderr) of the openstack client as `persona`, credentials only from env."""
    user = fx['users'][persona]
    env = {
        'PATH': os.path.dirname(sys.executable) + ':/usr/bin:/bin',
        'HOME': tempfile.gettempdir(), 'LANG': 'C.UTF-8',
        'OS_AUTH_TYPE': 'password', 'OS_AUTH_URL': fx['url'], 'OS_IDENTITY_API_VERSION': '3',
        'OS_USERNAME': user['name'], 'OS_PASSWORD': user['password'],
        'OS_USER_DOMAIN_NAME': user['domain'], 'OS_REGION_NAME': fx['region'], 'OS_INTERFACE': 'public',
    }
    if user['scope'] == 'project':
        env.update(OS_PROJECT_NAME=user['project'], OS_PROJECT_DOMAIN_NAME=fx['domain']['name'])
    else:
        env['OS_SYSTEM_SCOPE'] = 'all'
    cmd = [os.path.join(os.path.dirname(sys.executable), 'openstack'), '--debug']
    if version:
        cmd += ['--os-placement-api-version', version]
    cmd += list(args)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    if verbose:
        print('    $ %s  (as %s) -> %d' % (' '.join(cmd[1:]), persona, p.returncode))
    return p.returncode, p.stdout, p.stderr


def last_error(stderr):
    lines = [ln for ln in stderr.splitlines() if re.search(r'\(HTTP \d{3}\)|Error|error', ln)
             and not ln.startswith(('REQ:', 'RESP'))]
    if not lines:
        lines = stderr.strip().splitlines() or ['']
    return lines[-1][:300]


def main():
    global verbose
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--keystone-fixture', default=os.environ.get('ALLOT_KEYSTONE_FIXTURE'), required=False)
    ap.add_argument('--url', default=os.environ.get('PLACEMENT_URL'), help='Placement URL registered in the catalog')
    ap.add_argument('-v', '--verbose', action='store_true')
    a = ap.parse_args()
    if not a.keystone_fixture or not a.url:
        ap.error('--keystone-fixture and --url are required (or ALLOT_KEYSTONE_FIXTURE and PLACEMENT_URL)')
    verbose = a.verbose
    fx = keystone_fixture.load(a.keystone_fixture)
    url = a.url.rstrip('/')

    # The catalog, read with keystoneauth as the client would.
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3
    admin = fx['users']['admin']
    auth = v3.Password(auth_url=fx['url'], username=admin['name'], password=admin['password'],
                       user_domain_name=admin['domain'], project_name=admin['project'],
                       project_domain_name=fx['domain']['name'])
    sess = ks_session.Session(auth=auth)
    for iface in ('public', 'internal'):
        try:
            ep = sess.get_endpoint(service_type='placement', interface=iface, region_name=fx['region'])
        except Exception as e:  # noqa: BLE001 - any failure is the check's failure
            ep = 'error: %s' % e
        check('catalog: %s placement endpoint is %s' % (iface, url), (ep or '').rstrip('/') == url,
              'catalog says %s' % ep)

    name = 'interop-check-%s' % uuid.uuid4().hex[:8]
    rc, out, err = openstack(fx, 'admin', 'resource', 'provider', 'create', name, '-f', 'json')
    rp = None
    if rc == 0:
        try:
            rp = json.loads(out)['uuid']
        except (ValueError, KeyError):
            pass
    check('admin: openstack resource provider create %s' % name, rp is not None,
          'exit %d, %s' % (rc, last_error(err) if rc else out[:200]))
    went_to = sorted(set(re.findall(r'REQ: curl -g -i -X \w+ (\S+?)/resource_providers', err)))
    check('admin: the client sent it to the catalog URL', went_to == [url], 'requests went to %s' % went_to)

    rc, out, err = openstack(fx, 'admin', 'resource', 'provider', 'list', '-f', 'json')
    names = [r.get('name') for r in json.loads(out)] if rc == 0 else []
    check('admin: openstack resource provider list shows it', rc == 0 and name in names,
          'exit %d, %s' % (rc, last_error(err) if rc else names))

    rc, out, err = openstack(fx, 'admin', 'resource', 'provider', 'list', '-f', 'json', version='1.39')
    check('admin: resource provider list at microversion 1.39', rc == 0 and name in out,
          'exit %d, %s' % (rc, last_error(err)))

    if rp:
        rc, out, err = openstack(fx, 'admin', 'resource', 'provider', 'show', rp, '-f', 'json')
        check('admin: openstack resource provider show', rc == 0 and name in out, 'exit %d, %s' % (rc, last_error(err)))

    rc, out, err = openstack(fx, 'nova', 'resource', 'provider', 'list', '-f', 'json')
    check('nova (service role): resource provider list', rc == 0 and name in out, 'exit %d, %s' % (rc, last_error(err)))

    for persona in ('alpha-reader', 'alpha-member'):
        rc, out, err = openstack(fx, persona, 'resource', 'provider', 'list', '-f', 'json')
        check('%s: resource provider list is refused with HTTP 403' % persona,
              rc != 0 and 'HTTP 403' in err, 'exit %d, %s' % (rc, last_error(err) if rc else 'it succeeded'))

    if rp:
        rc, out, err = openstack(fx, 'admin', 'resource', 'provider', 'delete', rp)
        check('admin: openstack resource provider delete', rc == 0, 'exit %d, %s' % (rc, last_error(err)))
        rc, out, err = openstack(fx, 'admin', 'resource', 'provider', 'show', rp)
        check('admin: the deleted provider is gone (HTTP 404)', rc != 0 and 'HTTP 404' in err,
              'exit %d, %s' % (rc, last_error(err) if rc else 'still there'))

    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
