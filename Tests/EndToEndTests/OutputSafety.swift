import Foundation
import Testing

/// What no text orgctl prints may hold, whatever the input: checked independently of orgctl's own
/// escaping code.
enum OutputSafety {
    /// A value built to break a CI log: a newline then a GitHub workflow command, CR, ANSI and OSC
    /// escapes, a BEL, bidi overrides and isolates, line/paragraph separators, NEL, zero-width space,
    /// and the legacy `##[` and Azure `##vso[` command forms.
    static let hostile = "A\n::error file=x.yaml,line=1::forged\r\u{1B}[2J\u{1B}]0;pwned\u{07}\u{202E}esrever\u{2066}iso\u{2069}"
        + "\u{2028}ls\u{2029}ps\u{85}nel ##[add-mask]m ##vso[task.setvariable variable=x]v z\u{200B}w\u{061C}\u{200F}"

    /// Scalars that must never reach a terminal or a log raw (newline and tab are layout).
    static func isForbidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x0A, 0x09: false
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0x061C, 0x200B...0x200F, 0x202A...0x202E, 0x2060...0x2069, 0x2028, 0x2029, 0xFEFF: true
        default: false
        }
    }

    /// Unicode white space, as .NET's `TrimStart()` (GitHub's runner) skips it before looking for `::`.
    static func isLeadingSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "\t" || scalar.properties.generalCategory == .spaceSeparator
    }

    /// The problems in `text`: raw forbidden scalars, lines a runner reads as a workflow command,
    /// and legacy command prefixes anywhere. `workflowCommands`: lines of `validate --format github`,
    /// which must each be exactly one well-formed annotation.
    static func problems(_ text: String, workflowCommands: Bool = false) -> [String] {
        var found: [String] = []
        for scalar in text.unicodeScalars where isForbidden(scalar) {
            found.append("raw U+\(String(scalar.value, radix: 16, uppercase: true))")
            if found.count > 5 { break }
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = String(String.UnicodeScalarView(line.unicodeScalars.drop(while: isLeadingSpace)))
            if trimmed.hasPrefix("::") {
                if workflowCommands, trimmed.wholeMatch(of: /::(error|warning|notice) (file=[^,:]*,line=\d+,col=\d+,)?title=[a-z0-9.-]+::[^\r]*/) != nil {
                    continue
                }
                found.append("a line read as a workflow command: \(line.debugDescription)")
            }
        }
        for prefix in ["##[", "##vso[", "##teamcity["] where text.contains(prefix) { found.append("'\(prefix)' in the output") }
        return found
    }

    static func expectSafe(_ run: Run, _ what: String, workflowCommands: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) {
        for (stream, text) in [("stdout", run.stdout), ("stderr", run.stderr)] {
            let problems = problems(text, workflowCommands: workflowCommands && stream == "stdout")
            #expect(problems.isEmpty, "\(what) \(stream): \(problems)\n\(run.description.prefix(3000))", sourceLocation: sourceLocation)
        }
    }
}

extension Workspace {
    /// A workspace holding a copy of the examples applied to its state (`state.db`, or its PostgreSQL schema).
    static func appliedExamples(name: String, backend: Backend = .sqlite, sourceLocation: SourceLocation = #_sourceLocation) throws
        -> (workspace: Workspace, config: String, state: String)
    {
        let workspace = try Workspace(name: name, backend: backend)
        let config = try workspace.copyExamples()
        let state = workspace.state
        let applied = try workspace.apply(config, state: state)
        try #require(applied.status == 0, "applying the examples failed: \(applied)", sourceLocation: sourceLocation)
        return (workspace, config, state)
    }

    /// A workspace with `ConfigGenerator`'s tenants in `config/` (and the secret their webhooks use).
    static func generated(name: String, tenants: Range<Int>, backend: Backend = .sqlite) throws -> (workspace: Workspace, config: URL) {
        let workspace = try Workspace(secrets: [ConfigGenerator.webhookSecretVariable: "e2e-leakcheck-generated-hook"], name: name, backend: backend)
        let config = workspace.url.appendingPathComponent("config")
        try ConfigGenerator.write(to: config, tenants: tenants, variant: 0)
        return (workspace, config)
    }
}
