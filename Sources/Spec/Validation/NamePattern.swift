/// The shapes that names in a configuration must have, each with the rule users read.
enum NamePattern: Equatable {
    case slug, permission, event, email, domain, color, environmentVariable

    var rule: String {
        switch self {
        case .slug: "use 1 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
        case .permission: "use dot-separated lower-case words such as apps.create (letters, digits, '-', '_')"
        case .event: "use dot-separated lower-case words such as member.added"
        case .email: "write an e-mail address such as alice@example.com"
        case .domain: "write a domain such as example.com (lower-case labels separated by dots)"
        case .color: "write '#' followed by 3 or 6 hex digits"
        case .environmentVariable: "use letters, digits and '_', not starting with a digit"
        }
    }

    func matches(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { matches(bytes: $0) }
    }

    /// Scans the UTF-8 bytes in place: this runs for every name in a configuration, so it allocates nothing.
    func matches(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let all = bytes[...]
        switch self {
        case .slug: return Self.isLabel(all)
        case .permission, .event:
            guard !bytes.isEmpty, bytes.count <= 128, bytes.first != UInt8(ascii: "."), bytes.last != UInt8(ascii: ".") else {
                return false
            }
            var previousDot = false
            for b in bytes {
                if b == UInt8(ascii: ".") {
                    if previousDot { return false }
                    previousDot = true
                } else {
                    guard Self.isLowerAlnum(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") else { return false }
                    previousDot = false
                }
            }
            return true
        case .email:
            guard bytes.count <= 254, let at = bytes.lastIndex(of: UInt8(ascii: "@")) else { return false }
            let local = all[..<at], domain = all[(at + 1)...]
            guard !local.isEmpty, local.count <= 64, local.first != UInt8(ascii: "."), local.last != UInt8(ascii: ".")
            else { return false }
            for b in local {
                guard Self.isLowerAlnum(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: "+") || b == UInt8(ascii: "-")
                    || b == UInt8(ascii: "_") || b == UInt8(ascii: "'")
                else { return false }
            }
            return Self.isDomain(domain)
        case .domain: return Self.isDomain(all)
        case .color:
            guard bytes.first == UInt8(ascii: "#"), bytes.count == 4 || bytes.count == 7 else { return false }
            return all.dropFirst().allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 102) }
        case .environmentVariable:
            guard let first = bytes.first, !(48...57).contains(first), bytes.count <= 128 else { return false }
            return bytes.allSatisfy { ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) || (48...57).contains($0) || $0 == UInt8(ascii: "_") }
        }
    }

    static func isLowerAlnum(_ b: UInt8) -> Bool { (97...122).contains(b) || (48...57).contains(b) }

    static func isLabel<C: BidirectionalCollection<UInt8>>(_ bytes: C) -> Bool {
        guard let first = bytes.first, let last = bytes.last, bytes.count <= 63 else { return false }
        return isLowerAlnum(first) && isLowerAlnum(last) && bytes.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
    }

    static func isDomain(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { isDomain($0[...]) }
    }

    /// Labels separated by dots, at least two, the last one not all digits.
    static func isDomain(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        guard bytes.count <= 253 else { return false }
        var labels = 0
        var start = bytes.startIndex
        var lastAllDigits = true
        var index = bytes.startIndex
        while true {
            if index == bytes.endIndex || bytes[index] == UInt8(ascii: ".") {
                let label = bytes[start..<index]
                guard isLabel(label) else { return false }
                labels += 1
                lastAllDigits = label.allSatisfy { (48...57).contains($0) }
                if index == bytes.endIndex { break }
                start = index + 1
            }
            index += 1
        }
        return labels >= 2 && !lastAllDigits
    }
}
