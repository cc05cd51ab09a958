import Foundation
import Testing

@testable import OrgctlCLI

/// Every option value of every command is checked by the parser, before the command does any work.
@Suite("option values are checked when parsing")
struct OptionValueTests {
    /// One value option of one runnable command, with the words that make the rest of the line valid.
    struct Case: CustomTestStringConvertible, Sendable {
        var path: [String]
        var option: OptionSpec
        var arguments: [String]
        var testDescription: String { "orgctl \(path.joined(separator: " ")) --\(option.long)" }
    }

    /// Every (runnable command, value option) pair of the real command tree, including the ones other
    /// commands add later.
    static let cases: [Case] = {
        var result: [Case] = []
        func walk(_ chain: CommandChain) {
            if chain.command.isGroup {
                for subcommand in chain.command.subcommands {
                    var next = chain
                    next.descend(into: subcommand)
                    walk(next)
                }
                return
            }
            let arguments = chain.command.arguments.filter { !$0.isOptional }.map(\.valueType.example)
            for option in chain.availableOptions where !option.isFlag {
                result.append(Case(path: chain.path, option: option, arguments: arguments))
            }
        }
        walk(CommandChain(root: Orgctl.commands))
        return result
    }()

    /// Values each type must refuse.
    static func invalidValues(_ option: OptionSpec) -> [String] {
        if !option.allowedValues.isEmpty { return ["", "bogus-value"] }
        switch option.valueType {
        case .text: return [""]
        case .integer(let min, _): return ["", "abc", "1.5", "+3", "0x10", "1e3", " 5", String(min - 1)]
        case .duration(let maxSeconds): return ["", "abc", "10", "-5s", "5 s", "\(maxSeconds + 1)s"]
        case .utcTime: return ["", "yesterday", "2026-13-01", "2026-11-01 12:00"]
        case .addressPattern: return ["", "tenant/", "/tenant", "tenant//acme"]
        case .byteSize: return ["", "lots", "0", "-1", "1.5.2GiB", "1 GiB"]
        }
    }

    static func validValues(_ option: OptionSpec) -> [String] {
        option.allowedValues.isEmpty ? [option.valueType.example] : option.allowedValues
    }

    static let parser = ArgumentParser(root: Orgctl.commands, version: Orgctl.version)

    static func chain(_ path: [String]) -> CommandChain {
        var chain = CommandChain(root: Orgctl.commands)
        for name in path { chain.descend(into: chain.command.subcommand(named: name)!) }
        return chain
    }

    @Test("every value option of every command refuses a bad value with a usage error naming it", arguments: cases)
    func invalidValueIsAUsageError(_ testCase: Case) {
        #expect(Self.cases.count > 30)
        for value in Self.invalidValues(testCase.option) {
            let line = testCase.path + testCase.arguments + ["--\(testCase.option.long)=\(value)"]
            do {
                let outcome = try Self.parser.parse(line)
                Issue.record("\(line) parsed as \(outcome)")
            } catch {
                #expect(error.message.hasPrefix("invalid value '\(value)' for '--\(testCase.option.long)"), "\(line): \(error)")
            }
        }
    }

    @Test("every value option of every command accepts a good value", arguments: cases)
    func validValueParses(_ testCase: Case) throws {
        // Options this one requires come along.
        let chain = Self.chain(testCase.path)
        let companions = chain.command.constraints.flatMap { constraint -> [String] in
            guard case .requires(testCase.option.long, let other) = constraint,
                let option = chain.availableOptions.first(where: { $0.long == other })
            else { return [] }
            return ["--\(other)"] + (option.isFlag ? [] : [Self.validValues(option)[0]])
        }
        for value in Self.validValues(testCase.option) {
            // Given as the next word, as users type it.
            let line = testCase.path + testCase.arguments + companions + ["--\(testCase.option.long)", value]
            guard case .command(let parsed) = try Self.parser.parse(line) else {
                Issue.record("\(line) did not parse as a command")
                continue
            }
            #expect(parsed.value(testCase.option.long) == value)
        }
    }

