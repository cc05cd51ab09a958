/// Reads typed values out of positioned nodes, reporting every problem instead of stopping.
///
/// One reader serves one file; its diagnostics are merged by the caller.
final class Reader {
    let file: String
    var diagnostics = Diagnostics()

    init(file: String) {
        self.file = file
    }

    func location(_ node: Node) -> SourceLocation {
        SourceLocation(file: file, line: Int(node.mark.line), column: Int(node.mark.column))
    }

    func location(_ mark: Mark) -> SourceLocation {
        SourceLocation(file: file, line: Int(mark.line), column: Int(mark.column))
    }

    func error(_ id: String, _ message: String, at node: Node, help: String? = nil, notes: [Diagnostic.Note] = []) {
        diagnostics.error(id, message, at: location(node), help: help, notes: notes)
    }

    func warning(_ id: String, _ message: String, at node: Node, help: String? = nil) {
        diagnostics.warning(id, message, at: location(node), help: help)
    }

    // MARK: Mappings

    /// The pairs of a mapping node whose keys are all in `allowed`; reports unknown keys with a suggestion.
    func fields(_ node: Node, _ what: @autoclosure () -> String, allowed: [String]) -> Fields? {
        guard case .mapping(let pairs) = node.content else {
            if node.isNull { return Fields(pairs: [], node: node) }
            error("spec.type", "\(what()) must be a mapping, not \(node.kindDescription)", at: node,
                  help: "write \(what()) as 'key: value' lines indented under it")
            return nil
        }
        for pair in pairs {
            let key = pair.key.scalar ?? ""
            if !allowed.contains(key) {
                let hint = Suggestions.didYouMean(key, among: allowed)
                    ?? "allowed keys are: \(allowed.joined(separator: ", "))"
                error("spec.unknown-key", "unknown key '\(key)' in \(what())", at: pair.key, help: hint)
            }
        }
        return Fields(pairs: pairs, node: node)
    }

    /// The entries of a mapping keyed by names (identities), in the order written.
    func entries(_ node: Node, _ what: @autoclosure () -> String) -> [Node.Pair] {
        switch node.content {
        case .mapping(let pairs): return pairs
        case .sequence:
            error("spec.type", "\(what()) must be a mapping keyed by name, not a list", at: node,
                  help: "write each entry as 'name: …'; identities are map keys so duplicates are caught")
            return []
        case .scalar:
            if node.isNull { return [] }
            error("spec.type", "\(what()) must be a mapping keyed by name, not \(node.kindDescription)", at: node,
                  help: "write each entry as 'name: …' on its own line")
            return []
        }
    }

    // MARK: Scalars

    func string(_ node: Node, _ what: @autoclosure () -> String) -> String? {
        guard case .scalar(let text, _) = node.content, !node.isNull else {
            error("spec.type", "\(what()) must be a string, not \(node.kindDescription)", at: node,
                  help: node.isNull ? "give \(what()) a value, or remove the key" : "write \(what()) as a single value")
            return nil
        }
        return text
    }

