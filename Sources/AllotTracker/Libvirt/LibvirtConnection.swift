import AllotCore
import CLibvirt
import Foundation
import Synchronization

/// A libvirt call failed; `message` is libvirt's own (`virGetLastErrorMessage`).
public struct LibvirtError: Error, Equatable, CustomStringConvertible {
    public var call: String
    public var code: Int32
    public var message: String
    public var description: String { "\(call): \(message)" }

    /// Whether the error means the connection is gone (the next call re-opens it).
    public var isConnectionLost: Bool { Self.connectionLostCodes.contains(code) }

    static let connectionLostCodes: Set<Int32> = [
        Int32(VIR_ERR_NO_CONNECT.rawValue), Int32(VIR_ERR_SYSTEM_ERROR.rawValue), Int32(VIR_ERR_RPC.rawValue),
        Int32(VIR_ERR_INVALID_CONN.rawValue),
    ]

    public init(call: String, code: Int32, message: String) {
        self.call = call
        self.code = code
        self.message = message
    }

    /// The calling thread's last libvirt error, for `call`.
    static func last(_ call: String) -> LibvirtError {
        let code = virGetLastError().map { $0.pointee.code } ?? 0
        let message = virGetLastErrorMessage().map { String(cString: $0) } ?? "unknown libvirt error"
        return LibvirtError(call: call, code: code, message: message)
    }
}

/// What one pass reads from libvirt (the raw answers; ``LibvirtHostDriver`` makes sense of them).
public struct LibvirtSnapshot: Sendable {
    public struct Guest: Sendable, Equatable {
        public var uuid: String
        public var name: String
        /// `virDomainGetInfo`'s memory (KiB).
        public var memoryKiB: Int
        public var vcpus: Int

        public init(uuid: String, name: String, memoryKiB: Int, vcpus: Int) {
            self.uuid = uuid
            self.name = name
            self.memoryKiB = memoryKiB
            self.vcpus = vcpus
        }
    }

    public var hostname: String
    /// `virNodeGetInfo`: CPUs and memory (KiB).
    public var cpus: Int
    public var memoryKiB: Int
    public var capabilities: String
    /// The XML of each PCI node device; `nil` when the driver cannot list node devices (``deviceListingProblem``).
    public var devices: [String]?
    public var deviceListingProblem: String?
    /// The active domains.
    public var guests: [Guest]
    /// The host CPU with every feature of its model listed (`virConnectBaselineCPU` with
    /// `VIR_CONNECT_BASELINE_CPU_EXPAND_FEATURES`), as Nova reads it; `nil` when the capabilities name no model
    /// (or on AArch64), or the driver does not support it (`cpuExpansionProblem`).
    public var expandedCPU: String?
    public var cpuExpansionProblem: String?

    public init(
        hostname: String, cpus: Int, memoryKiB: Int, capabilities: String, devices: [String]?,
        deviceListingProblem: String? = nil, guests: [Guest], expandedCPU: String? = nil, cpuExpansionProblem: String? = nil
    ) {
        self.expandedCPU = expandedCPU
        self.cpuExpansionProblem = cpuExpansionProblem
        self.hostname = hostname
        self.cpus = cpus
        self.memoryKiB = memoryKiB
        self.capabilities = capabilities
        self.devices = devices
        self.deviceListingProblem = deviceListingProblem
        self.guests = guests
    }
}

/// Where lifecycle events go and how a connection tells it was closed under us. The C callbacks get it as their
/// opaque pointer (retained once per registration, released by libvirt's free callback).
final class LibvirtEventSink: Sendable {
    let changes: AsyncStream<Void>.Continuation?
    /// Set by the close callback: the connection is gone, re-open on the next call.
    let closed = Atomic<Bool>(false)
    /// Lifecycle events received (for tests and logs).
    let events = Atomic<Int>(0)

    init(changes: AsyncStream<Void>.Continuation?) { self.changes = changes }
}

/// `virConnectDomainEventCallback` for lifecycle events: one signal on the sink's stream.
private func lifecycleCallback(
    _ connection: OpaquePointer?, _ domain: OpaquePointer?, _ event: Int32, _ detail: Int32, _ opaque: UnsafeMutableRawPointer?
) -> Int32 {
    guard let opaque else { return 0 }
    let sink = Unmanaged<LibvirtEventSink>.fromOpaque(opaque).takeUnretainedValue()
    sink.events.add(1, ordering: .relaxed)
    sink.changes?.yield()
    return 0
}

