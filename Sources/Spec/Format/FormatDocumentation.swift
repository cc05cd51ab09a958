import Foundation

/// `orgctl explain` and the field reference of docs/spec.md, both generated from ``SpecFormat``.
public enum FormatDocumentation {
    /// What a path such as `tenant.sso.providers` names.
    public struct Resolved: Sendable {
        public var kind: FormatKind
        /// The keys from the document root, empty for the document itself.
        public var fields: [FormatField]

        public var path: String { fields.map(\.name).joined(separator: ".") }
        /// The object whose keys are listed under FIELDS, if any.
        public var object: FormatObject? { fields.last.map(\.type.nestedObject) ?? kind.object }
    }

    /// A path that names nothing: the message and what to write instead.
    public struct PathError: Error, Sendable {
        public var message: String
        public var help: String
    }

    /// Resolves `kind.key.key…`. Maps, lists and the object side of a member are transparent, so
    /// `tenant.members.role` names the role of each member; `*` and `<name>` segments are skipped
    /// (`tenant.teams.<slug>.members` is `tenant.teams.members`).
    public static func resolve(_ path: String) -> Result<Resolved, PathError> {
        let segments = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let kindNames = SpecFormat.kinds.map { $0.name.lowercased() }
        guard let first = segments.first, let kind = SpecFormat.kind(named: first) else {
            let head = segments.first ?? ""
            let hint = Suggestions.closest(to: head, among: kindNames).map { "did you mean '\($0)'? " } ?? ""
            return .failure(PathError(message: "'\(path)' does not start with a document kind",
                                      help: "\(hint)start the path with \(kindNames.joined(separator: " or ")), e.g. tenant.sso.providers"))
        }
        var resolved = Resolved(kind: kind, fields: [])
        var object: FormatObject? = kind.object
        for segment in segments.dropFirst() {
            if segment == "*" || segment == "[]" || (segment.hasPrefix("<") && segment.hasSuffix(">")) { continue }
            let parent = ([kind.name.lowercased()] + resolved.fields.map(\.name)).joined(separator: ".")
            guard let current = object else {
                return .failure(PathError(message: "'\(parent)' is a \(resolved.fields.last?.type.displayName ?? "value") and has no keys",
                                          help: "run 'orgctl explain \(parent)'"))
            }
            guard let field = current.field(segment) else {
                let names = current.fields.map(\.name)
                let hint = Suggestions.closest(to: segment, among: names).map { "did you mean '\(parent).\($0)'?" }
                return .failure(PathError(message: "\(current.title) has no key '\(segment)'",
                                          help: hint ?? "the keys of \(parent) are: \(names.joined(separator: ", "))"))
            }
            resolved.fields.append(field)
            object = field.type.nestedObject
        }
        return .success(resolved)
    }

    // MARK: explain

