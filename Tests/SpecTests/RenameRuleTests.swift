import Foundation
import Spec
import Testing

/// `previously:` on tenants, teams and roles, and `rotate`/`rotateOnScopeChange` on API keys: the rules
/// that need no state database (the ones that do are checked by plan, see ReconcilerTests).
@Suite struct RenameRuleTests {
    static let teams = "teams:\n  core: {name: Core}\n  "
    static let rules: [RuleCase] = [
        RuleCase(
            "a team's earlier slug that is also a declared team", valid: tenant(teams + "sre: {previously: [ops]}"),
            invalid: tenant(teams + "sre: {previously: [1️⃣core]}"), "spec.rename",
            message: "team 'sre' lists 'core' under previously, but team 'core' is also declared in tenant 'acme'"),
        RuleCase(
            "two teams claiming the same earlier slug", valid: tenant(teams + "sre: {previously: [ops]}"),
            invalid: tenant("teams:\n  core: {previously: [ops]}\n  sre: {previously: [1️⃣ops]}"), "spec.rename",
            message: "teams 'core' and 'sre' both list 'ops' under previously"),
        RuleCase(
            "a role listing its own slug", valid: tenant("roles:\n  auditor: {permissions: [audit.read], previously: [reader]}"),
            invalid: tenant("roles:\n  auditor: {permissions: [audit.read], previously: [1️⃣auditor]}"), "spec.rename",
            message: "role 'auditor' lists its own slug under previously"),
        RuleCase(
            "an earlier slug that is not a slug", valid: tenant("previously: [acme-old]"),
            invalid: tenant("previously: [1️⃣Acme_Old]"), "spec.name", message: "previous slug 'Acme_Old' of tenant 'acme' is not valid"),
        RuleCase(
            "previously that is not a list", valid: tenant("previously: [acme-old]"),
            invalid: tenant("previously: 1️⃣{old: true}"), "spec.type"),
        RuleCase(
            "a system role's earlier slug that is also a system role",
            valid: basePlatform.replacingOccurrences(of: "viewer: {permissions: [\"*.read\"]}", with: "viewer: {permissions: [\"*.read\"], previously: [reader]}"),
            invalid: basePlatform.replacingOccurrences(of: "viewer: {permissions: [\"*.read\"]}", with: "viewer: {permissions: [\"*.read\"], previously: [1️⃣member]}"),
            "spec.rename", message: "role 'viewer' lists 'member' under previously, but role 'member' is also declared in the Platform",
            document: .platform),
        RuleCase(
            "an API key rotate counter that is not a whole number",
            valid: tenant("apiKeys:\n  ci: {scopes: [apps.read], rotate: 2, rotateOnScopeChange: true}"),
            invalid: tenant("apiKeys:\n  ci: {scopes: [apps.read], rotate: 1️⃣two}"), "spec.type"),
        RuleCase(
            "a negative rotate counter", valid: tenant("apiKeys:\n  ci: {scopes: [apps.read], rotate: 0}"),
            invalid: tenant("apiKeys:\n  ci: {scopes: [apps.read], rotate: 1️⃣-1}"), "spec.range"),
        RuleCase(
            "rotateOnScopeChange that is not a boolean", valid: tenant("apiKeys:\n  ci: {scopes: [apps.read], rotateOnScopeChange: false}"),
            invalid: tenant("apiKeys:\n  ci: {scopes: [apps.read], rotateOnScopeChange: 1️⃣sometimes}"), "spec.type"),
    ]

    @Test(arguments: rules) func rule(_ rule: RuleCase) throws { try rule.check() }

    @Test func aTenantsEarlierSlugThatIsAlsoADeclaredTenantIsAnErrorAtTheEntry() throws {
        let scratch = Scratch.with()
        scratch.write("tenants/zeta.yaml", tenant(slug: "zeta", "previously: [1️⃣acme]"))
        let result = try scratch.load()
        expectDiagnostic(result, "spec.rename", at: scratch.markedLocation,
                             message: "tenant 'zeta' lists 'acme' under previously, but tenant 'acme' is also declared in the configuration")
        #expect(result.configuration == nil)
    }

    @Test func twoTenantsClaimingOneEarlierSlugIsAnError() throws {
        let scratch = Scratch.with(tenant: tenant("previously: [old]"))
        scratch.write("tenants/zeta.yaml", tenant(slug: "zeta", "previously: [1️⃣old]"))
        try expectDiagnostic(scratch.load(), "spec.rename", at: scratch.markedLocation, message: "tenants 'acme' and 'zeta' both list 'old' under previously")
    }

    @Test func previouslyReachesTheDesiredStateAsEarlierAddresses() throws {
        let scratch = Scratch.with(tenant: tenant(
            "previously: [acme-old]\nroles:\n  auditor: {permissions: [audit.read], previously: [reader]}\nteams:\n  core: {previously: [base, legacy]}"))
        let configuration = try #require(try scratch.load().configuration)
        let desired = configuration.desiredState { _ in "" }
        let renames = desired.renames.map { "\($0.address) <- \($0.previously.map(\.value).joined(separator: ","))" }
        #expect(renames == ["tenant/acme <- tenant/acme-old", "tenant/acme/role/auditor <- tenant/acme/role/reader",
                            "tenant/acme/team/core <- tenant/acme/team/base,tenant/acme/team/legacy"])
        #expect(desired.renames.map(\.kind) == [.tenant, .tenantRole, .team])
    }

    @Test func rotateAndRotateOnScopeChangeAreKeyAttributesWhenWritten() throws {
        let scratch = Scratch.with(tenant: tenant("apiKeys:\n  ci: {scopes: [apps.read], rotate: 3, rotateOnScopeChange: true}\n  plain: {scopes: [apps.read]}"))
        let configuration = try #require(try scratch.load().configuration)
        let desired = configuration.desiredState { _ in "" }
        let ci = try #require(desired.resources.first { $0.address == "tenant/acme/apikey/ci" })
        #expect(ci["rotate"] == .int(3))
        #expect(ci["rotateOnScopeChange"] == .bool(true))
        let plain = try #require(desired.resources.first { $0.address == "tenant/acme/apikey/plain" })
        #expect(!plain.attributes.contains { $0.name == "rotate" || $0.name == "rotateOnScopeChange" })
    }
}