/// `virConnectCloseFunc`: the connection dropped (the daemon went away, a keepalive timed out).
private func closeCallback(_ connection: OpaquePointer?, _ reason: Int32, _ opaque: UnsafeMutableRawPointer?) {
    guard let opaque else { return }
    Unmanaged<LibvirtEventSink>.fromOpaque(opaque).takeUnretainedValue().closed.store(true, ordering: .relaxed)
}

/// `virFreeCallback`: libvirt is done with a registration's opaque pointer.
private func releaseSink(_ opaque: UnsafeMutableRawPointer?) {
    guard let opaque else { return }
    Unmanaged<LibvirtEventSink>.fromOpaque(opaque).release()
}

private func quietErrors(_ userData: UnsafeMutableRawPointer?, _ error: UnsafeMutablePointer<virError>?) {}

/// libvirt's default event loop, registered once per process before the first connection is opened and run by a
/// thread of its own (lifecycle events and close callbacks are delivered there). Also silences libvirt's default
/// error printer: errors are read with `virGetLastError` and reported by the caller.
private let eventLoop: Bool = {
    virSetErrorFunc(nil, quietErrors)
    guard virEventRegisterDefaultImpl() == 0 else { return false }
    let thread = Thread {
        while true {
            if virEventRunDefaultImpl() != 0 { Thread.sleep(forTimeInterval: 0.1) }
        }
    }
    thread.name = "libvirt-events"
    thread.start()
    return true
}()

