#!/usr/bin/env python3
"""Personas of a test Keystone, and their tokens (standard library only: any python3 can run it).

Used by scripts/keystone.sh (fixture creation, token commands) and imported by scripts/interop-check.py,
scripts/policy-matrix.py and scripts/nova-report-client-check.py.

  keystone_fixture.py create URL DIR ADMIN_PASSWORD [EXPIRATION]   users, projects, roles -> DIR/fixture.json
  keystone_fixture.py token FIXTURE PERSONA                        a fresh token of PERSONA (users[...] key)
  keystone_fixture.py expired-token FIXTURE [PERSONA] [SECONDS]    a token that has expired (default admin)
  keystone_fixture.py expiring-token FIXTURE [PERSONA] [SECONDS]   a valid token that expires in SECONDS (default
                                                                   5); prints the token, then its expires_at
  keystone_fixture.py revoked-token FIXTURE [PERSONA]              a token revoked with DELETE /v3/auth/tokens
  keystone_fixture.py personas FIXTURE                             the persona names, one a line

Expired tokens: keystone caps the expiry of a token issued through an application credential at the
credential's own `expires_at` (keystone/token/provider.py, "Resetting token expiration to the application
credential expiration"). expired_token() creates an application credential of PERSONA that expires SECONDS
(default 2) from now, authenticates with it, and waits until that token's expires_at has passed. The token's
own payload then says it has expired, so Keystone answers 404 to GET /v3/auth/tokens and a service answers
401. Keystone's global `[token] expiration` stays long (3600 s by default), so the other personas' tokens
last for the whole test.
"""
import datetime
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request

DOMAIN = 'Default'

# name -> (project or None for system scope, roles granted; "system" = admin on system scope all)
PERSONAS = {
    'admin': ('admin', ['admin']),              # keystone-manage bootstrap's user
    'placement': ('service', ['service', 'admin']),
    'nova': ('service', ['service']),
    'alpha-admin': ('alpha', ['admin']),
    'alpha-member': ('alpha', ['member']),
    'alpha-reader': ('alpha', ['reader']),
    'beta-reader': ('beta', ['reader']),
    'sysadmin': (None, ['admin']),
}


class KeystoneError(Exception):
    pass


def request(method, url, body=None, token=None, headers=None, timeout=30):
    """(status, headers, parsed JSON or None). Never raises for an HTTP status."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header('Accept', 'application/json')
    if data is not None:
        req.add_header('Content-Type', 'application/json')
    if token:
        req.add_header('X-Auth-Token', token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status, hdrs = resp.status, resp.headers
    except urllib.error.HTTPError as e:
        raw, status, hdrs = e.read(), e.code, e.headers
    except urllib.error.URLError as e:
        raise KeystoneError('%s %s: %s' % (method, url, e.reason)) from None
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return status, hdrs, parsed


def _must(status, expected, what, body):
    if status not in expected:
        raise KeystoneError('%s: HTTP %s %s' % (what, status, json.dumps(body)[:300] if body else ''))


def password_auth(name, password, project_id=None, system=False, domain=DOMAIN):
    """The JSON body of POST /v3/auth/tokens for a password login."""
    auth = {'identity': {'methods': ['password'], 'password': {'user': {
        'name': name, 'domain': {'name': domain}, 'password': password}}}}
    if system:
        auth['scope'] = {'system': {'all': True}}
    elif project_id:
        auth['scope'] = {'project': {'id': project_id}}
    return {'auth': auth}


def issue(url, body):
    """(token, token body) for a POST /v3/auth/tokens body."""
    status, hdrs, data = request('POST', url + '/auth/tokens', body)
    _must(status, (201,), 'POST /v3/auth/tokens', data)
    return hdrs['X-Subject-Token'], data['token']


def load(path):
    with open(path) as f:
        return json.load(f)


def token(fx, persona):
    """A fresh token of a persona of the fixture (a users[...] key)."""
    return token_and_body(fx, persona)[0]


def token_and_body(fx, persona):
    try:
        user = fx['users'][persona]
    except KeyError:
        raise KeystoneError('no persona %r in the fixture (have: %s)' % (persona, ', '.join(fx['users'])))
    return issue(fx['url'], user['token_request'])


def _iso(dt):
    return dt.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def expiring_token(fx, persona='admin', seconds=2):
    """(token, expiry as a UTC datetime): a token of `persona` that expires `seconds` from now.

    Made with an application credential of the persona that expires then: keystone caps the token's
    expires_at at the credential's (see the module docstring)."""
    user = fx['users'][persona]
    if user['scope'] != 'project':
        raise KeystoneError('an expiring token needs a project-scoped persona, not %r' % persona)
    tok = token(fx, persona)
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    status, _, data = request(
        'POST', '%s/users/%s/application_credentials' % (fx['url'], user['id']),
        {'application_credential': {'name': 'expiring-' + secrets.token_hex(6),
                                    'expires_at': _iso(until.replace(tzinfo=None))}}, token=tok)
    _must(status, (201,), 'create application credential', data)
    cred = data['application_credential']
    body = {'auth': {'identity': {'methods': ['application_credential'], 'application_credential': {
        'id': cred['id'], 'secret': cred['secret']}}}}
    expiring, tbody = issue(fx['url'], body)
    expires = datetime.datetime.strptime(tbody['expires_at'][:19], '%Y-%m-%dT%H:%M:%S').replace(
        tzinfo=datetime.timezone.utc)
    if expires > until + datetime.timedelta(seconds=1):
        raise KeystoneError('keystone did not cap the token expiry at the application credential expiry '
                            '(token expires %s, credential %s)' % (tbody['expires_at'], _iso(until)))
    return expiring, expires


