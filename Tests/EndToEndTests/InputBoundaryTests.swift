import Foundation
import Testing

/// What orgctl reads from outside the configuration (secrets) and from the folder itself, end to
/// end with the binary: every missing secret at once, references to the runner's own secrets and
/// to the state key refused, and an incomplete folder never planned.
@Suite struct InputBoundaryTests {
    @Test("every missing secret is reported in one run, never a value")
    func everyMissingSecretAtOnce() throws {
        let workspace = try Workspace()
        let config = try workspace.copyExamples()
        let state = workspace.path("orgctl.db")
        let names = Secrets.examples.keys.sorted()
        for command in [["plan", config, "--state", state], ["apply", config, "--state", state, "--auto-approve"]] {
            let run = try workspace.run(command, unset: names)
            #expect(run.status == 1, "\(run)")
            #expect(run.stderr.contains("5 secrets cannot be resolved"), "\(run)")
            for name in names { #expect(run.stderr.contains("{env: \(name)} is not set"), "\(name) missing from \(run)") }
        }
        if FileManager.default.fileExists(atPath: state) { #expect(try workspace.auditCount(state) == 0) }
    }

    @Test("a secret reference to orgctl's own state key is refused with its position by validate, plan and apply")
    func stateKeyReferenceIsRefused() throws {
        let workspace = try Workspace()
        let config = try workspace.copyExamples()
        try workspace.edit(config + "/tenants/initech.yaml", replacing: "{env: INITECH_WEBHOOK_SECRET}", with: "{env: ORGCTL_STATE_KEY}")
        for command in ["validate", "plan", "apply"] {
            var arguments = [command, config]
            if command != "validate" { arguments += ["--state", workspace.path("orgctl.db")] }
            let run = try workspace.run(arguments)
            #expect(run.status == 1, "\(run)")
            #expect((run.stdout + run.stderr).contains("tenants/initech.yaml:64:19: error:") && (run.stdout + run.stderr).contains("[spec.secret-reserved]"), "\(run)")
            #expect(!run.stdout.contains(Secrets.stateKey) && !run.stderr.contains(Secrets.stateKey))
        }
    }

    @Test("a {file:} secret that is the state key file is refused when the value is read")
    func stateKeyFileIsNeverASecret() throws {
        let workspace = try Workspace()
        let config = try workspace.copyExamples()
        let keyFile = config + "/tenants/hook.txt"
        try Secrets.stateKey.write(toFile: keyFile, atomically: true, encoding: .utf8)
        try workspace.edit(config + "/tenants/initech.yaml", replacing: "{env: INITECH_WEBHOOK_SECRET}", with: "{file: hook.txt}")
        let run = try workspace.run(["plan", config, "--state", workspace.path("orgctl.db"), "--state-key-file", keyFile], unset: ["ORGCTL_STATE_KEY"])
        #expect(run.status == 1 && run.stderr.contains("{file: hook.txt} is refused"), "\(run)")
        #expect(!run.stdout.contains(Secrets.stateKey) && !run.stderr.contains(Secrets.stateKey))
    }

    @Test("a configuration file that is a link is an error for validate, plan, drift and apply, and nothing is deleted")
    func linkedTenantFileIsNeverSkipped() throws {
        let workspace = try Workspace()
        let config = try workspace.copyExamples()
        let state = workspace.path("orgctl.db")
        #expect(try workspace.apply(config, state: state).status == 0)
        let before = try workspace.dump(state)
        try FileManager.default.moveItem(atPath: config + "/tenants/initech.yaml", toPath: workspace.path("initech.yaml"))
        try FileManager.default.createSymbolicLink(atPath: config + "/tenants/initech.yaml", withDestinationPath: workspace.path("initech.yaml"))
        for command in ["validate", "plan", "drift", "apply"] {
            var arguments = [command, config]
            if command != "validate" { arguments += ["--state", state] }
            if command == "apply" { arguments += ["--auto-approve"] }
            let run = try workspace.run(arguments)
            #expect(run.status == 1 && (run.stdout + run.stderr).contains("[spec.file-link]"), "\(run)")
        }
        #expect(try workspace.dump(state) == before)
    }
}

extension InputBoundaryTests {
    @Test("the input budget is enforced per run, can be raised, and a malformed budget is a usage error before any work")
    func inputBudget() throws {
        let workspace = try Workspace()
        let config = try workspace.copyExamples()
        let state = workspace.path("orgctl.db")
        let small = try workspace.run(["validate", config, "--max-input-nodes", "200"])
        #expect(small.status == 1 && small.stdout.contains("[spec.input-budget]"), "\(small)")
        let bytes = try workspace.run(["plan", config, "--state", state, "--max-input-bytes", "4KiB"])
        #expect(bytes.status == 1 && (bytes.stdout + bytes.stderr).contains("more than 4KiB of YAML [spec.input-budget]"), "\(bytes)")
        let raised = try workspace.run(["validate", config, "--max-input-nodes", "100000", "--max-input-bytes", "1GiB"])
        #expect(raised.status == 0, "\(raised)")
        for bad in [["--max-input-nodes", "many"], ["--max-input-nodes", "0"], ["--max-input-bytes", "-1"]] {
            let run = try workspace.run(["plan", config, "--state", state] + bad)
            #expect(run.status == 64, "\(run)")
        }
        #expect(!FileManager.default.fileExists(atPath: state), "no database is created for a refused run")
    }
}
