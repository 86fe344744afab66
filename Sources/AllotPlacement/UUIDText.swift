/// UUID text as Placement accepts it: 32 hex digits, with or without the four dashes.
enum UUIDText {
    /// The canonical lower-case dashed form, or `nil` when `text` is not a UUID.
    static func normalized(_ text: String) -> String? {
        var hex: [UInt8] = []
        let bytes = Array(text.utf8)
        let dashed = bytes.count == 36
        guard bytes.count == 32 || dashed else { return nil }
        for (index, byte) in bytes.enumerated() {
            if dashed, [8, 13, 18, 23].contains(index) {
                guard byte == UInt8(ascii: "-") else { return nil }
                continue
            }
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"): hex.append(byte)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): hex.append(byte + 32)
            default: return nil
            }
        }
        guard hex.count == 32 else { return nil }
        var out = ""
        for (index, byte) in hex.enumerated() {
            if [8, 12, 16, 20].contains(index) { out.append("-") }
            out.append(Character(UnicodeScalar(byte)))
        }
        return out
    }
}