/// One libvirt connection, kept open and re-opened after it drops (the close callback fired, `virConnectIsAlive`
/// says no, or a call failed with a connection error). Every libvirt call runs on a ``DedicatedThread`` of its own
/// (named `libvirt`), never on Swift's cooperative pool: the public methods run the actor's work under that
/// thread's task-executor preference, which a default actor honours.
public actor LibvirtConnection {
    public nonisolated let uri: String
    public nonisolated let readOnly: Bool
    private nonisolated let thread = DedicatedThread(name: "libvirt")
    private nonisolated let sink: LibvirtEventSink
    /// The open connection (`virConnectPtr`), its lifecycle callback id, and how many times it was opened.
    private var connection: OpaquePointer?
    private var callbackID: Int32 = -1
    private var closeRegistered = false
    private var opens = 0

    /// - Parameters:
    ///   - readOnly: `virConnectOpenReadOnly` (enough for reporting) instead of `virConnectOpen`.
    ///   - changes: where lifecycle events are signalled; `nil` registers no event callback.
    public init(uri: String, readOnly: Bool = true, changes: AsyncStream<Void>.Continuation? = nil) {
        self.uri = uri
        self.readOnly = readOnly
        self.sink = LibvirtEventSink(changes: changes)
    }

    /// Closes the connection. Isolated (it reads the actor's state), so it runs on the actor's executor: the only
    /// libvirt call made off the libvirt thread, once, when the connection object goes away.
    isolated deinit {
        if let connection {
            if callbackID >= 0 { _ = virConnectDomainEventDeregisterAny(connection, callbackID) }
            if closeRegistered { _ = virConnectUnregisterCloseCallback(connection, closeCallback) }
            _ = virConnectClose(connection)
        }
        thread.stop()
    }

    /// Runs `body` on the libvirt thread with the connection open.
    private nonisolated func onThread<T: Sendable>(
        _ body: @escaping @Sendable (isolated LibvirtConnection) throws(LibvirtError) -> T
    ) async throws(LibvirtError) -> T {
        let result: Result<T, LibvirtError> = await withTaskExecutorPreference(thread) {
            await self.run(body)
        }
        return try result.get()
    }

    private func run<T: Sendable>(
        _ body: @Sendable (isolated LibvirtConnection) throws(LibvirtError) -> T
    ) -> Result<T, LibvirtError> {
        do throws(LibvirtError) {
            return .success(try body(self))
        } catch {
            if error.isConnectionLost { drop() }
            return .failure(error)
        }
    }

    /// The open connection, opening (or re-opening) it first when needed.
    private func open() throws(LibvirtError) -> OpaquePointer {
        if let connection {
            if !sink.closed.load(ordering: .relaxed), virConnectIsAlive(connection) == 1 { return connection }
            drop()
        }
        _ = eventLoop
        sink.closed.store(false, ordering: .relaxed)
        guard let opened = readOnly ? virConnectOpenReadOnly(uri) : virConnectOpen(uri) else {
            throw LibvirtError.last("virConnectOpen(\(uri))")
        }
        connection = opened
        opens += 1
        let retained = Unmanaged.passRetained(sink).toOpaque()
        if virConnectRegisterCloseCallback(opened, closeCallback, retained, releaseSink) == 0 {
            closeRegistered = true
        } else {
            Unmanaged<LibvirtEventSink>.fromOpaque(retained).release()
        }
        if sink.changes != nil {
            let opaque = Unmanaged.passRetained(sink).toOpaque()
            // The lifecycle event's callback has more arguments than the generic type the registration takes (C's
            // VIR_DOMAIN_EVENT_CALLBACK cast).
            let typed: @convention(c) (OpaquePointer?, OpaquePointer?, Int32, Int32, UnsafeMutableRawPointer?) -> Int32 =
                lifecycleCallback
            let callback = unsafeBitCast(typed, to: virConnectDomainEventGenericCallback.self)
            callbackID = virConnectDomainEventRegisterAny(
                opened, nil, Int32(VIR_DOMAIN_EVENT_ID_LIFECYCLE.rawValue), callback, opaque, releaseSink)
            if callbackID < 0 {
                let error = LibvirtError.last("virConnectDomainEventRegisterAny")
                Unmanaged<LibvirtEventSink>.fromOpaque(opaque).release()
                drop()
                throw error
            }
        }
        return opened
    }

    /// Forgets the connection (deregistering its callbacks and closing it); the next call opens a new one.
    private func drop() {
        guard let old = connection else { return }
        if callbackID >= 0 { _ = virConnectDomainEventDeregisterAny(old, callbackID) }
        if closeRegistered { _ = virConnectUnregisterCloseCallback(old, closeCallback) }
        _ = virConnectClose(old)
        connection = nil
        callbackID = -1
        closeRegistered = false
    }

    // MARK: - Calls

    /// Everything a pass needs, read in one go on the libvirt thread.
    public nonisolated func snapshot() async throws(LibvirtError) -> LibvirtSnapshot {
        try await onThread { connection throws(LibvirtError) in try connection.readSnapshot() }
    }

    private func readSnapshot() throws(LibvirtError) -> LibvirtSnapshot {
        let conn = try open()
        guard let name = virConnectGetHostname(conn) else { throw LibvirtError.last("virConnectGetHostname") }
        let hostname = String(cString: name)
        free(name)
        var info = virNodeInfo()
        guard virNodeGetInfo(conn, &info) == 0 else { throw LibvirtError.last("virNodeGetInfo") }
        guard let caps = virConnectGetCapabilities(conn) else { throw LibvirtError.last("virConnectGetCapabilities") }
        let capabilities = String(cString: caps)
        free(caps)
        var devices: [String]?
        var deviceProblem: String?
        do throws(LibvirtError) {
            devices = try pciDeviceXMLs(conn)
        } catch where !error.isConnectionLost {
            deviceProblem = error.description
        }
        // Nova expands the host CPU's features through its model; a driver that cannot is left with the listed ones.
        var expanded: String?
        var expansionProblem: String?
        if let caps = try? LibvirtCapabilities.parse(capabilities), caps.needsFeatureExpansion, let cpu = caps.hostCPUXML {
            do throws(LibvirtError) {
                expanded = try expandFeatures(conn, cpuXML: cpu)
            } catch where !error.isConnectionLost {
                expansionProblem = error.description
            }
        }
        return LibvirtSnapshot(
            hostname: hostname, cpus: Int(info.cpus), memoryKiB: Int(info.memory), capabilities: capabilities,
            devices: devices, deviceListingProblem: deviceProblem, guests: try activeGuests(conn), expandedCPU: expanded,
            cpuExpansionProblem: expansionProblem)
    }

    /// `virConnectBaselineCPU([cpuXML], VIR_CONNECT_BASELINE_CPU_EXPAND_FEATURES)`: the CPU with its model's features
    /// listed.
    private func expandFeatures(_ conn: OpaquePointer, cpuXML: String) throws(LibvirtError) -> String {
        let answer = cpuXML.withCString { text -> UnsafeMutablePointer<CChar>? in
            var list: [UnsafePointer<CChar>?] = [text]
            return virConnectBaselineCPU(conn, &list, 1, UInt32(VIR_CONNECT_BASELINE_CPU_EXPAND_FEATURES.rawValue))
        }
        guard let answer else { throw LibvirtError.last("virConnectBaselineCPU") }
        defer { free(answer) }
        return String(cString: answer)
    }

    /// Host CPU time (ns, all CPUs, since boot) by `virNodeGetCPUStats` field (`kernel`, `user`, `idle`, `iowait`)
    /// and the CPU frequency (`mhz`, from `virNodeGetInfo`).
    public nonisolated func cpuStats() async throws(LibvirtError) -> [String: Double] {
        try await onThread { connection throws(LibvirtError) in
            let conn = try connection.open()
            var count: Int32 = 0
            let all = Int32(VIR_NODE_CPU_STATS_ALL_CPUS.rawValue)
            guard virNodeGetCPUStats(conn, all, nil, &count, 0) == 0 else { throw LibvirtError.last("virNodeGetCPUStats") }
            var stats = [virNodeCPUStats](repeating: virNodeCPUStats(), count: Int(max(count, 0)))
            guard count > 0, virNodeGetCPUStats(conn, all, &stats, &count, 0) == 0 else {
                throw LibvirtError.last("virNodeGetCPUStats")
            }
            var result: [String: Double] = [:]
            for stat in stats.prefix(Int(count)) {
                let name = withUnsafeBytes(of: stat.field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                result[name] = Double(stat.value)
            }
            var info = virNodeInfo()
            if virNodeGetInfo(conn, &info) == 0 { result["mhz"] = Double(info.mhz) }
            return result
        }
    }

    /// The features of a host `<cpu>` document with its model expanded (what the driver does with the capabilities'
    /// CPU when it names a model).
    public nonisolated func expandedCPU(xml: String) async throws(LibvirtError) -> String {
        try await onThread { connection throws(LibvirtError) in
            try connection.expandFeatures(try connection.open(), cpuXML: xml)
        }
    }

    /// The XML of every PCI node device: `virConnectListAllNodeDevices` filtered to PCI devices, or, when the driver
    /// refuses that (the test driver rejects the flag), `virNodeListDevices(conn, "pci")` and a look-up by name.
    private func pciDeviceXMLs(_ conn: OpaquePointer) throws(LibvirtError) -> [String] {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        var handles: [OpaquePointer] = []
        let count = virConnectListAllNodeDevices(conn, &list, UInt32(VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV.rawValue))
        if count >= 0, let list {
            for index in 0..<Int(count) { if let device = list[index] { handles.append(device) } }
            free(list)
        } else {
            let first = LibvirtError.last("virConnectListAllNodeDevices")
            if first.isConnectionLost { throw first }
            let number = virNodeNumOfDevices(conn, "pci", 0)
            guard number >= 0 else { throw LibvirtError.last("virNodeNumOfDevices") }
            var names = [UnsafeMutablePointer<CChar>?](repeating: nil, count: Int(number))
            let listed = names.withUnsafeMutableBufferPointer { virNodeListDevices(conn, "pci", $0.baseAddress, number, 0) }
            guard listed >= 0 else { throw LibvirtError.last("virNodeListDevices") }
            defer { for name in names { free(name) } }
            for name in names.prefix(Int(listed)).compactMap({ $0 }) {
                guard let device = virNodeDeviceLookupByName(conn, name) else {
                    let error = LibvirtError.last("virNodeDeviceLookupByName")
                    for handle in handles { virNodeDeviceFree(handle) }
                    throw error
                }
                handles.append(device)
            }
        }
        defer { for handle in handles { virNodeDeviceFree(handle) } }
        var result: [String] = []
        for handle in handles {
            guard let xml = virNodeDeviceGetXMLDesc(handle, 0) else { throw LibvirtError.last("virNodeDeviceGetXMLDesc") }
            result.append(String(cString: xml))
            free(xml)
        }
        return result
    }

    private func activeGuests(_ conn: OpaquePointer) throws(LibvirtError) -> [LibvirtSnapshot.Guest] {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = virConnectListAllDomains(conn, &list, UInt32(VIR_CONNECT_LIST_DOMAINS_ACTIVE.rawValue))
        guard count >= 0, let list else { throw LibvirtError.last("virConnectListAllDomains") }
        defer {
            for index in 0..<Int(count) { if let domain = list[index] { virDomainFree(domain) } }
            free(list)
        }
        var guests: [LibvirtSnapshot.Guest] = []
        for index in 0..<Int(count) {
            guard let domain = list[index] else { continue }
            var uuid = [CChar](repeating: 0, count: 37)
            guard virDomainGetUUIDString(domain, &uuid) == 0 else { throw LibvirtError.last("virDomainGetUUIDString") }
            var info = virDomainInfo()
            guard virDomainGetInfo(domain, &info) == 0 else {
                let error = LibvirtError.last("virDomainGetInfo")
                // A guest that went away between the listing and this call is simply not running any more.
                if error.code == Int32(VIR_ERR_NO_DOMAIN.rawValue) { continue }
                throw error
            }
            let name = virDomainGetName(domain).map { String(cString: $0) } ?? ""
            guests.append(LibvirtSnapshot.Guest(
                uuid: Self.string(uuid).lowercased(), name: name, memoryKiB: Int(info.memory),
                vcpus: Int(info.nrVirtCpu)))
        }
        return guests
    }

    /// A NUL-terminated buffer libvirt filled.
    private nonisolated static func string(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The XML of the active domain `uuid` (for `allot host`: vCPU pinning).
    public nonisolated func domainXML(uuid: String) async throws(LibvirtError) -> String {
        try await onThread { connection throws(LibvirtError) in
            let conn = try connection.open()
            guard let domain = virDomainLookupByUUIDString(conn, uuid) else {
                throw LibvirtError.last("virDomainLookupByUUIDString")
            }
            defer { virDomainFree(domain) }
            guard let xml = virDomainGetXMLDesc(domain, 0) else { throw LibvirtError.last("virDomainGetXMLDesc") }
            defer { free(xml) }
            return String(cString: xml)
        }
    }

    /// Starts a transient guest from its XML (`virDomainCreateXML`; needs a read-write connection); its uuid.
    public nonisolated func createGuest(xml: String) async throws(LibvirtError) -> String {
        try await onThread { connection throws(LibvirtError) in
            let conn = try connection.open()
            guard let domain = virDomainCreateXML(conn, xml, 0) else { throw LibvirtError.last("virDomainCreateXML") }
            defer { virDomainFree(domain) }
            var uuid = [CChar](repeating: 0, count: 37)
            guard virDomainGetUUIDString(domain, &uuid) == 0 else { throw LibvirtError.last("virDomainGetUUIDString") }
            return LibvirtConnection.string(uuid)
        }
    }

    /// Stops the guest `uuid` (`virDomainDestroy`).
    public nonisolated func destroyGuest(uuid: String) async throws(LibvirtError) {
        try await onThread { connection throws(LibvirtError) in
            let conn = try connection.open()
            guard let domain = virDomainLookupByUUIDString(conn, uuid) else {
                throw LibvirtError.last("virDomainLookupByUUIDString")
            }
            defer { virDomainFree(domain) }
            guard virDomainDestroy(domain) == 0 else { throw LibvirtError.last("virDomainDestroy") }
        }
    }

    /// How many times the connection was opened (1 until it drops and is re-opened).
    public nonisolated func openCount() async -> Int {
        (try? await onThread { connection throws(LibvirtError) in connection.opens }) ?? 0
    }

    /// Lifecycle events received so far.
    public nonisolated var lifecycleEvents: Int { sink.events.load(ordering: .relaxed) }

    /// Test hook: the connection dropped under us, as libvirt's close callback reports it (the test driver has no
    /// transport to break); the next call closes what is left of it and opens a new one.
    public nonisolated func dropConnectionForTesting() {
        sink.closed.store(true, ordering: .relaxed)
    }
}
