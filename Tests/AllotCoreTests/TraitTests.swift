import AllotCore
import Testing

@Suite("Trait")
struct TraitTests {
    @Test("the standard set holds well-known os-traits names")
    func standardSetContents() {
        #expect(AllotCore.Trait.standardSet.contains("MISC_SHARES_VIA_AGGREGATE"))
        #expect(AllotCore.Trait.standardSet.contains("HW_CPU_X86_AVX2"))
        #expect(AllotCore.Trait.standardSet.contains("COMPUTE_STATUS_DISABLED"))
        #expect(!AllotCore.Trait.standardSet.contains("CUSTOM_MAGIC"))
        #expect(!AllotCore.Trait.standardSet.contains("hw_cpu_x86_avx2"))
    }

    @Test("the standard names are sorted, unique, well formed and not custom")
    func standardNamesShape() {
        let names = AllotCore.Trait.standardNames
        #expect(names.count > 300)
        #expect(names == names.sorted())
        #expect(Set(names).count == names.count)
        #expect(names.allSatisfy(ResourceClass.isWellFormedName))
        #expect(!names.contains(where: AllotCore.Trait.isCustomName))
    }

    @Test(
        "the named constants are standard traits",
        arguments: [
            (AllotCore.Trait.sharesViaAggregate, "MISC_SHARES_VIA_AGGREGATE"),
            (AllotCore.Trait.computeNode, "COMPUTE_NODE"),
            (AllotCore.Trait.computeStatusDisabled, "COMPUTE_STATUS_DISABLED"),
        ])
    func constants(trait: AllotCore.Trait, name: String) {
        #expect(trait.name == name)
        #expect(trait.isStandard)
    }

    @Test(
        "isCustomName matches ^CUSTOM_[A-Z0-9_]+$",
        arguments: [
            ("CUSTOM_GOLD", true), ("CUSTOM_RAID_10", true), ("CUSTOM_", false), ("CUSTOM_gold", false),
            ("custom_GOLD", false), ("HW_CPU_X86_AVX2", false), ("CUSTOM_GOLD!", false), ("", false),
        ])
    func isCustomName(name: String, expected: Bool) {
        #expect(AllotCore.Trait.isCustomName(name) == expected)
    }

    @Test("a custom trait is not standard")
    func customIsNotStandard() {
        #expect(!AllotCore.Trait(unchecked: "CUSTOM_GOLD").isStandard)
    }

    @Test("traits order by name")
    func ordering() {
        let sorted = [AllotCore.Trait.computeNode, AllotCore.Trait(unchecked: "CUSTOM_A"), .sharesViaAggregate].sorted()
        #expect(sorted.map(\.name) == ["COMPUTE_NODE", "CUSTOM_A", "MISC_SHARES_VIA_AGGREGATE"])
    }
}
