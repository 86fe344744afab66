#!/usr/bin/env python3
"""Claims under load, side by side (issue 15, targets 1 and 2).

Upstream: Placement 16.0.0 `PUT /allocations/{consumer}` on its real SQLite database
(../shared/bench/start_upstream_placement.sh: uWSGI, 1 process x 1 thread, its best SQLite setting), over N
providers, from Python clients with keep-alive sessions (upstream answers a few dozen claims a second, far below
what the client can send). Allot: `POST /compute/v1/instances` build claims to `allot serve --driver fake` over N
fake nodes (SQLite, synchronous=FULL), driven by `allot bench-claims` (which also checks that Placement's usage =
the ledger's = the answered claims on every node).

--postgres runs both on one private PostgreSQL cluster instead (started here as in scripts/test.sh, default
settings, fsync on; stopped and removed afterwards), a database each: upstream with 2 processes x 10 threads (its
best PostgreSQL setting), Allot as two `allot serve` replicas over one database, the first with the fake nodes'
agent and the second `--no-agent` (docs/compute.md: one agent per host), driven by one `allot bench-claims` that
sends client i to replica i mod 2 and checks the books after each run. Server CPU is the API processes' only
(PostgreSQL's own backends are not counted, on either side).

Runs: one client (latency p50/p99), 64 clients spread over N nodes, 64 clients on 8 nodes (contention); then
one client again on each side with the same minimal keep-alive socket client (`raw_one_client`), so that the
one-client latencies compare the servers and not two HTTP client libraries (requests costs upstream's side a few
tenths of a millisecond, AsyncHTTPClient Allot's about 0.2 ms).
Prints each figure for both and the ratio (upstream / Allot for times, Allot / upstream for rates).

  python3 scripts/claims-compare.py [--quick] [--postgres] [--nodes 1000] [--allot .build/release/allot]
"""
import argparse, glob, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time, uuid

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


def start_server(command, log_path, first_port, env=None):
    """Starts `command + [port]` on a free port from first_port and waits until it listens; a port another process
    took meanwhile ("in use" in the log) is replaced by the next free one (5 tries). Returns (process, port)."""
    port = first_port
    for _ in range(5):
        port = free_port(port)
        log = open(log_path, 'a')
        process = subprocess.Popen(command + [str(port)], stdout=log, stderr=log, env=env)
        log.close()
        for _ in range(600):
            if process.poll() is not None:
                break
            try:
                with socket.create_connection(('127.0.0.1', port), timeout=1):
                    pass
                if process.poll() is None:
                    return process, port
            except OSError:
                time.sleep(0.1)
        if process.poll() is None:
            process.kill()
            process.wait()
            sys.exit('%s did not listen on port %d; see %s' % (command[0], port, log_path))
        with open(log_path) as f:
            if 'in use' not in f.read():
                sys.exit('%s exited; see %s' % (command[0], log_path))
        port += 1
    sys.exit('%s: every port tried was taken; see %s' % (command[0], log_path))


