/// Numeric bounds that Placement enforces on every integer it stores.
public enum Limits {
    /// The largest integer Placement accepts (a signed 32-bit column upstream).
    public static let maxInt = 2_147_483_647
    /// The largest allocation ratio accepted (upstream's float column has no other bound; we refuse nonsense).
    public static let maxAllocationRatio = 3.40282e38
    /// The longest provider name.
    public static let maxNameLength = 200
    /// The longest resource class, trait or consumer type name.
    public static let maxClassNameLength = 255
    /// The longest project or user id.
    public static let maxIdentifierLength = 255
}