def wait_until_expired(fx, tok, expires):
    """Waits until `expires` (whole seconds, rounded up) has passed, and checks Keystone's verdict."""
    while datetime.datetime.now(datetime.timezone.utc) < expires + datetime.timedelta(seconds=1.5):
        time.sleep(0.2)
    status, _, _ = request('GET', fx['url'] + '/auth/tokens', token=token(fx, 'admin'),
                           headers={'X-Subject-Token': tok})
    if status != 404:
        raise KeystoneError('the expired token still validates (GET /v3/auth/tokens -> %s)' % status)


def expired_token(fx, persona='admin', seconds=2):
    """A token of `persona` whose expires_at has passed (see the module docstring)."""
    tok, expires = expiring_token(fx, persona, seconds)
    wait_until_expired(fx, tok, expires)
    return tok


def revoked_token(fx, persona='admin'):
    """A token of `persona`, revoked by the bootstrap admin with DELETE /v3/auth/tokens."""
    victim = token(fx, persona)
    admin = token(fx, 'admin')
    status, _, data = request('DELETE', fx['url'] + '/auth/tokens', token=admin,
                              headers={'X-Subject-Token': victim})
    _must(status, (204,), 'DELETE /v3/auth/tokens', data)
    status, _, _ = request('GET', fx['url'] + '/auth/tokens', token=admin, headers={'X-Subject-Token': victim})
    if status != 404:
        raise KeystoneError('the revoked token still validates (GET /v3/auth/tokens -> %s)' % status)
    return victim


