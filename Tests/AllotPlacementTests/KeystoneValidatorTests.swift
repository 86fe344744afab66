import AllotKeystone
import AllotTracker
import Foundation
import Logging
import Synchronization
import Testing

/// keystonemiddleware's `auth_token` semantics, against a fake Keystone: validation, caching, expiry, revocation,
/// service tokens, the service's own token and an unreachable Keystone.
@Suite struct KeystoneValidatorTests {
    /// A clock that stands still until the test moves it (real time would let a token expire on a slow machine).
    final class Clock: Sendable {
        let start = Date()
        let offset = Mutex(0.0)
        func advance(_ seconds: Double) { offset.withLock { $0 += seconds } }
        var now: Date { start.addingTimeInterval(offset.withLock { $0 }) }
    }

    static func validator(_ url: String, clock: Clock, cacheSeconds: Int = 300) -> KeystoneValidator {
        KeystoneValidator(
            configuration: KeystoneConfiguration(
                identityURL: url, username: "placement", password: FakeKeystone.servicePassword,
                cacheSeconds: cacheSeconds, timeout: .seconds(5)),
            http: PlacementClient.agentHTTP, logger: Logger(label: "test"), now: { clock.now })
    }

    @Test func validatesOnceThenServesFromTheCache() async throws {
        let keystone = FakeKeystone()
        let token = keystone.issue(user: "alice", project: "p1", roles: ["reader", "member"])
        try await keystone.serve { url in
            let validator = Self.validator(url, clock: Clock())
            let caller = try await validator.authenticate(userToken: token, serviceToken: nil)
            #expect(caller.user.userID == "alice-id")
            #expect(caller.user.projectID == "p1")
            #expect(caller.user.userDomainID == "default")
            #expect(caller.user.roles == ["reader", "member"])
            #expect(caller.user.systemScope == nil)
            #expect(caller.serviceRoles.isEmpty)
            _ = try await validator.authenticate(userToken: " \(token) ", serviceToken: nil)
            #expect(keystone.validations == 1)
            #expect(keystone.signIns == 1)
        }
    }

    @Test func systemScopeIsRead() async throws {
        let keystone = FakeKeystone()
        let token = keystone.issue(user: "root", project: nil, roles: ["admin"], system: true)
        try await keystone.serve { url in
            let caller = try await Self.validator(url, clock: Clock()).authenticate(userToken: token, serviceToken: nil)
            #expect(caller.user.systemScope == "all")
            #expect(caller.user.projectID == nil)
        }
    }

