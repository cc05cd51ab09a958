import Testing

@testable import OrgctlCLI
import Spec

// MARK: - A small command tree in the shape of orgctl's

private let sampleSpec = CommandSpec(
    name: "orgctl",
    abstract: "Reconcile organisation configuration kept in git.",
    inheritedOptions: [
        .flag("no-color", help: "Disable coloured output."),
        .flag("quiet", short: "q", help: "Print only errors."),
    ],
    subcommands: [
        CommandSpec(
            name: "plan",
            abstract: "Show the changes that apply would make.",
            discussion: """
                Reads every YAML file under <dir>, compares the result with the state \
                database and prints one line per resource that would be created, updated or \
                deleted.

                  orgctl plan ./config --format json
                """,
            arguments: [ArgumentSpec("dir", help: "The configuration directory.")],
            options: [
                .option(
                    "format", short: "f", valueName: "format", help: "Output format.",
                    default: "text", allowedValues: ["text", "json", "markdown"]),
                .option(
                    "state", short: "s", valueName: "path", help: "Path to the state database.",
                    env: "ORGCTL_STATE"),
                .option(
                    "only", valueName: "address",
                    help: "Limit the plan to this resource address and everything below it.",
                    repeatable: true),
                .flag(
                    "detailed-exitcode",
                    help: "Exit with 2 when there are changes, 0 when there are none."),
                .flag("verbose", short: "v", help: "Say more.", repeatable: true),
            ]),
        CommandSpec(
            name: "validate",
            abstract: "Check configuration without touching state.",
            arguments: [
                ArgumentSpec("files", help: "Files to check.", optional: true, repeating: true)
            ]),
        CommandSpec(
            name: "import",
            abstract: "Import a resource.",
            arguments: [
                ArgumentSpec("address", help: "Resource address."),
                ArgumentSpec("id", help: "Identifier in the platform.", optional: true),
            ]),
        CommandSpec(
            name: "audit",
            abstract: "Inspect the tamper-evident audit chain.",
            inheritedOptions: [
                .option("state", short: "s", valueName: "path", help: "Path to the state database.")
            ],
            subcommands: [
                CommandSpec(
                    name: "verify",
                    abstract: "Recompute every entry hash and check the chain.",
                    options: [
                        .option("from", valueName: "sequence", help: "First entry to check.")
                    ]),
                CommandSpec(
                    name: "log",
                    abstract: "Print audit entries.",
                    arguments: [ArgumentSpec("address", help: "Only this address.", optional: true)]
                ),
            ]),
    ])

private let parser = ArgumentParser(root: sampleSpec, version: "1.2.3")

private struct NotACommand: Error {}

private func command(_ args: [String]) throws -> ParsedCommand {
    let outcome = try parser.parse(args)
    guard case .command(let parsed) = outcome else {
        Issue.record("expected a command, got \(outcome)")
        throw NotACommand()
    }
    return parsed
}

private func helpText(_ args: [String]) throws -> String? {
    if case .help(let text) = try parser.parse(args) { return text }
    return nil
}

private func usageError(_ args: [String]) -> UsageError? {
    do {
        let outcome = try parser.parse(args)
        Issue.record("expected a usage error, got \(outcome)")
        return nil
    } catch {
        return error
    }
}

// MARK: - Suggestions

struct SuggestionTests {
    @Test(arguments: [
        ("kitten", "sitting", 3),
        ("format", "fromat", 1),  // one transposition
        ("ab", "ba", 1),
        ("ca", "abc", 3),  // optimal string alignment: no edit of a transposed pair
        ("", "abc", 3),
        ("abc", "", 3),
        ("same", "same", 0),
        ("plan", "apply", 4),
    ])
    func distance(a: String, b: String, expected: Int) {
        #expect(Suggestions.editDistance(a, b) == expected)
        #expect(Suggestions.editDistance(b, a) == expected)
    }

    @Test(
        arguments: [
            ("fromat", ["state", "format", "only"], "format"),
            ("vaildate", ["plan", "apply", "validate", "audit"], "validate"),
            ("pln", ["plan", "apply"], "plan"),  // short words still get one edit
            ("FORMAT", ["format"], "format"),  // case-insensitive
            ("josn", ["text", "json", "markdown"], "json"),
            ("plam", ["plan", "plat"], "plan"),  // tie: first listed wins
            ("frobnicate", ["plan", "apply", "validate"], nil),
            ("ap", ["apply"], nil),  // 3 edits for a 2-letter word is too far
            ("xyz", ["format"], nil),
            ("", ["a", "b"], nil),
            ("plan", [], nil),
        ] as [(String, [String], String?)])
    func suggestion(word: String, candidates: [String], expected: String?) {
        #expect(Suggestions.closest(to: word, among: candidates) == expected)
    }

