#!/usr/bin/env python3
"""Compares the authorisation of two Placement services that validate tokens against one Keystone.

  ~/.cache/allot-bench/keystone-venv/bin/python scripts/policy-matrix.py \\
      --keystone-fixture DIR/fixture.json URL_A URL_B [-v] [--json FILE]

For every persona x route cell it sends the same request (microversion 1.39) to A and to B and compares the
two HTTP statuses. Personas (tokens from the fixture's Keystone, scripts/keystone.sh start):

  alpha-admin    admin on project alpha          alpha-member  member on project alpha
  alpha-reader   reader on project alpha         beta-reader   reader on project beta
  nova           service on project service      sysadmin      admin on system scope all
  admin          the bootstrap admin, project admin
  expired        admin's token, expired (an application credential's token, see keystone_fixture.py)
  revoked        admin's token revoked with DELETE /v3/auth/tokens
  garbage        a random string                 none          no X-Auth-Token at all

Routes: GET / (no auth); GET/POST /resource_providers; GET/PUT/DELETE /resource_providers/{u}; its
inventories (list, put, post, show, put one, delete one, delete all), traits (get, put, delete), aggregates
(get, put), usages, allocations; /resource_classes (list, create, show, put, delete); /traits (list, show,
put, delete); /allocations/{c} (get, put, delete); POST /allocations; /usages?project_id= the persona's own
project and another (alpha-reader asks about alpha and beta; beta-reader about beta and alpha; personas
without a project ask about alpha and beta); /allocation_candidates; POST /reshaper.

Before each request, on each server, the bootstrap admin puts the objects the request needs into a known
state (providers with inventory, custom classes and traits, consumers with allocations; the same uuids and
names on A and B), and reads the generations that the body needs, so that a request is valid when it is
authorised and policy is what decides; what a request created is removed after it.

Then tokens that both services have validated once (and may cache): an admin token that expires 6 s
after it was issued (before: 200, after: 401 upstream, since keystonemiddleware checks a cached token's
expiry) and one revoked after its first use (upstream keeps accepting it from its cache for up to
token_cache_time = 300 s: shown as info, not counted).

Output: the cells where A and B differ (all cells with -v, as a route x persona grid of statuses, `A/B`
where they differ), warnings for statuses that suggest a cell tested something other than policy (5xx, or
400/404/409 for a persona that was let through), and `N passed, N failed` (one per cell) alone on the last
line. Exit status 1 if any cell (or counted token check) differs, 2 on bad arguments or when the set-up itself fails.
"""
import argparse
import json
import os
import secrets
import sys
import time
import uuid

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keystone_fixture  # noqa: E402

MV = '1.39'
PERSONAS = ['admin', 'alpha-admin', 'alpha-member', 'alpha-reader', 'beta-reader', 'nova', 'sysadmin',
            'expired', 'revoked', 'garbage', 'none']
SHORT = {'admin': 'admin', 'alpha-admin': 'a-adm', 'alpha-member': 'a-mem', 'alpha-reader': 'a-rdr',
         'beta-reader': 'b-rdr', 'nova': 'nova', 'sysadmin': 'sysad', 'expired': 'expd', 'revoked': 'revkd',
         'garbage': 'garb', 'none': 'none'}


class SetupError(Exception):
    pass


class Server:
    """One Placement service; `admin` requests (set-up) must answer one of the expected statuses."""

    def __init__(self, label, url, admin_token):
        self.label, self.url = label, url.rstrip('/')
        self.http = requests.Session()
        self.admin_token = admin_token

    def send(self, method, path, token, body=None):
        headers = {'OpenStack-API-Version': 'placement ' + MV, 'Accept': 'application/json'}
        if token is not None:
            headers['X-Auth-Token'] = token
        for attempt in range(3):
            try:
                return self.http.request(method, self.url + path, headers=headers,
                                         json=body, timeout=60)
            except requests.ConnectionError:
                if attempt == 2:
                    raise
                time.sleep(0.5)

    def admin(self, method, path, body=None, ok=(200, 201, 204)):
        r = self.send(method, path, self.admin_token(), body)
        if r.status_code not in ok:
            raise SetupError('%s: set-up %s %s -> %s %s' % (self.label, method, path, r.status_code, r.text[:300]))
        return r.json() if r.content and r.headers.get('content-type', '').startswith('application/json') else None