def create(url, directory, admin_password, expiration=3600):
    """Creates projects, users and role assignments in a fresh Keystone; writes DIR/fixture.json."""
    url = url.rstrip('/')
    admin_tok, _ = issue(url, {'auth': {'identity': {'methods': ['password'], 'password': {'user': {
        'name': 'admin', 'domain': {'name': DOMAIN}, 'password': admin_password}}},
        'scope': {'project': {'name': 'admin', 'domain': {'name': DOMAIN}}}}})

    def call(method, path, body=None, expected=(200, 201, 204)):
        status, _, data = request(method, url + path, body, token=admin_tok)
        _must(status, expected, '%s %s' % (method, path), data)
        return data

    roles = {r['name']: r['id'] for r in call('GET', '/roles')['roles']}
    for name in ('admin', 'member', 'reader', 'service'):
        if name not in roles:   # keystone-manage bootstrap makes all four (and manager) since 2023.2
            roles[name] = call('POST', '/roles', {'role': {'name': name}})['role']['id']
    domain_id = call('GET', '/domains?name=' + DOMAIN)['domains'][0]['id']
    projects = {p['name']: p['id'] for p in call('GET', '/projects')['projects']}
    for name in ('service', 'alpha', 'beta'):
        if name not in projects:
            projects[name] = call('POST', '/projects', {'project': {
                'name': name, 'domain_id': domain_id, 'description': 'allot test fixture'}})['project']['id']
    existing = {u['name']: u['id'] for u in call('GET', '/users')['users']}
    users = {}
    for name, (project, granted) in PERSONAS.items():
        if name == 'admin':
            password, uid = admin_password, existing['admin']
        else:
            password = secrets.token_urlsafe(18)
            body = {'user': {'name': name, 'domain_id': domain_id, 'password': password, 'enabled': True}}
            if project:
                body['user']['default_project_id'] = projects[project]
            if name in existing:
                uid = existing[name]
                call('PATCH', '/users/' + uid, body)
            else:
                uid = call('POST', '/users', body)['user']['id']
            for role in granted:
                if project:
                    call('PUT', '/projects/%s/users/%s/roles/%s' % (projects[project], uid, roles[role]))
                else:
                    call('PUT', '/system/users/%s/roles/%s' % (uid, roles[role]))
        req = password_auth(name, password, projects[project] if project else None, system=project is None)
        _, tbody = issue(url, req)
        users[name] = {
            'name': name, 'id': uid, 'password': password, 'domain': DOMAIN,
            'scope': 'project' if project else 'system',
            'project': project, 'project_id': projects[project] if project else None,
            'system': None if project else 'all',
            'roles': granted,
            # What a token of this persona carries: keystone expands implied roles
            # (admin -> manager -> member -> reader).
            'effective_roles': sorted(r['name'] for r in tbody['roles']),
            'token_request': req,
        }
    fixture = {
        'url': url,
        'region': 'RegionOne',
        'domain': {'id': domain_id, 'name': DOMAIN},
        'token_expiration_seconds': expiration,
        'roles': roles,
        'projects': {name: {'name': name, 'id': pid} for name, pid in sorted(projects.items())},
        'users': users,
        'how_to_get_a_token': (
            'POST <url>/auth/tokens with users[NAME].token_request as the JSON body; the token is the '
            'X-Subject-Token response header. Project personas get project-scoped tokens (scope.project.id), '
            'sysadmin a system-scoped one (scope.system.all). Shell: scripts/keystone.sh token FIXTURE NAME'),
        'how_to_get_an_expired_token': (
            'scripts/keystone.sh expired-token FIXTURE [NAME] (or keystone_fixture.expired_token): an '
            'application credential of NAME expiring 2 s ahead caps its token at that instant; waits ~4 s'),
        'how_to_get_a_revoked_token': (
            'scripts/keystone.sh revoked-token FIXTURE [NAME]: a token revoked by admin with '
            'DELETE /v3/auth/tokens (X-Subject-Token)'),
    }
    path = os.path.join(directory, 'fixture.json')
    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        json.dump(fixture, f, indent=2, sort_keys=True)
        f.write('\n')
    os.replace(tmp, path)
    return fixture


def main(argv):
    usage = __doc__.split('\n\n')[1]
    if len(argv) < 2 or argv[1] in ('-h', '--help'):
        print(usage)
        return 0 if len(argv) >= 2 else 2
    cmd, args = argv[1], argv[2:]
    try:
        if cmd == 'create' and len(args) in (3, 4):
            create(args[0], args[1], args[2], int(args[3]) if len(args) == 4 else 3600)
        elif cmd == 'token' and len(args) == 2:
            print(token(load(args[0]), args[1]))
        elif cmd == 'expired-token' and len(args) in (1, 2, 3):
            print(expired_token(load(args[0]), *(args[1:2] or ['admin']),
                                *([float(args[2])] if len(args) == 3 else [])))
        elif cmd == 'expiring-token' and len(args) in (1, 2, 3):
            tok, expires = expiring_token(load(args[0]), *(args[1:2] or ['admin']),
                                          float(args[2]) if len(args) == 3 else 5)
            print(tok)
            print(expires.strftime('%Y-%m-%dT%H:%M:%SZ'))
        elif cmd == 'revoked-token' and len(args) in (1, 2):
            print(revoked_token(load(args[0]), *(args[1:2] or ['admin'])))
        elif cmd == 'personas' and len(args) == 1:
            print('\n'.join(load(args[0])['users']))
        else:
            print(usage, file=sys.stderr)
            return 2
    except (KeystoneError, OSError, KeyError, ValueError) as e:
        print('keystone_fixture.py %s: %s' % (cmd, e), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
