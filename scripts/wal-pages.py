#!/usr/bin/env python3
"""What the number of pages a commit changes costs on this machine, with SQLite alone.

Each B-tree page a transaction changes is one frame appended to the WAL at its commit (a 4 KiB write before the
disk sync, and more blocks for the sync to write out). A claim changes many rows, each in its own table and
indexes (the instance, the consumer, the allocations, the provider's generation, the node, the change log), so
it writes many pages where a one-row commit writes one. This measures commits that change 1 to 16 pages, in
the same settings as Allot's store (WAL, `synchronous=FULL` unless told otherwise), through Python's `sqlite3`
module: the system's libsqlite3, the library Allot uses, with no Swift in the way.

    python3 scripts/wal-pages.py [--commits 1000] [--synchronous full|normal] [--dir DIR]

Prints, for each page count, the commit's p50 and p99 wall time, its CPU, and the ratio to a one-page commit.
Allot's `allot-bench-tracker` reports the frames its own claims write (`wal_frames_per_op`).
"""
import argparse
import os
import shutil
import sqlite3
import statistics
import tempfile
import time

PAGE_COUNTS = (1, 2, 4, 8, 12, 14, 16)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--commits', type=int, default=1000, help='commits per page count (default 1000)')
    parser.add_argument('--synchronous', choices=('full', 'normal'), default='full')
    parser.add_argument('--dir', help='where to put the database (default: a temporary directory, removed after)')
    args = parser.parse_args()
    if args.commits < 10:
        parser.error('--commits must be at least 10')
    directory = args.dir or tempfile.mkdtemp(prefix='allot-wal-pages-')
    os.makedirs(directory, exist_ok=True)
    try:
        run(os.path.join(directory, 'pages.sqlite'), args.commits, args.synchronous)
    finally:
        if not args.dir:
            shutil.rmtree(directory, ignore_errors=True)


def run(path, commits, synchronous):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute('PRAGMA journal_mode=WAL')
    db.execute('PRAGMA synchronous=%s' % synchronous.upper())
    # One table per page a commit changes; 5,000 rows of 100 bytes each, so that each update lands on a leaf of
    # its own table.
    tables = max(PAGE_COUNTS)
    for i in range(tables):
        db.execute('CREATE TABLE t%d (id INTEGER PRIMARY KEY, v BLOB)' % i)
        db.executemany('INSERT INTO t%d VALUES (?, ?)' % i, ((k, os.urandom(100)) for k in range(5000)))
    db.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    print('SQLite %s, WAL, synchronous=%s, %d commits per row' % (sqlite3.sqlite_version, synchronous.upper(), commits))
    print()
    print('| pages changed | p50 us | p99 us | CPU us | p50 / one page |')
    print('| ---: | ---: | ---: | ---: | ---: |')
    base = None
    for pages in PAGE_COUNTS:
        latencies = []
        cpu0 = time.process_time()
        for k in range(commits):
            started = time.perf_counter()
            db.execute('BEGIN IMMEDIATE')
            for i in range(pages):
                db.execute('UPDATE t%d SET v = ? WHERE id = ?' % i, (os.urandom(100), (k * 37) % 5000))
            db.execute('COMMIT')
            latencies.append(time.perf_counter() - started)
            # As Allot's background checkpointer does: the WAL starts again from its beginning now and then.
            if k % 100 == 99:
                db.execute('PRAGMA wal_checkpoint(PASSIVE)')
        cpu = (time.process_time() - cpu0) / commits
        latencies.sort()
        p50 = statistics.median(latencies) * 1e6
        p99 = latencies[int(len(latencies) * 0.99) - 1] * 1e6
        base = base or p50
        print('| %d | %.0f | %.0f | %.0f | %.2fx |' % (pages, p50, p99, cpu * 1e6, p50 / base))
    db.close()


if __name__ == '__main__':
    main()
