import Spec

/// `orgctl addresses DIR`: the address of every resource a configuration declares.
enum AddressesCommand {
    static let spec = CommandSpec(
        name: "addresses",
        abstract: "List the address of every resource a configuration folder declares.",
        discussion: """
            One address per line, sorted, as plan and apply name them (tenant/acme/member/alice@acme.com): \
            the values --target and --exclude match, and what shell completion offers for them. Reads no \
            secrets and no database.
            Exit status: 0 success, 1 invalid configuration (the errors go to stderr), 64 usage error.
            """,
        arguments: [ArgumentSpec("dir", help: "The configuration folder.")])

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let directory = command.argument("dir") ?? "."
        let loaded = try ValidateCommand.load(directory, context)
        context.lifetime.keep(loaded)
        guard let configuration = loaded.configuration else {
            let renderer = DiagnosticRenderer(style: context.console.style(forStdout: false))
            context.console.err(renderer.text(loaded.diagnostics.sorted))
            throw CommandFailure(message: "the configuration is invalid: \(loaded.diagnostics.errorCount) error\(loaded.diagnostics.errorCount == 1 ? "" : "s")",
                                 help: "fix the errors above ('orgctl validate \(directory)' shows them all)")
        }
        // Secrets are not read: only the addresses are wanted.
        let desired = configuration.desiredState { _ in "" }
        context.lifetime.keep(desired)
        var text = ""
        for address in desired.resources.map(\.address).sorted() {
            text += TerminalText.escape(address)  // one line each, whatever a key holds
            text += "\n"
        }
        context.console.out(text)
        return ExitCode.success
    }
}
