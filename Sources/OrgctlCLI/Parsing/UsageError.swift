/// The user typed something the command line does not accept. Rendered (by
/// `description`) as:
///
///     error: unknown option '--formt'
///     help: did you mean '--format'?
///     usage: orgctl plan [<options>] <dir>
///     see 'orgctl plan --help'
///
/// The program should print it to standard error and exit with EX_USAGE (64).
struct UsageError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Lowercase, no trailing period: `unknown option '--formt'`.
    var message: String
    /// The usage line of the command the error belongs to, without `usage: `.
    var usage: String
    /// The whole `help:` line without its prefix, e.g. `did you mean '--format'?`;
    /// nil when there is nothing useful to say beyond the usage line.
    var suggestion: String?
    /// What to run for the full help: `orgctl plan --help`.
    var helpCommand: String

    init(message: String, usage: String, suggestion: String? = nil, helpCommand: String) {
        self.message = message
        self.usage = usage
        self.suggestion = suggestion
        self.helpCommand = helpCommand
    }

    var description: String {
        var lines = ["error: \(message)"]
        if let suggestion { lines.append("help: \(suggestion)") }
        lines.append("usage: \(usage)")
        lines.append("see '\(helpCommand)'")
        return lines.joined(separator: "\n")
    }
}
