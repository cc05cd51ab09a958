import Foundation
import Testing

/// The audit entry of an erasure names nobody (docs/audit-chain.md 8.5). Its source and actor are written through
/// the subject table like any entry's: a ticket reference naming the requester ("DSAR from grace@acme.com"), or the
/// person as the actor, stored the erased address again in that same transaction (and on SQLite the erasure then
/// failed after its commit). Both are refused before anything is written.
@Suite("privacy forget: the erasure's provenance names nobody")
struct ErasureProvenanceTests {
    static let grace = "grace@acme.com"

    @Test("a --source with an e-mail address (exit 64) and the person as actor (exit 1) are refused, nothing written; a plain reference erases",
          arguments: Backend.all)
    func provenance(backend: Backend) throws {
        let workspace = try Workspace(backend: backend)
        let config = try workspace.copyExamples()
        let state = workspace.state
        try #require(try workspace.apply(config, state: state).status == 0)
        try workspace.edit("config/tenants/acme.yaml", replacing: "  grace@acme.com: billing-admin\n", with: "")
        try workspace.edit("config/tenants/acme.yaml", replacing: "      grace@acme.com: lead\n", with: "")
        try #require(try workspace.apply(config, state: state).status == 0)
        let before = try workspace.stateBytes(state)

        let named = try workspace.run(["privacy", "forget", Self.grace, "--state", state, "--source", "DSAR-7 from Grace@Acme.com", "--no-color"])
        #expect(named.status == 64 && named.stderr.hasPrefix("error: --source holds an e-mail address ('Grace@Acme.com')"), "\(named)")
        let other = try workspace.run(["privacy", "forget", "--departed-before", "2030-01-01", "--state", state, "--source", "ticket of bob@acme.com"])
        #expect(other.status == 64 && other.stderr.contains("--source holds an e-mail address"), "\(other)")
        let actor = try workspace.run(["privacy", "forget", Self.grace, "--state", state, "--no-color"], environment: ["ORGCTL_ACTOR": "Grace@acme.com"])
        #expect(actor.status == 1 && actor.stderr.hasPrefix("error: the actor 'Grace@acme.com' is 'Grace@acme.com', the person to forget"), "\(actor)")
        for run in [named, other, actor] { #expect(run.stderr.contains("\nhelp: ") && run.stdout.isEmpty, "\(run)") }
        #expect(try workspace.stateBytes(state) == before, "a refused erasure wrote to the state")

        let forget = try workspace.run(["privacy", "forget", Self.grace, "--state", state, "--source", "DSAR-7"])
        #expect(forget.status == 0, "\(forget)")
        #expect(try workspace.sql(state, "SELECT count(*) FROM orgctl_subjects WHERE lower(email) = '\(Self.grace)';").hasPrefix("0"))
        let log = try workspace.run(["audit", "log", "--state", state])
        #expect(!log.stdout.lowercased().contains(Self.grace), "\(log)")
    }
}
