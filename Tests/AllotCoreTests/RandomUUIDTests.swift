@testable import AllotCore
import Foundation
import Testing

struct RandomUUIDTests {
    /// Version 4, RFC 4122 variant, lowercase, and what Foundation reads back; no two alike.
    @Test func randomUUIDsAreVersion4LowercaseAndDistinct() {
        var seen = Set<String>()
        for _ in 0..<2000 {
            let text = randomUUIDString()
            #expect(text.count == 36)
            #expect(text == text.lowercased())
            #expect(UUID(uuidString: text)?.uuidString.lowercased() == text)
            let characters = Array(text)
            #expect(characters[14] == "4")
            #expect("89ab".contains(characters[19]))
            seen.insert(text)
        }
        #expect(seen.count == 2000)
    }
}
