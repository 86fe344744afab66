/// Text output of oslo.policy's generator commands.
public enum PolicyGenerator {
    /// What `oslopolicy-sample-generator --namespace placement` prints: each
    /// rule commented out, preceded by its description, operations and
    /// intended scope, followed by the deprecation notice of its deprecated
    /// rule.
    public static func sampleYAML(_ rules: [RuleDefault]) -> String {
        rules.map { format($0, includeHelp: true) }.joined()
    }

    /// What `oslopolicy-policy-generator --namespace placement` prints for an
    /// enforcer: `"name": "check"` for every override (file order), then for
    /// every default not overridden.
    public static func effectiveYAML(_ enforcer: PolicyEnforcer) -> String {
        enforcer.effectiveRules().map { "\"\($0.name)\": \"\($0.checkString)\"\n" }.joined()
    }

    /// `generator._format_rule_default_yaml`.
    static func format(_ rule: RuleDefault, includeHelp: Bool) -> String {
        var text = "\"\(rule.name)\": \"\(rule.checkString)\"\n"
        guard includeHelp else { return text }
        let operations = rule.operations.filter { !$0.method.isEmpty && !$0.path.isEmpty }
            .map { "# \($0.method)  \($0.path)\n" }.joined()
        let scope = rule.scopeTypes.isEmpty ? "" : "# Intended scope(s): \(rule.scopeTypes.joined(separator: ", "))\n"
        text = "\(operations)\(scope)#\(text)\n"
        if let description = rule.description, !description.isEmpty {
            text = helpText(description) + "\n" + text
        }
        if rule.deprecatedForRemoval {
            text = "# DEPRECATED\n# \"\(rule.name)\" has been deprecated since \(rule.deprecatedSince ?? "None").\n"
                + "\(helpText(rule.deprecatedReason))\n\(text)"
        } else if let deprecated = rule.deprecatedRule {
            let reason = deprecated.reason ?? rule.deprecatedReason
            let since = deprecated.since ?? rule.deprecatedSince ?? "None"
            let notice = "\"\(deprecated.name)\":\"\(deprecated.checkString)\" has been deprecated since \(since)"
                + " in favor of \"\(rule.name)\":\"\(rule.checkString)\"."
            text += "# DEPRECATED\n\(helpText(notice))\n\(helpText(reason))\n"
            if rule.name != deprecated.name {
                text += """
                    # WARNING: A rule name change has been identified.
                    #          This may be an artifact of new rules being
                    #          included which require legacy fallback
                    #          rules to ensure proper policy behavior.
                    #          Alternatively, this may just be an alias.
                    #          Please evaluate on a case by case basis
                    #          keeping in mind the format for aliased
                    #          rules is:
                    #          "old_rule_name": "new_rule_name".
                    # "\(deprecated.name)": "rule:\(rule.name)"

                    """
            }
            text += "\n"
        }
        return text
    }

    /// `generator._format_help_text`: paragraphs wrapped at 70 columns as
    /// `# ` comments, indented lines kept as literal blocks.
    static func helpText(_ description: String?) -> String {
        guard let description, !description.isEmpty else { return "#" }
        var lines: [String] = []
        var paragraph: [String] = []
        func flush() {
            lines += TextWrap.wrap(paragraph.joined(separator: " "), width: 70, indent: "# ")
            paragraph = []
        }
        let trimmed = description.trimmingPythonWhitespace()
        for line in trimmed.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init) {
            if line.trimmingPythonWhitespace().isEmpty {
                flush()
                lines.append("#")
            } else if line.first.map({ !$0.isWhitespace }) ?? true {
                paragraph.append(line.trimmingTrailingWhitespace())
            } else {
                if !paragraph.isEmpty {
                    flush()
                    lines.append("#")
                }
                lines.append("# " + line.trimmingTrailingWhitespace())
            }
        }
        if !paragraph.isEmpty { flush() }
        return lines.joined(separator: "\n")
    }
}

extension String {
    /// Python's `str.strip()`.
    func trimmingPythonWhitespace() -> String {
        String(drop(while: \.isWhitespace)).trimmingTrailingWhitespace()
    }

    /// Python's `str.rstrip()`.
    func trimmingTrailingWhitespace() -> String {
        var s = self[...]
        while s.last?.isWhitespace == true { s = s.dropLast() }
        return String(s)
    }
}