    func nonEmptyString(_ node: Node, _ what: @autoclosure () -> String) -> String? {
        guard let text = string(node, what()) else { return nil }
        if text.utf8.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
            error("spec.empty", "\(what()) must not be empty", at: node, help: "give \(what()) a value, or remove the key")
            return nil
        }
        return text
    }

    func bool(_ node: Node, _ what: @autoclosure () -> String) -> Bool? {
        if case .scalar(let text, let style) = node.content {
            if style == .plain && text == "true" { return true }
            if style == .plain && text == "false" { return false }
            let yaml11: [String: Bool] = [
                "yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true, "y": true, "Y": true,
                "True": true, "TRUE": true, "no": false, "No": false, "NO": false, "off": false, "Off": false,
                "OFF": false, "n": false, "N": false, "False": false, "FALSE": false,
            ]
            if let meant = yaml11[text] {
                error("spec.type", "\(what()) must be true or false, not '\(text)'", at: node,
                      help: "write \(meant) (YAML 1.1 spellings such as '\(text)' are not booleans here)")
                return nil
            }
        }
        error("spec.type", "\(what()) must be true or false, not \(describe(node))", at: node, help: "write true or false")
        return nil
    }

    func integer(_ node: Node, _ what: @autoclosure () -> String, in range: ClosedRange<Int64>) -> Int64? {
        if case .scalar(let text, .plain) = node.content, !text.isEmpty, text.utf8.count <= 64,
            text.utf8.dropFirst(text.first == "-" ? 1 : 0).allSatisfy({ $0 >= 48 && $0 <= 57 }), Int64(text) == nil
        {
            // All digits, but beyond 64 bits: out of range rather than not a number.
            error("spec.range", "\(what()) must be from \(range.lowerBound) to \(range.upperBound), not \(text)", at: node,
                  help: "choose a value from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        guard case .scalar(let text, .plain) = node.content, !text.isEmpty, text.utf8.count <= 20,
            text.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == UInt8(ascii: "-") }), let value = Int64(text)
        else {
            error("spec.type", "\(what()) must be a whole number, not \(describe(node))", at: node,
                  help: "write a number from \(range.lowerBound) to \(range.upperBound) without quotes")
            return nil
        }
        guard range.contains(value) else {
            error("spec.range", "\(what()) must be from \(range.lowerBound) to \(range.upperBound), not \(value)", at: node,
                  help: "choose a value from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return value
    }

    func stringList(_ node: Node, _ what: @autoclosure () -> String) -> [Located<String>]? {
        switch node.content {
        case .sequence(let items):
            var result: [Located<String>] = []
            result.reserveCapacity(items.count)
            var seen: [String: Node] = [:]
            for item in items {
                guard let text = nonEmptyString(item, "each entry of \(what())") else { continue }
                if let first = seen[text] {
                    error("spec.duplicate-entry", "'\(text)' is listed twice in \(what())", at: item,
                          help: "remove the repeated entry", notes: [.init("first listed here", at: location(first))])
                    continue
                }
                seen[text] = item
                result.append(Located(text, at: location(item)))
            }
            return result
        case .scalar where node.isNull:
            return []
        default:
            error("spec.type", "\(what()) must be a list, not \(describe(node))", at: node,
                  help: "write a list such as [a, b] or one '- item' per line")
            return nil
        }
    }

    func enumValue<E: RawRepresentable & CaseIterable>(_ node: Node, _ what: @autoclosure () -> String, _: E.Type) -> E?
    where E.RawValue == String {
        guard let text = string(node, what()) else { return nil }
        if let value = E(rawValue: text) { return value }
        let allowed = E.allCases.map(\.rawValue)
        error("spec.value", "\(what()) must be one of \(allowed.joined(separator: ", ")), not '\(text)'", at: node,
              help: Suggestions.didYouMean(text, among: allowed) ?? "use one of: \(allowed.joined(separator: ", "))")
        return nil
    }

    func duration(_ node: Node, _ what: @autoclosure () -> String, in range: ClosedRange<Int64>? = nil) -> Located<Duration>? {
        guard let text = string(node, what()) else { return nil }
        guard let value = Duration(parsing: text) else {
            error("spec.duration", "\(what()) must be a duration such as 30s, 15m, 8h or 30d, not '\(text)'", at: node,
                  help: "write a whole number followed by one unit: s, m, h, d or w")
            return nil
        }
        if let range, !range.contains(value.seconds) {
            let low = Duration(seconds: range.lowerBound), high = Duration(seconds: range.upperBound)
            error("spec.range", "\(what()) must be from \(low) to \(high), not \(text)", at: node,
                  help: "choose a duration from \(low) to \(high)")
            return nil
        }
        return Located(value, at: location(node))
    }

    func rate(_ node: Node, _ what: @autoclosure () -> String) -> Located<Rate>? {
        guard let text = string(node, what()) else { return nil }
        guard let value = Rate(parsing: text) else {
            error("spec.rate", "\(what()) must be a rate such as 600/h, not '\(text)'", at: node,
                  help: "write a positive whole number, '/', and one unit: s, m, h or d")
            return nil
        }
        return Located(value, at: location(node))
    }

    func date(_ node: Node, _ what: @autoclosure () -> String) -> Located<CalendarDate>? {
        guard let text = string(node, what()) else { return nil }
        guard let value = CalendarDate(parsing: text) else {
            error("spec.date", "\(what()) must be a date written YYYY-MM-DD, not '\(text)'", at: node,
                  help: "write a real calendar date such as 2027-01-31")
            return nil
        }
        return Located(value, at: location(node))
    }

    func describe(_ node: Node) -> String {
        switch node.content {
        case .scalar(let text, _):
            node.isNull ? "null" : "'\(text.count > 40 ? String(text.prefix(40)) + "…" : text)'"
        default: node.kindDescription
        }
    }
}

/// The pairs of one mapping, looked up by key.
struct Fields {
    let pairs: [Node.Pair]
    let node: Node

    subscript(key: String) -> Node? {
        for pair in pairs where pair.key.scalar == key { return pair.value }
        return nil
    }

    /// The key node of `key`, for positioning messages about the key itself.
    func keyNode(_ key: String) -> Node? {
        pairs.first { $0.key.scalar == key }?.key
    }
}
