import Foundation
import Testing

@testable import OrgctlCLI

/// docs/cli.md shows each command's help as the binary prints it. The test fails when they differ;
/// `ORGCTL_RECORD_GOLDEN=1 swift test --filter HelpDocumentation` rewrites the blocks (and fails, so the
/// change is reviewed).
@Suite("HelpDocumentation")
struct HelpDocumentationTests {
    static let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/cli.md")
        .standardizedFileURL

    @Test("every help block in docs/cli.md is what the command prints")
    func helpBlocksMatch() throws {
        var text = try String(contentsOf: Self.document, encoding: .utf8)
        var changed: [String] = []
        var documented: Set<[String]> = []
        var searchFrom = text.startIndex
        while let heading = text.range(of: "\n## `orgctl", range: searchFrom..<text.endIndex) {
            let lineEnd = text[heading.upperBound...].firstIndex(of: "\n") ?? text.endIndex
            let title = text[heading.upperBound..<lineEnd]  // " plan`" or "`"
            let path = title.dropLast().split(separator: " ").map(String.init)
            guard let open = text.range(of: "```\n", range: lineEnd..<text.endIndex),
                let close = text.range(of: "\n```", range: open.upperBound..<text.endIndex)
            else { break }
            let captured = Captured()
            _ = captured.run(path + ["--help"])
            let expected = captured.out.hasSuffix("\n") ? String(captured.out.dropLast()) : captured.out
            if text[open.upperBound..<close.lowerBound] != expected {
                changed.append("orgctl " + path.joined(separator: " "))
                text.replaceSubrange(open.upperBound..<close.lowerBound, with: expected)
            }
            documented.insert(path)
            searchFrom = text.index(open.upperBound, offsetBy: expected.count)
        }
        // Every runnable command and the root are documented.
        var expectedPaths: Set<[String]> = [[]]
        func visit(_ spec: CommandSpec, _ path: [String]) {
            if !spec.isGroup { expectedPaths.insert(path) }
            for sub in spec.subcommands { visit(sub, path + [sub.name]) }
        }
        visit(Orgctl.commands, [])
        #expect(expectedPaths.subtracting(documented).isEmpty, "not in docs/cli.md: \(expectedPaths.subtracting(documented).sorted { $0.lexicographicallyPrecedes($1) })")
        guard !changed.isEmpty else { return }
        if ProcessInfo.processInfo.environment["ORGCTL_RECORD_GOLDEN"] == "1" {
            try text.write(to: Self.document, atomically: true, encoding: .utf8)
            Issue.record("re-recorded the help of \(changed.joined(separator: ", ")) in docs/cli.md: review the diff and run again")
        } else {
            Issue.record("docs/cli.md's help differs from the binary for \(changed.joined(separator: ", ")): run ORGCTL_RECORD_GOLDEN=1 swift test --filter HelpDocumentation")
        }
    }
}
