#!/usr/bin/env python3
"""Writes a `fake` driver node file for trying the console: N nodes with two NUMA cells (thread siblings, huge
pages) and, on every fourth node, an SR-IOV NIC (one PF, four VFs).

    python3 scripts/console-fleet.py --nodes 200 > fleet.json
    allot serve --auth noauth --driver fake --nodes-file fleet.json --cpu-dedicated-set 4-15 \
        --pci-device-spec '{"vendor_id": "8086", "product_id": "154c"}' \
        --pci-alias '{"name": "vf", "vendor_id": "8086", "product_id": "154c", "device_type": "type-VF"}'

Node uuids are derived from the node number, so the same command always describes the same fleet.
"""
import argparse
import json
import sys
import uuid


def node(index, name_format):
    cpus_per_cell = 8 if index % 3 else 16
    cells = []
    for cell in range(2):
        first = cell * cpus_per_cell
        cpus = list(range(first, first + cpus_per_cell))
        cells.append({
            "id": cell, "cpus": cpus, "socket": cell,
            "siblings": [[cpu, cpu + 1] for cpu in cpus[::2]],
            "memory_mb": 32768 * (1 + index % 2), "pages": {"2048": 2048},
        })
    entry = {
        "hostname": name_format.format(index),
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"allot-console-fleet/{index}")),
        "vcpus": cpus_per_cell * 2,
        "memory_mb": sum(cell["memory_mb"] for cell in cells),
        "disk_gb": 500 if index % 2 else 1000,
        "numa_cells": cells,
    }
    if index % 4 == 0:
        pf = "0000:3b:00.0"
        devices = [{"address": pf, "vendor_id": "8086", "product_id": "1572", "class_code": "020000",
                    "numa_node": 0, "type": "type-PF", "driver": "i40e"}]
        for vf in range(4):
            devices.append({"address": f"0000:3b:02.{vf}", "vendor_id": "8086", "product_id": "154c",
                            "numa_node": 0, "type": "type-VF", "parent_address": pf})
        entry["pci_devices"] = devices
    if index % 10 == 0:
        entry["traits"] = ["CUSTOM_GPU_READY"]
    return entry


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=200, help="how many nodes (default 200)")
    parser.add_argument("--name-format", default="cn-{:04d}", help="hostname of node N (default cn-{:04d})")
    parser.add_argument("--out", help="file to write (default: standard output)")
    args = parser.parse_args()
    if args.nodes < 1:
        parser.error("--nodes must be at least 1")
    document = json.dumps({"nodes": [node(i, args.name_format) for i in range(1, args.nodes + 1)]}, indent=1)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(document + "\n")
    else:
        sys.stdout.write(document + "\n")


if __name__ == "__main__":
    main()
