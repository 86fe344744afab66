import AllotCore
import AllotTracker
import ArgumentParser
import Foundation

/// `allot host`: what the Linux host driver reads off this machine (the inventory an agent would report).
struct Host: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the resources the Linux host driver finds on this machine (CPUs, memory, disk, NUMA cells, PCI devices).")

    @Option(help: "The directory holding instance disks; DISK_GB is the size of its file system (env ALLOT_INSTANCES_PATH).")
    var instancesPath: String = env("ALLOT_INSTANCES_PATH") ?? "."

    @Option(help: "Read /proc and /sys under this directory instead of / (for inspecting a copy of another machine's files).")
    var root: String = ""

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let inventory: HostInventory
        do {
            inventory = try LinuxHostDriver(root: root, instancesPath: instancesPath).discover()
        } catch let error as HostDriverError {
            throw ValidationError("host discovery failed: \(error)")
        }
        if json {
            // `{"inventories": {CLASS: {"total": N}}, "topology": {"numa_cells": …, "pci_devices": …} or null}`.
            let object = JSONValue.object([
                "inventories": .sortedObject(inventory.inventories.mapValues { .object(["total": .int($0.total)]) }),
                "topology": try inventory.topology.map { try JSONCoding.value(of: $0) } ?? .null,
            ])
            print(String(decoding: try JSONCoding.encode(object, sortedKeys: true), as: UTF8.self))
            return
        }
        print("RESOURCE CLASS  TOTAL")
        for (name, inventory) in inventory.inventories.sorted(by: { $0.key < $1.key }) {
            print(name.padding(toLength: 16, withPad: " ", startingAt: 0) + String(inventory.total))
        }
        for line in TopologyText.lines(inventory.topology) { print(line) }
    }
}
