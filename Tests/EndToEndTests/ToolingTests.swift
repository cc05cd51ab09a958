import Foundation
import Testing

/// `orgctl init`, `completion`, `schema`, `explain` and `addresses`, run as a user runs them.
@Suite("tooling commands")
struct ToolingTests {
    @Test("init writes a starter configuration that validates and applies as it is, without secrets (with a state key)")
    func initStarter() throws {
        let workspace = try Workspace(secrets: [:], name: "init")
        let key = workspace.environment.removeValue(forKey: "ORGCTL_STATE_KEY")
        let created = try workspace.run(["init", "starter"])
        #expect(created.status == 0, "\(created)")
        for file in ["starter/platform.yaml", "starter/tenants/example.yaml", "starter/orgctl.schema.json"] {
            #expect(FileManager.default.fileExists(atPath: workspace.path(file)), "\(file) missing")
        }
        let validated = try workspace.run(["validate", "starter"])
        #expect(validated.status == 0 && validated.stdout.hasPrefix("valid: 1 tenant") && validated.stderr.isEmpty, "\(validated)")
        // Without a state key apply refuses before any work (the key keys the drift marks), creating nothing.
        let keyless = try workspace.run(["apply", "starter", "--auto-approve", "--state", workspace.path("state.db")])
        #expect(keyless.status == 1 && keyless.stderr.contains("no state key was given") && keyless.stderr.contains("openssl rand"), "\(keyless)")
        #expect(!FileManager.default.fileExists(atPath: workspace.path("state.db")))
        workspace.environment["ORGCTL_STATE_KEY"] = key
        let applied = try workspace.run(["apply", "starter", "--auto-approve", "--state", workspace.path("state.db")])
        #expect(applied.status == 0 && applied.stdout.contains("Apply complete:"), "\(applied)")
        let again = try workspace.run(["apply", "starter", "--auto-approve", "--state", workspace.path("state.db")])
        #expect(again.stdout.contains("No changes."), "\(again)")

        // The schema written next to the files is `orgctl schema`'s output, and the modelines point at it.
        let schema = try workspace.run(["schema"])
        #expect(try String(contentsOfFile: workspace.path("starter/orgctl.schema.json"), encoding: .utf8) == schema.stdout)
        #expect(try String(contentsOfFile: workspace.path("starter/platform.yaml"), encoding: .utf8)
            .hasPrefix("# yaml-language-server: $schema=./orgctl.schema.json\n"))
        #expect(try String(contentsOfFile: workspace.path("starter/tenants/example.yaml"), encoding: .utf8)
            .hasPrefix("# yaml-language-server: $schema=../orgctl.schema.json\n"))
    }

    @Test("the starter's commented webhook applies once uncommented, with the variables its comment names")
    func initWebhookComment() throws {
        let workspace = try Workspace(secrets: ["EXAMPLE_WEBHOOK_SECRET": "e2e-leakcheck-starter-hook-Qz7"], name: "init-hook")
        #expect(try workspace.run(["init", "starter"]).status == 0)
        let file = workspace.path("starter/tenants/example.yaml")
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let marker = "# webhooks:\n"
        let start = try #require(text.range(of: marker))
        let uncommented = text[start.lowerBound...].split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("# ") ? String($0.dropFirst(2)) : String($0) }.joined(separator: "\n")
        try (String(text[..<start.lowerBound]) + uncommented).write(toFile: file, atomically: true, encoding: .utf8)
        #expect(text.contains("export EXAMPLE_WEBHOOK_SECRET=") && text.contains("ORGCTL_STATE_KEY"))
        let applied = try workspace.run(["apply", "starter", "--auto-approve", "--state", workspace.path("state.db")])
        #expect(applied.status == 0 && applied.stdout.contains("+ tenant/example/webhook/deploys"), "\(applied)")
        workspace.assertNoSecretLeaks(["e2e-leakcheck-starter-hook-Qz7"])
    }

    @Test("init refuses to overwrite, and writes nothing into a folder that holds YAML")
    func initRefuses() throws {
        let workspace = try Workspace(secrets: [:], name: "init-refuse")
        #expect(try workspace.run(["init", "starter"]).status == 0)
        let platform = workspace.path("starter/platform.yaml")
        try "# mine\n".write(toFile: platform, atomically: true, encoding: .utf8)
        let second = try workspace.run(["init", "starter"])
        #expect(second.status == 1 && second.stderr.contains("already holds a configuration file") && second.stderr.contains("help: "), "\(second)")
        #expect(try String(contentsOfFile: platform, encoding: .utf8) == "# mine\n")

        // A folder with other YAML: nothing is written.
        try FileManager.default.createDirectory(atPath: workspace.path("other"), withIntermediateDirectories: true)
        try "a: 1\n".write(toFile: workspace.path("other/x.yml"), atomically: true, encoding: .utf8)
        let refused = try workspace.run(["init", "other"])
        #expect(refused.status == 1, "\(refused)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: workspace.path("other")) == ["x.yml"])

        // A starter file already there (not YAML): refused, nothing written.
        try FileManager.default.createDirectory(atPath: workspace.path("third"), withIntermediateDirectories: true)
        try "{}".write(toFile: workspace.path("third/orgctl.schema.json"), atomically: true, encoding: .utf8)
        let third = try workspace.run(["init", "third"])
        #expect(third.status == 1 && third.stderr.contains("already exists"), "\(third)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: workspace.path("third")) == ["orgctl.schema.json"])
    }

    @Test("addresses lists exactly what a first plan creates, sorted")
    func addresses() throws {
        let workspace = try Workspace()
        let config = try workspace.copyExamples()
        let listed = try workspace.run(["addresses", config])
        #expect(listed.status == 0, "\(listed)")
        let addresses = listed.stdout.split(separator: "\n").map(String.init)
        #expect(addresses == addresses.sorted())
        let plan = try workspace.run(["plan", config, "--state", workspace.path("none.db")])
        let created = plan.stdout.split(separator: "\n").compactMap { line -> String? in
            // The policies' record is not an address: --target never selects it.
            line.hasPrefix("  + ") && !line.hasPrefix("  + policies ") ? String(line.dropFirst(4).split(separator: " ")[0]) : nil
        }
        #expect(Set(created) == Set(addresses) && created.count == addresses.count, "\(plan)")
        let invalid = try workspace.run(["addresses", workspace.path("missing")])
        #expect(invalid.status == 1 && invalid.stdout.isEmpty, "\(invalid)")
    }

    @Test("explain prints a key's documentation; an unknown key is a usage error with a suggestion")
    func explain() throws {
        let workspace = try Workspace(secrets: [:], name: "explain")
        let shown = try workspace.run(["explain", "tenant.sso.providers"])
        #expect(shown.status == 0 && shown.stdout.contains("FIELD:    sso.providers <map: slug → SSO provider>"), "\(shown)")
        let wrong = try workspace.run(["explain", "tenant.webhoks"])
        #expect(wrong.status == 64 && wrong.stderr.contains("did you mean 'tenant.webhooks'?"), "\(wrong)")
    }

    // MARK: completion

    /// Runs the bash completion function for a command line whose last word is being completed.
    func bashComplete(_ workspace: Workspace, _ words: [String]) throws -> [String] {
        let script = try workspace.run(["completion", "bash"])
        try script.stdout.write(toFile: workspace.path("orgctl.bash"), atomically: true, encoding: .utf8)
        let quoted = words.map { "'\($0)'" }.joined(separator: " ")
        let program = """
            source orgctl.bash
            COMP_WORDS=(\(quoted)); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
            _orgctl
            printf '%s\\n' "${COMPREPLY[@]}"
            """
        let orgctl = try Paths.orgctl()
        let run = try workspace.run(["-c", program], executable: "/bin/bash",
                                    environment: ["PATH": URL(fileURLWithPath: orgctl).deletingLastPathComponent().path + ":/usr/bin:/bin"])
        #expect(run.status == 0 && run.stderr.isEmpty, "\(run)")
        return run.stdout.split(separator: "\n").map(String.init)
    }

    @Test("bash completion completes subcommands, options, values and --target addresses")
    func bashCompletion() throws {
        let workspace = try Workspace()
        let config = try workspace.copyExamples()
        #expect(try bashComplete(workspace, ["orgctl", ""]).starts(with: ["validate", "plan", "apply", "drift", "export", "audit"]))
        #expect(try bashComplete(workspace, ["orgctl", "au"]) == ["audit"])
        #expect(try bashComplete(workspace, ["orgctl", "audit", ""]) == ["verify", "log", "checkpoint", "keygen", "prove", "consistency"])
        #expect(try bashComplete(workspace, ["orgctl", "plan", "--det"]) == ["--detailed-exitcode"])
        #expect(try bashComplete(workspace, ["orgctl", "--quiet", "plan", "--format", ""]) == ["text", "json", "markdown"])
        #expect(try bashComplete(workspace, ["orgctl", "plan", config, "--target", "tenant/acme/webhook/"])
                == ["tenant/acme/webhook/deploy-log", "tenant/acme/webhook/slack"])
        #expect(try bashComplete(workspace, ["orgctl", "explain", "tenant.sso.prov"]).first == "tenant.sso.providers")
        #expect(try bashComplete(workspace, ["orgctl", "completion", "z"]) == ["zsh"])
    }

    static let zshInstalled = FileManager.default.isExecutableFile(atPath: "/usr/bin/zsh")
    static let fishInstalled = FileManager.default.isExecutableFile(atPath: "/usr/bin/fish")

    @Test("the zsh completion script parses", .enabled(if: zshInstalled, "zsh is not installed"))
    func zshParses() throws { try parses("zsh", "/usr/bin/zsh") }

    @Test("the fish completion script parses", .enabled(if: fishInstalled, "fish is not installed"))
    func fishParses() throws { try parses("fish", "/usr/bin/fish") }

    func parses(_ shell: String, _ interpreter: String) throws {
        let workspace = try Workspace(secrets: [:], name: "completion-\(shell)")
        let script = try workspace.run(["completion", shell])
        #expect(script.status == 0)
        try script.stdout.write(toFile: workspace.path("orgctl.\(shell)"), atomically: true, encoding: .utf8)
        let parsed = try workspace.run(["-n", workspace.path("orgctl.\(shell)")], executable: interpreter)
        #expect(parsed.status == 0 && parsed.stderr.isEmpty, "\(parsed)")
    }

    @Test("fish completion offers subcommands and --target addresses", .enabled(if: fishInstalled, "fish is not installed"))
    func fishCompletion() throws {
        let workspace = try Workspace(name: "fish")
        let config = try workspace.copyExamples()
        let script = try workspace.run(["completion", "fish"])
        try script.stdout.write(toFile: workspace.path("orgctl.fish"), atomically: true, encoding: .utf8)
        let orgctl = try Paths.orgctl()
        func complete(_ line: String) throws -> [String] {
            let run = try workspace.run(["--no-config", "-c", "source orgctl.fish; complete -C '\(line)'"], executable: "/usr/bin/fish",
                                        environment: ["PATH": URL(fileURLWithPath: orgctl).deletingLastPathComponent().path + ":/usr/bin:/bin"])
            #expect(run.status == 0, "\(run)")
            return run.stdout.split(separator: "\n").map { String($0.split(separator: "\t")[0]) }
        }
        #expect(try complete("orgctl au") == ["audit"])
        #expect(try complete("orgctl audit ").sorted() == ["checkpoint", "consistency", "keygen", "log", "prove", "verify"])
        #expect(try complete("orgctl plan --form").contains("--format"))
        #expect(try complete("orgctl plan \(config) --target tenant/acme/webhook/").sorted()
                == ["tenant/acme/webhook/deploy-log", "tenant/acme/webhook/slack"])
    }
}

/// The interactive apply confirmation in a real terminal, driven by tmux (tools/check-apply-prompt.sh).
/// Runs where tmux is installed; CI does not install it.
@Suite("terminal")
struct TerminalTests {
    static let tmuxInstalled = ["/usr/bin/tmux", "/usr/local/bin/tmux", "/opt/homebrew/bin/tmux"].contains {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    @Test("typing anything but 'yes' at apply's prompt aborts and writes nothing; 'yes' applies; colour only without NO_COLOR",
          .enabled(if: tmuxInstalled, "tmux is not installed"))
    func applyPrompt() throws {
        let workspace = try Workspace(secrets: [:], name: "tmux")
        let script = Paths.packageRoot.appendingPathComponent("tools/check-apply-prompt.sh").path
        let run = try workspace.run([script, try Paths.orgctl()], executable: "/bin/bash")
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout.contains("ok: answering 'no' aborts and writes nothing") && run.stdout.contains("ok: answering 'yes' applies"),
                "\(run)")
    }
}
