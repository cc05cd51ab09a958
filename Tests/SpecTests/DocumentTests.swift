import Synchronization
import Foundation
import Spec
import Testing

/// Documents, files and folders: apiVersion and kind, the one Platform, unique tenant slugs,
/// multi-document files and discovery.
@Suite struct DocumentTests {
    static let headers: [RuleCase] = [
        RuleCase(
            "a document without apiVersion", valid: tenant(), invalid: "1️⃣kind: Tenant\nslug: acme\nname: Acme\nplan: free\nmembers: {alice@acme.com: owner}\n",
            "spec.missing-key", help: "add 'apiVersion: orgctl.dev/v1'", message: "document has no 'apiVersion'"),
        RuleCase(
            "a document without kind", valid: tenant(), invalid: "1️⃣apiVersion: orgctl.dev/v1\nslug: acme\nname: Acme\nplan: free\n",
            "spec.missing-key", help: "add 'kind: Tenant' or 'kind: Platform'", message: "document has no 'kind'"),
        RuleCase(
            "a wrong apiVersion", valid: tenant(),
            invalid: tenant().replacingOccurrences(of: "apiVersion: orgctl.dev/v1", with: "apiVersion: 1️⃣orgctl.dev/v2"),
            "spec.api-version", help: "write 'apiVersion: orgctl.dev/v1'", message: "apiVersion must be 'orgctl.dev/v1', not 'orgctl.dev/v2'"),
        RuleCase(
            "a misspelt kind", valid: tenant(), invalid: tenant().replacingOccurrences(of: "kind: Tenant", with: "kind: 1️⃣Tenent"),
            "spec.kind", help: "did you mean 'Tenant'?", message: "kind must be Platform or Tenant, not 'Tenent'"),
        RuleCase(
            "an unknown kind", valid: tenant(), invalid: tenant().replacingOccurrences(of: "kind: Tenant", with: "kind: 1️⃣Team"),
            "spec.kind", help: "write 'kind: Tenant' or 'kind: Platform'"),
        RuleCase(
            "a document that is a list", valid: tenant(), invalid: "1️⃣- apiVersion: orgctl.dev/v1\n- kind: Tenant\n",
            "spec.document", help: "start the document with 'apiVersion: orgctl.dev/v1' and 'kind: Tenant' or 'kind: Platform'",
            message: "a document must be a mapping with apiVersion and kind, not a list"),
        RuleCase(
            "a document that is a scalar", valid: tenant(), invalid: "1️⃣just some text\n", "spec.document",
            message: "not a scalar"),
        RuleCase(
            "a second document that is null", valid: tenant() + "---\n" + tenant(slug: "beta"),
            invalid: tenant() + "---\n1️⃣~\n", "spec.document", message: "not null"),
    ]

    @Test(arguments: headers) func documentHeader(_ rule: RuleCase) throws { try rule.check() }

    /// A trailing `---`, or a document holding only comments, is what concatenating files
    /// produces; like kubectl, orgctl skips an empty document instead of rejecting it.
    @Test func emptyDocumentsAreSkipped() throws {
        let scratch = Scratch.with(tenant: "---\n" + tenant() + "---\n# nothing but a comment\n---\n")
        let result = try scratch.load()
        expectClean(result)
        #expect(result.configuration?.tenants.map(\.slug) == ["acme"])
    }

    @Test func noPlatformDocumentIsAnError() throws {
        let scratch = Scratch()
        scratch.write("tenants/acme.yaml", tenant())
        let result = try scratch.load()
        expectDiagnostic(
            result, "spec.no-platform", at: nil,
            help: "add a platform.yaml with the plans, permissions and roles tenants refer to")
        #expect(result.configuration == nil)
    }

