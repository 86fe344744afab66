import AllotCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import AllotPlacement

/// The request-body parser: document order kept, Python-style error positions, no crash on hostile input.
@Suite struct JSONParserTests {
    @Test func keepsKeyOrderAndTypes() throws {
        let value = try JSONParser.parse(Array(#"{"z": 1, "a": [true, null, 1.5, -2], "m": "x\u00e9\n"}"#.utf8))
        #expect(value.orderedMembers?.map(\.0) == ["z", "a", "m"])
        #expect(value["z"] == .int(1))
        #expect(value["a"] == .array([.bool(true), .null, .double(1.5), .int(-2)]))
        #expect(value["m"] == .string("xé\n"))
    }

    @Test(arguments: [
        ("{\"name\": ", "Expecting value: line 1 column 10 (char 9)"),
        ("{\"a\" 1}", "Expecting ':' delimiter: line 1 column 6 (char 5)"),
        ("[1 2]", "Expecting ',' delimiter: line 1 column 4 (char 3)"),
        ("{'a': 1}", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ("{} x", "Extra data: line 1 column 4 (char 3)"),
        ("", "Expecting value: line 1 column 1 (char 0)"),
    ])
    func reportsWhereItFailed(_ text: String, _ message: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(text.utf8)) }
        do {
            _ = try JSONParser.parse(Array(text.utf8))
        } catch {
            #expect(error.message == message)
        }
    }

    @Test func refusesDeepNesting() {
        let text = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(text.utf8)) }
    }

    @Test func bigNumbersBecomeDoublesAndFailTheSchema() throws {
        #expect(try JSONParser.parse(Array("99999999999999999999".utf8)) == .double(1e20))
    }

    @Test func allocationsComeBackInTheOrderTheyWereWritten() async throws {
        try await TestAPI.with { api in
            try await api.app.test(.router) { client in
                let providers = ["ffffffff-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"]
                for (index, rp) in providers.enumerated() {
                    try await client.execute(uri: "/resource_providers", method: .post, headers: .admin(),
                                             body: ByteBuffer(string: "{\"name\": \"rp\(index)\", \"uuid\": \"\(rp)\"}"))
                    try await client.execute(uri: "/resource_providers/\(rp)/inventories", method: .put,
                                             headers: .admin(), body: ByteBuffer(string:
                        "{\"resource_provider_generation\": 0, \"inventories\": {\"VCPU\": {\"total\": 4}}}"))
                }
                let consumer = newUUID()
                let body = "{\"allocations\": {\"\(providers[0])\": {\"resources\": {\"VCPU\": 1}}, "
                    + "\"\(providers[1])\": {\"resources\": {\"VCPU\": 1}}}, \"project_id\": \"p\", \"user_id\": \"u\", "
                    + "\"consumer_generation\": null, \"consumer_type\": \"INSTANCE\"}"
                try await client.execute(uri: "/allocations/\(consumer)", method: .put, headers: .admin(),
                                         body: ByteBuffer(string: body)) { #expect($0.status == .noContent) }
                try await client.execute(uri: "/allocations/\(consumer)", method: .get, headers: .admin()) { response in
                    let text = String(buffer: response.body)
                    let first = try #require(text.range(of: providers[0]))
                    let second = try #require(text.range(of: providers[1]))
                    #expect(first.lowerBound < second.lowerBound)
                }
            }
        }
    }
}

@Suite struct HTTPDateTests {
    @Test(arguments: [
        (0.0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (1_795_321_200.9, "Sun, 22 Nov 2026 04:20:00 GMT"),
        (951_782_400.0, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (4_102_444_799.0, "Thu, 31 Dec 2099 23:59:59 GMT"),
    ])
    func formatsRFC7231Dates(_ seconds: Double, _ text: String) {
        #expect(HTTPDate.format(seconds) == text)
    }
}
