import Foundation
import Spec
import Testing

/// Valid but unusual configurations must load with no diagnostics at all: a strict loader that
/// rejects legitimate input is as broken as one that accepts garbage.
@Suite struct ValidCorpusTests {
    static func corpus() throws -> String {
        try #require(Bundle.module.url(forResource: "valid-unusual", withExtension: nil, subdirectory: "Fixtures")).path
    }

    @Test func unusualButValidCorpusLoadsClean() throws {
        let result = try ConfigurationLoader(now: fixedNow).load(path: try Self.corpus())
        expectClean(result)
        let configuration = try #require(result.configuration)
        #expect(
            configuration.tenants.map(\.slug) == [
                "0", "a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p-q-r-s-t-u-v-w-x-y-z-0123456789", "crlf", "societe-generale", "tabs",
            ])
        #expect(result.documentCount == 6)
    }

    @Test func unusualValuesAreReadAsWritten() throws {
        let result = try ConfigurationLoader(now: fixedNow).load(path: try Self.corpus())
        let configuration = try #require(result.configuration)
        let tenants = Dictionary(uniqueKeysWithValues: configuration.tenants.map { ($0.slug, $0) })

        let societe = try #require(tenants["societe-generale"])
        #expect(societe.name == "Société Générale — 東京支社 🚀")
        #expect(societe.domains?.map(\.value) == ["societe.fr", "example.com"])
        #expect(societe.branding?.customDomain == "app.societe.fr")
        #expect(societe.members?.map(\.email).contains("zed@example.com") == true)
        let omega = try #require(societe.teams?.first { $0.slug == "equipe-omega" })
        #expect(omega.name == "Équipe Ωmega")
        #expect(omega.description == "مرحبا — a folded, right-to-left description over two lines\n")
        // The anchored team quotas are reused by the alias.
        let beta = try #require(societe.teams?.first { $0.slug == "equipe-beta" })
        #expect(beta.quotas?[.storage] == .limit(10 << 30))
        #expect(beta.quotas?[.apps] == .limit(2))
        #expect(societe.webhooks?.isEmpty == true)
        #expect(societe.apiKeys?.isEmpty == true)

        #expect(tenants["crlf"]?.name == "on")
        #expect(tenants["tabs"]?.name == "yes")
        #expect(tenants["0"]?.security?.ipAllowlist?.map(\.value) == ["::/0", "0.0.0.0/0", "2001:db8::/32"])
        #expect(tenants["0"]?.quotas?[.storage] == .unlimited)
        let abc = try #require(tenants["a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p-q-r-s-t-u-v-w-x-y-z-0123456789"])
        #expect(abc.name == "12345")
        #expect(abc.teams?.first?.name == "no")
        #expect(abc.teams?.first?.description == "off")

        let platform = try #require(configuration.platform)
        let starter = try #require(platform.plans.first { $0.name == "starter" })
        #expect(starter.quotas?[.seats] == .limit(5), "the aliased plan quotas are the anchor's")
        #expect(platform.plans.first { $0.name == "business" }?.quotas?[.messagesPerMonth] == .limit(1_000_000_000_000))
        #expect(platform.permissions.first { $0.name == "apps.create" }?.description == "yes")
    }

    @Test func oneTenantPerFileAcrossManyFiles() throws {
        let scratch = Scratch.with(tenant: nil)
        for index in 0..<50 {
            scratch.write("tenants/t\(index).yaml", tenant(slug: "t\(index)", domains: nil, members: "owner@t\(index).io: owner"))
        }
        let result = try scratch.load()
        expectClean(result)
        #expect(result.files.count == 51)
        #expect(result.configuration?.tenants.count == 50)
    }

    @Test func fiveHundredTenantsInOneMultiDocumentFile() throws {
        let scratch = Scratch()
        var text = basePlatform
        for index in 0..<500 {
            text += "---\n" + tenant(
                slug: "tenant-\(index)", name: "Tenant №\(index)", plan: ["free", "business", "enterprise"][index % 3],
                domains: "[t\(index).example.com]", members: "owner@t\(index).example.com: owner\nops@T\(index).example.com: member",
                "teams:\n  core: {members: {owner@t\(index).example.com: lead}}")
        }
        scratch.write("everything.yaml", text)
        let result = try scratch.load()
        expectClean(result)
        #expect(result.documentCount == 501)
        let slugs = try #require(result.configuration?.tenants.map(\.slug))
        #expect(slugs.count == 500)
        #expect(slugs == slugs.sorted(), "tenants come back sorted by slug")
    }
}
