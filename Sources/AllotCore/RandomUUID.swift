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
    for (index, shift) in stride(from: 60, through: 0, by: -4).enumerated() {
        if index == 8 || index == 12 { text.append(UInt8(ascii: "-")) }
        text.append(digits[Int((high >> UInt64(shift)) & 0xF)])
    }
    for (index, shift) in stride(from: 60, through: 0, by: -4).enumerated() {
        if index == 0 || index == 4 { text.append(UInt8(ascii: "-")) }
        text.append(digits[Int((low >> UInt64(shift)) & 0xF)])
    }
    return String(decoding: text, as: UTF8.self)
}