    @Test func closerCandidateWinsOverEarlierOne() {
        // Both are within the threshold of 2; the nearer one wins, not the first listed.
        #expect(Suggestions.closest(to: "statte", among: ["stats", "state"]) == "state")
    }
}

// MARK: - Successful parses

struct ParseTests {
    @Test(arguments: [
        ["plan", "./config", "--format", "json"],
        ["plan", "--format", "json", "./config"],
        ["plan", "--format=json", "./config"],
        ["plan", "-f", "json", "./config"],
        ["--quiet", "plan", "./config", "--format=json"],
    ])
    func optionsBeforeOrAfterPositionalsAndEqualsForm(args: [String]) throws {
        let parsed = try command(args)
        #expect(parsed.path == ["plan"])
        #expect(parsed.argument("dir") == "./config")
        #expect(parsed.value("format") == "json")
        #expect(parsed.value("state") == nil)
        #expect(parsed.flag("detailed-exitcode") == false)
    }

    @Test func flagsAndAbsentValues() throws {
        let parsed = try command(["plan", "dir", "--detailed-exitcode", "-v", "-v", "--verbose"])
        #expect(parsed.flag("detailed-exitcode"))
        #expect(parsed.flagCount("verbose") == 3)
        #expect(parsed.flag("no-color") == false)
        #expect(parsed.values("only") == [])
    }

    @Test func equalsFormKeepsEverythingAfterTheFirstEquals() throws {
        let parsed = try command(["plan", "dir", "--state=/tmp/a=b.db", "--only=a="])
        #expect(parsed.value("state") == "/tmp/a=b.db")
        #expect(parsed.values("only") == ["a="])
    }

    @Test func emptyValueIsRefused() {
        #expect(usageError(["plan", "dir", "--only="])?.message == "invalid value '' for '--only <address>': expected a value, not an empty string")
    }

    @Test func repeatableOptionKeepsCommandLineOrder() throws {
        let parsed = try command([
            "plan", "--only", "tenant.b", "dir", "--only=tenant.a", "--only", "tenant.c",
        ])
        #expect(parsed.values("only") == ["tenant.b", "tenant.a", "tenant.c"])
        #expect(parsed.value("only") == "tenant.c")
    }

    @Test func doubleDashEndsOptions() throws {
        let parsed = try command(["plan", "--format", "json", "--", "--weird-dir"])
        #expect(parsed.argument("dir") == "--weird-dir")
        #expect(parsed.value("format") == "json")

        let files = try command(["validate", "a.yaml", "--", "-b.yaml", "--help", "--"])
        #expect(files.arguments("files") == ["a.yaml", "-b.yaml", "--help", "--"])
    }

    @Test func loneDashIsAnArgumentAndAValue() throws {
        let parsed = try command(["plan", "-s", "-", "-"])
        #expect(parsed.value("state") == "-")
        #expect(parsed.argument("dir") == "-")
    }

    @Test(arguments: [
        (["validate"], [String]()),
        (["validate", "a.yaml"], ["a.yaml"]),
        (["validate", "a.yaml", "--quiet", "b.yaml", "c.yaml"], ["a.yaml", "b.yaml", "c.yaml"]),
    ])
    func repeatingOptionalArgument(args: [String], files: [String]) throws {
        let parsed = try command(args)
        #expect(parsed.arguments("files") == files)
        #expect(parsed.argument("files") == files.first)
    }

    @Test func optionalArgumentAfterRequiredOne() throws {
        let one = try command(["import", "tenant.acme"])
        #expect(one.argument("address") == "tenant.acme")
        #expect(one.argument("id") == nil)
        let two = try command(["import", "tenant.acme", "42"])
        #expect(two.argument("id") == "42")
    }

    @Test(arguments: [
        ["--no-color", "--quiet", "audit", "verify"],
        ["--no-color", "audit", "-q", "verify"],
        ["audit", "verify", "--no-color", "-q"],
    ])
    func inheritedOptionsAcceptedAtEveryLevel(args: [String]) throws {
        let parsed = try command(args)
        #expect(parsed.path == ["audit", "verify"])
        #expect(parsed.flag("no-color"))
        #expect(parsed.flag("quiet"))
        #expect(parsed.value("state") == nil)
    }

