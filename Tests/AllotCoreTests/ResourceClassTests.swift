import AllotCore
import Testing

@Suite("ResourceClass")
struct ResourceClassTests {
    @Test("the standard names are os-resource-classes 1.1.0's 21, in its order (the order gives upstream's ids)")
    func standardNamesInOrder() {
        let names = ResourceClass.standardNames
        #expect(names.count == 21)
        #expect(ResourceClass.standardSet.count == 21, "no duplicates")
        #expect(names.first == "VCPU")
        #expect(Array(names.prefix(3)) == ["VCPU", "MEMORY_MB", "DISK_GB"])
        #expect(names.firstIndex(of: "PCPU") == 14)
        #expect(names.last == "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC")
    }

    @Test("every standard name is well formed and none is custom", arguments: ResourceClass.standardNames)
    func standardNameShape(name: String) {
        #expect(ResourceClass.isWellFormedName(name))
        #expect(!ResourceClass.isCustomName(name))
        #expect(ResourceClass(unchecked: name).isStandard)
    }

    @Test(
        "the named constants are standard classes",
        arguments: [
            (ResourceClass.vcpu, "VCPU"), (ResourceClass.pcpu, "PCPU"), (ResourceClass.memoryMB, "MEMORY_MB"),
            (ResourceClass.diskGB, "DISK_GB"), (ResourceClass.sriovNetVF, "SRIOV_NET_VF"),
            (ResourceClass.vgpu, "VGPU"), (ResourceClass.pciDevice, "PCI_DEVICE"),
        ])
    func constants(resourceClass: ResourceClass, name: String) {
        #expect(resourceClass.name == name)
        #expect(resourceClass.isStandard)
        #expect(!resourceClass.isCustom)
    }

    @Test("validated accepts standard names", arguments: ["VCPU", "MEMORY_MB", "DISK_GB", "PCPU", "FPGA"])
    func validatedStandard(name: String) throws {
        let resourceClass = try #require(ResourceClass.validated(name))
        #expect(resourceClass.name == name)
        #expect(resourceClass.isStandard)
    }

    @Test(
        "validated accepts well-formed custom names",
        arguments: ["CUSTOM_FPGA", "CUSTOM_X", "CUSTOM_GPU_2", "CUSTOM__"])
    func validatedCustom(name: String) throws {
        let resourceClass = try #require(ResourceClass.validated(name))
        #expect(resourceClass.name == name)
        #expect(resourceClass.isCustom)
        #expect(!resourceClass.isStandard)
    }

    @Test(
        "validated refuses names that are neither standard nor custom",
        arguments: [
            "", "vcpu", "VCPUS", "FOO_BAR", "CUSTOM_", "CUSTOM", "custom_fpga", "CUSTOM_fpga", "CUSTOM-FPGA",
            "CUSTOM_FPGA ", " VCPU", "CUSTOM_FPGÄ", "XCUSTOM_FPGA",
        ])
    func validatedRefuses(name: String) {
        #expect(ResourceClass.validated(name) == nil)
    }

    @Test(
        "isCustomName matches ^CUSTOM_[A-Z0-9_]+$",
        arguments: [
            ("CUSTOM_A", true), ("CUSTOM_1", true), ("CUSTOM_A_B_9", true), ("CUSTOM__", true),
            ("CUSTOM_", false), ("CUSTOM", false), ("CUSTOMA", false), ("custom_a", false), ("CUSTOM_a", false),
            ("CUSTOM_A-B", false), ("CUSTOM_A B", false), ("CUSTOM_É", false), ("A_CUSTOM_B", false), ("", false),
        ])
    func isCustomName(name: String, expected: Bool) {
        #expect(ResourceClass.isCustomName(name) == expected)
        #expect(ResourceClass(unchecked: name).isCustom == expected)
    }

    @Test(
        "isWellFormedName matches ^[A-Z0-9_]+$",
        arguments: [
            ("VCPU", true), ("NET_BW_EGR_KILOBIT_PER_SEC", true), ("CUSTOM_X", true), ("_", true), ("123", true),
            ("", false), ("vcpu", false), ("V-CPU", false), ("V CPU", false), ("VCPU\n", false), ("ÄBC", false),
        ])
    func isWellFormedName(name: String, expected: Bool) {
        #expect(ResourceClass.isWellFormedName(name) == expected)
    }

    @Test("classes order by name")
    func ordering() {
        let sorted = [ResourceClass.vcpu, .diskGB, .custom("CUSTOM_Z"), .memoryMB].sorted()
        #expect(sorted.map(\.name) == ["CUSTOM_Z", "DISK_GB", "MEMORY_MB", "VCPU"])
        #expect(ResourceClass.custom("CUSTOM_Z").description == "CUSTOM_Z")
    }
}
