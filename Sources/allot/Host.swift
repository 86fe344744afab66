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
        let topology = try inventory.topology.map {
            try JSONSerialization.jsonObject(with: JSONEncoder().encode($0)) as? [String: Any] ?? [:]
        }
        if json {
            var object: [String: Any] = ["inventories": inventory.inventories.mapValues { ["total": $0.total] }]
            object["topology"] = topology ?? NSNull()
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("RESOURCE CLASS  TOTAL")
        for (name, inventory) in inventory.inventories.sorted(by: { $0.key < $1.key }) {
            print(name.padding(toLength: 16, withPad: " ", startingAt: 0) + String(inventory.total))
        }
        for line in TopologyText.lines(topology) { print(line) }
    }
}
