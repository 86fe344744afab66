/// One entry of an operator's policy file.
public struct PolicyOverride: Sendable, Equatable {
    public var name: String
    public var checkString: String
    /// 1-based line of the entry in its file, if it came from one.
    public var line: Int?

    public init(name: String, checkString: String, line: Int? = nil) {
        self.name = name
        self.checkString = checkString
        self.line = line
    }
}
