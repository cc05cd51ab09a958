// The data that describes orgctl's command line. One description drives parsing, help
// text, and (later) shell completions and the README's command reference, so everything
// a user can type is declared here and nowhere else.

/// One command: a leaf that runs (`orgctl plan`) or a group of subcommands
/// (`orgctl audit`, whose subcommands are `verify` and `log`). The root is a group whose
/// name is the program name.
///
/// A group takes no arguments and no own `options`: it only dispatches. Options that a
/// group and every command below it accept go in `inheritedOptions` (on the root: global
/// options such as `--no-color` and `--quiet`); they may be given before or after the
/// subcommand name and show in the help of every command below.
struct CommandSpec: Sendable, Equatable {
    /// A single word: `plan`, `audit`, `verify`. Nesting comes from `subcommands`.
    var name: String
    /// One line, shown after OVERVIEW and in the parent's SUBCOMMANDS list.
    var abstract: String
    /// Longer help text. Lines are word-wrapped at 80 columns, except lines that begin
    /// with a space, which are printed as they are (for examples).
    var discussion: String?
    /// Positionals, in order. Required ones come first; only the last may repeat.
    var arguments: [ArgumentSpec]
    /// Options of this command only.
    var options: [OptionSpec]
    /// Options of this command and of every command below it.
    var inheritedOptions: [OptionSpec]
    var subcommands: [CommandSpec]
    /// Which of the command's options go together, checked when parsing.
    var constraints: [OptionConstraint]
    /// Words that are not subcommands of this group but that users type for one (`import`), each
    /// with the help line shown for it instead of a "did you mean" (which could point at the
    /// wrong command). Close misspellings of a word get its help line too.
    var hints: [String: String] = [:]

    init(
        name: String,
        abstract: String,
        discussion: String? = nil,
        arguments: [ArgumentSpec] = [],
        options: [OptionSpec] = [],
        inheritedOptions: [OptionSpec] = [],
        subcommands: [CommandSpec] = [],
        constraints: [OptionConstraint] = [],
        hints: [String: String] = [:]
    ) {
        self.name = name
        self.abstract = abstract
        self.discussion = discussion
        self.arguments = arguments
        self.options = options
        self.inheritedOptions = inheritedOptions
        self.subcommands = subcommands
        self.constraints = constraints
        self.hints = hints
    }

    var isGroup: Bool { !subcommands.isEmpty }

    func subcommand(named name: String) -> CommandSpec? {
        subcommands.first { $0.name == name }
    }
}

/// A positional argument, shown as `<name>` in usage and help.
struct ArgumentSpec: Sendable, Equatable {
    var name: String
    var help: String
    var isOptional: Bool
    /// Takes every remaining positional (`<file> ...`).
    var isRepeating: Bool
    /// What each value must be; checked when parsing.
    var valueType: ValueType

    init(_ name: String, help: String, optional: Bool = false, repeating: Bool = false, type: ValueType = .text) {
        self.name = name
        self.help = help
        self.isOptional = optional
        self.isRepeating = repeating
        self.valueType = type
    }
}

/// A `--long` option (with an optional `-s` short form) that is either a flag or takes
/// a value. Options are never required: a command falls back to its default, which
/// `defaultDescription` documents.
struct OptionSpec: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        case flag
        /// Takes a value, shown as `<valueName>`.
        case value(valueName: String)
    }

    /// Without the dashes: `format` for `--format`.
    var long: String
    var short: Character?
    var kind: Kind
    /// May be given more than once; values keep their command-line order.
    var isRepeatable: Bool
    var help: String
    /// Shown as `default: ...` in help. Documentation only: the parser does not fill it in.
    var defaultDescription: String?
    /// When non-empty, the only values accepted (and shown as `values: ...`).
    var allowedValues: [String]
    /// Shown as `env: NAME` in help. Documentation only: the parser reads no environment.
    var environmentVariable: String?
    /// What the value must be (unless `allowedValues` lists the values); checked when parsing.
    var valueType: ValueType = .text

    static func flag(
        _ long: String,
        short: Character? = nil,
        help: String,
        repeatable: Bool = false,
        env: String? = nil
    ) -> OptionSpec {
        OptionSpec(
            long: long, short: short, kind: .flag, isRepeatable: repeatable, help: help,
            defaultDescription: nil, allowedValues: [], environmentVariable: env)
    }

    static func option(
        _ long: String,
        short: Character? = nil,
        valueName: String,
        help: String,
        default defaultDescription: String? = nil,
        allowedValues: [String] = [],
        repeatable: Bool = false,
        env: String? = nil,
        type: ValueType = .text
    ) -> OptionSpec {
        OptionSpec(
            long: long, short: short, kind: .value(valueName: valueName), isRepeatable: repeatable,
            help: help, defaultDescription: defaultDescription, allowedValues: allowedValues,
            environmentVariable: env, valueType: type)
    }

    var isFlag: Bool { kind == .flag }

    var valueName: String? {
        if case .value(let name) = kind { return name }
        return nil
    }

    /// `--format <format>` — how error messages name the option when it lacks a value.
    var longWithValue: String {
        valueName.map { "--\(long) <\($0)>" } ?? "--\(long)"
    }
}

