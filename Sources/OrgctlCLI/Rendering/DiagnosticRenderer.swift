import Foundation
import Spec

/// Renders diagnostics as text (with the source line and a caret), JSON, or GitHub Actions
/// workflow commands.
struct DiagnosticRenderer {
    /// Text output shows at most this many diagnostics; JSON at most `jsonLimit`.
    static let textLimit = 200
    static let jsonLimit = 10_000

    var style: Style

    // MARK: Text

    func text(_ diagnostics: [Diagnostic]) -> String {
        var sources = SourceCache()
        var output = ""
        for diagnostic in diagnostics.prefix(Self.textLimit) {
            output += render(diagnostic, &sources)
        }
        if diagnostics.count > Self.textLimit {
            output += "… and \(diagnostics.count - Self.textLimit) more (use --format json to see all)\n"
        }
        return output
    }

    private func render(_ d: Diagnostic, _ sources: inout SourceCache) -> String {
        let label: String
        switch d.severity {
        case .error: label = style.red("error")
        case .warning: label = style.yellow("warning")
        case .note: label = style.cyan("note")
        }
        // The message, notes, help and file names quote the input: each is escaped as one value.
        var text = ""
        if let location = d.location {
            text += style.bold("\(TerminalText.escape(location.description)):") + " "
        }
        text += "\(label): \(style.bold(TerminalText.escape(d.message))) \(style.dim("[\(d.id)]"))\n"
        if let location = d.location, let excerpt = sources.excerpt(location) {
            text += excerpt.map { "      " + $0 }.joined(separator: "\n") + "\n"
        }
        for note in d.notes {
            text += "\(style.cyan("note")): \(Self.noteText(note))\n"
        }
        if let help = d.help {
            text += "\(style.green("help")): \(TerminalText.escape(help))\n"
        }
        return text
    }

    /// A note as one escaped line: `message (file:line:column)`.
    static func noteText(_ note: Diagnostic.Note) -> String {
        TerminalText.escape(note.message + (note.location.map { " (\($0))" } ?? ""))
    }

    // MARK: JSON

    /// The stable JSON document described in docs/cli.md ("validate --format json").
    static func jsonObjects(_ diagnostics: [Diagnostic]) -> [[String: Any]] {
        diagnostics.prefix(jsonLimit).map { d in
            var object: [String: Any] = ["severity": d.severity.rawValue, "id": d.id, "message": d.message]
            if let location = d.location {
                object["file"] = location.file
                object["line"] = location.line
                object["column"] = location.column
            }
            if let help = d.help { object["help"] = help }
            if !d.notes.isEmpty {
                object["notes"] = d.notes.map { note -> [String: Any] in
                    var n: [String: Any] = ["message": note.message]
                    if let location = note.location {
                        n["file"] = location.file
                        n["line"] = location.line
                        n["column"] = location.column
                    }
                    return n
                }
            }
            return object
        }
    }

    // MARK: GitHub Actions

    /// `::error file=…,line=…,col=…,title=…::message` lines, one per diagnostic.
    static func github(_ diagnostics: [Diagnostic]) -> String {
        var output = ""
        for d in diagnostics.prefix(textLimit) {
            let command: String
            switch d.severity {
            case .error: command = "error"
            case .warning: command = "warning"
            case .note: command = "notice"
            }
            var properties: [String] = []
            if let location = d.location {
                properties += ["file=\(escapeProperty(TerminalText.escape(location.file)))", "line=\(location.line)", "col=\(location.column)"]
            }
            properties.append("title=\(escapeProperty(d.id))")
            // Each part is one escaped value (a newline in it is shown as \n); the encoded newlines
            // (%0A) between them are the annotation's own lines.
            var message = TerminalText.escape(d.message)
            for note in d.notes { message += "\nnote: " + noteText(note) }
            if let help = d.help { message += "\nhelp: " + TerminalText.escape(help) }
            output += "::\(command) \(properties.joined(separator: ","))::\(escapeData(message))\n"
        }
        return output
    }

    private static func escapeData(_ s: String) -> String {
        s.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\r", with: "%0D")
            .replacingOccurrences(of: "\n", with: "%0A")
    }

    private static func escapeProperty(_ s: String) -> String {
        escapeData(s).replacingOccurrences(of: ":", with: "%3A").replacingOccurrences(of: ",", with: "%2C")
    }
}

/// Reads source lines for excerpts, each file at most once.
struct SourceCache {
    /// Each file's bytes and where its lines start (not a String and a Substring per line: a 100 MB
    /// hostile file would cost three times its size).
    private var files: [String: (bytes: Data, starts: [Int])] = [:]
    private static let maxWidth = 120

    /// The line with a gutter, and a caret under the column: `12 | key: value` / `   |     ^`.
    mutating func excerpt(_ location: SourceLocation) -> [String]? {
        if files[location.file] == nil {
            // Only a regular file of a size the loader reads (a FIFO would block, a 300 MB file would be read
            // whole for one line): the size is checked before reading. Never through a symbolic link: the
            // loader refuses a linked file (spec.file-link) unread, and quoting its target would print
            // whatever it names (a key file, /proc/self/environ) into the log. `attributesOfItem` does
            // not follow a final link, so a link is not `.typeRegular`.
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: location.file),
                  attributes[.type] as? FileAttributeType == .typeRegular,
                  let size = attributes[.size] as? NSNumber, size.intValue <= 256 << 20,
                  let data = FileManager.default.contents(atPath: location.file)
            else { return nil }
            var starts = [0]
            data.withUnsafeBytes { raw in
                for (offset, byte) in raw.enumerated() where byte == 0x0A { starts.append(offset + 1) }
            }
            files[location.file] = (data, starts)
        }
        guard let file = files[location.file], location.line >= 1, location.line <= file.starts.count else { return nil }
        let start = file.starts[location.line - 1]
        let end = location.line < file.starts.count ? file.starts[location.line] - 1 : file.bytes.count
        var line = Array(String(decoding: file.bytes[start..<end], as: UTF8.self).unicodeScalars)
        if line.last == "\r" { line.removeLast() }
        var column = max(0, location.column - 1)
        // Keep very long lines (a 2 MB key) to a window around the column.
        var prefix = "", suffix = ""
        if line.count > Self.maxWidth {
            let start = max(0, min(column - 20, line.count - Self.maxWidth))
            let end = min(line.count, start + Self.maxWidth)
            prefix = start > 0 ? "…" : ""
            suffix = end < line.count ? "…" : ""
            line = Array(line[start..<end])
            column = column - start + (prefix.isEmpty ? 0 : 1)
        }
        // Control and format characters (a NUL, an escape, a bidi override) are shown as '?', one column
        // each, so the excerpt can neither drive the terminal nor reorder what it shows.
        let shown = prefix + String(String.UnicodeScalarView(line.map { $0 != "\t" && TerminalText.isUnsafe($0) ? "?" : $0 })) + suffix
        let pad = String(shown.unicodeScalars.prefix(column).map { $0 == "\t" ? "\t" : " " })
        let number = String(location.line)
        let gutter = String(repeating: " ", count: number.count)
        return ["\(number) | \(shown)", "\(gutter) | \(pad)^"]
    }
}