class World:
    """Names and uuids shared by A and B, and the set-up steps."""

    def __init__(self, fx):
        rid = secrets.token_hex(3).upper()
        self.rp, self.rp2 = str(uuid.uuid4()), str(uuid.uuid4())
        self.rp_name, self.rp2_name = 'pm-%s' % rid, 'pm-%s-scratch' % rid
        self.rc, self.rc_new, self.rc_put, self.rc_del = ['CUSTOM_PM_%s%s' % (rid, s) for s in ('', '_NEW', '_PUT', '_DEL')]
        self.trait, self.trait_put, self.trait_del = ['CUSTOM_PM_%s%s' % (rid, s) for s in ('', '_PUT', '_DEL')]
        self.agg = str(uuid.uuid4())
        self.c1, self.c2, self.c3 = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        self.project = fx['projects']['alpha']['id']
        self.user = fx['users']['alpha-member']['id']
        self.inv = {
            'VCPU': {'total': 64, 'reserved': 0, 'min_unit': 1, 'max_unit': 64, 'step_size': 1, 'allocation_ratio': 1.0},
            'MEMORY_MB': {'total': 65536, 'reserved': 0, 'min_unit': 1, 'max_unit': 65536, 'step_size': 1,
                          'allocation_ratio': 1.0},
            'DISK_GB': {'total': 1000, 'reserved': 0, 'min_unit': 1, 'max_unit': 1000, 'step_size': 1,
                        'allocation_ratio': 1.0},
            self.rc: {'total': 100, 'reserved': 0, 'min_unit': 1, 'max_unit': 100, 'step_size': 1,
                      'allocation_ratio': 1.0},
        }
        self.alloc = {'VCPU': 1, 'MEMORY_MB': 256}

    # --- set-up steps (as admin, on one server) -------------------------------------------------------
    def gen(self, s, rp):
        return s.admin('GET', '/resource_providers/' + rp)['generation']

    def ensure_provider(self, s, rp, name):
        r = s.send('GET', '/resource_providers/' + rp, s.admin_token())
        if r.status_code == 404:
            s.admin('POST', '/resource_providers', {'uuid': rp, 'name': name})
        elif r.status_code != 200:
            raise SetupError('%s: GET provider %s -> %s' % (s.label, rp, r.status_code))
        return self.gen(s, rp)

    def base(self, s):
        s.admin('PUT', '/resource_classes/' + self.rc, ok=(201, 204))
        s.admin('PUT', '/traits/' + self.trait, ok=(201, 204))
        g = self.ensure_provider(s, self.rp, self.rp_name)
        g = s.admin('PUT', '/resource_providers/%s/inventories' % self.rp,
                    {'resource_provider_generation': g, 'inventories': self.inv})['resource_provider_generation']
        g = s.admin('PUT', '/resource_providers/%s/traits' % self.rp,
                    {'resource_provider_generation': g, 'traits': [self.trait]})['resource_provider_generation']
        s.admin('PUT', '/resource_providers/%s/aggregates' % self.rp,
                {'resource_provider_generation': g, 'aggregates': [self.agg]})
        self.ensure_allocation(s, self.c1)

    def consumer_gen(self, s, c):
        return s.admin('GET', '/allocations/' + c).get('consumer_generation')

    def alloc_body(self, gen):
        return {'allocations': {self.rp: {'resources': dict(self.alloc)}}, 'project_id': self.project,
                'user_id': self.user, 'consumer_generation': gen, 'consumer_type': 'INSTANCE'}

    def ensure_allocation(self, s, c):
        got = s.admin('GET', '/allocations/' + c)
        if not got.get('allocations'):
            s.admin('PUT', '/allocations/' + c, self.alloc_body(got.get('consumer_generation')))
        return self.consumer_gen(s, c)

    def ensure_scratch(self, s, inventories=None):
        """RP2 exists, with no allocations and exactly `inventories` (class -> total)."""
        g = self.ensure_provider(s, self.rp2, self.rp2_name)
        inv = {rc: {'total': t} for rc, t in (inventories or {}).items()}
        return s.admin('PUT', '/resource_providers/%s/inventories' % self.rp2,
                       {'resource_provider_generation': g, 'inventories': inv})['resource_provider_generation']

    def absent(self, s, path):
        s.admin('DELETE', path, ok=(204, 404))

    def teardown(self, s):
        for c in (self.c1, self.c2, self.c3):
            self.absent(s, '/allocations/' + c)
        for rp in (self.rp, self.rp2):
            self.absent(s, '/resource_providers/' + rp)
        for rc in (self.rc, self.rc_new, self.rc_put, self.rc_del):
            self.absent(s, '/resource_classes/' + rc)
        for t in (self.trait, self.trait_put, self.trait_del):
            self.absent(s, '/traits/' + t)


