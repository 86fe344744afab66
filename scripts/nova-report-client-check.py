#!/usr/bin/env python3
"""Nova's own placement client (nova.scheduler.client.report.SchedulerReportClient) through Keystone.

  bash scripts/keystone.sh install-nova          # once: ~/.cache/allot-bench/nova-venv with nova 34.0.0
  ~/.cache/allot-bench/nova-venv/bin/python scripts/nova-report-client-check.py \\
      --keystone-fixture DIR/fixture.json [--url PLACEMENT_URL] [-v]

Configured as nova-compute is: a nova.conf with a [placement] section (auth_type password, auth_url, username
nova, project service, user/project domain Default, region RegionOne, valid_interfaces internal,public) parsed
by nova.config.parse_args (nova.conf.CONF), so the report client builds its keystoneauth session and
openstacksdk adapter from those options and finds Placement in Keystone's catalog (register it first:
scripts/register-keystone.sh). With --url, also checks that the catalog gave that endpoint.

Checks, one line each: get_provider_tree_and_ensure_root for a fake compute node, set_inventory_for_provider
(VCPU, MEMORY_MB, DISK_GB), set_traits_for_provider (a standard and a custom trait), aggregate_add_host,
get_allocation_candidates for a request spec of a small flavor, claim_resources with the candidate,
get_allocs_for_consumer, put_allocations for a second consumer, delete_allocation_for_instance (both), and
removal of the provider. Last line `N passed, N failed`; exit status 1 if any failed.
"""
import argparse
import os
import sys
import tempfile
import traceback
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keystone_fixture  # noqa: E402

passed = failed = 0
verbose = False


def check(label, fn):
    """Runs fn(); a truthy result or a result of (True, detail) passes."""
    global passed, failed
    try:
        res = fn()
        ok, detail = res if isinstance(res, tuple) else (bool(res), '')
    except Exception as e:  # noqa: BLE001 - a raised error is the check's failure
        ok, detail = False, '%s: %s' % (type(e).__name__, e)
        if verbose:
            traceback.print_exc()
    if ok:
        passed += 1
        print('ok   %s%s' % (label, ' (%s)' % detail if detail and verbose else ''))
    else:
        failed += 1
        print('FAIL %s%s' % (label, ': %s' % detail if detail else ''))
    return ok


def write_nova_conf(fx, path):
    nova = fx['users']['nova']
    with open(path, 'w') as f:
        f.write('\n'.join([
            '[DEFAULT]',
            'host = allot-check-compute',
            'use_stderr = false',
            '[placement]',
            'auth_type = password',
            'auth_url = %s' % fx['url'],
            'username = %s' % nova['name'],
            'password = %s' % nova['password'],
            'project_name = %s' % nova['project'],
            'user_domain_name = %s' % nova['domain'],
            'project_domain_name = %s' % fx['domain']['name'],
            'region_name = %s' % fx['region'],
            'valid_interfaces = internal,public',
            '']))
    os.chmod(path, 0o600)


