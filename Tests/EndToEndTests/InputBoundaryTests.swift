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
            // One line each, not one run-on line.
            for name in names { #expect(run.stderr.contains("\n  {env: \(name)} is not set"), "\(name) missing from \(run)") }
        }
        if FileManager.default.fileExists(atPath: state) { #expect(try workspace.auditCount(state) == 0) }
        // The pull-request comment lists them too.
        let markdown = try workspace.run(["plan", config, "--state", state, "--format", "markdown"], unset: names)
        #expect(markdown.status == 1, "\(markdown)")
        for name in names { #expect(markdown.stdout.contains("- `{env: \(name)} is not set"), "\(name) missing from \(markdown.stdout)") }
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

    @Test("a configuration file linked to a secret (the state key file) is refused without quoting the link's target, in every format")
    func linkedFileIsNeverQuoted() throws {
        let workspace = try Workspace()
        let config = try workspace.copyExamples()
        let keyFile = workspace.path("orgctl.key")
        try Secrets.stateKey.write(toFile: keyFile, atomically: true, encoding: .utf8)
        // A pull request adds this link; the PR job's own key file is what it points at.
        try FileManager.default.createSymbolicLink(atPath: config + "/tenants/zz.yaml", withDestinationPath: keyFile)
        for (command, format) in [("validate", "text"), ("validate", "json"), ("validate", "github"), ("plan", "text"), ("apply", "text")] {
            var arguments = [command, config]
            if command != "validate" { arguments += ["--state", workspace.path("orgctl.db"), "--auto-approve"].dropLast(command == "plan" ? 1 : 0) }
            if command == "validate" { arguments += ["--format", format] }
            let run = try workspace.run(arguments)
            #expect(run.status == 1 && (run.stdout + run.stderr).contains("file-link"), "\(run)")
            #expect(!run.stdout.contains(Secrets.stateKey) && !run.stderr.contains(Secrets.stateKey), "\(command) \(format): \(run)")
        }
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

/// What an apply records as its source and actor.
@Suite struct ProvenanceTests {
    /// Runs git in `folder` with a fixed identity; returns its trimmed standard output.
    @discardableResult
    static func git(_ workspace: Workspace, _ folder: String, _ arguments: [String]) throws -> String {
        let run = try workspace.run(["git", "-C", folder, "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
                                    + arguments, executable: "/usr/bin/env")
        try #require(run.status == 0, "\(run)")
        return run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func appliedSource(_ workspace: Workspace, _ config: String, _ state: String, unset: [String] = []) throws -> String {
        let apply = try workspace.run(["apply", config, "--state", state, "--auto-approve", "--secrets-out", workspace.newKeysFile()], unset: unset)
        try #require(apply.status == 0, "\(apply)")
        let log = try workspace.run(["audit", "log", "--state", state, "--format", "json"])
        let last = try #require(log.stdout.split(separator: "\n").last { $0.contains("\"source\"") })
        return String(last)
    }

    @Test("the source is the commit of the work tree, +dirty with uncommitted changes, never a commit an embedded bare repository names")
    func gitSource() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/git") else { return }
        let workspace = try Workspace()
        let repo = workspace.path("repo")
        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: try workspace.copyExamples(as: "examples-copy"), toPath: repo + "/config")
        try Self.git(workspace, repo, ["init", "-q"])
        // The pull request's forgery: the files of a bare repository whose HEAD is a commit of its choosing.
        let forge = workspace.path("forge")
        try Self.git(workspace, workspace.url.path, ["init", "-q", forge])
        try "x".write(toFile: forge + "/x", atomically: true, encoding: .utf8)
        try Self.git(workspace, forge, ["add", "x"])
        try Self.git(workspace, forge, ["commit", "-q", "-m", "forged"])
        let forged = try Self.git(workspace, forge, ["rev-parse", "HEAD"])
        try Self.git(workspace, workspace.url.path, ["clone", "-q", "--bare", forge, repo + "/config/bare"])
        for entry in try FileManager.default.contentsOfDirectory(atPath: repo + "/config/bare") {
            try FileManager.default.moveItem(atPath: repo + "/config/bare/" + entry, toPath: repo + "/config/" + entry)
        }
        try FileManager.default.removeItem(atPath: repo + "/config/bare")
        try Self.git(workspace, repo, ["add", "-A"])
        try Self.git(workspace, repo, ["commit", "-q", "-m", "configuration"])
        let commit = try Self.git(workspace, repo, ["rev-parse", "HEAD"])
        #expect(try Self.git(workspace, repo + "/config", ["rev-parse", "HEAD"]) == forged, "git's own discovery is fooled")

        let state = workspace.path("orgctl.db")
        let clean = try Self.appliedSource(workspace, repo + "/config", state)
        #expect(clean.contains("\"source\":\"git:\(commit)\""), "\(clean)")
        #expect(!clean.contains(forged))

        try workspace.edit(repo + "/config/tenants/initech.yaml", replacing: "name: Initech", with: "name: Initech Corp")
        let dirty = try Self.appliedSource(workspace, repo + "/config", state)
        #expect(dirty.contains("\"source\":\"git:\(commit)+dirty\""), "\(dirty)")
    }

    @Test("a configuration folder that git ignores as a whole (the README's 'cp -R examples/config config') is +dirty, not the commit")
    func ignoredFolderIsDirty() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/git") else { return }
        let workspace = try Workspace()
        let repo = workspace.path("repo")
        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
        try Self.git(workspace, repo, ["init", "-q"])
        try "/config/\n".write(toFile: repo + "/.gitignore", atomically: true, encoding: .utf8)
        try Self.git(workspace, repo, ["add", "-A"])
        try Self.git(workspace, repo, ["commit", "-q", "-m", "ignore config"])
        let commit = try Self.git(workspace, repo, ["rev-parse", "HEAD"])
        try FileManager.default.copyItem(atPath: try workspace.copyExamples(as: "examples-copy"), toPath: repo + "/config")
        let line = try Self.appliedSource(workspace, repo + "/config", workspace.path("orgctl.db"))
        #expect(line.contains("\"source\":\"git:\(commit)+dirty\""), "\(line)")
    }

    @Test("the actor of a shell without USER is the account's name, not 'unknown'")
    func actorFallsBackToTheAccount() throws {
        let workspace = try Workspace()
        let config = try workspace.copyExamples()
        let line = try ProvenanceTests.appliedSource(workspace, config, workspace.path("orgctl.db"),
                                                     unset: ["ORGCTL_ACTOR", "USER", "LOGNAME", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR"])
        let account = String(cString: getpwuid(geteuid())!.pointee.pw_name)
        #expect(line.contains("\"actor\":\"\(account)\""), "\(line)")
    }
}
