#!/usr/bin/env python3
"""Requests per second of one GET at 1 and at N concurrent keep-alive clients, with a client that does not
parse the answers.

placement_perfload.py's concurrent phase parses each answer with json.loads after timing it; its threads
share Python's GIL, so with answers of hundreds of kilobytes it measures the client (about 14 ms of client CPU
per 1,000-provider answer against 2-3 ms of Allot's). Here each client thread reads the response over a raw
socket (recv releases the GIL) and only checks the status and length.

  python3 scripts/concurrent-get.py --url http://127.0.0.1:PORT \\
      --path '/allocation_candidates?resources=VCPU:1,DISK_GB:10,MEMORY_MB:256' [--clients 1,10] [--requests 200]

Prints one line per client count: requests/s, median and p99 latency, bytes per answer. Exit status 1 on any
non-2xx answer or transport error.
"""
import argparse
import socket
import statistics
import sys
import threading
import time
import urllib.parse


def connect(host, port):
    s = socket.create_connection((host, port), timeout=120)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def get(sock, request, pending):
    """Sends one request; returns (status, body length, leftover bytes)."""
    sock.sendall(request)
    buf = pending
    while b'\r\n\r\n' not in buf:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError('connection closed')
        buf += chunk
    head, _, rest = buf.partition(b'\r\n\r\n')
    lines = head.split(b'\r\n')
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b':')
        if name.strip().lower() == b'content-length':
            length = int(value)
    if length is None:
        raise ValueError('no Content-Length in the answer')
    parts, have = [rest], len(rest)
    while have < length:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError('connection closed')
        parts.append(chunk)
        have += len(chunk)
    body = b''.join(parts)
    return status, length, body[length:]


def run(host, port, request, clients, total):
    latencies, errors, sizes = [], [], []
    lock = threading.Lock()
    counter = iter(range(total))

    def worker():
        sock, pending = connect(host, port), b''
        try:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                t = time.perf_counter()
                status, size, pending = get(sock, request, pending)
                dt = time.perf_counter() - t
                with lock:
                    if not 200 <= status < 300:
                        errors.append(status)
                    latencies.append(dt)
                    sizes.append(size)
        except Exception as exc:  # reported, the run fails
            with lock:
                errors.append(repr(exc))
        finally:
            sock.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - t0
    return wall, latencies, errors, sizes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('--url', required=True)
    ap.add_argument('--path', required=True)
    ap.add_argument('--token', default='admin')
    ap.add_argument('--microversion', default='1.39')
    ap.add_argument('--clients', default='1,10', help='comma list of client counts (default 1,10)')
    ap.add_argument('--requests', type=int, default=200, help='requests per client count (default 200)')
    args = ap.parse_args()
    url = urllib.parse.urlsplit(args.url)
    host, port = url.hostname, url.port or 80
    request = ('GET %s HTTP/1.1\r\nHost: %s\r\nX-Auth-Token: %s\r\nOpenStack-API-Version: placement %s\r\n'
               'Accept: application/json\r\n\r\n' % (args.path, url.netloc, args.token, args.microversion)).encode()
    failed = False
    for clients in (int(c) for c in args.clients.split(',')):
        wall, latencies, errors, sizes = run(host, port, request, clients, args.requests)
        if errors:
            failed = True
            print('%d clients: %d errors, first: %s' % (clients, len(errors), errors[0]))
            continue
        latencies.sort()
        print('%d clients: %.1f req/s, median %.2f ms, p99 %.2f ms, %d bytes per answer' % (
            clients, len(latencies) / wall, statistics.median(latencies) * 1000,
            latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, statistics.median(sizes)))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