def cells(w, fx):
    """(label, method, path(persona), setup(server) -> state, body(state, persona) or None, cleanup)."""
    rp, rp2 = '/resource_providers/' + w.rp, '/resource_providers/' + w.rp2
    none = lambda s: None  # noqa: E731
    new_rp = {}

    def new_rp_uuid(persona):
        return new_rp.setdefault(persona, str(uuid.uuid4()))

    def own_other(persona):
        user = fx['users'].get(persona)
        alpha, beta = fx['projects']['alpha']['id'], fx['projects']['beta']['id']
        own = user['project_id'] if user and user.get('project_id') else alpha
        return own, (alpha if own == beta else beta)

    return [
        ('GET /', 'GET', lambda p: '/', none, None, None),
        ('GET /resource_providers', 'GET', lambda p: '/resource_providers', none, None, None),
        ('POST /resource_providers', 'POST', lambda p: '/resource_providers', none,
         lambda st, p: {'uuid': new_rp_uuid(p), 'name': 'pm-new-' + new_rp_uuid(p)[:8]},
         lambda s, p: w.absent(s, '/resource_providers/' + new_rp_uuid(p))),
        ('GET /resource_providers/{u}', 'GET', lambda p: rp, none, None, None),
        ('PUT /resource_providers/{u}', 'PUT', lambda p: rp, none, lambda st, p: {'name': w.rp_name}, None),
        ('DELETE /resource_providers/{u}', 'DELETE', lambda p: rp2, lambda s: w.ensure_scratch(s), None, None),
        ('GET /rp/{u}/inventories', 'GET', lambda p: rp + '/inventories', none, None, None),
        ('PUT /rp/{u}/inventories', 'PUT', lambda p: rp + '/inventories', lambda s: w.gen(s, w.rp),
         lambda g, p: {'resource_provider_generation': g, 'inventories': w.inv}, None),
        ('POST /rp/{u}/inventories', 'POST', lambda p: rp2 + '/inventories',
         lambda s: w.ensure_scratch(s, {'VCPU': 8}),
         lambda g, p: {'resource_class': 'DISK_GB', 'total': 100, 'resource_provider_generation': g}, None),
        ('GET /rp/{u}/inventories/{rc}', 'GET', lambda p: rp + '/inventories/VCPU', none, None, None),
        ('PUT /rp/{u}/inventories/{rc}', 'PUT', lambda p: rp + '/inventories/VCPU', lambda s: w.gen(s, w.rp),
         lambda g, p: dict(w.inv['VCPU'], resource_provider_generation=g), None),
        ('DELETE /rp/{u}/inventories/{rc}', 'DELETE', lambda p: rp2 + '/inventories/DISK_GB',
         lambda s: w.ensure_scratch(s, {'VCPU': 8, 'DISK_GB': 100}), None, None),
        ('DELETE /rp/{u}/inventories', 'DELETE', lambda p: rp2 + '/inventories',
         lambda s: w.ensure_scratch(s, {'VCPU': 8, 'DISK_GB': 100}), None, None),
        ('GET /rp/{u}/traits', 'GET', lambda p: rp + '/traits', none, None, None),
        ('PUT /rp/{u}/traits', 'PUT', lambda p: rp + '/traits', lambda s: w.gen(s, w.rp),
         lambda g, p: {'resource_provider_generation': g, 'traits': [w.trait, 'HW_CPU_X86_AVX']}, None),
        ('DELETE /rp/{u}/traits', 'DELETE', lambda p: rp2 + '/traits', lambda s: w.ensure_scratch(s), None, None),
        ('GET /rp/{u}/aggregates', 'GET', lambda p: rp + '/aggregates', none, None, None),
        ('PUT /rp/{u}/aggregates', 'PUT', lambda p: rp + '/aggregates', lambda s: w.gen(s, w.rp),
         lambda g, p: {'resource_provider_generation': g, 'aggregates': [w.agg]}, None),
        ('GET /rp/{u}/usages', 'GET', lambda p: rp + '/usages', none, None, None),
        ('GET /rp/{u}/allocations', 'GET', lambda p: rp + '/allocations', none, None, None),
        ('GET /resource_classes', 'GET', lambda p: '/resource_classes', none, None, None),
        ('POST /resource_classes', 'POST', lambda p: '/resource_classes',
         lambda s: w.absent(s, '/resource_classes/' + w.rc_new), lambda st, p: {'name': w.rc_new},
         lambda s, p: w.absent(s, '/resource_classes/' + w.rc_new)),
        ('GET /resource_classes/{name}', 'GET', lambda p: '/resource_classes/' + w.rc, none, None, None),
        ('PUT /resource_classes/{name}', 'PUT', lambda p: '/resource_classes/' + w.rc_put,
         lambda s: w.absent(s, '/resource_classes/' + w.rc_put), None,
         lambda s, p: w.absent(s, '/resource_classes/' + w.rc_put)),
        ('DELETE /resource_classes/{name}', 'DELETE', lambda p: '/resource_classes/' + w.rc_del,
         lambda s: s.admin('PUT', '/resource_classes/' + w.rc_del, ok=(201, 204)), None, None),
        ('GET /traits', 'GET', lambda p: '/traits', none, None, None),
        ('GET /traits/{name}', 'GET', lambda p: '/traits/' + w.trait, none, None, None),
        ('PUT /traits/{name}', 'PUT', lambda p: '/traits/' + w.trait_put,
         lambda s: w.absent(s, '/traits/' + w.trait_put), None, lambda s, p: w.absent(s, '/traits/' + w.trait_put)),
        ('DELETE /traits/{name}', 'DELETE', lambda p: '/traits/' + w.trait_del,
         lambda s: s.admin('PUT', '/traits/' + w.trait_del, ok=(201, 204)), None, None),
        ('GET /allocations/{c}', 'GET', lambda p: '/allocations/' + w.c1, none, None, None),
        ('PUT /allocations/{c}', 'PUT', lambda p: '/allocations/' + w.c1, lambda s: w.ensure_allocation(s, w.c1),
         lambda g, p: w.alloc_body(g), None),
        ('DELETE /allocations/{c}', 'DELETE', lambda p: '/allocations/' + w.c2,
         lambda s: w.ensure_allocation(s, w.c2), None, None),
        ('POST /allocations', 'POST', lambda p: '/allocations', lambda s: w.consumer_gen(s, w.c3),
         lambda g, p: {w.c3: w.alloc_body(g)}, None),
        ('GET /usages?project_id=own', 'GET', lambda p: '/usages?project_id=' + own_other(p)[0], none, None, None),
        ('GET /usages?project_id=other', 'GET', lambda p: '/usages?project_id=' + own_other(p)[1], none, None, None),
        ('GET /allocation_candidates', 'GET', lambda p: '/allocation_candidates?resources=VCPU:1,MEMORY_MB:128',
         none, None, None),
        ('POST /reshaper', 'POST', lambda p: '/reshaper',
         lambda s: (w.gen(s, w.rp), w.ensure_allocation(s, w.c1)),
         lambda st, p: {'inventories': {w.rp: {'resource_provider_generation': st[0], 'inventories': w.inv}},
                        'allocations': {w.c1: w.alloc_body(st[1])}}, None),
    ]


