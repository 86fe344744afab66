import AllotCore
import AllotTracker
import AllotStore
import Foundation
import Logging
import Synchronization
import Testing

/// Fixtures under `Fixtures/libvirt`, read through `#filePath` (the directory is excluded from the target).
enum LibvirtFixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/libvirt")

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    static func text(_ name: String) throws -> String {
        try String(contentsOfFile: path(name), encoding: .utf8)
    }
}

/// The libvirt driver's parsers on XML documents, and how it makes a node out of libvirt's answers.
@Suite struct LibvirtParserTests {
    @Test func capabilitiesGiveCellsSiblingsPagesAndCPU() throws {
        let caps = try LibvirtCapabilities.parse(try LibvirtFixture.text("capabilities-2socket.xml"))
        #expect(caps.arch == "x86_64")
        #expect(caps.model == "Skylake-Server-IBRS")
        #expect(caps.vendor == "Intel")
        #expect(caps.features == ["ss", "vmx", "avx2", "sse4.2", "pdpe1gb", "avx512-vpopcntdq"])
        #expect(caps.cells == [
            NUMACell(
                id: 0, cpus: [0, 1, 2, 3], siblings: [[0, 2], [1, 3]], memoryMB: 16384, pages: [2048: 1024, 1_048_576: 2],
                socket: 0),
            NUMACell(id: 1, cpus: [4, 5, 6, 7], siblings: [[4, 5], [6, 7]], memoryMB: 16384, pages: [:], socket: 1),
        ])
        #expect(HostTopology(cells: caps.cells).problem == nil)
    }

    @Test func cpuFeaturesMapToTraitsAsNovaDoes() throws {
        let caps = try LibvirtCapabilities.parse(try LibvirtFixture.text("capabilities-2socket.xml"))
        #expect(LibvirtCPUTraits.traits(features: caps.features) == [
            "HW_CPU_X86_VMX", "HW_CPU_X86_INTEL_VMX", "HW_CPU_X86_AVX2", "HW_CPU_X86_SSE42", "HW_CPU_X86_AVX512VPOPCNTDQ",
        ])
        #expect(LibvirtCPUTraits.traits(features: ["svm", "aes", "pclmuldq", "sha-ni", "bmi1", "fma"]) == [
            "HW_CPU_X86_SVM", "HW_CPU_X86_AMD_SVM", "HW_CPU_X86_AESNI", "HW_CPU_X86_CLMUL", "HW_CPU_X86_SHA", "HW_CPU_X86_BMI",
            "HW_CPU_X86_FMA3",
        ])
        // Every trait of the mapping is a standard os-traits name.
        for traits in LibvirtCPUTraits.mapping.values {
            for trait in traits { #expect(Trait.standardSet.contains(trait), "\(trait)") }
        }
        #expect(LibvirtCPUTraits.traits(features: ["pae", "nonpae", "ds"]).isEmpty)
    }

    @Test func aNamedCPUModelIsExpandedIntoFeaturesAsNovaDoes() throws {
        let caps = try LibvirtCapabilities.parse(try LibvirtFixture.text("capabilities-2socket.xml"))
        #expect(caps.needsFeatureExpansion)
        // The host <cpu> written back for virConnectBaselineCPU: same model and features.
        let cpu = try #require(caps.hostCPUXML)
        #expect(cpu.hasPrefix("<cpu>") && cpu.contains("<model>Skylake-Server-IBRS</model>"))
        #expect(try LibvirtCapabilities.cpuFeatures(cpu) == caps.features)
        // The expanded CPU's features replace the listed ones; disabled ones are not features.
        let expanded = """
            <cpu mode='custom' match='exact'><model fallback='forbid'>Skylake-Server-IBRS</model>
            <feature policy='require' name='avx512f'/><feature policy='require' name='aes'/>
            <feature policy='disable' name='avx2'/></cpu>
            """
        #expect(try LibvirtCapabilities.cpuFeatures(expanded) == ["avx512f", "aes"])
        var snapshot = try Self.snapshot()
        snapshot.expandedCPU = expanded
        let report = LibvirtHostDriver.report(snapshot, diskGB: { 1 })
        #expect(report.node.traits == ["HW_CPU_X86_AVX512F", "HW_CPU_X86_AESNI"])
        #expect(report.capabilities?.features == ["avx512f", "aes"])
        // No model (libvirt's test driver), or AArch64: the listed features as they are.
        let noModel = try LibvirtCapabilities.parse(
            "<capabilities><host><cpu><arch>x86_64</arch><feature name='vmx'/></cpu></host></capabilities>")
        #expect(!noModel.needsFeatureExpansion)
        let arm = try LibvirtCapabilities.parse(
            "<capabilities><host><cpu><arch>aarch64</arch><model>cortex-a72</model></cpu></host></capabilities>")
        #expect(!arm.needsFeatureExpansion)
    }

    @Test func malformedCapabilitiesAreErrors() {
        #expect(throws: LibvirtXMLError.self) { try LibvirtCapabilities.parse("<capabilities><host>") }
        #expect(throws: LibvirtXMLError.self) { try LibvirtCapabilities.parse("not xml at all") }
        #expect(throws: LibvirtXMLError.self) { try LibvirtCapabilities.parse("<domain/>") }
        // `<cpus num>` says 3, two are listed.
        let short = """
            <capabilities><host><topology><cells num='1'><cell id='0'><memory unit='KiB'>1048576</memory>
            <cpus num='3'><cpu id='0'/><cpu id='1'/></cpus></cell></cells></topology></host></capabilities>
            """
        #expect(throws: LibvirtXMLError.self) { try LibvirtCapabilities.parse(short) }
        let badSiblings = """
            <capabilities><host><topology><cells num='1'><cell id='0'>
            <cpus num='1'><cpu id='0' siblings='zero'/></cpus></cell></cells></topology></host></capabilities>
            """
        #expect(throws: LibvirtXMLError.self) { try LibvirtCapabilities.parse(badSiblings) }
    }

    @Test func nodeDevicesGivePFsVFsAndNothingForOtherDevices() throws {
        let pf = try LibvirtNodeDevice.parse(try LibvirtFixture.text("nodedev-pf.xml"))
        #expect(pf == PCIDevice(
            address: "0000:3b:00.0", vendorID: "8086", productID: "10fb", classCode: "020000", numaNode: 1, kind: .pf,
            driver: "ixgbe"))
        let vf = try LibvirtNodeDevice.parse(try LibvirtFixture.text("nodedev-vf.xml"))
        #expect(vf == PCIDevice(
            address: "0000:3b:10.2", vendorID: "8086", productID: "10ed", classCode: "020000", numaNode: nil, kind: .vf,
            parentAddress: "0000:3b:00.0", driver: "vfio-pci"))
        #expect(try LibvirtNodeDevice.parse(try LibvirtFixture.text("nodedev-net.xml")) == nil)
        let plain = """
            <device><name>pci_0000_00_1f_3</name><capability type='pci'><class>0x040300</class><domain>0</domain>
            <bus>0</bus><slot>31</slot><function>3</function><product id='0xa348'/><vendor id='0x8086'/></capability></device>
            """
        #expect(try LibvirtNodeDevice.parse(plain) == PCIDevice(
            address: "0000:00:1f.3", vendorID: "8086", productID: "a348", classCode: "040300"))
        #expect(throws: LibvirtXMLError.self) {
            try LibvirtNodeDevice.parse("<device><capability type='pci'><domain>0</domain></capability></device>")
        }
    }

    @Test func domainGivesVCPUsMemoryAndPinning() throws {
        let domain = try LibvirtDomain.parse(try LibvirtFixture.text("domain-pinned.xml"))
        #expect(domain.name == "instance-0000002a")
        #expect(domain.uuid == "5a4b4a5c-9e1f-4e2b-9b5d-3c8e2f1a0b7d")
        #expect(domain.vcpus == 4)
        #expect(domain.memoryMB == 4096)
        #expect(domain.pinning == [0: [4], 1: [5], 2: [6, 7], 3: [0, 2, 3]])
    }

    static func snapshot(
        cpus: Int = 8, memoryKiB: Int = 32 << 20, capabilities: String? = nil, devices: [String]? = [],
        guests: [LibvirtSnapshot.Guest] = []
    ) throws -> LibvirtSnapshot {
        LibvirtSnapshot(
            hostname: "kvm-1", cpus: cpus, memoryKiB: memoryKiB,
            capabilities: try capabilities ?? LibvirtFixture.text("capabilities-2socket.xml"), devices: devices,
            guests: guests)
    }

    @Test func aSnapshotMakesAHostNodeWithDevicesTraitsAndGuests() throws {
        // A mocked node-device listing: the PF, its VF and a network interface (not PCI).
        let devices = try ["nodedev-vf.xml", "nodedev-net.xml", "nodedev-pf.xml"].map(LibvirtFixture.text)
        let guest = LibvirtSnapshot.Guest(uuid: "5a4b4a5c-9e1f-4e2b-9b5d-3c8e2f1a0b7d", name: "i", memoryKiB: 4 << 20, vcpus: 4)
        let report = LibvirtHostDriver.report(try Self.snapshot(devices: devices, guests: [guest]), diskGB: { 100 })
        let node = report.node
        #expect(node.hostname == "kvm-1")
        #expect(node.running == [guest.uuid])
        #expect(node.guestMemoryMB == [guest.uuid: 4096])
        #expect(node.traits.contains("HW_CPU_X86_AVX2"))
        guard case .success(.host(let inventory)) = node.resources else {
            Issue.record("no host: \(node.resources)")
            return
        }
        #expect(inventory.vcpus == 8)
        #expect(inventory.memoryMB == 32768)
        #expect(inventory.diskGB == 100)
        #expect(inventory.cells.count == 2)
        #expect(inventory.devices.map(\.address) == ["0000:3b:00.0", "0000:3b:10.2"])
        #expect(inventory.devices.map(\.kind) == [.pf, .vf])
    }

    @Test func nonsenseAnswersFailTheNodeWithAReason() throws {
        func failure(_ snapshot: LibvirtSnapshot) -> HostDriverError? {
            if case .failure(let error) = LibvirtHostDriver.report(snapshot, diskGB: { 10 }).node.resources { return error }
            return nil
        }
        // No CPUs.
        #expect(failure(try Self.snapshot(cpus: 0, capabilities: "<capabilities><host/></capabilities>")) != nil)
        // No memory.
        #expect(failure(try Self.snapshot(memoryKiB: 0)) != nil)
        // The cells hold 8 CPUs, the node says 12.
        let sum = failure(try Self.snapshot(cpus: 12))
        #expect(sum?.description.contains("8 CPUs") == true, "\(String(describing: sum))")
        // A CPU in two cells.
        let twice = """
            <capabilities><host><topology><cells num='2'>
            <cell id='0'><memory>1048576</memory><cpus num='2'><cpu id='0'/><cpu id='1'/></cpus></cell>
            <cell id='1'><memory>1048576</memory><cpus num='2'><cpu id='1'/><cpu id='2'/></cpus></cell>
            </cells></topology></host></capabilities>
            """
        #expect(failure(try Self.snapshot(cpus: 4, capabilities: twice)) != nil)
        // Unparsable capabilities, unparsable device.
        let xml = failure(try Self.snapshot(capabilities: "<capabilities><host>"))
        #expect(xml?.description.contains("libvirt capabilities") == true)
        #expect(failure(try Self.snapshot(devices: ["<device><capability type='pci'>"])) != nil)
        // Negative or nonsense cell memory.
        let negative = """
            <capabilities><host><topology><cells num='1'>
            <cell id='0'><memory>-5</memory><cpus num='1'><cpu id='0'/></cpus></cell>
            </cells></topology></host></capabilities>
            """
        #expect(failure(try Self.snapshot(cpus: 1, capabilities: negative)) != nil)
        // Huge pages larger than the cell.
        let pages = """
            <capabilities><host><topology><cells num='1'>
            <cell id='0'><memory>1048576</memory><pages size='4'>0</pages><pages size='1048576'>4</pages>
            <cpus num='1'><cpu id='0'/></cpus></cell></cells></topology></host></capabilities>
            """
        #expect(failure(try Self.snapshot(cpus: 1, capabilities: pages)) != nil)
    }
}

