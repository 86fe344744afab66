#!/usr/bin/env python3
"""Claims under load, side by side (issue 15, targets 1 and 2).

Upstream: Placement 16.0.0 `PUT /allocations/{consumer}` on its real SQLite database
(../shared/bench/start_upstream_placement.sh: uWSGI, 1 process x 1 thread, its best SQLite setting), over N
providers, from Python clients with keep-alive sessions (upstream answers a few dozen claims a second, far below
what the client can send). Allot: `POST /compute/v1/instances` build claims to `allot serve --driver fake` over N
fake nodes (SQLite, synchronous=FULL), driven by `allot bench-claims` (which also checks that Placement's usage =
the ledger's = the answered claims on every node).

Runs: one client (latency p50/p99), 64 clients spread over N nodes, 64 clients on 8 nodes (contention).
Prints each figure for both and the ratio (upstream / Allot for times, Allot / upstream for rates).

  python3 scripts/claims-compare.py [--quick] [--nodes 1000] [--allot .build/release/allot]
"""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time, uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, '..', '..', 'shared', 'bench')
VENV = os.environ.get('ALLOT_BENCH_VENV', os.path.expanduser('~/.cache/allot-bench/venv'))


def free_port(start):
    for port in range(start, start + 200):
        with socket.socket() as s:
            try:
                s.bind(('127.0.0.1', port))
                return port
            except OSError:
                continue
    sys.exit('no free port from %d' % start)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * p + 0.999999) - 1))]