def token_lifecycle(fx, servers):
    """Tokens that a service has already validated (and may cache): one that expires, one that is revoked.

    Returns [(label, (status A, status B), counted)]. keystonemiddleware caches a validated token
    ([keystone_authtoken] token_cache_time, 300 s) but checks the cached expires_at, so an expired token gets
    401 at once; a revoked one stays accepted until its cache entry lapses, which is a cache-lifetime choice
    rather than policy: that row is shown, not counted."""
    rows = []
    path = '/resource_providers'

    def both(tok):
        return tuple(s.send('GET', path, tok).status_code for s in servers)
    tok, expires = keystone_fixture.expiring_token(fx, 'admin', 6)
    rows.append(('expiring admin token, before it expires', both(tok), True))
    keystone_fixture.wait_until_expired(fx, tok, expires)
    rows.append(('the same token after it expired (validated before)', both(tok), True))
    tok = keystone_fixture.token(fx, 'admin')
    rows.append(('admin token, before it is revoked', both(tok), True))
    status, _, _ = keystone_fixture.request('DELETE', fx['url'] + '/auth/tokens',
                                            token=keystone_fixture.token(fx, 'admin'),
                                            headers={'X-Subject-Token': tok})
    if status != 204:
        raise keystone_fixture.KeystoneError('DELETE /v3/auth/tokens -> %s' % status)
    time.sleep(1)
    rows.append(('the same token after it was revoked (validated before; cache, not counted)', both(tok), False))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--keystone-fixture', default=os.environ.get('ALLOT_KEYSTONE_FIXTURE'))
    ap.add_argument('url_a', metavar='URL_A')
    ap.add_argument('url_b', metavar='URL_B')
    ap.add_argument('-v', '--verbose', action='store_true', help='print every cell')
    ap.add_argument('--json', metavar='FILE', help='write the matrix as JSON')
    a = ap.parse_args()
    if not a.keystone_fixture:
        ap.error('--keystone-fixture is required (or ALLOT_KEYSTONE_FIXTURE)')
    fx = keystone_fixture.load(a.keystone_fixture)

    t0 = time.time()
    admin_cache = {}

    def admin_token():  # re-issued when it has under 5 minutes left
        if not admin_cache or time.time() > admin_cache['until']:
            admin_cache['token'] = keystone_fixture.token(fx, 'admin')
            admin_cache['until'] = time.time() + max(30, fx.get('token_expiration_seconds', 3600) - 300)
        return admin_cache['token']

    tokens = {}
    try:
        for p in PERSONAS:
            if p in fx['users']:
                tokens[p] = keystone_fixture.token(fx, p)
        tokens['revoked'] = keystone_fixture.revoked_token(fx, 'admin')
        tokens['expired'] = keystone_fixture.expired_token(fx, 'admin')
    except keystone_fixture.KeystoneError as e:
        print('policy-matrix: getting the personas\' tokens failed: %s' % e, file=sys.stderr)
        return 2
    tokens['garbage'] = 'gAAAAAB' + secrets.token_urlsafe(120)
    tokens['none'] = None
    issued_at = time.time()

    servers = [Server('A', a.url_a, admin_token), Server('B', a.url_b, admin_token)]
    w = World(fx)
    table = cells(w, fx)
    results = {}      # (route, persona) -> (status A, status B)
    try:
        for s in servers:
            w.base(s)
        for label, method, path, setup, body, cleanup in table:
            for p in PERSONAS:
                if time.time() - issued_at > fx.get('token_expiration_seconds', 3600) - 120:
                    for q in tokens:
                        if q in fx['users']:
                            tokens[q] = keystone_fixture.token(fx, q)
                    issued_at = time.time()
                statuses = []
                for s in servers:
                    state = setup(s)
                    r = s.send(method, path(p), tokens[p], body(state, p) if body else None)
                    statuses.append(r.status_code)
                    if cleanup:
                        cleanup(s, p)
                results[(label, p)] = tuple(statuses)
        lifecycle = token_lifecycle(fx, servers)
    except (SetupError, requests.RequestException, keystone_fixture.KeystoneError) as e:
        print('policy-matrix: %s' % e, file=sys.stderr)
        return 2
    finally:
        for s in servers:
            try:
                w.teardown(s)
            except Exception as e:  # noqa: BLE001 - best effort
                print('policy-matrix: tear-down on %s: %s' % (s.label, e), file=sys.stderr)

    routes = [c[0] for c in table]
    width = max(len(r) for r in routes)
    differ = [(r, p) for r in routes for p in PERSONAS if results[(r, p)][0] != results[(r, p)][1]]
    if a.verbose:
        print('A = %s, B = %s, microversion %s; a cell shows one status, or A/B where they differ' % (
            a.url_a, a.url_b, MV))
        print('%-*s %s' % (width, 'route', ' '.join('%7s' % SHORT[p] for p in PERSONAS)))
        for r in routes:
            row = []
            for p in PERSONAS:
                sa, sb = results[(r, p)]
                row.append('%7s' % (sa if sa == sb else '%d/%d' % (sa, sb)))
            print('%-*s %s' % (width, r, ' '.join(row)))
    if differ:
        print('cells where A (%s) and B (%s) differ:' % (a.url_a, a.url_b))
        print('  %-*s %-13s %5s %5s' % (width, 'route', 'persona', 'A', 'B'))
        for r, p in differ:
            print('  %-*s %-13s %5s %5s' % (width, r, p, *results[(r, p)]))
    # Statuses that say a cell tested something else than policy.
    for r in routes:
        for p in PERSONAS:
            for label, st in zip('AB', results[(r, p)]):
                if st >= 500 or st in (400, 404, 405, 409):
                    print('warning: %s %s on %s -> %d (not a policy answer: check the cell)' % (r, p, label, st))
    print('tokens validated before (GET /resource_providers):')
    for label, (sa, sb), counted in lifecycle:
        mark = ('same' if sa == sb else 'DIFFER') if counted else 'info'
        print('  %-75s A %d  B %d  %s' % (label, sa, sb, mark))
    lifecycle_failed = sum(1 for _, (sa, sb), counted in lifecycle if counted and sa != sb)
    lifecycle_passed = sum(1 for _, (sa, sb), counted in lifecycle if counted and sa == sb)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'a': a.url_a, 'b': a.url_b, 'microversion': MV, 'personas': PERSONAS, 'routes': routes,
                       'status': {r: {p: list(results[(r, p)]) for p in PERSONAS} for r in routes},
                       'lifecycle': [{'check': label, 'status': list(st), 'counted': counted}
                                     for label, st, counted in lifecycle]}, f, indent=1)
    print('%d cells and %d token checks in %.1f s' % (len(results), lifecycle_passed + lifecycle_failed,
                                                      time.time() - t0))
    print('%d passed, %d failed' % (len(results) - len(differ) + lifecycle_passed, len(differ) + lifecycle_failed))
    return 1 if differ or lifecycle_failed else 0


if __name__ == '__main__':
    sys.exit(main())