def main():
    global verbose
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--keystone-fixture', default=os.environ.get('ALLOT_KEYSTONE_FIXTURE'))
    ap.add_argument('--url', default=os.environ.get('PLACEMENT_URL'),
                    help='expected Placement URL in the catalog (optional)')
    ap.add_argument('-v', '--verbose', action='store_true')
    a = ap.parse_args()
    if not a.keystone_fixture:
        ap.error('--keystone-fixture is required (or ALLOT_KEYSTONE_FIXTURE)')
    verbose = a.verbose
    fx = keystone_fixture.load(a.keystone_fixture)

    tmp = tempfile.mkdtemp(prefix='nova-report-client-check.')
    conf_path = os.path.join(tmp, 'nova.conf')
    write_nova_conf(fx, conf_path)

    import nova.conf
    from nova import config as nova_config
    from nova import context as nova_context
    from nova import objects
    from nova.scheduler.client import report
    from nova.scheduler import utils as scheduler_utils

    # As nova-compute's main() does (nova/cmd/compute.py), without the database and RPC.
    nova_config.parse_args(['nova-compute', '--config-file', conf_path], configure_db=False, init_rpc=False)
    objects.register_all()
    CONF = nova.conf.CONF
    ctx = nova_context.get_admin_context()
    state = {}

    def make_client():
        state['rc'] = report.SchedulerReportClient()
        return True, 'auth_type=%s, valid_interfaces=%s' % (CONF.placement.auth_type,
                                                             CONF.placement.valid_interfaces)
    if not check('SchedulerReportClient() from the [placement] options', make_client):
        print('%d passed, %d failed' % (passed, failed))
        return 1
    rc = state['rc']

    def endpoint():
        ep = rc._client.get_endpoint()
        if a.url:
            return ep.rstrip('/') == a.url.rstrip('/'), 'catalog endpoint %s' % ep
        return bool(ep), 'catalog endpoint %s' % ep
    check('placement endpoint from the catalog (internal interface first)', endpoint)

    cn = str(uuid.uuid4())
    host = 'allot-check-%s' % cn[:8]
    agg = str(uuid.uuid4())
    trait = 'CUSTOM_ALLOT_NOVA_CHECK'
    project = fx['projects']['alpha']['id']
    user = fx['users']['alpha-member']['id']
    inv = {
        'VCPU': {'total': 8, 'reserved': 0, 'min_unit': 1, 'max_unit': 8, 'step_size': 1,
                 'allocation_ratio': 4.0},
        'MEMORY_MB': {'total': 16384, 'reserved': 512, 'min_unit': 1, 'max_unit': 16384, 'step_size': 1,
                      'allocation_ratio': 1.0},
        'DISK_GB': {'total': 200, 'reserved': 0, 'min_unit': 1, 'max_unit': 200, 'step_size': 1,
                    'allocation_ratio': 1.0},
    }

    def ensure_root():
        tree = rc.get_provider_tree_and_ensure_root(ctx, cn, name=host)
        data = tree.data(cn)
        return tree.exists(cn) and data.name == host, 'provider %s generation %s' % (cn, data.generation)
    if not check('get_provider_tree_and_ensure_root creates the compute node provider', ensure_root):
        print('%d passed, %d failed' % (passed, failed))
        return 1

    def inventory():
        rc.set_inventory_for_provider(ctx, cn, inv)
        got = rc._get_inventory(ctx, cn)['inventories']
        totals = {k: v['total'] for k, v in got.items()}
        return totals == {'VCPU': 8, 'MEMORY_MB': 16384, 'DISK_GB': 200}, 'inventory %s' % totals
    check('set_inventory_for_provider VCPU, MEMORY_MB, DISK_GB', inventory)

    def traits():
        rc.set_traits_for_provider(ctx, cn, ['COMPUTE_NET_ATTACH_INTERFACE', trait])
        got = rc.get_provider_traits(ctx, cn).traits
        return got == {'COMPUTE_NET_ATTACH_INTERFACE', trait}, 'traits %s' % sorted(got)
    check('set_traits_for_provider (standard and custom trait)', traits)

    def aggregates():
        rc.aggregate_add_host(ctx, agg, rp_uuid=cn)
        got = rc._get_provider_aggregates(ctx, cn).aggregates
        return agg in got, 'aggregates %s' % sorted(got)
    check('aggregate_add_host', aggregates)

    def candidates():
        flavor = objects.Flavor(vcpus=2, memory_mb=1024, root_gb=10, ephemeral_gb=0, swap=0,
                                extra_specs={'trait:%s' % trait: 'required'})
        spec = objects.RequestSpec(flavor=flavor, is_bfv=False,
                                   image=objects.ImageMeta(properties=objects.ImageMetaProps()))
        req = scheduler_utils.ResourceRequest.from_request_spec(spec)
        areqs, summaries, version = rc.get_allocation_candidates(ctx, req)
        if areqs is None:
            return False, 'no answer (see the log above)'
        mine = [ar for ar in areqs if cn in ar['allocations']]
        state['candidate'], state['version'] = (mine[0] if mine else None), version
        return bool(mine), '%d candidates, microversion %s, query %s' % (len(areqs), version, req.to_querystring())
    check('get_allocation_candidates for a request spec (2 VCPU, 1024 MB, 10 GB, custom trait)', candidates)

    c1, c2 = str(uuid.uuid4()), str(uuid.uuid4())

    def claim():
        ar = state.get('candidate') or {'allocations': {cn: {'resources': {
            'VCPU': 2, 'MEMORY_MB': 1024, 'DISK_GB': 10}}}}
        return rc.claim_resources(ctx, c1, ar, project, user, state.get('version') or '1.36')
    check('claim_resources for a consumer', claim)

    def read_back():
        got = rc.get_allocs_for_consumer(ctx, c1)
        res = got.get('allocations', {}).get(cn, {}).get('resources')
        return res == {'VCPU': 2, 'MEMORY_MB': 1024, 'DISK_GB': 10} and got.get('project_id') == project, \
            'allocations %s, generation %s' % (res, got.get('consumer_generation'))
    check('get_allocs_for_consumer reads the claim back', read_back)

    def put():
        payload = {'allocations': {cn: {'resources': {'VCPU': 1, 'MEMORY_MB': 512}}},
                   'project_id': project, 'user_id': user, 'consumer_generation': None}
        ok = rc.put_allocations(ctx, c2, payload)
        got = rc.get_allocs_for_consumer(ctx, c2).get('allocations', {}).get(cn, {}).get('resources')
        return ok and got == {'VCPU': 1, 'MEMORY_MB': 512}, 'allocations %s' % got
    check('put_allocations for a second consumer', put)

    def usages():
        got = rc.get_allocations_for_resource_provider(ctx, cn).allocations
        return set(got) == {c1, c2}, 'consumers on the provider: %d' % len(got)
    check('get_allocations_for_resource_provider lists both consumers', usages)

    def delete1():
        ok = rc.delete_allocation_for_instance(ctx, c1)
        left = rc.get_allocs_for_consumer(ctx, c1).get('allocations')
        return ok and not left, 'left %s' % left
    check('delete_allocation_for_instance', delete1)

    def delete2():
        ok = rc.delete_allocation_for_instance(ctx, c2, force=True)
        left = rc.get_allocs_for_consumer(ctx, c2).get('allocations')
        return ok and not left, 'left %s' % left
    check('delete_allocation_for_instance (force)', delete2)

    def remove_provider():
        rc._delete_provider(cn, global_request_id=ctx.global_id)
        r = rc.get('/resource_providers/%s' % cn, version='1.14')
        return r.status_code == 404, 'GET after delete: %s' % r.status_code
    check('the compute node provider is removed', remove_provider)

    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
