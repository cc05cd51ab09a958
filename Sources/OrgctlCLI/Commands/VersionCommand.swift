internal import CBuildInfo
import Crypto
import Foundation
import Spec
import StateStore

/// `orgctl version` (and `orgctl --version`): what orgctl is and what it runs with.
enum VersionCommand {
    static let spec = CommandSpec(
        name: "version",
        abstract: "Print orgctl's version, the commit it was built from, and the libyaml, SQLite and OpenSSL it runs with.",
        discussion: """
            The library versions are those of the libraries loaded at run time, which can differ from the \
            headers orgctl was built with. The commit is set when building (swift build \
            -Xcc -DORGCTL_BUILD_COMMIT='"<commit>"', as release builds do), otherwise 'unknown'. \
            'orgctl --version' prints the same text.
            Exit status: 0 success, 64 usage error.
            """,
        options: [
            .option("format", valueName: "format", help: "Output format.", default: "text", allowedValues: ["text", "json"]),
        ])

    /// The commit given when building, or nil.
    static var commit: String? {
        let text = String(cString: cbuildinfo_commit())
        return text.isEmpty ? nil : text
    }

    static func text() -> String {
        """
        orgctl \(Orgctl.version) (commit \(TerminalText.escape(commit ?? "unknown")))
        libyaml \(TerminalText.escape(YAMLLibrary.version))
        SQLite \(TerminalText.escape(SQLiteLibrary.version))
        \(TerminalText.escape(OpenSSLLibrary.version))

        """
    }

    static func run(_ command: ParsedCommand, _ context: CommandContext) throws -> Int32 {
        if command.value("format") == "json" {
            let document: [String: Any] = [
                "formatVersion": 1, "version": Orgctl.version, "commit": commit ?? NSNull(),
                "libraries": ["libyaml": YAMLLibrary.version, "sqlite": SQLiteLibrary.version, "openssl": OpenSSLLibrary.version],
            ]
            context.console.print(JSONOutput.string(document))
        } else {
            context.console.out(text())
        }
        return ExitCode.success
    }
}
