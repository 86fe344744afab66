import AllotPlacement
import AllotPolicy
import ArgumentParser
import Foundation

/// `--policy-file` and `--legacy-policy`, shared by `allot serve` and `allot policy`.
struct PolicyOptions: ParsableArguments {
    @Option(help: "oslo.policy file (YAML or JSON) whose rules override the defaults by name, e.g. \"placement:usages\": \"rule:admin_api\" (env ALLOT_POLICY_FILE). A rule that does not parse, or refers to an unknown rule, stops the start naming its line.")
    var policyFile: String = env("ALLOT_POLICY_FILE") ?? ""

    @Flag(help: "Upstream's deprecated defaults as well (oslo.policy enforce_new_defaults = False): every rule also admits the admin role.")
    var legacyPolicy = false

    /// The policy these options describe.
    /// - Throws: `ValidationError` naming the file, line and rule that cannot be used.
    func policy() throws -> Policy {
        guard !policyFile.isEmpty else { return Policy(legacy: legacyPolicy) }
        guard let data = FileManager.default.contents(atPath: policyFile) else {
            throw ValidationError("cannot read the policy file \(policyFile)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ValidationError("the policy file \(policyFile) is not UTF-8 text")
        }
        do {
            let entries = try PolicyFile.entries(text, fileName: policyFile)
            return try Policy(overrides: entries, fileName: policyFile, legacy: legacyPolicy)
        } catch {
            throw ValidationError("policy file: \(error.description)")
        }
    }
}

/// `allot policy`: the rules in force, as oslo.policy's generators print them.
struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Print the access rules in force (defaults merged with --policy-file), or a commented sample file.",
        discussion: """
            Without --sample: every rule as `"name": "check string"`, the operator's overrides first, as \
            oslopolicy-policy-generator prints them. With --sample: every default with its description, operations \
            and scope types, commented out, as oslopolicy-sample-generator does; a starting point for a policy file.

            The defaults are upstream Placement 16.0.0's (secure RBAC with scope types: system-scoped tokens are \
            refused by every placement rule) and Allot's own allot:compute:* rules.
            """)

    @OptionGroup var options: PolicyOptions

    @Flag(help: "Print the commented sample of every default instead.")
    var sample = false

    func run() throws {
        if sample {
            print(PolicyGenerator.sampleYAML(Policy.defaults), terminator: "")
        } else {
            print(PolicyGenerator.effectiveYAML(try options.policy().enforcer), terminator: "")
        }
    }
}