/// The driver against libvirt's built-in test driver. `test:///default` keeps one state per process, shared by
/// every connection, so these tests run one after another.
@Suite(.serialized) struct LibvirtTestDriverTests {
    static let defaultGuest = "6695eb01-f6a4-8304-79aa-97f2502e193f"

    static func inventory(_ node: DriverNode) -> HostInventory? {
        if case .success(.host(let inventory)) = node.resources { return inventory }
        Issue.record("not a host: \(node.resources)")
        return nil
    }

    @Test func defaultTestDriverIsSixteenCPUsInTwoCells() async throws {
        let driver = LibvirtHostDriver(uri: "test:///default", instancesPath: "/", events: false)
        let nodes = try await driver.nodes()
        #expect(nodes.count == 1)
        let node = try #require(nodes.first)
        #expect(driver.name == "libvirt")
        #expect(!node.hostname.isEmpty)
        let inventory = try #require(Self.inventory(node))
        #expect(inventory.vcpus == 16)
        #expect(inventory.memoryMB == 3072)
        #expect(inventory.cells.map(\.cpus) == [Array(0...7), Array(8...15)])
        #expect(inventory.cells.map(\.memoryMB) == [2048, 4096])
        #expect(inventory.cells.map(\.socket) == [0, 1])
        #expect(node.running == [Self.defaultGuest])
        #expect(node.guestMemoryMB == [Self.defaultGuest: 2048])
        // The test driver's host CPU lists no <feature name=…>: no CPU traits.
        #expect(node.traits.isEmpty)
    }

