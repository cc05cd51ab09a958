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

    static let files = ["github-actions.yml", "gitlab-ci.yml"]

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
            case .sequence(let items): items.forEach { collect($0, isScript: isScript) }
            case .mapping(let pairs): pairs.forEach { collect($0.value, isScript: scriptKeys.contains($0.key.scalar ?? "")) }
            }
        }
        documents.forEach { collect($0.root, isScript: false) }
        #expect(!strings.isEmpty, "\(name) has no run: or script: steps")
        var commands: [[String]] = []
        for script in strings {
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
