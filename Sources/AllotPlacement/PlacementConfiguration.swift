/// Settings of the Placement API.
///
/// - `auth`: how requests are authenticated (no default: callers choose `noauth` explicitly).
/// - `policy`: access rules (default: Allot's role defaults).
/// - `corsAllowedOrigins`: origins allowed by CORS (default: none, CORS off).
/// - `corsAllowHeaders`: extra request headers CORS allows (default: none).
/// - `maxBodyBytes`: the largest request body accepted (default: 1 MiB); larger gets `413`.
/// - `maxAllocationCandidates`: stop generating allocation candidates after this many (default: no cap).
public struct PlacementConfiguration: Sendable {
    public var auth: AuthMode
    public var policy: Policy
    public var corsAllowedOrigins: [String]
    public var corsAllowHeaders: [String]
    public var maxBodyBytes: Int
    public var maxAllocationCandidates: Int?

    public init(
        auth: AuthMode, policy: Policy = Policy(), corsAllowedOrigins: [String] = [], corsAllowHeaders: [String] = [],
        maxBodyBytes: Int = 1 << 20, maxAllocationCandidates: Int? = nil
    ) {
        self.maxAllocationCandidates = maxAllocationCandidates
        self.auth = auth
        self.policy = policy
        self.corsAllowedOrigins = corsAllowedOrigins
        self.corsAllowHeaders = corsAllowHeaders
        self.maxBodyBytes = maxBodyBytes
    }
}
