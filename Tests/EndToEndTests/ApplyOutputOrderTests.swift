import Foundation
import Testing

/// `apply --auto-approve` renders and writes its plan on a thread of its own while the apply runs
/// (`Console.writeInBackground`): what a CI log shows must still be the plan, byte for byte as
/// written in place, then the result or the error — never interleaved, never reordered.
@Suite("apply --auto-approve: the plan's output and its order")
struct ApplyOutputOrderTests {
    /// Runs orgctl with standard error sent to standard output, as a CI log records both.
    static func oneStream(_ workspace: Workspace, _ arguments: [String]) throws -> Run {
        try workspace.run(["-c", "exec \"$0\" \"$@\" 2>&1", try Paths.orgctl()] + arguments, executable: "/bin/sh")
    }

    static func arguments(_ workspace: Workspace, _ folder: String) throws -> [String] {
        ["apply", folder, "--state", workspace.state, "--source", "test", "--no-color", "--secrets-out", try workspace.newKeysFile()]
    }

    @Test("the plan comes first, the same bytes as without --auto-approve, then the result or the refusal, on one stream",
          arguments: Backend.all)
    func planThenResultOnOneStream(_ backend: Backend) throws {
        let workspace = try Workspace(secrets: [ConfigGenerator.webhookSecretVariable: "order-e2e-hook"], name: "apply-order", backend: backend)
        try ConfigGenerator.write(to: workspace.url.appendingPathComponent("all"), tenants: 0..<30, variant: 0, members: 3)
        try ConfigGenerator.write(to: workspace.url.appendingPathComponent("fewer"), tenants: 0..<20, variant: 0, members: 3)

        // Without --auto-approve and with no terminal to ask on: the plan written in place, then the refusal.
        let unconfirmed = try workspace.run(try Self.arguments(workspace, "all"))
        #expect(unconfirmed.status == 1 && unconfirmed.stderr.contains("needs confirmation"), "\(unconfirmed)")
        let plan = unconfirmed.stdout
        #expect(plan.contains("Plan: ") && plan.contains(" to add"), "\(unconfirmed)")

        // The note that the database does not exist yet comes first (standard error), then the plan.
        let notes = unconfirmed.stderr.split(separator: "\n").filter { $0.hasPrefix("note: ") }.map { $0 + "\n" }.joined()
        #expect(!notes.isEmpty, "\(unconfirmed)")
        let applied = try Self.oneStream(workspace, try Self.arguments(workspace, "all") + ["--auto-approve"])
        #expect(applied.status == 0, "\(applied)")
        #expect(applied.stdout.hasPrefix(notes + plan), "the plan's bytes differ, or something came before them: \(applied)")
        let rest = applied.stdout.dropFirst(notes.count + plan.count)
        #expect(rest.hasPrefix("Apply complete: ") && rest.filter { $0 == "\n" }.count == 1, "\(applied)")

        // A refusal made while the plan may still be written (ten tenants deleted, none confirmed).
        let asked = try workspace.run(try Self.arguments(workspace, "fewer"))
        #expect(asked.status == 1 && asked.stdout.contains("to destroy"), "\(asked)")
        let refused = try Self.oneStream(workspace, try Self.arguments(workspace, "fewer") + ["--auto-approve"])
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stdout == asked.stdout + asked.stderr, "the plan and the refusal are not the same bytes in the same order: \(refused)")
    }
}
