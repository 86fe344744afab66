import AllotCore
import AllotTracker
import ArgumentParser
import Foundation

/// `allot host`: what a host driver reads off this machine (the inventory an agent would report): the Linux
/// driver's `/proc` and `/sys`, or the libvirt driver's hypervisor.
struct Host: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the resources a host driver finds on this machine (CPUs, memory, disk, NUMA cells, PCI devices; with libvirt also CPU traits and running guests).")

    enum DriverChoice: String, ExpressibleByArgument, CaseIterable { case linux, libvirt }

    @Option(help: "Host driver: 'linux' (/proc and /sys) or 'libvirt' (the hypervisor at --libvirt-uri).")
    var driver: DriverChoice = .linux

    @OptionGroup var libvirt: LibvirtOptions

    @Option(help: "The directory holding instance disks; DISK_GB is the size of its file system (env ALLOT_INSTANCES_PATH).")
    var instancesPath: String = env("ALLOT_INSTANCES_PATH") ?? "."

    @Option(help: "Read /proc and /sys under this directory instead of / (for inspecting a copy of another machine's files).")
    var root: String = ""

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() async throws {
        var report: LibvirtHostDriver.Report?
        let inventory: HostInventory
        do {
            switch driver {
            case .linux:
                inventory = try LinuxHostDriver(root: root, instancesPath: instancesPath).discover()
            case .libvirt:
                let found = try await LibvirtHostDriver(uri: libvirt.libvirtUri, instancesPath: instancesPath, events: false).report()
                report = found
                switch found.node.resources {
                case .success(.host(let host)): inventory = host
                case .success(.baremetal): throw HostDriverError.invalid(field: "libvirt", reason: "not a host")
                case .failure(let error): throw error
                }
            }
        } catch let error as HostDriverError {
            throw ValidationError("host discovery failed: \(error)")
        }
        if json {
            // `{"inventories": {CLASS: {"total": N}}, "topology": {"numa_cells": …, "pci_devices": …} or null}`, and
            // with libvirt `"hostname"`, `"traits"`, `"cpu"` and `"running"` (uuid → name, memory_mb, vcpus).
            var fields: [String: JSONValue] = [
                "inventories": .sortedObject(inventory.inventories.mapValues { .object(["total": .int($0.total)]) }),
                "topology": try inventory.topology.map { try JSONCoding.value(of: $0) } ?? .null,
            ]
            if let report {
                fields["hostname"] = .string(report.node.hostname)
                fields["traits"] = .array(report.node.traits.sorted().map { .string($0) })
                let cpu = report.capabilities
                fields["cpu"] = .sortedObject([
                    "arch": cpu?.arch.map(JSONValue.string) ?? .null, "model": cpu?.model.map(JSONValue.string) ?? .null,
                    "vendor": cpu?.vendor.map(JSONValue.string) ?? .null,
                    "features": .array((cpu?.features ?? []).map { .string($0) }),
                ])
                fields["running"] = .sortedObject(Dictionary(
                    report.guests.map { guest in
                        (guest.uuid, JSONValue.sortedObject([
                            "name": .string(guest.name), "memory_mb": .int(guest.memoryKiB / 1024), "vcpus": .int(guest.vcpus),
                        ]))
                    }, uniquingKeysWith: { first, _ in first }))
                if let problem = report.deviceProblem { fields["pci_devices_problem"] = .string(problem) }
                if let problem = report.cpuExpansionProblem { fields["cpu_features_problem"] = .string(problem) }
            }
            print(String(decoding: try JSONCoding.encode(JSONValue.sortedObject(fields), sortedKeys: true), as: UTF8.self))
            return
        }
        if let report { print("HOST \(report.node.hostname) (libvirt \(libvirt.libvirtUri))") }
        print("RESOURCE CLASS  TOTAL")
        for (name, inventory) in inventory.inventories.sorted(by: { $0.key < $1.key }) {
            print(name.padding(toLength: 16, withPad: " ", startingAt: 0) + String(inventory.total))
        }
        for line in TopologyText.lines(inventory.topology) { print(line) }
        guard let report else { return }
        if let problem = report.deviceProblem { print("PCI devices not listed: \(problem)") }
        if let problem = report.cpuExpansionProblem { print("CPU model not expanded into features: \(problem)") }
        if let cpu = report.capabilities {
            print("CPU \([cpu.arch, cpu.vendor, cpu.model].compactMap { $0 }.joined(separator: " "))")
        }
        print("TRAITS " + (report.node.traits.isEmpty ? "(none)" : report.node.traits.sorted().joined(separator: " ")))
        if report.guests.isEmpty { print("no running guests") }
        for guest in report.guests.sorted(by: { $0.name < $1.name }) {
            print("GUEST \(guest.uuid) \(guest.name): \(guest.vcpus) vCPUs, \(guest.memoryKiB / 1024) MiB")
        }
    }
}
