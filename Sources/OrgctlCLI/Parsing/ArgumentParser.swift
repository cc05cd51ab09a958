import Spec
/// What the command line asks for.
enum ParseOutcome: Sendable, Equatable {
    case command(ParsedCommand)
    /// Print `text` to standard output and exit 0.
    case help(text: String)
    /// Print the version to standard output and exit 0.
    case version
}

/// Parses a command line against a `CommandSpec` tree.
///
/// - `--opt value`, `--opt=value` and `-s value`; `--` ends options; options and
///   positionals may come in any order. A value given as the next word may not start
///   with `-` (write `--opt=-x` for that) unless it is a negative number (`-1`, which is
///   never an option: short names are not digits); a lone `-` is an ordinary word.
/// - Every value is checked against its option's (or argument's) `ValueType` and allowed
///   values, and the command's `OptionConstraint`s are checked, before the command runs.
/// - Global options (`inheritedOptions`) may come before or after the subcommand name.
/// - `-h`/`--help` anywhere before `--` gives the help of the deepest command named,
///   even when the rest of the line has mistakes; so does `orgctl help <subcommand> ...`.
///   `--version` is accepted before the first subcommand name.
/// - A group named without a subcommand (`orgctl`, `orgctl audit`) gives its help.
/// - Otherwise the first mistake, in command-line order, is thrown as a `UsageError`;
///   missing arguments are reported after everything else.
struct ArgumentParser: Sendable {
    let root: CommandSpec
    let version: String

    init(root: CommandSpec, version: String) {
        let problems = root.validationProblems()
        precondition(
            problems.isEmpty,
            "invalid command description:\n" + problems.joined(separator: "\n"))
        self.root = root
        self.version = version
    }

    /// The help page of the command at `path` (`["audit", "verify"]`), or nil when there
    /// is no such command. For README generation and `orgctl help`.
    func helpText(for path: [String]) -> String? {
        var chain = CommandChain(root: root)
        for name in path {
            guard let subcommand = chain.command.subcommand(named: name) else { return nil }
            chain.descend(into: subcommand)
        }
        return HelpFormatter.help(for: chain)
    }

    /// Parses `args`, the command line without the program name.
    func parse(_ args: [String]) throws(UsageError) -> ParseOutcome {
        var run = Run(root: root)
        run.scan(args)

        if let topic = run.helpTopic {
            return .help(text: try helpForTopic(topic))
        }
        if run.helpRequested {
            return .help(text: HelpFormatter.help(for: run.chain))
        }
        if let error = run.firstError { throw error }
        if run.versionRequested { return .version }
        if run.chain.command.isGroup {
            return .help(text: HelpFormatter.help(for: run.chain))
        }
        return .command(try run.finish())
    }

    /// `orgctl help audit verify`: resolve each name or say which one is unknown.
    private func helpForTopic(_ topic: [String]) throws(UsageError) -> String {
        var chain = CommandChain(root: root)
        for name in topic {
            guard chain.command.isGroup else {
                throw UsageError(
                    message: "unexpected extra argument '\(name)'",
                    usage: "\(root.name) help [<subcommand> ...]",
                    helpCommand: "\(root.name) --help")
            }
            guard let subcommand = chain.command.subcommand(named: name) else {
                throw chain.usageError(
                    "unknown subcommand '\(name)'",
                    suggestion: unknownSubcommandHelp(name, in: chain.command, among: chain.command.subcommands.map(\.name)))
            }
            chain.descend(into: subcommand)
        }
        return HelpFormatter.help(for: chain)
    }
}

private func didYouMean(_ word: String, among candidates: [String]) -> String? {
    Suggestions.closest(to: word, among: candidates).map { "did you mean '\($0)'?" }
}

/// The help line for an unknown subcommand of `group`: the group's hint when the word is (close
/// to) one of its hint words rather than to a subcommand name, else a "did you mean".
private func unknownSubcommandHelp(_ word: String, in group: CommandSpec, among names: [String]) -> String? {
    let hintWords = group.hints.keys.sorted()
    if let hint = group.hints[word.lowercased()] { return hint }
    if let closest = Suggestions.closest(to: word, among: hintWords + names), let hint = group.hints[closest] { return hint }
    return didYouMean(word, among: names)
}

/// The state of one parse. Mistakes are recorded rather than thrown so that the scan can
/// go on to find a `--help` further along the line.
private struct Run {
    var chain: CommandChain
    var optionValues: [String: [String]] = [:]
    var positionals: [String] = []
    var firstError: UsageError?
    var helpRequested = false
    var versionRequested = false
    /// Set by `orgctl help ...`: the names that follow it.
    var helpTopic: [String]?
    /// After an unknown subcommand, later positionals are not reported again.
    var subcommandFailed = false

    init(root: CommandSpec) { chain = CommandChain(root: root) }

    mutating func fail(_ message: String, suggestion: String? = nil) {
        if firstError == nil { firstError = chain.usageError(message, suggestion: suggestion) }
    }

    mutating func scan(_ args: [String]) {
        var index = args.startIndex
        var optionsEnded = false
        while index < args.endIndex {
            let token = args[index]
            index += 1
            if !optionsEnded, looksLikeOption(token) {
                if token == "--" {
                    optionsEnded = true
                } else if token == "-h" || token == "--help" {
                    helpRequested = true
                } else if token == "--version", chain.isRoot {
                    versionRequested = true
                } else {
                    readOption(token, args: args, index: &index)
                }
                continue
            }
            readPositional(token)
        }
    }