    @Test func groupInheritedOptionReachesItsSubcommands() throws {
        let parsed = try command(["audit", "--state", "s.db", "log", "team.platform"])
        #expect(parsed.path == ["audit", "log"])
        #expect(parsed.value("state") == "s.db")
        #expect(parsed.argument("address") == "team.platform")
    }

    @Test func version() throws {
        #expect(try parser.parse(["--version"]) == .version)
        #expect(try parser.parse(["--quiet", "--version"]) == .version)
    }
}

// MARK: - Usage errors

struct UsageErrorTests {
    @Test(arguments: [
        (
            ["plan", "dir", "--formt", "json"],
            """
            error: unknown option '--formt'
            help: did you mean '--format'?
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
        (
            ["plan", "--fromat=json", "dir"],
            """
            error: unknown option '--fromat'
            help: did you mean '--format'?
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
        (
            ["plan", "dir", "--frobnicate"],
            """
            error: unknown option '--frobnicate'
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
        (
            ["plan", "dir", "-format", "json"],
            """
            error: unknown option '-format'
            help: did you mean '--format'?
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
        (
            ["plan", "dir", "-x"],
            """
            error: unknown option '-x'
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
        (
            ["plan", "dir", "--versoin"],  // --version is only known at the root
            """
            error: unknown option '--versoin'
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
        (
            ["--versoin"],
            """
            error: unknown option '--versoin'
            help: did you mean '--version'?
            usage: orgctl [<options>] <subcommand>
            see 'orgctl --help'
            """
        ),
        (
            ["plan", "dir", "--format"],
            """
            error: missing value for '--format <format>'
            help: expected one of text, json, markdown
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
        (
            ["plan", "-s", "--quiet", "dir"],
            """
            error: missing value for '-s <path>'
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
        (
            ["plan", "dir", "--format", "yaml"],
            """
            error: invalid value 'yaml' for '--format': expected one of text, json, markdown
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
        (
            ["plan", "dir", "-f", "jsno"],
            """
            error: invalid value 'jsno' for '-f': expected one of text, json, markdown
            help: did you mean 'json'?
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
        (
            ["plan", "dir", "--format=json", "-f", "text"],
            """
            error: option '--format' may be given only once
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
        (
            ["--quiet", "plan", "dir", "-q"],
            """
            error: option '--quiet' may be given only once
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
        (
            ["plan", "dir", "--detailed-exitcode=yes"],
            """
            error: option '--detailed-exitcode' does not take a value
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
        (
            ["plan", "dir", "other"],
            """
            error: unexpected extra argument 'other'
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
        (
            ["audit", "verify", "extra"],
            """
            error: unexpected extra argument 'extra'
            usage: orgctl audit verify [<options>]
            see 'orgctl audit verify --help'
            """
        ),
        (
            ["plan", "--format", "json"],
            """
            error: missing required argument '<dir>'
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
        (
            ["vaildate", "a.yaml"],
            """
            error: unknown subcommand 'vaildate'
            help: did you mean 'validate'?
            usage: orgctl [<options>] <subcommand>
            see 'orgctl --help'
            """
        ),
        (
            ["frobnicate"],
            """
            error: unknown subcommand 'frobnicate'
            usage: orgctl [<options>] <subcommand>
            see 'orgctl --help'
            """
        ),
        (
            ["audit", "verfiy"],
            """
            error: unknown subcommand 'verfiy'
            help: did you mean 'verify'?
            usage: orgctl audit [<options>] <subcommand>
            see 'orgctl audit --help'
            """
        ),
        (
            ["help", "audit", "lgo"],
            """
            error: unknown subcommand 'lgo'
            help: did you mean 'log'?
            usage: orgctl audit [<options>] <subcommand>
            see 'orgctl audit --help'
            """
        ),
        (
            ["help", "plan", "dir"],
            """
            error: unexpected extra argument 'dir'
            usage: orgctl help [<subcommand> ...]
            see 'orgctl --help'
            """
        ),
        (
            // The first mistake in command-line order is the one reported.
            ["plan", "--format", "yaml", "--formt", "json", "a", "b"],
            """
            error: invalid value 'yaml' for '--format': expected one of text, json, markdown
            usage: orgctl plan [<options>] <dir>
            see 'orgctl plan --help'
            """
        ),
    ])
    func message(args: [String], expected: String) {
        #expect(usageError(args)?.description == expected)
    }

    @Test func fieldsAreAvailableSeparately() {
        let error = usageError(["plan", "dir", "--fromat", "json"])
        #expect(error?.message == "unknown option '--fromat'")
        #expect(error?.suggestion == "did you mean '--format'?")
        #expect(error?.usage == "orgctl plan [<options>] <dir>")
        #expect(error?.helpCommand == "orgctl plan --help")
    }
}

// MARK: - Help

struct HelpTests {
    @Test(arguments: [
        ["audit", "verify", "--help"],
        ["audit", "verify", "-h"],
        ["audit", "--help", "verify"],
        ["--help", "audit", "verify"],
        ["help", "audit", "verify"],
        ["audit", "verify", "--from", "--bogus", "extra", "-h"],  // help beats mistakes
    ])
    func nestedSubcommandHelpFromAnyPosition(args: [String]) throws {
        #expect(try helpText(args) == parser.helpText(for: ["audit", "verify"]))
    }

    @Test func helpAfterDoubleDashIsAnArgument() throws {
        #expect(try command(["validate", "--", "--help"]).arguments("files") == ["--help"])
    }

    @Test(arguments: [[], ["help"], ["--quiet"], ["-h"]] as [[String]])
    func rootHelp(args: [String]) throws {
        #expect(try helpText(args) == parser.helpText(for: []))
    }

    @Test func groupWithoutSubcommandShowsItsHelp() throws {
        #expect(try helpText(["audit"]) == parser.helpText(for: ["audit"]))
        #expect(parser.helpText(for: ["nope"]) == nil)
    }

    @Test func rootHelpGolden() {
        #expect(
            parser.helpText(for: []) == """
                OVERVIEW: Reconcile organisation configuration kept in git.

                USAGE: orgctl [<options>] <subcommand>

                OPTIONS:
                  --no-color              Disable coloured output.
                  -q, --quiet             Print only errors.
                  --version               Show the version.
                  -h, --help              Show help information.

                SUBCOMMANDS:
                  plan                    Show the changes that apply would make.
                  validate                Check configuration without touching state.
                  import                  Import a resource.
                  audit                   Inspect the tamper-evident audit chain.
                  help                    Show subcommand help information.

                  See 'orgctl help <subcommand>' for detailed help.
                """)
    }

    @Test func leafHelpGolden() {
        // Columns at 26, wrapped at 80, defaults/values/env shown, global options inherited,
        // discussion wrapped except for the indented example line.
        #expect(
            parser.helpText(for: ["plan"]) == """
                OVERVIEW: Show the changes that apply would make.

                Reads every YAML file under <dir>, compares the result with the state database
                and prints one line per resource that would be created, updated or deleted.

                  orgctl plan ./config --format json

                USAGE: orgctl plan [<options>] <dir>

                ARGUMENTS:
                  <dir>                   The configuration directory.

                OPTIONS:
                  -f, --format <format>   Output format. (values: text, json, markdown; default:
                                          text)
                  -s, --state <path>      Path to the state database. (env: ORGCTL_STATE)
                  --only <address> ...    Limit the plan to this resource address and everything
                                          below it.
                  --detailed-exitcode     Exit with 2 when there are changes, 0 when there are
                                          none.
                  -v, --verbose           Say more.
                  --no-color              Disable coloured output.
                  -q, --quiet             Print only errors.
                  -h, --help              Show help information.
                """)
    }

    @Test func nestedGroupHelpGolden() {
        #expect(
            parser.helpText(for: ["audit"]) == """
                OVERVIEW: Inspect the tamper-evident audit chain.

                USAGE: orgctl audit [<options>] <subcommand>

                OPTIONS:
                  -s, --state <path>      Path to the state database.
                  --no-color              Disable coloured output.
                  -q, --quiet             Print only errors.
                  -h, --help              Show help information.

                SUBCOMMANDS:
                  verify                  Recompute every entry hash and check the chain.
                  log                     Print audit entries.

                  See 'orgctl help audit <subcommand>' for detailed help.
                """)
    }

    @Test func nestedLeafHelpGolden() {
        #expect(
            parser.helpText(for: ["audit", "log"]) == """
                OVERVIEW: Print audit entries.

                USAGE: orgctl audit log [<options>] [<address>]

                ARGUMENTS:
                  <address>               Only this address.

                OPTIONS:
                  -s, --state <path>      Path to the state database.
                  --no-color              Disable coloured output.
                  -q, --quiet             Print only errors.
                  -h, --help              Show help information.
                """)
    }

    @Test func longLabelPutsDescriptionOnTheNextLine() {
        #expect(
            HelpFormatter.row(label: "--maximum-removals <count>", help: "Refuse larger plans.")
                == [
                    "  --maximum-removals <count>",
                    "                          Refuse larger plans.",
                ])
        #expect(HelpFormatter.row(label: "--bare", help: "") == ["  --bare"])
    }

    @Test(arguments: [
        ("", 10, [""]),
        ("one two three", 7, ["one two", "three"]),
        ("one two three", 3, ["one", "two", "three"]),
        ("abcdefghij xy", 4, ["abcdefghij", "xy"]),  // an over-long word gets its own line
        ("  spaced   out  ", 80, ["spaced out"]),
    ])
    func wrap(text: String, width: Int, expected: [String]) {
        #expect(HelpFormatter.wrap(text, width: width) == expected)
    }

    @Test(arguments: [
        (ArgumentSpec("dir", help: ""), "<dir>"),
        (ArgumentSpec("dir", help: "", optional: true), "[<dir>]"),
        (ArgumentSpec("file", help: "", repeating: true), "<file> ..."),
        (ArgumentSpec("file", help: "", optional: true, repeating: true), "[<file> ...]"),
    ])
    func argumentUsage(argument: ArgumentSpec, expected: String) {
        #expect(HelpFormatter.usage(of: argument) == expected)
    }

    @Test func usageLineOmitsOptionsWhenThereAreNone() {
        let bare = ArgumentParser(
            root: CommandSpec(
                name: "tool", abstract: "A tool.",
                subcommands: [
                    CommandSpec(
                        name: "run", abstract: "Run.", arguments: [ArgumentSpec("x", help: "")])
                ]),
            version: "0")
        let error = #expect(throws: UsageError.self) { try bare.parse(["run"]) }
        #expect(error?.usage == "tool run <x>")
    }
}

// MARK: - Checking a description

struct ValidationTests {
    @Test func sampleIsWellFormed() {
        #expect(sampleSpec.validationProblems() == [])
    }

    @Test(arguments: [
        (
            CommandSpec(
                name: "t", abstract: "",
                subcommands: [
                    CommandSpec(
                        name: "a", abstract: "",
                        arguments: [
                            ArgumentSpec("x", help: "", optional: true),
                            ArgumentSpec("y", help: ""),
                        ])
                ]),
            "'t a': required argument '<y>' follows an optional one"
        ),
        (
            CommandSpec(
                name: "t", abstract: "",
                arguments: [
                    ArgumentSpec("x", help: "", repeating: true),
                    ArgumentSpec("y", help: "", optional: true),
                ]),
            "'t': repeating argument '<x>' must be the last"
        ),
        (
            CommandSpec(
                name: "t", abstract: "", inheritedOptions: [.flag("quiet", help: "")],
                subcommands: [
                    CommandSpec(name: "a", abstract: "", options: [.flag("quiet", help: "")])
                ]),
            "'t a': option '--quiet' is declared more than once"
        ),
        (
            CommandSpec(
                name: "t", abstract: "", inheritedOptions: [.flag("quiet", short: "q", help: "")],
                subcommands: [
                    CommandSpec(
                        name: "a", abstract: "", options: [.flag("query", short: "q", help: "")])
                ]),
            "'t a': short option '-q' is declared more than once"
        ),
        (
            CommandSpec(name: "t", abstract: "", options: [.flag("help", help: "")]),
            "'t': '--help' is reserved"
        ),
        (
            CommandSpec(name: "t", abstract: "", options: [.flag("hush", short: "h", help: "")]),
            "'t': '-h' is reserved"
        ),
        (
            CommandSpec(name: "t", abstract: "", options: [.flag("--quiet", help: "")]),
            "'t': option name '--quiet' must be a word without dashes or '='"
        ),
        (
            CommandSpec(
                name: "t", abstract: "", options: [.flag("quiet", help: "")],
                subcommands: [CommandSpec(name: "a", abstract: "")]),
            "'t': a group of subcommands cannot have own options; use inheritedOptions"
        ),
        (
            CommandSpec(
                name: "t", abstract: "", subcommands: [CommandSpec(name: "help", abstract: "")]),
            "'t': subcommand 'help' is reserved"
        ),
        (
            CommandSpec(
                name: "t", abstract: "",
                subcommands: [
                    CommandSpec(name: "a", abstract: ""), CommandSpec(name: "a", abstract: ""),
                ]),
            "'t': subcommand 'a' is declared more than once"
        ),
        (
            CommandSpec(
                name: "t", abstract: "",
                subcommands: [CommandSpec(name: "audit verify", abstract: "")]),
            "'t audit verify': command name 'audit verify' must be a single word"
        ),
    ])
    func problem(spec: CommandSpec, expected: String) {
        #expect(spec.validationProblems() == [expected])
    }
}
