// Usage lines and help text, laid out like swift-argument-parser's: OVERVIEW, USAGE,
// ARGUMENTS, OPTIONS, SUBCOMMANDS; labels indented two spaces, descriptions in a column
// starting at 26, everything wrapped at 80 columns.

/// A command together with the groups above it, root first: what the parser has walked.
struct CommandChain: Sendable {
    private(set) var specs: [CommandSpec]

    init(root: CommandSpec) { specs = [root] }

    var command: CommandSpec { specs[specs.count - 1] }
    var isRoot: Bool { specs.count == 1 }
    /// Names below the root: `["audit", "verify"]`.
    var path: [String] { specs.dropFirst().map(\.name) }
    /// `orgctl audit verify`.
    var displayName: String { specs.map(\.name).joined(separator: " ") }

    mutating func descend(into subcommand: CommandSpec) { specs.append(subcommand) }

    /// Everything the command accepts besides -h/--help and --version: its own options,
    /// then inherited ones, nearest group first (so global options come last).
    var availableOptions: [OptionSpec] {
        command.options + specs.reversed().flatMap(\.inheritedOptions)
    }

    /// `orgctl plan [<options>] <dir>`, `orgctl audit <subcommand>`.
    var usage: String {
        var parts = [displayName]
        if !availableOptions.isEmpty { parts.append("[<options>]") }
        if command.isGroup {
            parts.append("<subcommand>")
        } else {
            parts += command.arguments.map(HelpFormatter.usage(of:))
        }
        return parts.joined(separator: " ")
    }

    var helpCommand: String { "\(displayName) --help" }

    func usageError(_ message: String, suggestion: String? = nil) -> UsageError {
        UsageError(message: message, usage: usage, suggestion: suggestion, helpCommand: helpCommand)
    }
}

enum HelpFormatter {
    static let width = 80
    static let descriptionColumn = 26

    static let helpOption = OptionSpec.flag("help", short: "h", help: "Show help information.")
    static let versionOption = OptionSpec.flag("version", help: "Show the version.")
    static let helpSubcommand = CommandSpec(
        name: "help", abstract: "Show subcommand help information.")

    static func usage(of argument: ArgumentSpec) -> String {
        let name = "<\(argument.name)>" + (argument.isRepeating ? " ..." : "")
        return argument.isOptional ? "[\(name)]" : name
    }

    /// The full help page of the command at the end of `chain`, without a trailing newline.
    static func help(for chain: CommandChain) -> String {
        let command = chain.command
        var sections: [[String]] = []

        sections.append(wrap("OVERVIEW: \(command.abstract)", width: width))
        if let discussion = command.discussion, !discussion.isEmpty {
            sections.append(formatDiscussion(discussion))
        }
        sections.append(["USAGE: \(chain.usage)"])

        if !command.arguments.isEmpty {
            sections.append(
                ["ARGUMENTS:"]
                    + command.arguments.flatMap {
                        row(label: "<\($0.name)>" + ($0.isRepeating ? " ..." : ""), help: $0.help)
                    })
        }

        var options = chain.availableOptions
        if chain.isRoot { options.append(versionOption) }
        options.append(helpOption)
        sections.append(
            ["OPTIONS:"] + options.flatMap { row(label: label(of: $0), help: help(of: $0)) })

        if command.isGroup {
            var subcommands = command.subcommands
            if chain.isRoot { subcommands.append(helpSubcommand) }
            sections.append(
                ["SUBCOMMANDS:"] + subcommands.flatMap { row(label: $0.name, help: $0.abstract) })
            let helpPath = (["help"] + chain.path).joined(separator: " ")
            sections.append(
                wrap(
                    "See '\(chain.specs[0].name) \(helpPath) <subcommand>' for detailed help.",
                    width: width - 2
                ).map { "  " + $0 })
        }

        return sections.map { $0.joined(separator: "\n") }.joined(separator: "\n\n")
    }

    /// `-s, --state <path>`, `--format <format>`, `--only <address> ...`.
    static func label(of option: OptionSpec) -> String {
        var label = option.short.map { "-\($0), " } ?? ""
        label += option.longWithValue
        if option.isRepeatable, !option.isFlag { label += " ..." }
        return label
    }

    /// The help sentence followed by `(values: ...; default: ...; env: ...)` when known.
    static func help(of option: OptionSpec) -> String {
        var notes: [String] = []
        if !option.allowedValues.isEmpty {
            notes.append("values: " + option.allowedValues.joined(separator: ", "))
        }
        if let defaultDescription = option.defaultDescription {
            notes.append("default: \(defaultDescription)")
        }
        if let environmentVariable = option.environmentVariable {
            notes.append("env: \(environmentVariable)")
        }
        guard !notes.isEmpty else { return option.help }
        let parenthesised = "(\(notes.joined(separator: "; ")))"
        return option.help.isEmpty ? parenthesised : "\(option.help) \(parenthesised)"
    }

    /// Two-space indented label, description at column 26 (on the next line when the
    /// label leaves less than two spaces), continuation lines aligned with it.
    static func row(label: String, help: String) -> [String] {
        let labelText = "  " + label
        let lines = wrap(help, width: width - descriptionColumn)
        let indent = String(repeating: " ", count: descriptionColumn)
        guard let first = lines.first, !first.isEmpty else { return [labelText] }
        if labelText.count + 2 <= descriptionColumn {
            let padded =
                labelText + String(repeating: " ", count: descriptionColumn - labelText.count)
            return [padded + first] + lines.dropFirst().map { indent + $0 }
        }
        return [labelText] + lines.map { indent + $0 }
    }

    /// Lines starting with whitespace are kept verbatim (examples); others are wrapped.
    static func formatDiscussion(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false).flatMap { line -> [String] in
            if line.first?.isWhitespace == true { return [String(line)] }
            return wrap(String(line), width: width)
        }
    }

    /// Greedy word wrap at `width` columns. A word longer than `width` gets a line of its
    /// own. Returns `[""]` for blank text.
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ") {
            if current.isEmpty {
                current = String(word)
            } else if current.count + 1 + word.count <= width {
                current += " " + word
            } else {
                lines.append(current)
                current = String(word)
            }
        }
        lines.append(current)
        return lines
    }
}