    @Test func twoPlatformDocumentsAreAnError() throws {
        let scratch = Scratch.with()
        scratch.write("platform2.yaml", "1️⃣" + basePlatform)
        let found = try #require(
            try expectDiagnostic(scratch.load(), "spec.duplicate-platform", at: scratch.markedLocation, help: "keep exactly one Platform document"))
        #expect(found.notes.first?.location == Spec.SourceLocation(file: scratch.path("platform.yaml"), line: 1, column: 1))
    }

    @Test func twoPlatformDocumentsInOneFileAreAnError() throws {
        let scratch = Scratch()
        scratch.write("platform.yaml", basePlatform + "---\n1️⃣" + basePlatform)
        scratch.write("tenants/acme.yaml", tenant())
        try expectDiagnostic(scratch.load(), "spec.duplicate-platform", at: scratch.markedLocation)
    }

    @Test func tenantSlugsAreUniqueAcrossFiles() throws {
        let scratch = Scratch.with()
        scratch.write("tenants/other.yaml", tenant(slug: "1️⃣acme", name: "Acme again"))
        let result = try scratch.load()
        let found = try #require(
            expectDiagnostic(
                result, "spec.duplicate-tenant", at: scratch.markedLocation, help: "each tenant slug must be unique across all files",
                message: "tenant 'acme' is declared more than once"))
        #expect(found.notes.map(\.message) == ["first declared here"])
        #expect(found.notes.first?.location == Spec.SourceLocation(file: scratch.path("tenants/acme.yaml"), line: 3, column: 7))
    }

    @Test func multiDocumentFilesHoldThePlatformAndTenants() throws {
        let scratch = Scratch()
        scratch.write(
            "all.yaml",
            "---\n" + basePlatform + "...\n---\n" + tenant(slug: "beta") + "---\n" + tenant(slug: "alpha") + "...\n")
        let result = try scratch.load()
        expectClean(result)
        #expect(result.documentCount == 3)
        let configuration = try #require(result.configuration)
        #expect(configuration.tenants.map(\.slug) == ["alpha", "beta"])
        #expect(configuration.platform?.plans.map(\.name) == ["free", "business", "enterprise"])
    }

    @Test func errorsInLaterDocumentsOfAFileArePositionedInThatFile() throws {
        let scratch = Scratch()
        let text = basePlatform + "---\n" + tenant(slug: "beta") + "---\n" + tenant(slug: "alpha", plan: "1️⃣nope")
        scratch.write("all.yaml", text)
        try expectDiagnostic(scratch.load(), "spec.unknown-plan", at: scratch.markedLocation)
    }

    @Test func discoveryIsRecursiveSortedAndSkipsHiddenAndOtherFiles() throws {
        let scratch = Scratch.with()
        scratch.write("tenants/B.yml", tenant(slug: "bravo"))
        scratch.write("tenants/nested/deeper/c.yaml", tenant(slug: "charlie"))
        scratch.write("z.yaml", tenant(slug: "zulu"))
        scratch.write(".git/config.yaml", "this: [is not read")
        scratch.write("tenants/.hidden/x.yaml", "kind: Nonsense")
        scratch.write("tenants/.draft.yaml", "kind: Nonsense")
        scratch.write("README.md", "kind: Nonsense")
        scratch.write("tenants/acme.yaml.bak", "kind: Nonsense")
        scratch.write("tenants/notes.txt", "kind: Nonsense")
        let result = try scratch.load()
        expectClean(result)
        #expect(
            result.files == [
                "platform.yaml", "tenants/B.yml", "tenants/acme.yaml", "tenants/nested/deeper/c.yaml", "z.yaml",
            ].map(scratch.path))
        #expect(result.configuration?.tenants.map(\.slug) == ["acme", "bravo", "charlie", "zulu"])
    }

    @Test func aYAMLFileLinkedFromOutsideIsAnErrorNotSkipped() throws {
        let outside = Scratch()
        let target = outside.write("evil.yaml", tenant(slug: "evil", plan: "nope"))
        let scratch = Scratch.with()
        scratch.symlink("tenants/evil.yaml", to: target)
        let result = try scratch.load()
        // Skipping it would make a smaller configuration; reading it would read outside the folder.
        #expect(result.configuration == nil)
        #expect(result.with(id: "spec.file-link").count == 1)
        #expect(result.with(id: "spec.unknown-plan").isEmpty, "the linked file is not read")
        withExtendedLifetime(outside) {}
    }

    @Test func anEmptyFolderIsAnError() throws {
        let scratch = Scratch()
        scratch.write("notes.txt", "nothing here")
        let result = try scratch.load()
        expectDiagnostic(result, "spec.no-files", at: nil, help: "point orgctl at the folder that holds your configuration")
        #expect(result.with(id: "spec.no-platform").isEmpty, "one problem, one diagnostic")
    }

    @Test func aMissingFolderThrows() throws {
        let scratch = Scratch()
        #expect(throws: ConfigurationLoader.Failure.self) {
            try ConfigurationLoader(now: fixedNow).load(path: scratch.path("missing"))
        }
    }

    @Test func aSingleFileCanBeLoaded() throws {
        let scratch = Scratch()
        let file = scratch.write("all.yaml", basePlatform + "---\n" + tenant())
        let result = try ConfigurationLoader(now: fixedNow).load(path: file)
        expectClean(result)
        #expect(result.files == [file])
    }

    @Test("the loader reports each file it has read once (the progress count on a terminal)")
    func eachLoadedFileIsReported() throws {
        let scratch = Scratch()
        scratch.write("platform.yaml", basePlatform)
        for index in 0..<5 { scratch.write("tenants/t\(index).yaml", tenant(slug: "t\(index)")) }
        let count = Mutex(0)
        let result = try ConfigurationLoader(now: fixedNow, onFileLoaded: { count.withLock { $0 += 1 } }).load(path: scratch.root)
        expectClean(result)
        #expect(count.withLock { $0 } == 6)
    }

    @Test func diagnosticsSortByFileLineAndColumnWithUnlocatedFirst() throws {
        var diagnostics = Diagnostics()
        diagnostics.error("c", "c", at: Spec.SourceLocation(file: "b.yaml", line: 1, column: 1))
        diagnostics.error("b", "b", at: Spec.SourceLocation(file: "a.yaml", line: 2, column: 1))
        diagnostics.warning("a", "a", at: Spec.SourceLocation(file: "a.yaml", line: 1, column: 9))
        diagnostics.error("n", "n", at: nil)
        #expect(diagnostics.sorted.map(\.id) == ["n", "a", "b", "c"])
        #expect(diagnostics.errorCount == 3)
        #expect(diagnostics.warningCount == 1)
    }
}