class PostgresCluster:
    """A private PostgreSQL cluster in a fresh directory on 127.0.0.1 (trust authentication; as root it belongs to
    `postgres`), on a free port below 32768 (the next free one when it was taken meanwhile). stop() stops it and
    removes its directory."""

    def __init__(self):
        initdbs = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'), key=lambda p: int(p.split('/')[4]))
        if not initdbs:
            sys.exit('--postgres: PostgreSQL is not installed (apt-get install -y postgresql)')
        self.bin = os.path.dirname(initdbs[-1])
        self.root = os.getuid() == 0
        self.data = tempfile.mkdtemp(prefix='allot-claims-pg-')
        self.started = False
        if self.root:
            shutil.chown(self.data, 'postgres', 'postgres')
        os.chmod(self.data, 0o700)

    def as_pg(self, command, **kw):
        return subprocess.run((['runuser', '-u', 'postgres', '--'] if self.root else []) + command, **kw)

    def start(self):
        out = self.as_pg([os.path.join(self.bin, 'initdb'), '-D', self.data, '-U', 'postgres', '-A', 'trust',
                          '-E', 'UTF8', '--no-sync'], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit('initdb failed:\n' + out.stdout + out.stderr)
        log = os.path.join(self.data, 'server.log')
        port = 25432
        for _ in range(5):
            port = free_port(port)
            out = self.as_pg([os.path.join(self.bin, 'pg_ctl'), '-D', self.data, '-l', log, '-w', '-t', '60', '-o',
                              '-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=200' % (port, self.data),
                              'start'], capture_output=True, text=True)
            self.started = os.path.exists(os.path.join(self.data, 'postmaster.pid'))
            if out.returncode == 0:
                self.port = port
                break
            with open(log) as f:
                if 'Address already in use' not in f.read():
                    sys.exit('PostgreSQL did not start:\n' + out.stdout + out.stderr)
            port += 1
        else:
            sys.exit('PostgreSQL did not start: every port tried was taken')
        self.version = subprocess.run([os.path.join(self.bin, 'postgres'), '--version'], capture_output=True,
                                      text=True).stdout.split()[2]
        for name in ('upstream', 'allot'):
            out = subprocess.run([os.path.join(self.bin, 'createdb'), '-h', '127.0.0.1', '-p', str(self.port),
                                  '-U', 'postgres', name], capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit('createdb %s failed:\n%s' % (name, out.stderr))
        sys.stderr.write('private PostgreSQL %s on 127.0.0.1:%d\n' % (self.version, self.port))

    def stop(self):
        if self.started or os.path.exists(os.path.join(self.data, 'postmaster.pid')):
            out = self.as_pg([os.path.join(self.bin, 'pg_ctl'), '-D', self.data, '-m', 'fast', '-w', 'stop'],
                             capture_output=True, text=True)
            if out.returncode != 0:
                sys.stderr.write('could not stop PostgreSQL:\n' + out.stderr)
        shutil.rmtree(self.data, ignore_errors=True)


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


def raw_one_client(port, claims, request):
    """One client on one keep-alive connection, the same on both sides: a plain socket that writes each request
    and reads its answer by Content-Length, so that the client's own cost (a few tens of microseconds) hardly
    counts. request(i) gives (method, path, body as a dict, the status expected). It starts after a 2 s pause, so
    that the burst before it has left the server and its disk (Allot's last WAL checkpoint) on both sides."""
    time.sleep(2)
    sock = socket.create_connection(('127.0.0.1', port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies, buffer = [], b''
    try:
        for i in range(claims):
            method, path, body, expected = request(i)
            payload = json.dumps(body).encode()
            head = ('%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: admin\r\n'
                    'OpenStack-API-Version: placement 1.39\r\nContent-Type: application/json\r\n'
                    'Content-Length: %d\r\n\r\n' % (method, path, len(payload))).encode()
            started = time.perf_counter()
            sock.sendall(head + payload)
            while True:
                end = buffer.find(b'\r\n\r\n')
                if end >= 0:
                    lines = buffer[:end].decode('latin-1').split('\r\n')
                    fields = dict(line.split(':', 1) for line in lines[1:])
                    fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
                    if 'chunked' in fields.get('transfer-encoding', ''):
                        sys.exit('raw client: a chunked answer to %s %s' % (method, path))
                    length = int(fields.get('content-length', '0'))
                    if len(buffer) >= end + 4 + length:
                        status = int(lines[0].split()[1])
                        buffer = buffer[end + 4 + length:]
                        break
                chunk = sock.recv(65536)
                if not chunk:
                    sys.exit('raw client: the server closed the connection')
                buffer += chunk
            latencies.append((time.perf_counter() - started) * 1000)
            if status != expected:
                sys.exit('raw client: %s %s answered %d, not %d' % (method, path, status, expected))
    finally:
        sock.close()
    return {'claims': claims, 'p50_ms': percentile(latencies, 0.5), 'p99_ms': percentile(latencies, 0.99)}


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
    env = dict(os.environ)
    if args.cluster:
        env['PLACEMENT_DB_URL'] = 'postgresql+psycopg2://postgres@127.0.0.1:%d/upstream' % args.cluster.port
    out = subprocess.run(['bash', os.path.join(SHARED, 'start_upstream_placement.sh'), str(port),
                          os.path.join(work, 'upstream')], capture_output=True, text=True, env=env)
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

        results = three_runs('upstream', burst, args, args.single_claims_upstream, args.burst_claims_upstream)
        sys.stderr.write('upstream: 1 raw client over %d nodes\n' % args.nodes)
        results['raw'] = raw_one_client(port, args.single_claims_upstream, lambda i: (
            'PUT', '/allocations/%s' % uuid.uuid4(),
            {'allocations': {providers[i % args.nodes]: {'resources': {'VCPU': 1, 'MEMORY_MB': 1}}},
             'project_id': 'bench', 'user_id': 'bench', 'consumer_generation': None, 'consumer_type': 'INSTANCE'},
            204))
        return results
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
    common = ['--auth', 'noauth', '--cpu-allocation-ratio', '1', '--ram-allocation-ratio', '1',
              '--audit-interval', '0', '--log-level', 'warning']
    agent = ['--driver', 'fake', '--nodes-file', nodes_file]
    if args.cluster:
        # Two replicas over one database: the fake nodes' agent on the first, --no-agent on the second.
        database = 'postgres://postgres:allot-bench@127.0.0.1:%d/allot?sslmode=disable' % args.cluster.port
        replicas = [agent, ['--no-agent']]
    else:
        database = os.path.join(directory, 'allot.sqlite')
        replicas = [agent]
    sys.stderr.write('allot: starting %d replica(s) with %d fake nodes\n' % (len(replicas), args.nodes))
    servers, urls = [], []
    try:
        for index, extra in enumerate(replicas):
            server, port = start_server([args.allot, 'serve', '--database', database] + common + extra + ['--port'],
                                        os.path.join(directory, 'serve-%d.log' % index), 18500 + 100 * index)
            servers.append(server)
            urls.append('http://127.0.0.1:%d' % port)
        url = urls[0]
        # The nodes are registered by the agent's first audit: wait until all are listed.
        for _ in range(600):
            out = subprocess.run([args.allot, 'nodes', '--url', url, '--token', 'admin', '--json'],
                                 capture_output=True, text=True)
            if out.returncode == 0 and len(json.loads(out.stdout or '{}').get('nodes', [])) >= args.nodes:
                break
            time.sleep(0.2)

        def bench(clients, claims, nodes):
            # Client i sends to replica i mod the replicas it is given (one client: the first replica alone).
            out = subprocess.run([args.allot, 'bench-claims', '--token', 'admin', '--json',
                                  '--concurrency', str(clients), '--claims', str(claims), '--nodes', str(nodes)]
                                 + [a for u in urls[:clients] for a in ('--url', u)]
                                 + [a for s in servers for a in ('--server-pid', str(s.pid))],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit('bench-claims failed:\n' + out.stdout + out.stderr)
            return json.loads(out.stdout.strip().splitlines()[-1])

        results = three_runs('allot', bench, args, args.single_claims, args.burst_claims)
        sys.stderr.write('allot: 1 raw client over %d nodes\n' % args.nodes)
        nodes = [n['uuid'] for n in json.loads(subprocess.run(
            [args.allot, 'nodes', '--url', url, '--token', 'admin', '--json'], capture_output=True, text=True,
            check=True).stdout)['nodes']]
        flavor = {'name': 'bench', 'vcpus': 1, 'memory_mb': 1, 'root_gb': 0, 'ephemeral_gb': 0, 'swap': 0,
                  'extra_specs': {}}
        results['raw'] = raw_one_client(int(url.rsplit(':', 1)[1]), args.single_claims, lambda i: (
            'POST', '/compute/v1/instances',
            {'uuid': str(uuid.uuid4()), 'node': nodes[i % len(nodes)], 'project_id': 'bench', 'user_id': 'bench',
             'flavor': flavor}, 201))
        return results
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('--allot', default=os.path.join(HERE, '..', '.build', 'release', 'allot'))
    ap.add_argument('--nodes', type=int, default=1000)
    ap.add_argument('--clients', type=int, default=64)
    ap.add_argument('--quick', action='store_true', help='fewer claims (a rough figure in a minute or two)')
    ap.add_argument('--postgres', action='store_true',
                    help='both on a private PostgreSQL cluster: upstream 2 x 10, Allot two replicas')
    ap.add_argument('--json', action='store_true')
    args = ap.parse_args()
    args.single_claims, args.burst_claims = (500, 5000) if args.quick else (2000, 20000)
    args.single_claims_upstream, args.burst_claims_upstream = (100, 300) if args.quick else (300, 1000)
    if args.quick and args.nodes == 1000:
        args.nodes = 200
    sys.path.insert(0, os.path.join(VENV, 'lib', 'python%d.%d' % sys.version_info[:2], 'site-packages'))
    work = tempfile.mkdtemp(prefix='allot-claims-compare-')
    args.cluster = None
    try:
        if args.postgres:
            args.cluster = PostgresCluster()
            args.cluster.start()
            backend = ('PostgreSQL %s (private cluster, fsync on): upstream 2 processes x 10 threads, '
                       'Allot 2 replicas (one with the agent)' % args.cluster.version)
        else:
            backend = 'SQLite: upstream 1 process x 1 thread, Allot 1 process (synchronous=FULL)'
        a = allot(args, work)
        u = upstream(args, work)
    finally:
        if args.cluster:
            args.cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for run, label in [('one', '1 client'), ('spread', '%d clients, %d nodes' % (args.clients, args.nodes)),
                       ('contended', '%d clients, 8 nodes' % args.clients)]:
        rows.append((label + ': p50 ms', u[run]['p50_ms'], a[run]['p50_ms'], 'time'))
        rows.append((label + ': p99 ms', u[run]['p99_ms'], a[run]['p99_ms'], 'time'))
        rows.append((label + ': claims/s', u[run]['claims_per_s'], a[run]['claims_per_s'], 'rate'))
        rows.append((label + ': server CPU ms/claim', u[run]['server_cpu_ms_per_claim'],
                     a[run]['server_cpu_ms_per_claim'], 'time'))
    rows.append(('1 client, same raw client both sides: p50 ms', u['raw']['p50_ms'], a['raw']['p50_ms'], 'time'))
    rows.append(('1 client, same raw client both sides: p99 ms', u['raw']['p99_ms'], a['raw']['p99_ms'], 'time'))
    if args.json:
        print(json.dumps({'backend': backend, 'upstream': u, 'allot': a}, indent=1))
        return
    print('backend: ' + backend)
    print('%-40s %12s %12s %9s' % ('figure', 'upstream', 'allot', 'ratio'))
    for name, up, al, kind in rows:
        ratio = (up / al if al else float('inf')) if kind == 'time' else (al / up if up else float('inf'))
        print('%-40s %12.3f %12.3f %8.1fx' % (name, up, al, ratio))
    print('allot client CPU ms/claim: %s (server: %s)' % (
        ', '.join('%.3f' % a[r]['client_cpu_ms_per_claim'] for r in ('one', 'spread', 'contended')),
        ', '.join('%.3f' % a[r]['server_cpu_ms_per_claim'] for r in ('one', 'spread', 'contended'))))
    print('books balanced after every Allot run: %s' % all(a[r]['books_balanced'] for r in ('one', 'spread', 'contended')))


if __name__ == '__main__':
    main()