    @Test func customTestDriverFileWithGuestsAndDevices() async throws {
        let uri = "test://" + LibvirtFixture.path("testnode.xml")
        let driver = LibvirtHostDriver(uri: uri, instancesPath: "/", events: false)
        let report = try await driver.report()
        let node = report.node
        let inventory = try #require(Self.inventory(node))
        #expect(inventory.vcpus == 8)
        #expect(inventory.memoryMB == 8000)
        // libvirt 9.0's test driver reports `<cells num='0'>` for a custom file.
        #expect(inventory.cells.isEmpty)
        #expect(node.running == [
            "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222",
            "33333333-3333-4333-8333-333333333333",
        ])
        #expect(node.guestMemoryMB == [
            "11111111-1111-4111-8111-111111111111": 1024, "22222222-2222-4222-8222-222222222222": 2048,
            "33333333-3333-4333-8333-333333333333": 512,
        ])
        // The node devices, listed through virNodeListDevices when virConnectListAllNodeDevices is refused; the
        // test driver drops `<driver>` and there are no cells for the NUMA node to point at.
        #expect(report.deviceProblem == nil, "\(report.deviceProblem ?? "")")
        #expect(inventory.devices == [
            PCIDevice(address: "0000:3b:00.0", vendorID: "8086", productID: "10fb", classCode: "020000", kind: .pf),
            PCIDevice(
                address: "0000:3b:10.0", vendorID: "8086", productID: "10ed", classCode: "020000", kind: .vf,
                parentAddress: "0000:3b:00.0"),
        ])
        // vCPU pinning through the domain XML.
        let xml = try await driver.connection.domainXML(uuid: "22222222-2222-4222-8222-222222222222")
        #expect(try LibvirtDomain.parse(xml).pinning == [0: [2], 1: [3]])
    }

    /// Counts the change signals of a driver as they arrive.
    final class Changes: Sendable {
        private let task: Task<Void, Never>

        init(_ stream: AsyncStream<Void>?) {
            let seen = Counter()
            self.counter = seen
            let signals = stream ?? AsyncStream(Void.self) { $0.finish() }
            task = Task { for await _ in signals { seen.value.add(1, ordering: .relaxed) } }
        }

        private let counter: Counter
        final class Counter: Sendable { let value = Atomic<Int>(0) }

        var count: Int { counter.value.load(ordering: .relaxed) }

        /// Waits until more than `count` signals have arrived; `false` after a minute rather than hanging the run.
        func wait(beyond count: Int) async -> Bool {
            for _ in 0..<600 {
                if self.count > count { return true }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return false
        }

        deinit { task.cancel() }
    }

    @Test func aGuestStartedElsewhereShowsUpAndGoesWithLifecycleEvents() async throws {
        let driver = LibvirtHostDriver(uri: "test:///default", instancesPath: "/")
        let changes = Changes(driver.changes)
        let before = try await driver.nodes()
        #expect(before.first?.running == [Self.defaultGuest])
        let admin = LibvirtConnection(uri: "test:///default", readOnly: false)
        let uuid = try await admin.createGuest(xml: """
            <domain type='test'><name>allot-probe</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
            <os><type>hvm</type></os></domain>
            """)
        #expect(await changes.wait(beyond: 0))
        let started = try await driver.nodes()
        #expect(started.first?.running == [Self.defaultGuest, uuid])
        #expect(started.first?.guestMemoryMB[uuid] == 256)
        let afterStart = changes.count
        try await admin.destroyGuest(uuid: uuid)
        #expect(await changes.wait(beyond: afterStart))
        let stopped = try await driver.nodes()
        #expect(stopped.first?.running == [Self.defaultGuest])
        #expect(driver.connection.lifecycleEvents >= 2)
    }

    @Test func aDroppedConnectionIsReopenedOnTheNextCall() async throws {
        let driver = LibvirtHostDriver(uri: "test:///default", instancesPath: "/")
        _ = try await driver.nodes()
        #expect(await driver.connection.openCount() == 1)
        driver.connection.dropConnectionForTesting()
        let nodes = try await driver.nodes()
        #expect(await driver.connection.openCount() == 2)
        #expect(nodes.first?.running == [Self.defaultGuest])
        // Events still arrive on the new connection.
        let changes = Changes(driver.changes)
        let admin = LibvirtConnection(uri: "test:///default", readOnly: false)
        let uuid = try await admin.createGuest(xml: """
            <domain type='test'><name>allot-probe-2</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
            <os><type>hvm</type></os></domain>
            """)
        #expect(await changes.wait(beyond: 0))
        try await admin.destroyGuest(uuid: uuid)
    }

    @Test func aLifecycleEventMakesTheTrackerAudit() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("allot-libvirt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let database = try await Database.open(try await TrackerBackend.sqlite.location(for: directory), logger: logger)
        let ledger = SQLComputeLedger(database: database, logger: logger, now: { Date().timeIntervalSince1970 })
        let events = EventBus(logger: logger)
        let driver = LibvirtHostDriver(uri: "test:///default", instancesPath: "/")
        // No periodic audits: only the start-up one and those the lifecycle events call for.
        let tracker = Tracker(
            configuration: TrackerConfiguration(host: "libvirt-host", auditInterval: 0), driver: driver, ledger: ledger,
            events: events, logger: logger)
        let first = try await tracker.start()
        #expect(first.nodes == 1)
        #expect(first.added.count == 1)
        // The test driver's own guest is unknown to the ledger: an orphan.
        #expect(first.orphans.values.flatMap { $0 } == [Self.defaultGuest])
        let audits = Task { await tracker.runAudits() }
        defer { audits.cancel() }
        let admin = LibvirtConnection(uri: "test:///default", readOnly: false)
        let uuid = try await admin.createGuest(xml: """
            <domain type='test'><name>allot-orphan</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
            <os><type>hvm</type></os></domain>
            """)
        // An audit pass that saw both guests, without waiting for any period.
        var seen = false
        for _ in 0..<600 where !seen {
            seen = events.recent().contains { $0.type == "audit.pass" && $0.fields["orphans"] == .int(2) }
            if !seen { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(seen)
        try await admin.destroyGuest(uuid: uuid)
    }

    @Test func aLibvirtErrorTellsAConnectionLoss() {
        // VIR_ERR_NO_CONNECT, VIR_ERR_INVALID_CONN, VIR_ERR_SYSTEM_ERROR, VIR_ERR_RPC; not VIR_ERR_NO_DOMAIN.
        for code: Int32 in [5, 6, 38, 39] { #expect(LibvirtError(call: "x", code: code, message: "").isConnectionLost) }
        #expect(!LibvirtError(call: "x", code: 42, message: "").isConnectionLost)
    }

    @Test func theTestDriverExpandsACPUModelIntoTraits() async throws {
        let connection = LibvirtConnection(uri: "test:///default")
        let cpu = "<cpu><arch>x86_64</arch><model>Haswell-noTSX</model><vendor>Intel</vendor><feature name='vmx'/></cpu>"
        let features = try LibvirtCapabilities.cpuFeatures(try await connection.expandedCPU(xml: cpu))
        let traits = LibvirtCPUTraits.traits(features: features)
        for trait in [
            "HW_CPU_X86_AVX2", "HW_CPU_X86_FMA3", "HW_CPU_X86_BMI", "HW_CPU_X86_BMI2", "HW_CPU_X86_AESNI",
            "HW_CPU_X86_CLMUL", "HW_CPU_X86_SSE42", "HW_CPU_X86_VMX", "HW_CPU_X86_INTEL_VMX",
        ] {
            #expect(traits.contains(trait), "\(trait)")
        }
        #expect(!traits.contains("HW_CPU_X86_AVX512F"))
    }

    @Test func metricsComeFromNodeCPUStats() async {
        let driver = LibvirtHostDriver(uri: "test:///default", instancesPath: "/", events: false)
        let metrics = await driver.metrics()
        for key in ["cpu.user.time", "cpu.kernel.time", "cpu.idle.time", "cpu.percent", "cpu.frequency"] {
            #expect(metrics[key] != nil, "\(key) in \(metrics)")
        }
        #expect(metrics["cpu.frequency"] == 1400)
        let percent = metrics["cpu.percent"] ?? -1
        #expect(percent >= 0 && percent <= 100)
    }

    @Test func anUnreachableURIIsAnError() async {
        let driver = LibvirtHostDriver(uri: "test:///nonexistent/file.xml", instancesPath: "/", events: false)
        await #expect(throws: HostDriverError.self) { try await driver.nodes() }
    }
}
