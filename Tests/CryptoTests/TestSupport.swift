/// Bytes from a hex literal in a test vector (independent of `Hex.decode`, which is
/// itself under test).
func bytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.utf8).filter { $0 != UInt8(ascii: " ") }
    precondition(digits.count.isMultiple(of: 2), "odd-length hex literal in a test vector")
    return stride(from: 0, to: digits.count, by: 2).map { index in
        UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16)!
    }
}

/// Lowercase hex of `bytes`, for readable expectation failures.
func hex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }
