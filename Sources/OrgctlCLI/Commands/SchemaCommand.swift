import Reconciler
import Spec

/// `orgctl schema`: the JSON Schema of Platform and Tenant documents, for editors.
enum SchemaCommand {
    static let spec = CommandSpec(
        name: "schema",
        abstract: "Print the JSON Schema (draft 2020-12) of Platform and Tenant documents, or of the JSON plan (--plan).",
        discussion: """
            Point a YAML language server at it for completion and inline errors while typing: save it with \
            'orgctl schema > orgctl.schema.json' and start each YAML file with the modeline below, or map it \
            in your editor's settings (docs/spec.md, "Editor support"). The schema checks structure (keys, \
            types, required keys, allowed values); 'orgctl validate' checks everything else.
              # yaml-language-server: $schema=./orgctl.schema.json
            With --plan, prints the JSON Schema of 'plan --format json' instead (formatVersion \(Plan.formatVersion)), for \
            external policy engines such as OPA/conftest (docs/cli.md, "Plan JSON").
            Exit status: 0 success, 64 usage error.
            """,
        options: [.flag("plan", help: "Print the JSON Schema of the plan document ('plan --format json') instead.")])

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        if command.flag("plan") {
            context.console.out(PlanSchema.text)
            return ExitCode.success
        }
        context.console.out(JSONSchema.text())
        return ExitCode.success
    }
}

/// `orgctl explain PATH`: one key of the format, like `kubectl explain`.
enum ExplainCommand {
    static let spec = CommandSpec(
        name: "explain",
        abstract: "Describe a key of the configuration format: type, rules, default, example.",
        discussion: """
            PATH starts with a document kind (platform or tenant) and names keys separated by dots; \
            entries of maps are looked into directly, so tenant.members.role is the role of each member. \
            Without PATH, lists the document kinds.
              orgctl explain tenant.sso.providers
              orgctl explain platform.plans.quotas.storage
              orgctl explain tenant --recursive
            Exit status: 0 success, 64 usage error or unknown path.
            """,
        arguments: [ArgumentSpec("path", help: "kind.key.key…, e.g. tenant.sso.providers.", optional: true)],
        options: [.flag("recursive", help: "List every key below PATH, nested, with its type.")])

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        guard let path = command.argument("path") else {
            var text = "KINDS:\n"
            for kind in SpecFormat.kinds {
                text += "    \(kind.name.lowercased())\n"
                text += FormatDocumentation.wrap(kind.summary, indent: 6, width: 80).joined(separator: "\n") + "\n"
            }
            text += "\nRun 'orgctl explain tenant' or 'orgctl explain tenant.sso.providers' for the keys.\n"
            context.console.out(text)
            return ExitCode.success
        }
        switch FormatDocumentation.resolve(path) {
        case .success(let resolved):
            context.console.out(FormatDocumentation.explain(resolved, recursive: command.flag("recursive")))
            return ExitCode.success
        case .failure(let error):
            throw CommandFailure(message: error.message, help: error.help, exitCode: ExitCode.usage)
        }
    }
}
