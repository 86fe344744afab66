import AllotKeystone
import AllotTracker
import ArgumentParser
import Logging

/// The `--keystone-…` options of `allot serve` and `allot agent` (`--auth keystone`).
struct KeystoneOptions: ParsableArguments {
    @Option(name: .customLong("keystone-url"), help: "Identity v3 URL, e.g. http://keystone:5000/v3 (env ALLOT_KEYSTONE_URL).")
    var url: String = env("ALLOT_KEYSTONE_URL") ?? ""

    @Option(name: .customLong("keystone-username"), help: "The service's own Keystone user, allowed to validate tokens (env ALLOT_KEYSTONE_USERNAME).")
    var username: String = env("ALLOT_KEYSTONE_USERNAME") ?? ""

    @Option(name: .customLong("keystone-password"), help: "That user's password. Prefer the environment (ALLOT_KEYSTONE_PASSWORD): a command line can be read by every user of the machine.")
    var password: String = env("ALLOT_KEYSTONE_PASSWORD") ?? ""

    @Option(name: .customLong("keystone-project"), help: "The project the service user signs in to (env ALLOT_KEYSTONE_PROJECT).")
    var project: String = env("ALLOT_KEYSTONE_PROJECT") ?? "service"

    @Option(name: .customLong("keystone-user-domain"), help: "The service user's domain name (env ALLOT_KEYSTONE_USER_DOMAIN).")
    var userDomain: String = env("ALLOT_KEYSTONE_USER_DOMAIN") ?? "Default"

    @Option(name: .customLong("keystone-project-domain"), help: "The service project's domain name (env ALLOT_KEYSTONE_PROJECT_DOMAIN).")
    var projectDomain: String = env("ALLOT_KEYSTONE_PROJECT_DOMAIN") ?? "Default"

    @Option(name: .customLong("keystone-cache-seconds"), help: "How long a validated token is trusted before Keystone is asked again; never past its expiry (env ALLOT_KEYSTONE_CACHE_SECONDS).")
    var cacheSeconds: Int = env("ALLOT_KEYSTONE_CACHE_SECONDS").flatMap(Int.init) ?? 300

    /// The validator's configuration.
    /// - Throws: `ValidationError` naming a missing or bad option (never the password).
    func configuration() throws -> KeystoneConfiguration {
        guard cacheSeconds >= 0 else { throw ValidationError("--keystone-cache-seconds must not be negative") }
        let configuration = KeystoneConfiguration(
            identityURL: url, username: username, password: password, projectName: project,
            userDomainName: userDomain, projectDomainName: projectDomain, cacheSeconds: cacheSeconds)
        do {
            try configuration.validate()
        } catch {
            throw ValidationError(error.description)
        }
        return configuration
    }

    /// A validator over the process's shared HTTP client.
    func validator() throws -> KeystoneValidator {
        KeystoneValidator(
            configuration: try configuration(), http: PlacementClient.agentHTTP,
            logger: Logger(label: "allot.keystone"))
    }
}
