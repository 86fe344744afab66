/// The checks the compute API applies to what a caller sends, for records that arrive whole (the ledger protocol
/// decodes ``ComputeOperation`` and ``ComputeNode`` from an agent's request): the same rules and messages.
public enum ComputeInput {
    /// `nil` when `text` is a UUID in canonical form (lower-case `8-4-4-4-12` hex, as the compute API stores it),
    /// else the compute API's message.
    public static func uuidProblem(_ field: String, _ text: String) -> ComputeError? {
        let bytes = Array(text.utf8)
        guard bytes.count == 36 else { return .invalidRequest("'\(field)' must be a UUID.") }
        for (index, byte) in bytes.enumerated() {
            let ok = [8, 13, 18, 23].contains(index)
                ? byte == UInt8(ascii: "-")
                : (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            if !ok { return .invalidRequest("'\(field)' must be a UUID.") }
        }
        return nil
    }

    /// Project, user and OS type names: 1 to 255 of letters, digits, `-`, `_`, `.` (the compute API's rule).
    public static func identifierProblem(_ field: String, _ text: String) -> ComputeError? {
        isIdentifier(text) ? nil : .invalidRequest(identifierMessage(field))
    }

    /// Whether `text` has 1 to 255 of ASCII letters, digits, `-`, `_`, `.`.
    public static func isIdentifier(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 255
            && text.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)
                || $0 == "-" || $0 == "_" || $0 == ".") })
    }

    /// What the compute API and the ledger protocol say of a name that breaks ``isIdentifier(_:)``.
    public static func identifierMessage(_ field: String) -> String {
        "'\(field)' must have 1 to 255 letters, digits, '-', '_' or '.'."
    }

    /// Host names, hostnames and driver names: 1 to 255 bytes, no control characters.
    static func nameProblem(_ field: String, _ text: String, limit: Int = 255) -> ComputeError? {
        guard !text.isEmpty, text.utf8.count <= limit, !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f })
        else { return .invalidRequest("'\(field)' must have 1 to \(limit) bytes and no control characters.") }
        return nil
    }
}

extension ComputeOperation {
    /// The first thing wrong with this operation as a caller sent it, by the compute API's rules; `nil` when it
    /// is one the compute API could have made. Fields the ledger chooses (NUMA placements, PCI devices, child
    /// allocations) must be empty.
    public var inputProblem: ComputeError? {
        switch self {
        case .build(let instance):
            return ComputeInput.uuidProblem("uuid", instance.uuid) ?? ComputeInput.uuidProblem("node", instance.node)
                ?? ComputeInput.identifierProblem("project_id", instance.projectID)
                ?? ComputeInput.identifierProblem("user_id", instance.userID)
                ?? instance.osType.flatMap { ComputeInput.identifierProblem("os_type", $0) }
                ?? instance.flavor.problem ?? Self.taskStateProblem(instance.taskState)
                ?? ((instance.numa != nil || !instance.pciDevices.isEmpty || !instance.childAllocations.isEmpty)
                    ? .invalidRequest("a build's NUMA placement and PCI devices are chosen by the ledger") : nil)
        case .move(let migration):
            return ComputeInput.uuidProblem("uuid", migration.uuid)
                ?? ComputeInput.uuidProblem("instance_uuid", migration.instanceUUID)
                ?? ComputeInput.uuidProblem("dest_node", migration.destNode)
                ?? (migration.kind == .resize ? migration.newFlavor.problem : nil)
        case .abortBuild(let uuid), .delete(let uuid):
            return ComputeInput.uuidProblem("uuid", uuid)
        case .update(let uuid, _, let taskState, let osType):
            return ComputeInput.uuidProblem("uuid", uuid) ?? taskState.flatMap { Self.taskStateProblem($0) }
                ?? osType.flatMap { ComputeInput.identifierProblem("os_type", $0) }
        case .progress(let uuid, _), .finish(let uuid), .confirm(let uuid), .revert(let uuid), .rollback(let uuid):
            return ComputeInput.uuidProblem("uuid", uuid)
        }
    }

    private static func taskStateProblem(_ taskState: String?) -> ComputeError? {
        guard let text = taskState else { return nil }
        return text.isEmpty || text.utf8.count > 255 ? .invalidRequest("task_state must have 1 to 255 bytes") : nil
    }
}

extension ComputeNode {
    /// The first thing wrong with this node record as an agent sent it, or `nil`: its uuid, names, resource
    /// classes and traits, inventories (Placement's rules), stats and usage (counts, never negative).
    public var inputProblem: ComputeError? {
        if let problem = ComputeInput.uuidProblem("uuid", uuid) ?? ComputeInput.nameProblem("hostname", hostname, limit: 200)
            ?? ComputeInput.nameProblem("host", host) ?? ComputeInput.nameProblem("driver", driver)
        {
            return problem
        }
        for (name, inventory) in inventories.sorted(by: { $0.key < $1.key }) {
            guard ResourceClass.validated(name) != nil else {
                return .invalidRequest("'\(name)' is not a standard or CUSTOM_ resource class.")
            }
            let limits = [inventory.total, inventory.reserved, inventory.minUnit, inventory.maxUnit, inventory.stepSize]
            guard inventory.total >= 1, inventory.reserved >= 0, inventory.minUnit >= 1, inventory.maxUnit >= 1,
                inventory.stepSize >= 1, limits.allSatisfy({ $0 <= Limits.maxInt }),
                inventory.allocationRatio > 0, inventory.allocationRatio.isFinite,
                inventory.validationProblem(allowReservedEqualTotal: true) == nil
            else { return .invalidRequest("inventory of \(name) is not valid.") }
        }
        if let bad = traits.sorted().first(where: { !(Trait.standardSet.contains($0) || Trait.isCustomName($0)) }) {
            return .invalidRequest("'\(bad)' is not a standard or CUSTOM_ trait.")
        }
        for (field, counts) in [("stats", stats), ("usage", usage)] {
            if let key = counts.keys.sorted().first(where: { counts[$0]! < 0 || $0.isEmpty || $0.utf8.count > 255 }) {
                return .invalidRequest("'\(field)' has an invalid entry '\(key)'.")
            }
        }
        return nil
    }
}
