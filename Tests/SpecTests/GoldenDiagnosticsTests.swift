import Foundation
import Spec
import Testing

/// Golden diagnostics: each folder under Fixtures/golden/<case>/ holds an invalid configuration
/// (`config/`) and the diagnostics loading it must produce, as text (`expected.txt`) and as JSON
/// (`expected.json`).
///
/// Re-record after an intended change with `ORGCTL_RECORD_GOLDEN=1 swift test --filter SpecTests`:
/// the expected files in the source tree are rewritten from the actual output and the test
/// fails, so the new output is always reviewed in the diff before it is committed.
@Suite struct GoldenDiagnosticsTests {
    /// One diagnostic as stored in expected.json. Paths are relative to the case's config folder.
    struct Entry: Codable, Equatable {
        var severity: String
        var id: String
        var message: String
        var file: String?
        var line: Int?
        var column: Int?
        var help: String?

        enum CodingKeys: String, CodingKey { case severity, id, message, file, line, column, help }

        /// Writes absent values as null, so every entry has the same keys.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(severity, forKey: .severity)
            try container.encode(id, forKey: .id)
            try container.encode(message, forKey: .message)
            try container.encode(file, forKey: .file)
            try container.encode(line, forKey: .line)
            try container.encode(column, forKey: .column)
            try container.encode(help, forKey: .help)
        }
    }

    static var recording: Bool { ProcessInfo.processInfo.environment["ORGCTL_RECORD_GOLDEN"] == "1" }

    /// The case folders copied into the test bundle, sorted by name.
    static func caseNames() -> [String] {
        guard let folder = Bundle.module.url(forResource: "golden", withExtension: nil, subdirectory: "Fixtures"),
            let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path)
        else { return [] }
        return names.filter { !$0.hasPrefix(".") }.sorted()
    }

    static func bundledCase(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/golden"))
    }

    /// Where re-recording writes: the source tree, found from this file's path.
    static func sourceCase(_ name: String) -> URL {
        sourceDirectory().appendingPathComponent("Fixtures/golden/\(name)")
    }

    /// Makes paths in `text` relative to the configuration folder.
    static func relative(_ text: String, root: String) -> String {
        text.replacingOccurrences(of: root + "/", with: "").replacingOccurrences(of: root, with: ".")
    }

    /// The stable text form: `file:line:col: severity: message [id]`, then `  help: …` and
    /// `  note: file:line:col: …` lines.
    static func renderText(_ diagnostics: [Diagnostic], root: String) -> String {
        var lines: [String] = []
        for d in diagnostics {
            let place = d.location.map { "\(relative($0.file, root: root)):\($0.line):\($0.column)" } ?? "<configuration>"
            lines.append("\(place): \(d.severity.rawValue): \(relative(d.message, root: root)) [\(d.id)]")
            if let help = d.help { lines.append("  help: \(relative(help, root: root))") }
            for note in d.notes {
                let at = note.location.map { "\(relative($0.file, root: root)):\($0.line):\($0.column): " } ?? ""
                lines.append("  note: \(at)\(relative(note.message, root: root))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func entries(_ diagnostics: [Diagnostic], root: String) -> [Entry] {
        diagnostics.map { d in
            Entry(
                severity: d.severity.rawValue, id: d.id, message: relative(d.message, root: root),
                file: d.location.map { relative($0.file, root: root) }, line: d.location?.line, column: d.location?.column,
                help: d.help.map { relative($0, root: root) })
        }
    }

    static func encode(_ entries: [Entry]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(entries), as: UTF8.self) + "\n"
    }

    @Test func thereAreEnoughCases() {
        #expect(Self.caseNames().count >= 8, "\(Self.caseNames())")
    }

    @Test(arguments: caseNames()) func golden(_ name: String) throws {
        let folder = try Self.bundledCase(name)
        let root = folder.appendingPathComponent("config").path
        let result = try ConfigurationLoader(now: fixedNow).load(path: root)
        let diagnostics = result.diagnostics.sorted
        #expect(!diagnostics.isEmpty, "a golden case is an invalid configuration")
        let text = Self.renderText(diagnostics, root: root)
        let entries = Self.entries(diagnostics, root: root)
        let json = try Self.encode(entries)

        if Self.recording {
            let destination = Self.sourceCase(name)
            try text.write(to: destination.appendingPathComponent("expected.txt"), atomically: true, encoding: .utf8)
            try json.write(to: destination.appendingPathComponent("expected.json"), atomically: true, encoding: .utf8)
            Issue.record("re-recorded \(destination.path); review the diff, then run again without ORGCTL_RECORD_GOLDEN")
            return
        }

        let expectedText = try String(contentsOf: folder.appendingPathComponent("expected.txt"), encoding: .utf8)
        #expect(text == expectedText, "diagnostics of golden case '\(name)' changed; actual:\n\(text)")
        let expectedJSON = try Data(contentsOf: folder.appendingPathComponent("expected.json"))
        let expectedEntries = try JSONDecoder().decode([Entry].self, from: expectedJSON)
        #expect(entries == expectedEntries, "JSON diagnostics of golden case '\(name)' changed; actual:\n\(json)")
    }

    /// The text renderer is part of what the golden files pin: check it on a known diagnostic.
    @Test func textFormIsOneLinePerDiagnosticWithHelpAndNotes() {
        let root = "/cfg"
        let diagnostic = Diagnostic(
            .error, "spec.duplicate-key", "key 'a' is defined more than once in this mapping",
            at: Spec.SourceLocation(file: "/cfg/tenants/x.yaml", line: 3, column: 1), help: "remove one of the two definitions",
            notes: [.init("first defined here", at: Spec.SourceLocation(file: "/cfg/tenants/x.yaml", line: 1, column: 1))])
        let unlocated = Diagnostic(.error, "spec.no-platform", "the configuration has no 'kind: Platform' document", at: nil)
        #expect(
            Self.renderText([unlocated, diagnostic], root: root) == """
                <configuration>: error: the configuration has no 'kind: Platform' document [spec.no-platform]
                tenants/x.yaml:3:1: error: key 'a' is defined more than once in this mapping [spec.duplicate-key]
                  help: remove one of the two definitions
                  note: tenants/x.yaml:1:1: first defined here

                """)
    }
}
