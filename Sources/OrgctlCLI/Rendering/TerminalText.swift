/// Text from outside orgctl — configuration files and their names, the state database, saved
/// plans, checkpoint files — made safe for a terminal or a CI log.
///
/// Two layers, one escape notation:
/// - ``escape(_:)`` escapes one value where a renderer places it in a line: every control
///   character (newline, CR and tab included), DEL, the C1 controls (NEL), and every format
///   character (bidi overrides and isolates, zero-width characters, the BOM) and line or
///   paragraph separator. A value therefore never ends a line or starts a new one.
/// - ``sanitize(_:keepingStyle:workflowCommands:)`` runs over everything the ``Console`` writes:
///   it escapes the same scalars except the layout's own newlines and tabs (and orgctl's own
///   colour codes on a terminal), and it neutralises CI workflow commands: a line whose first
///   non-blank characters are `::` (GitHub Actions) and `##[`, `##vso[`, `##teamcity[` anywhere
///   (GitHub's legacy form, Azure Pipelines, TeamCity).
///
/// Escapes are written as JSON writes them (`\n`, `\r`, `\t`, `\u001b`, `\u202e`, a surrogate
/// pair above U+FFFF), so a JSON document passes through ``sanitize`` still valid and with the
/// same values, and an escaped value reads the same in text and JSON output.
enum TerminalText {
    /// Whether `scalar` must never reach a terminal or a log raw.
    @inline(__always)
    static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if value < 0x20 || (0x7F...0x9F).contains(value) { return true }
        if value < 0xA0 { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator: return true
        default: return false
        }
    }

    /// One value, every unsafe scalar escaped (a newline too).
    static func escape(_ value: String) -> String {
        if isPrintableASCII(value) { return value }
        guard value.unicodeScalars.contains(where: isUnsafe) else { return value }
        var out = String.UnicodeScalarView()
        for scalar in value.unicodeScalars {
            if isUnsafe(scalar) { appendEscape(scalar, to: &out) } else { out.append(scalar) }
        }
        return String(out)
    }

    /// A value between double quotes: also `"` and `\` escaped, so the quotes are the value's bounds.
    static func quoted(_ value: String) -> String {
        if isPrintableASCII(value), !value.utf8.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            return "\"" + value + "\""
        }
        var out = String.UnicodeScalarView()
        out.append("\"")
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"", "\\":
                out.append("\\")
                out.append(scalar)
            case _ where isUnsafe(scalar): appendEscape(scalar, to: &out)
            default: out.append(scalar)
            }
        }
        out.append("\"")
        return String(out)
    }

    /// True when every byte of `value` is printable ASCII (nothing to escape): the common case,
    /// checked on the bytes before anything is decoded.
    @inline(__always)
    static func isPrintableASCII(_ value: String) -> Bool {
        !value.utf8.contains { $0 < 0x20 || $0 >= 0x7F }
    }

    static func appendEscape(_ scalar: Unicode.Scalar, to out: inout String.UnicodeScalarView) {
        switch scalar {
        case "\n": out.append(contentsOf: #"\n"#.unicodeScalars)
        case "\r": out.append(contentsOf: #"\r"#.unicodeScalars)
        case "\t": out.append(contentsOf: #"\t"#.unicodeScalars)
        default:
            for unit in String(scalar).utf16 {
                let hex = String(unit, radix: 16)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
            }
        }
    }

    /// A whole text about to be written: layout newlines and tabs are kept, and `ESC [ code m`
    /// for the codes ``Style`` writes when `keepingStyle`; every other unsafe scalar is escaped,
    /// and workflow commands are neutralised (unless `workflowCommands`: orgctl's own
    /// `validate --format github` lines, whose values ``DiagnosticRenderer`` has escaped).
    static func sanitize(_ text: String, keepingStyle: Bool, workflowCommands: Bool = false) -> String {
        // Fast path: printable ASCII and newlines only, with no ':' or '#' at risk.
        if !text.utf8.contains(where: { $0 < 0x20 && $0 != 0x0A && $0 != 0x09 || $0 >= 0x7F || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "#") }) {
            return text
        }
        // Line by line: every line starts in the same state (the rules below look no further than
        // its newline), so a line with nothing to escape is copied as bytes and only the others are
        // rewritten scalar by scalar. A plan of half a million lines has a ':' in most of them.
        var text = text
        return text.withUTF8 { bytes in
            var out: [UInt8] = []
            out.reserveCapacity(bytes.count)
            var start = 0
            while start < bytes.count {
                var end = start
                var plain = true
                while end < bytes.count, bytes[end] != 0x0A {
                    let byte = bytes[end]
                    if byte < 0x20 && byte != 0x09 || byte >= 0x7F || byte == UInt8(ascii: "#") && end + 1 < bytes.count && bytes[end + 1] == UInt8(ascii: "#") {
                        plain = false
                    }
                    end += 1
                }
                if end < bytes.count { end += 1 }  // the newline belongs to its line
                let line = UnsafeBufferPointer(rebasing: bytes[start..<end])
                if plain && (workflowCommands || !startsWithWorkflowCommand(line)) {
                    out.append(contentsOf: line)
                } else {
                    out.append(contentsOf: sanitizeByScalars(String(decoding: line, as: UTF8.self), keepingStyle: keepingStyle, workflowCommands: workflowCommands).utf8)
                }
                start = end
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// Whether a line of ASCII starts, after spaces and tabs, with `::`.
    private static func startsWithWorkflowCommand(_ line: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = line.firstIndex(where: { $0 != UInt8(ascii: " ") && $0 != 0x09 }) else { return false }
        return first + 1 < line.count && line[first] == UInt8(ascii: ":") && line[first + 1] == UInt8(ascii: ":")
    }

    /// ``sanitize(_:keepingStyle:workflowCommands:)`` of any text, scalar by scalar: what it does to the lines it cannot copy.
    static func sanitizeByScalars(_ text: String, keepingStyle: Bool, workflowCommands: Bool) -> String {
        let scalars = text.unicodeScalars
        var out = String.UnicodeScalarView()
        var index = scalars.startIndex
        var atLineStart = !workflowCommands
        func scalar(after position: String.UnicodeScalarView.Index, by distance: Int) -> Unicode.Scalar? {
            var position = position
            for _ in 0..<distance {
                guard position < scalars.endIndex else { return nil }
                position = scalars.index(after: position)
            }
            return position < scalars.endIndex ? scalars[position] : nil
        }
        while index < scalars.endIndex {
            let current = scalars[index]
            let next = scalars.index(after: index)
            if atLineStart {
                // What the runner's TrimStart() skips before looking for '::'.
                if current == " " || current == "\t" || current.properties.generalCategory == .spaceSeparator {
                    out.append(current)
                    index = next
                    continue
                }
                atLineStart = false
                if current == ":" && scalar(after: index, by: 1) == ":" {
                    appendEscape(current, to: &out)
                    index = next
                    continue
                }
            }
            switch current {
            case "\n":
                out.append(current)
                atLineStart = !workflowCommands
            case "\t":
                out.append(current)
            case "\u{1B}" where keepingStyle:
                if let end = styleSequenceEnd(scalars, from: index) {
                    out.append(contentsOf: scalars[index..<end])
                    index = end
                    continue
                }
                appendEscape(current, to: &out)
            case "#" where scalar(after: index, by: 1) == "#":
                // `##[`, `##vso[`, `##teamcity[`: the second '#' escaped when a bracket or a word follows.
                out.append(current)
                if let third = scalar(after: index, by: 2), third == "[" || third.isASCII && third.properties.isAlphabetic {
                    appendEscape("#", to: &out)
                    index = scalars.index(after: next)
                    continue
                }
            default:
                if isUnsafe(current) { appendEscape(current, to: &out) } else { out.append(current) }
            }
            index = next
        }
        return String(out)
    }

    /// The end of an `ESC [ codes m` sequence that ``Style`` writes, or nil for any other escape.
    private static func styleSequenceEnd(_ scalars: String.UnicodeScalarView, from start: String.UnicodeScalarView.Index)
        -> String.UnicodeScalarView.Index?
    {
        var index = scalars.index(after: start)
        guard index < scalars.endIndex, scalars[index] == "[" else { return nil }
        index = scalars.index(after: index)
        var code = ""
        while index < scalars.endIndex, code.count <= 8 {
            let scalar = scalars[index]
            if scalar == "m" { return Style.codes.contains(code) ? scalars.index(after: index) : nil }
            code.unicodeScalars.append(scalar)
            index = scalars.index(after: index)
        }
        return nil
    }
}
