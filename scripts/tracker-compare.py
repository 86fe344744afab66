#!/usr/bin/env python3
"""Side by side: upstream Nova's tracker (nova_rt_bench.py) and Allot's (allot-bench-tracker).

Usage:
  ~/.cache/allot-bench/nova-venv/bin/python ../shared/bench/nova_rt_bench.py --out nova.json
  .build/release/allot-bench-tracker --out allot.json
  python3 scripts/tracker-compare.py nova.json allot.json
  python3 scripts/tracker-compare.py allot.json        # issue 15's targets 3 and 4 only

Prints a Markdown table: each figure for both, the ratio (upstream / Allot) and the issue's target.
CPU per operation: upstream measures the calling thread, with its database and Placement faked away; Allot the
whole process (SQLite's threads included), on a real durable database.

Then, from Allot's run alone, issue 15's targets 3 and 4: the claim against this machine's durable floor
(scenarios a and f of the same run) and the claim p99 during audits against the same claims with the audit loop
idle (scenario c, both paced every 20 ms).
"""
import json
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def by(runs, key, value):
    for run in runs or []:
        if run.get(key) == value:
            return run
    return None


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    # With Allot's run alone, only its section against itself (issue 15's targets 3 and 4).
    nova, allot = (load(sys.argv[1]), load(sys.argv[2])) if len(sys.argv) == 3 else ({}, load(sys.argv[1]))
    rows = []

    def row(name, up, ours, unit, target):
        if up is None or ours is None:
            rows.append((name, '-', '-', '-', target, ''))
            return
        ratio = up / ours if ours else float('inf')
        ok = '' if target is None else ('yes' if ratio >= target else 'NO')
        rows.append((name, '%.1f %s' % (up, unit), '%.2f %s' % (ours, unit), '%.1fx' % ratio,
                     '>= %dx' % target if target else '', ok))

    for pre in (0, 1000):
        n = by(nova.get('a_instance_claim'), 'pre_tracked_instances', pre)
        a = by(allot.get('a_instance_claim'), 'pre_tracked_instances', pre)
        row('claim CPU/op, node with %d instances' % pre,
            n and n['claim_batch']['cpu']['mean_us'], a and a['claim_batch']['cpu_per_op_us'], 'us', 10)
        row('claim->abort CPU/op, node with %d instances' % pre,
            n and n['claim_abort_round_trips']['round_trip_cpu']['mean_us'],
            a and a['claim_abort_round_trips']['round_trip_cpu_per_op_us'], 'us', 10)
    for run in nova.get('b_update_available_resource') or []:
        size, frac = run['instances'], run['migration_fraction']
        mine = [r for r in allot.get('b_update_available_resource') or []
                if r['instances'] == size and r['migration_fraction'] == frac]
        ours = mine[0] if mine else None
        row('audit CPU per instance, %d instances, %d%% moving' % (size, frac * 100),
            run['audit_cpu']['median_ms'] * 1000 / size,
            ours and ours['audit_cpu']['median_ms'] * 1000 / size, 'us', 20)
        if ours:
            row('  (Allot after another writer changed the node)', run['audit_cpu']['median_ms'] * 1000 / size,
                ours['audit_after_external_write_cpu']['median_ms'] * 1000 / size, 'us', None)
    for run in nova.get('c_ironic_like') or []:
        m = run['nodes']
        ours = by(allot.get('c_ironic_like'), 'nodes', m)
        row('bare-metal full pass, %d nodes (wall)' % m, run['full_pass_wall']['median_ms'],
            ours and ours['full_pass_wall']['median_ms'], 'ms', 50 if m == 5000 else None)
        row('claim p99 during audits, %d nodes (wall)' % m, run['claim_during_audit']['p99_us'],
            ours and ours['claim_during_audit']['p99_us'], 'us', 20 if m == 5000 else None)
    for pre in (0, 1000):
        n = by(nova.get('d_resize_drop'), 'pre_tracked_instances', pre)
        a = by(allot.get('d_resize_drop'), 'pre_tracked_instances', pre)
        row('resize claim + drop CPU/op, node with %d instances' % pre,
            n and n['round_trip_cpu']['mean_us'], a and a['round_trip_cpu_per_op_us'], 'us', None)

    if nova:
        print('| figure | upstream Nova (database and Placement faked) | Allot | ratio | target | met |')
        print('| --- | --- | --- | --- | --- | --- |')
        for r in rows:
            print('| ' + ' | '.join(r) + ' |')

    floor = allot.get('f_durable_floor')
    if floor and nova:
        # What the targets leave for a durable claim, next to what one durable write costs on this machine.
        claim = by(nova.get('a_instance_claim'), 'pre_tracked_instances', 0)
        ironic = by(nova.get('c_ironic_like'), 'nodes', 5000)
        print()
        print('Durable floor on this machine (%s):' % floor.get('store', 'sqlite'))
        print()
        print('| write | CPU/op | p50 | p99 | p50 every 20 ms | p99 every 20 ms |')
        print('| --- | --- | --- | --- | --- | --- |')
        for name, key in (('one-row commit of the store', 'one_row_commit'), ('bare 4 KiB write + fdatasync', 'bare_4k_fdatasync')):
            fast, slow = floor[key], floor[key + '_every_20ms']
            print('| %s | %.1f us | %.1f us | %.1f us | %.1f us | %.1f us |' % (
                name, fast['cpu_per_op_us'], fast['p50_us'], fast['p99_us'], slow['p50_us'], slow['p99_us']))
        print()
        if claim:
            print('- 10x of upstream\'s claim leaves %.1f us of CPU per claim; one durable one-row commit costs %.1f us.'
                  % (claim['claim_batch']['cpu']['mean_us'] / 10, floor['one_row_commit']['cpu_per_op_us']))
        if ironic:
            print('- 20x of upstream\'s claim p99 during audits leaves %.1f us; a bare disk sync every 20 ms has a p99 of %.1f us.'
                  % (ironic['claim_during_audit']['p99_us'] / 20, floor['bare_4k_fdatasync_every_20ms']['p99_us']))

    targets = []
    claim = by(allot.get('a_instance_claim'), 'pre_tracked_instances', 0)
    if floor and claim:
        commit = floor['one_row_commit']
        targets.append(('claim wall p50 / one-row commit p50', claim['claim_batch']['p50_us'], commit['p50_us'], 2))
        targets.append(('claim CPU / one-row commit CPU', claim['claim_batch']['cpu_per_op_us'],
                        commit['cpu_per_op_us'], 3))
    for run in allot.get('c_ironic_like') or []:
        if 'claim_no_audit_paced' in run:
            targets.append(('claim p99 during audits / audit loop idle, %d nodes (every %g ms)'
                            % (run['nodes'], run['claim_interval_ms']),
                            run['claim_during_audit']['p99_us'], run['claim_no_audit_paced']['p99_us'],
                            1.5 if run['nodes'] == 5000 else None))
    if targets:
        print()
        print('Issue 15, Allot against itself (same run):')
        print()
        print('| figure | Allot | reference | ratio | target (at most) | met |')
        print('| --- | --- | --- | --- | --- | --- |')
        for name, ours, reference, limit in targets:
            ratio = ours / reference if reference else float('inf')
            met = '' if limit is None else ('yes' if ratio <= limit else 'NO')
            print('| %s | %.1f us | %.1f us | %.2fx | %s | %s |' % (
                name, ours, reference, ratio, '%gx' % limit if limit else '', met))
        if floor and claim and 'wal_frames_per_op' in claim['claim_batch']:
            # What a commit writes before its disk sync: each changed 4 KiB page is one WAL frame.
            print()
            print('WAL frames (changed pages) per commit: claim %.2f, one-row commit %.2f.' % (
                claim['claim_batch']['wal_frames_per_op'], floor['one_row_commit'].get('wal_frames_per_op', 0)))


if __name__ == '__main__':
    main()
