import Foundation
import Reconciler
import Spec

/// `orgctl validate DIR`: load, decode and check a configuration; print every problem.
enum ValidateCommand {
    static let spec = CommandSpec(
        name: "validate",
        abstract: "Check a configuration folder and report every problem.",
        discussion: """
            Reads every *.yaml and *.yml file under DIR (recursively, in sorted order), checks types, \
            references, quotas, features, certificates and URLs, and reports every problem with its \
            file:line:column and a fix. Secrets are not resolved: validate needs no secrets and no database. \
            The Platform's and tenants' policies that need no plan are checked too: a failing mandatory policy is an error, \
            an overridable or advisory one a warning.
            Exit status: 0 valid (warnings allowed), 1 invalid or unreadable, 64 usage error.
            """,
        arguments: [ArgumentSpec("dir", help: "The configuration folder (or a single YAML file).")],
        options: [
            .option("format", valueName: "format", help: "Output format.", default: "text",
                    allowedValues: ["text", "json", "github"])
        ] + inputOptions)

    /// The per-run budget on what a configuration may cost to read (commands that load one).
    static let inputOptions: [OptionSpec] = [
        .option("max-input-bytes", valueName: "size", help: "Refuse configurations whose YAML files hold more than this (e.g. 1GiB).",
                default: "\(ByteSize(bytes: Int64(LoaderLimits.defaultMaxTotalBytes)))", type: .byteSize),
        .option("max-input-nodes", valueName: "n", help: "Refuse configurations with more YAML nodes than this.",
                default: "\(LoaderLimits.defaultMaxTotalNodes)", type: .integer(min: 1)),
    ]

    /// The loader's limits with the budget options applied (the parser has checked their values).
    static func limits(_ command: ParsedCommand?) -> LoaderLimits {
        var limits = LoaderLimits()
        if let text = command?.value("max-input-bytes"), let bytes = ValueType.byteSize(text) { limits.maxTotalBytes = bytes }
        if let nodes = command?.integer("max-input-nodes") { limits.maxTotalNodes = nodes }
        return limits
    }

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        let path = command.argument("dir") ?? "."
        let format = command.value("format") ?? "text"
        let reading = context.console.progress("reading the configuration", unit: "files")
        var result = try load(path, context, command, progress: reading)
        reading?.finish()
        // The policies that need no plan: mandatory failures are errors, the others warnings.
        if let configuration = result.configuration {
            let report = Reconciler.policyChecks(configuration, today: ConfigurationLoader.calendarDate(context.now))
            for diagnostic in PolicyOptions.diagnostics(report) { result.diagnostics.report(diagnostic) }
        }
        let diagnostics = result.diagnostics.sorted
        let console = context.console
        let tenants = result.configuration?.tenants.count ?? 0
        let resources = result.configuration?.resourceCount ?? 0
        switch format {
        case "json":
            let document: [String: Any] = [
                "formatVersion": 1,
                "valid": !result.diagnostics.hasErrors,
                "summary": [
                    "files": result.files.count, "documents": result.documentCount, "tenants": tenants,
                    "resources": resources, "errors": result.diagnostics.errorCount,
                    "warnings": result.diagnostics.warningCount,
                ],
                "diagnostics": DiagnosticRenderer.jsonObjects(diagnostics),
            ]
            console.print(JSONOutput.string(document))
        case "github":
            console.workflowCommands(DiagnosticRenderer.github(diagnostics))
            console.print(summaryLine(result, tenants: tenants, resources: resources))
        default:
            let renderer = DiagnosticRenderer(style: console.style(forStdout: true))
            console.out(renderer.text(diagnostics))
            console.print(summaryLine(result, tenants: tenants, resources: resources))
        }
        return result.diagnostics.hasErrors ? ExitCode.failure : ExitCode.success
    }

    static func load(_ path: String, _ context: CommandContext, _ command: ParsedCommand? = nil, progress: Progress? = nil) throws
        -> LoadResult
    {
        let limits = limits(command)
        var loader = ConfigurationLoader(limits: limits, now: context.now)
        if let progress { loader.onFileLoaded = { progress.advance() } }
        do {
            return try loader.load(path: path)
        } catch {
            throw CommandFailure(message: error.message, help: error.help)
        }
    }

    static func summaryLine(_ result: LoadResult, tenants: Int, resources: Int) -> String {
        let d = result.diagnostics
        let warnings = d.warningCount == 0 ? "" : ", \(d.warningCount) warning\(d.warningCount == 1 ? "" : "s")"
        if d.hasErrors {
            // The files that hold errors, not the files read: "2 errors in 1 of 2 files".
            let files = result.files.count
            let withErrors = Set(d.items.filter { $0.severity == .error }.compactMap { $0.location?.file }).count
            let counted = "\(d.errorCount) error\(d.errorCount == 1 ? "" : "s")\(warnings)"
            guard withErrors > 0 else { return "invalid: \(counted) (\(files) file\(files == 1 ? "" : "s") read)" }
            return "invalid: \(counted) in \(withErrors) of \(files) file\(files == 1 ? "" : "s")"
        }
        return "valid: \(tenants) tenant\(tenants == 1 ? "" : "s"), \(resources) resources in \(result.files.count) file\(result.files.count == 1 ? "" : "s")\(warnings)"
    }
}

/// Stable, pretty JSON for machine-readable output (keys sorted, slashes unescaped, empty arrays
/// and objects as `[]` and `{}`).
enum JSONOutput {
    static func string(_ object: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return "{}" }
        // Foundation prints an empty array as "[\n\n  ]". Raw newlines occur only between tokens (a string's
        // newline is escaped), so this only touches empty containers.
        return String(decoding: data, as: UTF8.self).replacing(/([\[{])\n\s*[\]}]/) { $0.output.1 == "[" ? "[]" : "{}" }
    }
}