    private mutating func readPositional(_ token: String) {
        if helpTopic != nil {
            helpTopic?.append(token)
            return
        }
        let command = chain.command
        guard command.isGroup else {
            positionals.append(token)
            return
        }
        if subcommandFailed { return }
        if chain.isRoot, token == HelpFormatter.helpSubcommand.name {
            helpTopic = []
        } else if let subcommand = command.subcommand(named: token) {
            chain.descend(into: subcommand)
        } else {
            var names = command.subcommands.map(\.name)
            if chain.isRoot { names.append(HelpFormatter.helpSubcommand.name) }
            fail("unknown subcommand '\(token)'", suggestion: unknownSubcommandHelp(token, in: command, among: names))
            subcommandFailed = true
        }
    }

    /// `token` starts with `-` and is not `-`, `--`, `-h`, `--help`.
    private mutating func readOption(_ token: String, args: [String], index: inout Int) {
        let available = chain.availableOptions
        let option: OptionSpec
        var inlineValue: String?
        /// As typed, for messages: `--format` or `-f`.
        var spelling = token
        if token.hasPrefix("--") {
            let body = token.dropFirst(2)
            let name: Substring
            if let equals = body.firstIndex(of: "=") {
                name = body[..<equals]
                spelling = "--\(name)"
                inlineValue = String(body[body.index(after: equals)...])
            } else {
                name = body
            }
            guard let found = available.first(where: { $0.long == name }) else {
                var candidates = available.map(\.long) + ["help"]
                if chain.isRoot { candidates.append("version") }
                fail(
                    "unknown option '--\(name)'",
                    suggestion: Suggestions.closest(to: String(name), among: candidates)
                        .map { "did you mean '--\($0)'?" })
                return
            }
            option = found
        } else {
            let body = token.dropFirst()
            guard body.count == 1, let found = available.first(where: { $0.short == body.first })
            else {
                // `-format` for `--format` is a common slip; short letters get no guesses.
                let suggestion =
                    body.count > 1
                    ? Suggestions.closest(to: String(body), among: available.map(\.long))
                        .map { "did you mean '--\($0)'?" }
                    : nil
                fail("unknown option '\(token)'", suggestion: suggestion)
                return
            }
            option = found
        }

        let value: String
        if option.isFlag {
            if inlineValue != nil {
                fail("option '--\(option.long)' does not take a value")
                return
            }
            value = ""
        } else if let inlineValue {
            value = inlineValue
        } else if index < args.endIndex, !looksLikeOption(args[index]) {
            value = args[index]
            index += 1
        } else {
            fail(
                "missing value for '\(spelling) <\(option.valueName ?? "value")>'",
                suggestion: option.allowedValues.isEmpty
                    ? nil : "expected one of \(option.allowedValues.joined(separator: ", "))")
            return
        }

        if !option.isRepeatable, optionValues[option.long] != nil {
            fail("option '--\(option.long)' may be given only once")
            return
        }
        if !option.allowedValues.isEmpty, !option.allowedValues.contains(value) {
            fail(
                "invalid value '\(value)' for '\(spelling)': expected one of "
                    + option.allowedValues.joined(separator: ", "),
                suggestion: didYouMean(value, among: option.allowedValues))
            return
        }
        if !option.isFlag, option.allowedValues.isEmpty, let problem = option.valueType.problem(with: value) {
            fail(
                "invalid value '\(value)' for '\(spelling) <\(option.valueName ?? "value")>': \(problem)",
                suggestion: option.valueType == .text
                    ? nil : "for example \(spelling) \(ShellQuoting.quote(option.valueType.example))")
            return
        }
        optionValues[option.long, default: []].append(value)
    }

    /// Starts with `-`, and is neither `-` nor a negative number (a value or argument).
    private func looksLikeOption(_ word: String) -> Bool {
        word.hasPrefix("-") && word != "-" && ValueType.integer(word) == nil
    }

    /// Hands positionals to the leaf's arguments in order; a repeating one takes the rest.
    func finish() throws(UsageError) -> ParsedCommand {
        let command = chain.command
        var remaining = positionals[...]
        var argumentValues: [String: [String]] = [:]
        for argument in command.arguments {
            let taken: [String]
            if argument.isRepeating {
                taken = Array(remaining)
                remaining = []
            } else {
                taken = remaining.first.map { [$0] } ?? []
                remaining = remaining.dropFirst()
            }
            if taken.isEmpty, !argument.isOptional {
                throw chain.usageError(
                    "missing required argument '<\(argument.name)>'")
            }
            for value in taken {
                if let problem = argument.valueType.problem(with: value) {
                    throw chain.usageError("invalid value '\(value)' for '<\(argument.name)>': \(problem)")
                }
            }
            argumentValues[argument.name] = taken
        }
        if let extra = remaining.first {
            throw chain.usageError("unexpected extra argument '\(extra)'")
        }
        for constraint in command.constraints {
            switch constraint {
            case .requires(let option, let other):
                if optionValues[option] != nil, optionValues[other] == nil {
                    let needed = chain.availableOptions.first { $0.long == other }?.longWithValue ?? "--\(other)"
                    throw chain.usageError(
                        "option '--\(option)' requires '\(needed)'",
                        suggestion: "add \(needed), or leave out --\(option)")
                }
            case .exclusive(let names):
                let given = names.filter { optionValues[$0] != nil }
                if given.count > 1 {
                    throw chain.usageError(
                        "options " + given.map { "'--\($0)'" }.joined(separator: " and ") + " cannot be used together",
                        suggestion: "choose one of them")
                }
            }
        }
        return ParsedCommand(
            path: chain.path,
            commandName: chain.displayName,
            availableOptions: chain.availableOptions,
            arguments: command.arguments,
            optionValues: optionValues,
            argumentValues: argumentValues)
    }
}
