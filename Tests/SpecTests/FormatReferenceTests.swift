import Foundation
import Testing

@testable import Spec

/// docs/spec.md's field reference is generated from the format description. When the two
/// differ, the test fails; `ORGCTL_RECORD_GOLDEN=1 swift test --filter FormatReference` rewrites
/// the section (and still fails, so the change is reviewed).
@Suite("FormatReference")
struct FormatReferenceTests {
    static let document = FormatSchemaTests.repository.appendingPathComponent("docs/spec.md")

    @Test("docs/spec.md's generated field reference is up to date")
    func referenceIsCurrent() throws {
        let text = try String(contentsOf: Self.document, encoding: .utf8)
        let begin = try #require(text.range(of: FormatDocumentation.referenceBegin), "docs/spec.md has no begin marker")
        let end = try #require(text.range(of: FormatDocumentation.referenceEnd), "docs/spec.md has no end marker")
        let current = String(text[begin.upperBound..<end.lowerBound])
        let generated = "\n" + FormatDocumentation.markdownReference() + "\n"
        if current == generated { return }
        if ProcessInfo.processInfo.environment["ORGCTL_RECORD_GOLDEN"] == "1" {
            let updated = String(text[..<begin.upperBound]) + generated + String(text[end.lowerBound...])
            try updated.write(to: Self.document, atomically: true, encoding: .utf8)
            Issue.record("re-recorded the field reference in docs/spec.md: review the diff and run again")
        } else {
            Issue.record("docs/spec.md's field reference is out of date: run ORGCTL_RECORD_GOLDEN=1 swift test --filter FormatReference")
        }
    }

    @Test("every object the reference links to has a heading")
    func anchorsResolve() {
        let reference = FormatDocumentation.markdownReference()
        let headings = Set(reference.split(separator: "\n").filter { $0.hasPrefix("### ") }.map {
            FormatDocumentation.anchor(String($0.dropFirst(4)))
        })
        let links = reference.matches(of: /\]\(#([a-z0-9-]+)\)/).map { String($0.1) }
        #expect(!links.isEmpty)
        for link in Set(links) where link != "secret-references" {
            #expect(headings.contains(link), "no heading for #\(link)")
        }
    }
}