    @Test func unknownAndMissingTokensAreRefusedAndRefusalsAreNotKeptLong() async throws {
        let keystone = FakeKeystone()
        try await keystone.serve { url in
            let clock = Clock()
            let validator = Self.validator(url, clock: clock)
            await #expect(throws: KeystoneError.invalidToken) {
                try await validator.authenticate(userToken: nil, serviceToken: nil)
            }
            await #expect(throws: KeystoneError.invalidToken) {
                try await validator.authenticate(userToken: "garbage", serviceToken: nil)
            }
            await #expect(throws: KeystoneError.invalidToken) {
                try await validator.authenticate(userToken: "garbage", serviceToken: nil)
            }
            #expect(keystone.validations == 1)
            // The token becomes valid (issued under that name): after a few seconds Keystone is asked again.
            keystone.issue(user: "late", roles: ["reader"], token: "garbage")
            clock.advance(6)
            let caller = try await validator.authenticate(userToken: "garbage", serviceToken: nil)
            #expect(caller.user.userID == "late-id")
        }
    }

    @Test func revokedTokensStopWorkingWhenTheCacheEntryEnds() async throws {
        let keystone = FakeKeystone()
        let token = keystone.issue(user: "alice", roles: ["reader"])
        try await keystone.serve { url in
            let clock = Clock()
            let validator = Self.validator(url, clock: clock, cacheSeconds: 30)
            _ = try await validator.authenticate(userToken: token, serviceToken: nil)
            keystone.revoke(token)
            // Within the TTL the cached answer stands, as keystonemiddleware's does.
            _ = try await validator.authenticate(userToken: token, serviceToken: nil)
            clock.advance(31)
            await #expect(throws: KeystoneError.invalidToken) {
                try await validator.authenticate(userToken: token, serviceToken: nil)
            }
        }
    }

    @Test func expiredTokensAreRefusedWithoutAskingUnlessAServiceTokenVouches() async throws {
        let clock = Clock()
        let keystone = FakeKeystone(now: { clock.now })
        let user = keystone.issue(user: "alice", roles: ["member"], expiresIn: 10)
        let service = keystone.issue(user: "nova", project: "service", roles: ["service"], expiresIn: 3600)
        let notService = keystone.issue(user: "bob", roles: ["member"], expiresIn: 3600)
        try await keystone.serve { url in
            let validator = Self.validator(url, clock: clock)
            _ = try await validator.authenticate(userToken: user, serviceToken: nil)
            clock.advance(11)
            let before = keystone.validations
            await #expect(throws: KeystoneError.invalidToken) {
                try await validator.authenticate(userToken: user, serviceToken: nil)
            }
            #expect(keystone.validations == before)
            // A valid service token with the service role lets an expired user token through (allow_expired).
            let caller = try await validator.authenticate(userToken: user, serviceToken: service)
            #expect(caller.user.userID == "alice-id")
            #expect(caller.serviceRoles == ["service"])
            // A valid token without the service role does not.
            await #expect(throws: KeystoneError.invalidToken) {
                try await validator.authenticate(userToken: user, serviceToken: notService)
            }
            // An invalid service token fails the request even with a valid user token.
            let fresh = keystone.issue(user: "carol", roles: ["member"])
            await #expect(throws: KeystoneError.invalidToken) {
                try await validator.authenticate(userToken: fresh, serviceToken: "not-a-token")
            }
        }
    }

    @Test func theServicesOwnTokenIsRenewedWhenKeystoneRefusesIt() async throws {
        let keystone = FakeKeystone()
        let first = keystone.issue(user: "alice", roles: ["reader"])
        let second = keystone.issue(user: "bob", roles: ["reader"])
        try await keystone.serve { url in
            let validator = Self.validator(url, clock: Clock())
            _ = try await validator.authenticate(userToken: first, serviceToken: nil)
            keystone.revokeServiceTokens()
            let caller = try await validator.authenticate(userToken: second, serviceToken: nil)
            #expect(caller.user.userID == "bob-id")
            #expect(keystone.signIns == 2)
        }
    }

    @Test func concurrentRequestsShareOneSignIn() async throws {
        let keystone = FakeKeystone()
        let tokens = (0..<16).map { keystone.issue(user: "user\($0)", roles: ["reader"]) }
        try await keystone.serve { url in
            let validator = Self.validator(url, clock: Clock())
            try await withThrowingTaskGroup(of: Void.self) { group in
                for token in tokens {
                    group.addTask { _ = try await validator.authenticate(userToken: token, serviceToken: nil) }
                }
                try await group.waitForAll()
            }
            #expect(keystone.signIns == 1)
            #expect(keystone.validations == 16)
        }
    }

    @Test func whenKeystoneFailsCachedTokensWorkAndOthersAreUnavailable() async throws {
        let keystone = FakeKeystone()
        let cached = keystone.issue(user: "alice", roles: ["reader"])
        let other = keystone.issue(user: "bob", roles: ["reader"])
        try await keystone.serve { url in
            let validator = Self.validator(url, clock: Clock())
            _ = try await validator.authenticate(userToken: cached, serviceToken: nil)
            keystone.setFailing(true)
            _ = try await validator.authenticate(userToken: cached, serviceToken: nil)
            await #expect(throws: KeystoneError.unavailable("Keystone answered 500 to a token validation")) {
                try await validator.authenticate(userToken: other, serviceToken: nil)
            }
            keystone.setFailing(false)
            let caller = try await validator.authenticate(userToken: other, serviceToken: nil)
            #expect(caller.user.userID == "bob-id")
        }
    }

    @Test func anUnreachableKeystoneIsUnavailable() async throws {
        // A port nothing listens on (taken and released by the fake).
        let keystone = FakeKeystone()
        let url = try await keystone.serve { url in url }
        let validator = Self.validator(url, clock: Clock())
        do {
            _ = try await validator.authenticate(userToken: "anything", serviceToken: nil)
        } catch {
            guard case .unavailable = error else {
                Issue.record("expected unavailable, got \(error)")
                return
            }
            return
        }
        Issue.record("an unreachable Keystone validated a token")
    }

    @Test func timestampsParse() throws {
        let date = try KeystoneToken.decode(Data("""
            {"token": {"user": {"id": "u", "domain": {"id": "d"}}, "expires_at": "2026-12-03T21:00:05.250000Z",
             "roles": [{"id": "r", "name": "reader"}]}}
            """.utf8)).expiresAt
        #expect(date.timeIntervalSince1970 == 1_796_331_605.25)
    }
}