    @Test("options declare the type their value name promises", arguments: cases)
    func declarationsAreConsistent(_ testCase: Case) {
        let option = testCase.option
        switch option.valueName {
        case "n": if case .integer(let min, _) = option.valueType, min >= 0 {} else { Issue.record("\(testCase) is not a whole number, 0 or more") }
        case "size": #expect(option.valueType == .byteSize, "\(testCase)")
        case "duration": if case .duration = option.valueType {} else { Issue.record("\(testCase) is not a duration") }
        case "time": #expect(option.valueType == .utcTime, "\(testCase)")
        case "pattern": #expect(option.valueType == .addressPattern, "\(testCase)")
        case "format": #expect(!option.allowedValues.isEmpty, "\(testCase) lists no formats")
        default: break
        }
    }

    @Test("a negative number is a value (and refused by its type), not a missing value")
    func negativeNumber() {
        let captured = Captured()
        #expect(captured.run(["apply", "--max-deletes", "-1", "/nonexistent/config"]) == ExitCode.usage)
        #expect(captured.err.contains("error: invalid value '-1' for '--max-deletes <n>': expected a whole number, 0 or more"), "\(captured.err)")
        #expect(captured.err.contains("help: for example --max-deletes 10"), "\(captured.err)")
        #expect(!captured.err.contains("missing value"))
    }

    @Test("a bad value is reported before any work: no plan, no key or secret error, nothing read")
    func beforeAnyWork() {
        for line in [["apply", "/nonexistent/config", "--max-deletes", "abc"], ["plan", "/nonexistent/config", "--lock-timeout", "forever"],
                     ["drift", "/nonexistent/config", "--target", "tenant/acme/"], ["audit", "log", "--since", "last week"],
                     ["audit", "prove", "0"]] {
            let captured = Captured()
            // No state key and no such folder: either would be an error (exit 1) if the command ran.
            #expect(captured.run(line) == ExitCode.usage, "\(line): \(captured.err)")
            #expect(captured.out.isEmpty)
            #expect(captured.err.hasPrefix("error: invalid value"), "\(line): \(captured.err)")
        }
    }

    @Test("options that need another option are refused without it", arguments: [
        (["apply", "DIR", "--checkpoint-key", "k"], "option '--checkpoint-key' requires '--checkpoint-out <file>'"),
        (["audit", "verify", "--key", "k"], "option '--key' requires '--checkpoint <file>'"),
    ])
    func requiredCompanions(_ line: [String], _ message: String) {
        let captured = Captured()
        #expect(captured.run(line) == ExitCode.usage)
        #expect(captured.err.hasPrefix("error: \(message)\n"), "\(captured.err)")
    }

    @Test("the constraint mechanism: requires and exclusive, checked after the whole line")
    func constraints() throws {
        let spec = CommandSpec(
            name: "tool", abstract: "A tool.",
            subcommands: [
                CommandSpec(
                    name: "run", abstract: "Run.",
                    options: [.option("a", valueName: "x", help: ""), .option("b", valueName: "x", help: ""), .flag("c", help: ""),
                              .flag("d", help: "")],
                    constraints: [.requires("a", "b"), .exclusive(["c", "d"])])
            ])
        let parser = ArgumentParser(root: spec, version: "1")
        #expect(throws: UsageError.self) { try parser.parse(["run", "--a", "1"]) }
        #expect(try parser.parse(["run", "--a", "1", "--b", "2"]) != .help(text: ""))
        do {
            _ = try parser.parse(["run", "--c", "--d"])
            Issue.record("--c with --d was accepted")
        } catch {
            #expect(error.message == "options '--c' and '--d' cannot be used together")
        }
        // A constraint naming an option the command lacks is a mistake in the description.
        let broken = CommandSpec(name: "tool", abstract: "A tool.", subcommands: [
            CommandSpec(name: "run", abstract: "Run.", constraints: [.requires("a", "b")])
        ])
        #expect(broken.validationProblems().count == 2)
    }

    @Test("shell quoting round-trips through a POSIX shell", arguments: ["plain.plan", "with space.plan", "it's", "$HOME", "-x", "", "a'b'c"])
    func shellQuoting(_ word: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "printf %s " + ShellQuoting.quote(word)]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(String(decoding: data, as: UTF8.self) == word)
    }
}
