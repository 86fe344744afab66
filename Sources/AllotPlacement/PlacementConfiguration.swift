public import AllotCore

/// Settings of the Placement API.
///
/// - `auth`: how requests are authenticated (no default: callers choose `noauth` explicitly).
/// - `policy`: access rules (default: Allot's role defaults).
/// - `corsAllowedOrigins`: origins allowed by CORS (default: none, CORS off).
/// - `corsAllowHeaders`: extra request headers CORS allows (default: none).
/// - `maxBodyBytes`: the largest request body accepted (default: 1 MiB); larger gets `413`.
/// - `maxAllocationCandidates`: stop generating allocation candidates after this many (default: no cap).
/// - `candidateStrategy`: generate candidates tree by tree (`depthFirst`, default) or one per tree in turn.
/// - `randomizeCandidates`: visit trees in a random order and shuffle the answer (default: off, stable order).
/// - `console`: serve the operator console at `/ui` (default: on).
/// - `consoleDirectory`: read the console's files from this directory instead of the embedded ones (development).
public struct PlacementConfiguration: Sendable {
    public var auth: AuthMode
    public var policy: Policy
    public var corsAllowedOrigins: [String]
    public var corsAllowHeaders: [String]
    public var maxBodyBytes: Int
    public var maxAllocationCandidates: Int?
    public var candidateStrategy: GenerationStrategy
    public var randomizeCandidates: Bool
    public var console: Bool
    public var consoleDirectory: String?

    public init(
        auth: AuthMode, policy: Policy = Policy(), corsAllowedOrigins: [String] = [], corsAllowHeaders: [String] = [],
        maxBodyBytes: Int = 1 << 20, maxAllocationCandidates: Int? = nil, candidateStrategy: GenerationStrategy = .depthFirst,
        randomizeCandidates: Bool = false, console: Bool = true, consoleDirectory: String? = nil
    ) {
        self.console = console
        self.consoleDirectory = consoleDirectory
        self.maxAllocationCandidates = maxAllocationCandidates
        self.candidateStrategy = candidateStrategy
        self.randomizeCandidates = randomizeCandidates
        self.auth = auth
        self.policy = policy
        self.corsAllowedOrigins = corsAllowedOrigins
        self.corsAllowHeaders = corsAllowHeaders
        self.maxBodyBytes = maxBodyBytes
    }
}