def proc_cpu(pids):
    total = 0.0
    for pid in pids:
        try:
            with open('/proc/%d/stat' % pid) as f:
                fields = f.read().rsplit(')', 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
        except OSError:
            pass
    return total


def children(pid):
    out = subprocess.run(['pgrep', '-P', str(pid)], capture_output=True, text=True).stdout.split()
    return [pid] + [int(p) for p in out]


def three_runs(side, run, args, single_claims, burst_claims):
    """One client over every node, --clients over every node, --clients on 8 nodes: run(clients, claims, nodes)."""
    results = {}
    for name, clients, claims, nodes in [('one', 1, single_claims, args.nodes),
                                         ('spread', args.clients, burst_claims, args.nodes),
                                         ('contended', args.clients, burst_claims, 8)]:
        sys.stderr.write('%s: %d clients over %d nodes\n' % (side, clients, nodes))
        results[name] = run(clients, claims, nodes)
    return results


# ---------------------------------------------------------------- upstream
def upstream(args, work):
    import requests  # from the bench venv (start_upstream_placement.sh installs it)
    port = free_port(18300)
    out = subprocess.run(['bash', os.path.join(SHARED, 'start_upstream_placement.sh'), str(port),
                          os.path.join(work, 'upstream')], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit('upstream placement did not start:\n' + out.stderr)
    pid = int(out.stdout.split()[-1])
    base = 'http://127.0.0.1:%d' % port
    headers = {'x-auth-token': 'admin', 'openstack-api-version': 'placement 1.39',
               'content-type': 'application/json'}
    try:
        session = requests.Session()
        providers = []
        sys.stderr.write('upstream: creating %d providers\n' % args.nodes)
        for i in range(args.nodes):
            rp = str(uuid.uuid4())
            r = session.post(base + '/resource_providers', headers=headers, json={'name': 'n%d' % i, 'uuid': rp})
            r.raise_for_status()
            r = session.put(base + '/resource_providers/%s/inventories' % rp, headers=headers, json={
                'resource_provider_generation': 0,
                'inventories': {'VCPU': {'total': 1000000}, 'MEMORY_MB': {'total': 100000000}}})
            r.raise_for_status()
            providers.append(rp)

        def burst(clients, claims, nodes):
            counter = iter(range(claims))
            lock = threading.Lock()
            latencies, answered, refused = [], [0], {}

            def client():
                s = requests.Session()
                while True:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    body = {'allocations': {providers[i % nodes]: {'resources': {'VCPU': 1, 'MEMORY_MB': 1}}},
                            'project_id': 'bench', 'user_id': 'bench', 'consumer_generation': None,
                            'consumer_type': 'INSTANCE'}
                    t = time.perf_counter()
                    r = s.put(base + '/allocations/%s' % uuid.uuid4(), headers=headers, json=body)
                    dt = (time.perf_counter() - t) * 1000
                    with lock:
                        latencies.append(dt)
                        if r.status_code == 204:
                            answered[0] += 1
                        else:
                            refused[r.status_code] = refused.get(r.status_code, 0) + 1

            cpu0 = proc_cpu(children(pid))
            t0 = time.perf_counter()
            threads = [threading.Thread(target=client) for _ in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            cpu = proc_cpu(children(pid)) - cpu0
            return {'claims': claims, 'answered': answered[0], 'refused': refused, 'wall_s': wall,
                    'claims_per_s': claims / wall, 'p50_ms': percentile(latencies, 0.5),
                    'p99_ms': percentile(latencies, 0.99), 'server_cpu_ms_per_claim': cpu * 1000 / claims}

        return three_runs('upstream', burst, args, args.single_claims_upstream, args.burst_claims_upstream)
    finally:
        os.kill(pid, signal.SIGTERM)


# ---------------------------------------------------------------- allot
def allot(args, work):
    directory = os.path.join(work, 'allot')
    os.makedirs(directory)
    nodes_file = os.path.join(directory, 'nodes.json')
    with open(nodes_file, 'w') as f:
        json.dump({'nodes': [{'hostname': 'n%d' % i, 'uuid': str(uuid.uuid4()), 'vcpus': 1000000,
                              'memory_mb': 100000000, 'disk_gb': 1000} for i in range(args.nodes)]}, f)
    port = free_port(18500)
    log = open(os.path.join(directory, 'serve.log'), 'w')
    sys.stderr.write('allot: starting with %d fake nodes\n' % args.nodes)
    server = subprocess.Popen([args.allot, 'serve', '--database', os.path.join(directory, 'allot.sqlite'),
                               '--auth', 'noauth', '--port', str(port), '--driver', 'fake', '--nodes-file', nodes_file,
                               '--cpu-allocation-ratio', '1', '--ram-allocation-ratio', '1',
                               '--audit-interval', '0', '--log-level', 'warning'], stdout=log, stderr=log)
    try:
        url = 'http://127.0.0.1:%d' % port
        for _ in range(600):
            try:
                with socket.create_connection(('127.0.0.1', port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None:
                    sys.exit('allot serve exited; see %s' % log.name)
                time.sleep(0.1)
        # The nodes are registered by the agent's first audit: wait until all are listed.
        for _ in range(600):
            out = subprocess.run([args.allot, 'nodes', '--url', url, '--token', 'admin', '--json'],
                                 capture_output=True, text=True)
            if out.returncode == 0 and len(json.loads(out.stdout or '{}').get('nodes', [])) >= args.nodes:
                break
            time.sleep(0.2)

        def bench(clients, claims, nodes):
            out = subprocess.run([args.allot, 'bench-claims', '--url', url, '--token', 'admin', '--json',
                                  '--concurrency', str(clients), '--claims', str(claims), '--nodes', str(nodes),
                                  '--server-pid', str(server.pid)], capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit('bench-claims failed:\n' + out.stdout + out.stderr)
            return json.loads(out.stdout.strip().splitlines()[-1])

        return three_runs('allot', bench, args, args.single_claims, args.burst_claims)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('--allot', default=os.path.join(HERE, '..', '.build', 'release', 'allot'))
    ap.add_argument('--nodes', type=int, default=1000)
    ap.add_argument('--clients', type=int, default=64)
    ap.add_argument('--quick', action='store_true', help='fewer claims (a rough figure in a minute or two)')
    ap.add_argument('--json', action='store_true')
    args = ap.parse_args()
    args.single_claims, args.burst_claims = (500, 5000) if args.quick else (2000, 20000)
    args.single_claims_upstream, args.burst_claims_upstream = (100, 300) if args.quick else (300, 1000)
    if args.quick and args.nodes == 1000:
        args.nodes = 200
    sys.path.insert(0, os.path.join(VENV, 'lib', 'python%d.%d' % sys.version_info[:2], 'site-packages'))
    work = tempfile.mkdtemp(prefix='allot-claims-compare-')
    try:
        a = allot(args, work)
        u = upstream(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for run, label in [('one', '1 client'), ('spread', '%d clients, %d nodes' % (args.clients, args.nodes)),
                       ('contended', '%d clients, 8 nodes' % args.clients)]:
        rows.append((label + ': p50 ms', u[run]['p50_ms'], a[run]['p50_ms'], 'time'))
        rows.append((label + ': p99 ms', u[run]['p99_ms'], a[run]['p99_ms'], 'time'))
        rows.append((label + ': claims/s', u[run]['claims_per_s'], a[run]['claims_per_s'], 'rate'))
        rows.append((label + ': server CPU ms/claim', u[run]['server_cpu_ms_per_claim'],
                     a[run]['server_cpu_ms_per_claim'], 'time'))
    if args.json:
        print(json.dumps({'upstream': u, 'allot': a}, indent=1))
        return
    print('%-40s %12s %12s %9s' % ('figure', 'upstream', 'allot', 'ratio'))
    for name, up, al, kind in rows:
        ratio = (up / al if al else float('inf')) if kind == 'time' else (al / up if up else float('inf'))
        print('%-40s %12.3f %12.3f %8.1fx' % (name, up, al, ratio))
    print('allot client CPU ms/claim: %s (server: %s)' % (
        ', '.join('%.3f' % a[r]['client_cpu_ms_per_claim'] for r in ('one', 'spread', 'contended')),
        ', '.join('%.3f' % a[r]['server_cpu_ms_per_claim'] for r in ('one', 'spread', 'contended'))))
    print('books balanced after every Allot run: %s' % all(a[r]['books_balanced'] for r in a))


if __name__ == '__main__':
    main()