    /// kubectl-explain-style text for a resolved path, wrapped at `width` columns.
    public static func explain(_ resolved: Resolved, recursive: Bool = false, width: Int = 80) -> String {
        var lines: [String] = []
        lines.append("KIND:     \(resolved.kind.name)")
        lines.append("VERSION:  \(SpecFormat.apiVersion)")
        lines.append("")
        if let field = resolved.fields.last {
            lines.append("FIELD:    \(resolved.path) <\(field.type.displayName)>\(field.isRequired ? " -required-" : "")")
            lines.append("")
            lines.append("DESCRIPTION:")
            lines += wrap(field.summary, indent: 4, width: width)
            if let rule = rules(of: field.type) {
                lines += wrap(rule, indent: 4, width: width)
            }
            if let absent = field.absent {
                lines.append("")
                lines.append("WHEN ABSENT:")
                lines += wrap(absent.prefix(1).uppercased() + absent.dropFirst() + ".", indent: 4, width: width)
            }
            if let example = field.example {
                lines.append("")
                lines.append("EXAMPLE:")
                lines += yaml(key: field.name, example: example).map { "    " + $0 }
            }
        } else {
            lines.append("DESCRIPTION:")
            lines += wrap(resolved.kind.summary, indent: 4, width: width)
            if !recursive {
                lines.append("")
                lines.append("EXAMPLE:")
                lines += resolved.kind.example.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { "    " + $0 }
            }
        }
        if let object = resolved.object {
            lines.append("")
            lines.append(resolved.fields.last.map { field in field.type.object == nil ? "FIELDS (of each \(object.title)):" : "FIELDS:" } ?? "FIELDS:")
            if recursive {
                appendTree(object, depth: 1, into: &lines, seen: [])
            } else {
                let column = object.fields.map(\.name.count).max() ?? 0
                for (index, field) in object.fields.enumerated() {
                    if index > 0 { lines.append("") }
                    lines.append("    \(padded(field.name, column))<\(field.type.displayName)>\(requiredNote(field, in: object))")
                    lines += wrap(field.summary, indent: 6, width: width)
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func appendTree(_ object: FormatObject, depth: Int, into lines: inout [String], seen: [String]) {
        let column = object.fields.map(\.name.count).max() ?? 0
        for field in object.fields {
            let pad = String(repeating: "   ", count: depth)
            lines.append("\(pad)\(padded(field.name, column))<\(field.type.displayName)>\(requiredNote(field, in: object))")
            if let nested = field.type.nestedObject, !seen.contains(nested.title) {
                appendTree(nested, depth: depth + 1, into: &lines, seen: seen + [object.title])
            }
        }
    }

    /// ` -required-`, ` -required with type: saml-`, or nothing.
    static func requiredNote(_ field: FormatField, in object: FormatObject) -> String {
        if field.isRequired { return " -required-" }
        if let value = object.variantCase(of: field.name), let key = object.variants?.key { return " -required with \(key): \(value)-" }
        return ""
    }

    static func padded(_ name: String, _ column: Int) -> String {
        name + String(repeating: " ", count: column - name.count + 2)
    }

    /// The shape rules a type implies, in words (names, durations, secret references).
    static func rules(of type: FormatType) -> String? {
        func sentence(_ rule: String) -> String { rule.prefix(1).uppercased() + rule.dropFirst() + "." }
        switch type {
        case .text(let rule): return rule.rule.map(sentence)
        case .list(let item, _): return rules(of: item).map { "Entries: " + $0.prefix(1).lowercased() + $0.dropFirst() }
        case .map(let key, let value, _):
            return ["Keys: \(key.rule ?? key.displayName).", rules(of: value)].compactMap(\.self).joined(separator: " ")
        case .secretReference: return "Write {env: VARIABLE_NAME} or {file: path/relative/to/this/file}, never the secret itself."
        case .quota(let isSize):
            return isSize
                ? "Write a size (a whole number and B, KB, MB, GB, TB in powers of 1000, or KiB, MiB, GiB, TiB in powers of 1024) or 'unlimited'."
                : "Write a whole number from 0 to 10^12, or 'unlimited' (a value of its own, not a large number)."
        default: return nil
        }
    }

    /// `key: value` lines for an example: a block example (starting with a newline) goes under the key.
    static func yaml(key: String, example: String) -> [String] {
        if example.hasPrefix("\n") {
            return ["\(key):"] + example.dropFirst().split(separator: "\n").map(String.init)
        }
        return ["\(key): \(example)"]
    }

    public static func wrap(_ text: String, indent: Int, width: Int) -> [String] {
        let pad = String(repeating: " ", count: indent)
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty, pad.count + line.count + 1 + word.count > width {
                lines.append(pad + line)
                line = ""
            }
            line += line.isEmpty ? String(word) : " " + word
        }
        if !line.isEmpty { lines.append(pad + line) }
        return lines
    }

    // MARK: docs/spec.md

    public static let referenceBegin = "<!-- BEGIN GENERATED FIELD REFERENCE: do not edit; ORGCTL_RECORD_GOLDEN=1 swift test --filter FormatReference -->"
    public static let referenceEnd = "<!-- END GENERATED FIELD REFERENCE -->"

    /// The field reference: one table per kind of mapping, in the order a reader meets them.
    public static func markdownReference() -> String {
        var objects: [(object: FormatObject, paths: [String])] = []
        func visit(_ object: FormatObject, path: String) {
            if let index = objects.firstIndex(where: { $0.object.title == object.title }) {
                objects[index].paths.append(path)
                return
            }
            objects.append((object, [path]))
            for field in object.fields {
                if let nested = field.type.nestedObject { visit(nested, path: path + "." + field.name) }
            }
        }
        for kind in SpecFormat.kinds { visit(kind.object, path: kind.name.lowercased()) }

        var out = ""
        out += "Generated from the format description in `Sources/Spec/Format/SpecFormat.swift`, the same one that\n"
        out += "`orgctl schema` and `orgctl explain` print. *Absent* says what leaving a key out means.\n"
        for (object, paths) in objects {
            out += "\n### \(object.title) object\n\n"
            out += "Path\(paths.count == 1 ? "" : "s"): " + paths.map { "`\($0)`" }.joined(separator: ", ") + "\n"
            if let kind = SpecFormat.kinds.first(where: { $0.object.title == object.title }) {
                out += "\n" + kind.summary + "\n"
            }
            if let variants = object.variants {
                out += "\nThe keys depend on `\(variants.key)`: "
                out += variants.cases.map { "`\($0.value)` takes " + $0.fields.map { "`\($0)`" }.joined(separator: ", ") }.joined(separator: "; ")
                out += " (all required); the other type's keys are errors.\n"
            }
            out += "\n| key | type | required | meaning |\n|---|---|---|---|\n"
            for field in object.fields {
                var meaning = field.summary
                if let rule = rules(of: field.type) { meaning += " " + rule }
                meaning = meaning.replacingOccurrences(of: "*", with: "\\*")
                if let absent = field.absent { meaning += " *Absent:* \(absent)." }
                if let example = field.example, !example.hasPrefix("\n") { meaning += " Example: `\(field.name): \(example)`" }
                let type = markdownType(field.type)
                let required = field.isRequired ? "yes" : object.variantCase(of: field.name).map { "with `\(object.variants!.key): \($0)`" } ?? "no"
                out += "| `\(field.name)` | \(type) | \(required) | \(escape(meaning)) |\n"
            }
        }
        return out
    }

    static func markdownType(_ type: FormatType) -> String {
        switch type {
        case .object(let object): "[\(object.title)](#\(anchor(object.title + " object")))"
        case .map(let key, let value, _): "map: \(key.displayName) → \(markdownType(value))"
        case .list(let item, let nonEmpty): "\(nonEmpty ? "non-empty " : "")list of \(markdownType(item))"
        case .either(let a, let b): "\(markdownType(a)) or \(markdownType(b))"
        case .secretReference: "[secret reference](#secret-references)"
        case .oneOf(let values): values.map { "`\($0)`" }.joined(separator: " \\| ")
        case .constant(let value): "`\(value)`"
        default: escape(type.displayName)
        }
    }

    /// GitHub's heading anchors: lower case, spaces to '-', punctuation dropped.
    static func anchor(_ heading: String) -> String {
        String(heading.lowercased().compactMap { c -> Character? in
            if c == " " { return "-" }
            return c.isLetter || c.isNumber || c == "-" || c == "_" ? c : nil
        })
    }

    static func escape(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|") }
}
