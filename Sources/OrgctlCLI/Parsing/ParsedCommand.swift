import Spec

/// A successfully parsed command line for one runnable command.
///
/// Look options up by their long name without dashes (`value("format")`) and arguments
/// by name (`argument("dir")`). Asking for a name the command does not declare, or
/// asking `flag` about a value option (or `value` about a flag), is a programmer error and
/// traps: a typo there would otherwise read as "not given" forever.
struct ParsedCommand: Sendable, Equatable {
    /// Subcommand names below the root: `["audit", "verify"]`.
    var path: [String]

    /// Values by long name, in command-line order. Flags have one empty string per use.
    private var optionValues: [String: [String]]
    private var argumentValues: [String: [String]]
    /// Long name -> is it a flag, for every option the command accepts.
    private let declaredOptions: [String: Bool]
    private let valueTypes: [String: ValueType]
    private let declaredArguments: Set<String>
    /// `orgctl audit verify`, for trap messages.
    private let commandName: String

    init(
        path: [String],
        commandName: String,
        availableOptions: [OptionSpec],
        arguments: [ArgumentSpec],
        optionValues: [String: [String]],
        argumentValues: [String: [String]]
    ) {
        self.path = path
        self.commandName = commandName
        self.declaredOptions = Dictionary(
            availableOptions.map { ($0.long, $0.isFlag) }, uniquingKeysWith: { first, _ in first })
        self.valueTypes = Dictionary(
            availableOptions.map { ($0.long, $0.valueType) }, uniquingKeysWith: { first, _ in first })
        self.declaredArguments = Set(arguments.map(\.name))
        self.optionValues = optionValues
        self.argumentValues = argumentValues
    }

    /// Whether the flag `--long` was given.
    func flag(_ long: String) -> Bool {
        flagCount(long) > 0
    }

    /// How many times the flag `--long` was given (for repeatable flags such as `-v -v`).
    func flagCount(_ long: String) -> Int {
        check(long, isFlag: true)
        return optionValues[long]?.count ?? 0
    }

    /// The value of `--long`, or nil when it was not given. For a repeatable option, the last.
    func value(_ long: String) -> String? {
        values(long).last
    }

    /// Every value of `--long`, in command-line order.
    func values(_ long: String) -> [String] {
        check(long, isFlag: false)
        return optionValues[long] ?? []
    }

    /// The value of an `.integer` option, or nil when it was not given (the parser checked it).
    func integer(_ long: String) -> Int? {
        value(long).flatMap(ValueType.integer)
    }

    /// The value of a `.duration` option, or nil when it was not given (the parser checked it).
    func duration(_ long: String) -> Spec.Duration? {
        guard let type = valueTypes[long] else { return nil }
        return value(long).flatMap { ValueType.duration($0, type: type) }
    }

    /// The positional `<name>`, or nil when it is optional and was not given. For a
    /// repeating argument, the first.
    func argument(_ name: String) -> String? {
        arguments(name).first
    }

    /// Every positional taken by `<name>` (one at most unless it repeats).
    func arguments(_ name: String) -> [String] {
        precondition(
            declaredArguments.contains(name),
            "'\(commandName)' declares no argument '<\(name)>'")
        return argumentValues[name] ?? []
    }

    private func check(_ long: String, isFlag: Bool) {
        guard let declaredIsFlag = declaredOptions[long] else {
            preconditionFailure("'\(commandName)' declares no option '--\(long)'")
        }
        precondition(
            declaredIsFlag == isFlag,
            "'--\(long)' of '\(commandName)' is \(declaredIsFlag ? "a flag" : "an option with a value")"
        )
    }
}
