import Foundation
import Spec
import Testing

/// Memory is bounded on hostile YAML: one budget of bytes and nodes per run, and the value of a
/// key that its mapping cannot have is never built.
@Suite struct InputBudgetTests {
    static func junk(_ count: Int) -> String {
        (0..<count).map { "  - {a: [1, 2, 3], b: x\($0)}\n" }.joined()
    }

    @Test func theValueOfAnUnknownKeyIsNotBuilt() throws {
        let text = tenant() + "junk:\n" + Self.junk(5_000)
        let budget = InputBudget()
        var diagnostics = Diagnostics()
        let documents = YAMLLoader(shape: SpecFormat.documentShape, budget: budget).load(Array(text.utf8), file: "t.yaml", into: &diagnostics)
        #expect(diagnostics.items.isEmpty)
        #expect(budget.nodesBuilt < 100, "\(budget.nodesBuilt) nodes built for 35,000 under an unknown key")
        guard case .mapping(let pairs)? = documents.first?.root.content, let junk = pairs.first(where: { $0.key.scalar == "junk" }) else {
            Issue.record("no junk key")
            return
        }
        #expect(junk.value.isNull, "a placeholder stands for the skipped value")

        // Without a shape (any YAML), everything is built.
        let all = InputBudget()
        _ = YAMLLoader(budget: all).load(Array(text.utf8), file: "t.yaml", into: &diagnostics)
        #expect(all.nodesBuilt > 35_000)
    }

    @Test func anUnknownKeyIsStillReportedAtTheKeyAndItsAnchorsStillResolve() throws {
        let scratch = Scratch.with(tenant: tenant("\(marker)junk: &a\n" + Self.junk(10) + "extra: *a\n"))
        let result = try scratch.load()
        expectDiagnostic(result, "spec.unknown-key", at: scratch.markedLocation)
        #expect(result.with(id: "spec.yaml-alias").isEmpty)
    }

    @Test func nestingUnderAnUnknownKeyIsStillLimited() throws {
        var diagnostics = Diagnostics()
        let text = "kind: Tenant\njunk: " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "\n"
        _ = YAMLLoader(shape: SpecFormat.documentShape).load(Array(text.utf8), file: "t.yaml", into: &diagnostics)
        #expect(diagnostics.items.map(\.id) == ["spec.too-deep"])
    }

    @Test func knownKeysAndNamedEntriesAreBuilt() throws {
        let scratch = Scratch.with(tenant: tenant(members: (0..<50).map { "u\($0)@acme.com: member" }.joined(separator: "\n") + "\nalice@acme.com: owner"))
        let result = try scratch.load()
        expectClean(result)
        #expect(result.configuration?.tenants.first?.members?.count == 51)
    }

    @Test func theNodeBudgetIsPerRunAcrossFiles() throws {
        let scratch = Scratch.with()
        scratch.write("tenants/globex.yaml", tenant(slug: "globex", domains: "[globex.com]", members: "ann@globex.com: owner"))
        var limits = LoaderLimits()
        let total = try ConfigurationLoader(now: fixedNow).load(path: scratch.root)
        expectClean(total)
        // Enough for any one file, not for all of them.
        limits.maxTotalNodes = 100
        let result = try ConfigurationLoader(limits: limits, now: fixedNow).load(path: scratch.root)
        #expect(result.configuration == nil)
        let error = try #require(result.with(id: "spec.input-budget").first)
        #expect(error.message == "the configuration has more than 100 YAML nodes")
        #expect(error.help == "raise the budget with --max-input-nodes if the configuration really is this large")
    }

    @Test func theByteBudgetIsPerRunAcrossFiles() throws {
        let scratch = Scratch.with()
        scratch.write("tenants/globex.yaml", tenant(slug: "globex", domains: "[globex.com]", members: "ann@globex.com: owner"))
        var limits = LoaderLimits()
        limits.maxTotalBytes = basePlatform.utf8.count + 10  // each file is smaller, together they are not
        let result = try ConfigurationLoader(limits: limits, now: fixedNow).load(path: scratch.root)
        #expect(result.configuration == nil)
        #expect(result.with(id: "spec.input-budget").first?.message.contains("of YAML") == true)
    }
}