// MARK: - Checking a description

extension CommandSpec {
    /// Mistakes in the description itself (programmer errors, not user errors), one
    /// sentence each, naming the command. Empty for a well-formed tree. `ArgumentParser`
    /// refuses a tree with problems; a test over the real command tree should expect `[]`.
    func validationProblems() -> [String] {
        var problems: [String] = []
        collectProblems(path: [name], inherited: [], isRoot: true, into: &problems)
        return problems
    }

    private func collectProblems(
        path: [String], inherited: [OptionSpec], isRoot: Bool, into problems: inout [String]
    ) {
        let location = "'\(path.joined(separator: " "))'"
        func problem(_ text: String) { problems.append("\(location): \(text)") }

        if name.isEmpty || name.contains(where: { $0.isWhitespace }) || name.hasPrefix("-") {
            problem("command name '\(name)' must be a single word")
        }
        if isGroup {
            if !arguments.isEmpty { problem("a group of subcommands cannot take arguments") }
            if !options.isEmpty {
                problem("a group of subcommands cannot have own options; use inheritedOptions")
            }
        }

        // Options: well-formed, unique (long and short) across everything the command accepts.
        let available = options + inheritedOptions + inherited
        var longs: Set<String> = []
        var shorts: Set<Character> = []
        for option in available {
            if option.long.isEmpty || option.long.hasPrefix("-") || option.long.contains("=")
                || option.long.contains(where: { $0.isWhitespace })
            {
                problem("option name '\(option.long)' must be a word without dashes or '='")
            }
            if ["help", "version"].contains(option.long) {
                problem("'--\(option.long)' is reserved")
            }
            if !longs.insert(option.long).inserted {
                problem("option '--\(option.long)' is declared more than once")
            }
            if let short = option.short {
                if short == "h" { problem("'-h' is reserved") }
                if short == "-" || short.isWhitespace || ("0"..."9").contains(short) {
                    problem("short name '\(short)' is invalid")
                }
                if !shorts.insert(short).inserted {
                    problem("short option '-\(short)' is declared more than once")
                }
            }
            if option.isFlag, !option.allowedValues.isEmpty || option.defaultDescription != nil {
                problem("flag '--\(option.long)' cannot have allowed values or a default")
            }
        }

        // Constraints name options the command accepts.
        for constraint in constraints {
            for name in constraint.names where !longs.contains(name) {
                problem("constraint \(constraint) names '--\(name)', which the command does not accept")
            }
        }

        // Arguments: unique, required before optional, only the last repeats.
        var argumentNames: Set<String> = []
        var sawOptional = false
        for (index, argument) in arguments.enumerated() {
            if !argumentNames.insert(argument.name).inserted {
                problem("argument '<\(argument.name)>' is declared more than once")
            }
            if argument.isOptional {
                sawOptional = true
            } else if sawOptional {
                problem("required argument '<\(argument.name)>' follows an optional one")
            }
            if argument.isRepeating, index != arguments.count - 1 {
                problem("repeating argument '<\(argument.name)>' must be the last")
            }
        }

        for word in hints.keys where subcommand(named: word) != nil {
            problem("hint '\(word)' is also a subcommand")
        }

        // Subcommands: unique; `help` is taken at the root.
        var subcommandNames: Set<String> = []
        for subcommand in subcommands {
            if !subcommandNames.insert(subcommand.name).inserted {
                problem("subcommand '\(subcommand.name)' is declared more than once")
            }
            if isRoot, subcommand.name == "help" {
                problem("subcommand 'help' is reserved")
            }
            subcommand.collectProblems(
                path: path + [subcommand.name], inherited: inheritedOptions + inherited,
                isRoot: false, into: &problems)
        }
    }
}
