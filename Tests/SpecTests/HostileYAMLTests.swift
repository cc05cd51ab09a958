import Foundation
import Spec
import Testing

/// Input written to hurt: each case must end (no hang, no crash) with a positioned error that
/// names the problem.
@Suite struct HostileYAMLTests {
    static let file = "hostile.yaml"

    struct Parsed {
        var documents: [Document]
        var diagnostics: [Diagnostic]
    }

    static func parse(_ bytes: [UInt8], limits: LoaderLimits = LoaderLimits()) -> Parsed {
        var diagnostics = Diagnostics()
        let documents = YAMLLoader(limits: limits).load(bytes, file: file, into: &diagnostics)
        return Parsed(documents: documents, diagnostics: diagnostics.items)
    }

    static func parse(_ text: String) -> Parsed { parse(Array(text.utf8)) }

    /// Expects exactly one diagnostic, an error with `id` at `line:column`.
    @discardableResult
    static func expectOnly(
        _ parsed: Parsed, _ id: String, line: Int, column: Int, message: String? = nil,
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) -> Diagnostic? {
        #expect(parsed.diagnostics.count == 1, "\(dump(parsed.diagnostics))", sourceLocation: sourceLocation)
        guard let found = parsed.diagnostics.first else { return nil }
        #expect(found.id == id, "\(render(found))", sourceLocation: sourceLocation)
        #expect(found.severity == .error, sourceLocation: sourceLocation)
        #expect(found.location == Spec.SourceLocation(file: file, line: line, column: column), "\(render(found))", sourceLocation: sourceLocation)
        #expect(found.help?.isEmpty == false, "every error says how to fix it", sourceLocation: sourceLocation)
        if let message { #expect(found.message.contains(message), "\(render(found))", sourceLocation: sourceLocation) }
        return found
    }

    /// 1-based line and column of the first occurrence of `needle` in `text`.
    static func position(of needle: String, in text: String) -> (line: Int, column: Int) {
        let location = Scratch.location(of: text.range(of: needle)!.lowerBound, in: text, file: file)
        return (location.line, location.column)
    }

    // MARK: Size and depth

    /// Nine levels of "billion laughs": 9^9 nodes if expanded.
    static let billionLaughs: String = {
        var text = "a: &a [\(Array(repeating: "\"lol\"", count: 9).joined(separator: ", "))]\n"
        for (previous, name) in zip("abcdefgh", "bcdefghi") {
            text += "\(name): &\(name) [\(Array(repeating: "*\(previous)", count: 9).joined(separator: ", "))]\n"
        }
        return text
    }()

    @Test func aliasBombIsStopped() throws {
        // a..e expand to 74,718 nodes; the first '*e' on line f passes the 100,000 limit.
        let at = Self.position(of: "*e", in: Self.billionLaughs)
        #expect(at.line == 6)
        Self.expectOnly(
            Self.parse(Self.billionLaughs), "spec.alias-bomb", line: at.line, column: at.column,
            message: "aliases expand to more than 100000 nodes")
    }

    @Test func aliasBombInAConfigurationFolderFinishesWithAnError() throws {
        let scratch = Scratch.with()
        scratch.write("bomb.yaml", Self.billionLaughs)
        let result = try scratch.load()
        #expect(result.with(id: "spec.alias-bomb").count == 1, "\(dump(result.items))")
        #expect(result.configuration == nil)
    }

    @Test func legitimateAliasesAreExpanded() throws {
        let parsed = Self.parse("base: &q {seats: 10, apps: 5}\na: *q\nb: *q\n")
        #expect(parsed.diagnostics.isEmpty, "\(dump(parsed.diagnostics))")
        guard case .mapping(let pairs) = try #require(parsed.documents.first).root.content else {
            Issue.record("root is not a mapping")
            return
        }
        #expect(pairs.map { $0.key.scalar } == ["base", "a", "b"])
        guard case .mapping(let b) = pairs[2].value.content else {
            Issue.record("alias did not expand to a mapping")
            return
        }
        #expect(b.map { $0.value.scalar } == ["10", "5"])
    }

    @Test func aliasWithoutAnAnchorIsAnError() throws {
        Self.expectOnly(Self.parse("a: 1\nb: *nope\n"), "spec.yaml-alias", line: 2, column: 4, message: "alias '*nope' names no anchor")
    }

    @Test func aliasInsideItsOwnAnchorIsAnError() throws {
        Self.expectOnly(Self.parse("a: &x [1, *x]\n"), "spec.yaml-alias", line: 1, column: 11)
    }

    @Test func twentyThousandOpenBracketsStopAtTheDepthLimit() throws {
        Self.expectOnly(
            Self.parse(String(repeating: "[", count: 20_000)), "spec.too-deep", line: 1, column: 65,
            message: "nesting is deeper than 64 levels")
    }

    @Test func twentyThousandNestedFlowMappingsStopAtTheDepthLimit() throws {
        Self.expectOnly(Self.parse(String(repeating: "{a: ", count: 20_000)), "spec.too-deep", line: 1, column: 4 * 64 + 1)
    }

    @Test func twentyThousandNestedBlockSequencesStopAtTheDepthLimit() throws {
        Self.expectOnly(Self.parse(String(repeating: "- ", count: 20_000) + "x\n"), "spec.too-deep", line: 1, column: 2 * 64 + 1)
    }

    /// Block mappings indent one more column per level, so the text grows with the square of the
    /// depth: 2,000 levels (2 MB) is far past the limit without a 200 MB test input.
    @Test func deeplyNestedBlockMappingsStopAtTheDepthLimit() throws {
        var text = ""
        for level in 0..<2_000 { text += String(repeating: " ", count: level) + "a:\n" }
        Self.expectOnly(Self.parse(text), "spec.too-deep", line: 65, column: 65)
    }

    @Test func deepNestingInAConfigurationFolderFinishesWithAnError() throws {
        let scratch = Scratch.with()
        scratch.write("deep.yaml", "a: " + String(repeating: "[", count: 20_000))
        let result = try scratch.load()
        expectDiagnostic(result, "spec.too-deep", at: Spec.SourceLocation(file: scratch.path("deep.yaml"), line: 1, column: 4 + 63))
    }

    @Test func twoMegabyteKeyIsRefused() throws {
        let key = String(repeating: "k", count: 2 << 20)
        Self.expectOnly(Self.parse("? \(key)\n: value\n"), "spec.key-too-long", line: 1, column: 3)
        Self.expectOnly(Self.parse("\"\(key)\": value\n"), "spec.key-too-long", line: 1, column: 1)
        Self.expectOnly(Self.parse("a: 1\n\(key): value\n"), "spec.key-too-long", line: 2, column: 1)
    }

    @Test func keyJustOverTheLimitIsRefusedAndAtTheLimitAccepted() {
        let parsed = Self.parse("a: 1\n? \(String(repeating: "k", count: 1025))\n: 2\n")
        Self.expectOnly(parsed, "spec.key-too-long", line: 2, column: 3, message: "mapping key is longer than 1024 bytes")
        #expect(Self.parse("? \(String(repeating: "k", count: 1024))\n: 2\n").diagnostics.isEmpty)
    }

    @Test func valueOverOneMebibyteIsRefused() throws {
        Self.expectOnly(
            Self.parse("a: \(String(repeating: "v", count: (1 << 20) + 1))\n"), "spec.value-too-long", line: 1, column: 4)
    }

    @Test func fileOverTheSizeLimitIsRefusedBeforeParsing() throws {
        var limits = LoaderLimits()
        limits.maxFileBytes = 1 << 20
        let parsed = Self.parse(Array(repeating: UInt8(ascii: "#"), count: (1 << 20) + 1), limits: limits)
        Self.expectOnly(parsed, "spec.file-too-large", line: 1, column: 1, message: "file is larger than 1 MiB")
    }

    // MARK: Encoding

    @Test func invalidUTF8IsReportedAtTheBadByte() throws {
        let bytes = Array("name: ü\nplan: caf".utf8) + [0xC3, 0x28] + Array("\n".utf8)
        let found = Self.expectOnly(Self.parse(bytes), "spec.encoding", line: 2, column: 10, message: "file is not valid UTF-8")
        #expect(found?.help?.contains("0xC3") == true)
    }

    static let badSequences: [[UInt8]] = [
        [0x80],  // a lone continuation byte
        [0xC0, 0xAF],  // an overlong '/'
        [0xED, 0xA0, 0x80],  // a UTF-16 surrogate
        [0xF5, 0x80, 0x80, 0x80],  // beyond U+10FFFF
        [0xE2, 0x82],  // truncated at the end of the file
        [0xFF],
    ]

    @Test(arguments: badSequences) func invalidUTF8Sequence(_ sequence: [UInt8]) throws {
        let bytes = Array("a: é\nb: x".utf8) + sequence
        Self.expectOnly(Self.parse(bytes), "spec.encoding", line: 2, column: 5)
    }

    @Test func nulByteIsReportedWhereItIs() throws {
        let bytes = Array("a: b\nc: d".utf8) + [0] + Array("e\n".utf8)
        Self.expectOnly(Self.parse(bytes), "spec.encoding", line: 2, column: 5, message: "file contains a NUL byte")
    }

    @Test func utf16FileIsRefused() throws {
        let utf16LE: [UInt8] = [0xFF, 0xFE] + "a: 1\n".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        Self.expectOnly(Self.parse(utf16LE), "spec.encoding", line: 1, column: 1, message: "UTF-16 byte order mark")
        let utf16BE: [UInt8] = [0xFE, 0xFF] + "a: 1\n".utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        Self.expectOnly(Self.parse(utf16BE), "spec.encoding", line: 1, column: 1, message: "UTF-16 byte order mark")
    }

    @Test func utf8ByteOrderMarkIsAccepted() throws {
        let scratch = Scratch()
        scratch.writeBytes("platform.yaml", [0xEF, 0xBB, 0xBF] + Array(basePlatform.utf8))
        scratch.writeBytes("tenants/acme.yaml", [0xEF, 0xBB, 0xBF] + Array(tenant().utf8))
        try expectClean(scratch.load())
    }

    @Test func controlCharacterIsAnError() throws {
        let found = Self.expectOnly(Self.parse("a: b\u{7}c\n"), "spec.yaml-syntax", line: 1, column: 5)
        #expect(found?.message == "file contains a control character that YAML does not allow")
    }

    // MARK: Syntax

    @Test func tabIndentationIsExplained() throws {
        let found = Self.expectOnly(Self.parse("teams:\n  core:\n\tname: Core\n"), "spec.yaml-syntax", line: 3, column: 1)
        #expect(found?.message == "a tab character is used for indentation")
        #expect(found?.help == "YAML indentation must use spaces: replace the tab with spaces")
    }

    @Test func tabAfterAColonIsNotIndentation() throws {
        let scratch = Scratch.with(tenant: tenant(name: "\tAcme"))
        try expectClean(scratch.load())
    }

    @Test func unterminatedQuoteNamesWhereItStarted() throws {
        let found = try #require(Self.expectOnly(Self.parse("name: \"Acme\nplan: free\n"), "spec.yaml-syntax", line: 3, column: 1))
        #expect(found.notes.first?.location == Spec.SourceLocation(file: Self.file, line: 1, column: 7))
        #expect(found.notes.first?.message.contains("quoted scalar") == true)
    }

    @Test func unterminatedFlowListIsAnError() throws {
        let parsed = Self.parse("a: [1, 2\nb: 3\n")
        #expect(parsed.diagnostics.map(\.id) == ["spec.yaml-syntax"], "\(dump(parsed.diagnostics))")
    }

    @Test func documentsBeforeASyntaxErrorAreKept() throws {
        let parsed = Self.parse("a: 1\n---\nb: [\n")
        #expect(parsed.documents.count == 1)
        #expect(parsed.diagnostics.map(\.id) == ["spec.yaml-syntax"])
    }

    // MARK: Tags, merge keys, keys

    struct TagCase: Sendable, CustomTestStringConvertible {
        var text: String
        var tag: String
        init(_ text: String, _ tag: String) {
            self.text = text
            self.tag = tag
        }
        var testDescription: String { text }
    }

    static let tags: [TagCase] = [
        TagCase("a: !foo bar\n", "!foo"),
        TagCase("a: !!python/object:os.system ls\n", "tag:yaml.org,2002:python/object:os.system"),
        TagCase("a: !!python/name:subprocess.Popen [ls]\n", "tag:yaml.org,2002:python/name:subprocess.Popen"),
        TagCase("a: !ruby/object:Gem::Installer {}\n", "!ruby/object:Gem::Installer"),
        TagCase("a: !!binary aGVsbG8=\n", "tag:yaml.org,2002:binary"),
        TagCase("a: !<tag:example.com,2000:app/x> 1\n", "tag:example.com,2000:app/x"),
    ]

    @Test(arguments: tags) func tagOutsideTheCoreSchemaIsRefused(_ tag: TagCase) throws {
        Self.expectOnly(Self.parse(tag.text), "spec.yaml-tag", line: 1, column: 4, message: "tag '\(tag.tag)' is not allowed")
    }

    @Test func coreSchemaTagsAreAccepted() throws {
        let parsed = Self.parse("a: !!str 123\nb: !!map {c: !!int 1}\nd: !!seq [!!bool true, !!null ~, !!float 1.5]\n")
        #expect(parsed.diagnostics.isEmpty, "\(dump(parsed.diagnostics))")
        guard case .mapping(let pairs) = try #require(parsed.documents.first).root.content else { return }
        guard case .scalar("123", let style) = pairs[0].value.content else {
            Issue.record("!!str 123 is not the scalar 123")
            return
        }
        #expect(style == .quoted, "!!str makes a string even of a number")
    }

    @Test func mergeKeyIsRefused() throws {
        Self.expectOnly(
            Self.parse("base: &b {seats: 1}\nquotas:\n  <<: *b\n  apps: 2\n"), "spec.merge-key", line: 3, column: 3,
            message: "merge keys ('<<') are not supported")
    }

    @Test func quotedLessThanKeyIsAnOrdinaryKey() throws {
        #expect(Self.parse("\"<<\": 1\n").diagnostics.isEmpty)
    }

    @Test func listKeyIsRefused() throws {
        Self.expectOnly(Self.parse("? [a, b]\n: c\n"), "spec.complex-key", line: 1, column: 3, message: "mapping key is a list, not a scalar")
    }

    @Test func mappingKeyIsRefused() throws {
        Self.expectOnly(Self.parse("{a: 1}: x\n"), "spec.complex-key", line: 1, column: 1, message: "mapping key is a mapping")
    }

    @Test func duplicateKeyPointsAtBothDefinitions() throws {
        let found = try #require(
            Self.expectOnly(Self.parse("name: a\nplan: b\nname: c\n"), "spec.duplicate-key", line: 3, column: 1,
                            message: "key 'name' is defined more than once in this mapping"))
        #expect(found.notes.first?.location == Spec.SourceLocation(file: Self.file, line: 1, column: 1))
    }

    /// Large mappings switch to a hash index: duplicates must still be found, before and after the switch.
    @Test(arguments: [3, 11, 12, 13, 40]) func duplicateKeyInALargeMapping(_ repeated: Int) throws {
        var text = ""
        for index in 0..<50 { text += "k\(index): \(index)\n" }
        text += "k\(repeated): again\n"
        Self.expectOnly(Self.parse(text), "spec.duplicate-key", line: 51, column: 1)
        let note = Self.parse(text).diagnostics.first?.notes.first?.location
        #expect(note == Spec.SourceLocation(file: Self.file, line: repeated + 1, column: 1))
    }

    @Test func sameKeyInDifferentMappingsIsNotADuplicate() throws {
        #expect(Self.parse("a: {name: x}\nb: {name: y}\n").diagnostics.isEmpty)
    }
}
