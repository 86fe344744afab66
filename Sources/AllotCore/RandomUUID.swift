/// A random (version 4) UUID in lowercase text, from the system's generator (`getrandom`).
///
/// Foundation's `UUID()` opens, reads and closes `/dev/urandom` on every call on Linux: three system calls and a
/// file descriptor for each request id.
package func randomUUIDString() -> String {
    var generator = SystemRandomNumberGenerator()
    var high = generator.next() as UInt64
    var low = generator.next() as UInt64
    high = (high & ~0xF000) | 0x4000  // version 4
    low = (low & ~(0xC000 << 48)) | (0x8000 << 48)  // variant 10xx
    let digits = Array("0123456789abcdef".utf8)
    var text = [UInt8]()
    text.reserveCapacity(36)
    // 32 hex digits, high half first, with dashes before digits 8, 12, 16 and 20 (8-4-4-4-12).
    for index in 0..<32 {
        if index == 8 || index == 12 || index == 16 || index == 20 { text.append(UInt8(ascii: "-")) }
        let half = index < 16 ? high : low
        text.append(digits[Int((half >> UInt64(60 - 4 * (index % 16))) & 0xF)])
    }
    return String(decoding: text, as: UTF8.self)
}
