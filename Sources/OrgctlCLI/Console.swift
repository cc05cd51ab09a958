import Foundation
import Spec

/// Where a command writes, and how: the one place that knows about terminals and colour.
///
/// Passed down to every command instead of global state, so tests capture output. Everything
/// written goes through ``TerminalText/sanitize(_:keepingStyle:workflowCommands:)``: no control
/// character, escape sequence, bidi override or CI workflow command from a value reaches the
/// terminal or the log raw, whichever call site forgot to escape it.
public final class Console: @unchecked Sendable {
    // @unchecked: the writers are only called from the command's own thread; the class is
    // Sendable so a command may hand it to a progress reporter it owns.
    private let writeOut: (String) -> Void
    private let writeErr: (String) -> Void
    public let stdoutIsTerminal: Bool
    public let stderrIsTerminal: Bool
    public let stdinIsTerminal: Bool
    /// Shows a prompt (the closure it is given) and reads the answer: a line, or nil at the end of
    /// input or on Ctrl-C.
    let readLine: (_ prompt: () -> Void) -> String?
    /// The CI variable found set (`CI`, `GITHUB_ACTIONS`, …), if any: standard output is then a log,
    /// even on a pseudo-terminal.
    public let continuousIntegration: String?
    var colorDisabled: Bool
    var quiet = false
    /// Text another thread is still writing to standard output (``writeInBackground(_:)``).
    private var background: BackgroundOutput?

    public init(
        out: @escaping (String) -> Void, err: @escaping (String) -> Void, stdoutIsTerminal: Bool, stderrIsTerminal: Bool,
        stdinIsTerminal: Bool = false, readLine: @escaping (_ prompt: () -> Void) -> String? = { prompt in prompt(); return nil }, colorDisabled: Bool, continuousIntegration: String? = nil
    ) {
        self.continuousIntegration = continuousIntegration
        self.writeOut = out
        self.writeErr = err
        self.stdoutIsTerminal = stdoutIsTerminal
        self.stderrIsTerminal = stderrIsTerminal
        self.stdinIsTerminal = stdinIsTerminal
        self.readLine = readLine
        self.colorDisabled = colorDisabled
    }

    /// The process's own standard streams.
    public static func standard(environment: [String: String]) -> Console {
        Console(
            // The throwing write: FileHandle.write(_:) traps when the stream cannot take the bytes (a full
            // disk or file-size limit behind a redirection, a closed pipe). Lost output must not kill an apply.
            out: { text in try? FileHandle.standardOutput.write(contentsOf: Data(text.utf8)) },
            err: { text in try? FileHandle.standardError.write(contentsOf: Data(text.utf8)) },
            stdoutIsTerminal: isatty(1) == 1, stderrIsTerminal: isatty(2) == 1, stdinIsTerminal: isatty(0) == 1,
            readLine: readLineInterruptible,
            colorDisabled: environment["NO_COLOR"].map { !$0.isEmpty } ?? false || environment["TERM"] == "dumb",
            continuousIntegration: continuousIntegration(environment))
    }

    /// A line from standard input, or nil at its end or when Ctrl-C is pressed: while it waits, SIGINT
    /// runs a handler that does nothing instead of killing the process, so the caller can end the line and
    /// say what happened. The default is restored after.
    /// (Not `Swift.readLine`: it retries getline on EINTR, and glibc's sticky error flag makes that spin.)
    /// The prompt is shown once the handler is in place, so a Ctrl-C typed as soon as it appears is caught too.
    /// The handler is installed with SA_RESETHAND, so the kernel marks that it ran by putting the default
    /// back: a Ctrl-C that lands between the prompt and the read (interrupting no call), or on another
    /// thread, is seen at the next check, at most a tenth of a second later; nothing global is needed.
    static func readLineInterruptible(prompt: () -> Void) -> String? {
        var action = sigaction()
        #if os(Linux)
        action.__sigaction_handler.sa_handler = { _ in }
        #else
        action.__sigaction_u.__sa_handler = { _ in }
        #endif
        sigemptyset(&action.sa_mask)
        action.sa_flags = Int32(truncatingIfNeeded: SA_RESETHAND)  // 0x80000000 on Linux
        var previous = sigaction()
        sigaction(SIGINT, &action, &previous)
        defer { sigaction(SIGINT, &previous, nil) }
        func interrupted() -> Bool {
            var current = sigaction()
            sigaction(SIGINT, nil, &current)
            #if os(Linux)
            return current.__sigaction_handler.sa_handler == nil  // SIG_DFL: the handler ran
            #else
            return current.__sigaction_u.__sa_handler == nil
            #endif
        }
        prompt()
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while line.count < 1 << 16 {
            if interrupted() { return nil }
            var input = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            let ready = poll(&input, 1, 100)
            if ready < 0, errno == EINTR { continue }
            if ready == 0 { continue }
            let count = ready < 0 ? -1 : read(0, &byte, 1)
            if count < 0 {
                if errno == EINTR { continue }
                return nil  // unreadable
            }
            if count == 0 {
                if line.isEmpty { return nil }  // end of input
                break
            }
            if byte == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        return String(decoding: line, as: UTF8.self)
    }

    /// Variables CI systems set in every job (non-empty means set): the generic `CI`, then GitHub
    /// Actions, GitLab, Buildkite, Jenkins, Azure Pipelines, CircleCI, TeamCity, Travis, AppVeyor,
    /// Bitbucket, Drone/Woodpecker, AWS CodeBuild, Bamboo, Semaphore, Cirrus, Bitrise, GoCD,
    /// Codefresh, Harness.
    static let ciVariables = [
        "CI", "CONTINUOUS_INTEGRATION", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "JENKINS_HOME", "HUDSON_URL",
        "TF_BUILD", "CIRCLECI", "TEAMCITY_VERSION", "TRAVIS", "APPVEYOR", "BITBUCKET_BUILD_NUMBER", "DRONE", "CI_PIPELINE_ID",
        "CODEBUILD_BUILD_ID", "bamboo_buildKey", "SEMAPHORE", "CIRRUS_CI", "BITRISE_IO", "GO_PIPELINE_NAME", "CF_BUILD_ID",
        "HARNESS_BUILD_ID",
    ]

    /// The first of ``ciVariables`` set to a non-empty value.
    static func continuousIntegration(_ environment: [String: String]) -> String? {
        ciVariables.first { !(environment[$0] ?? "").isEmpty }
    }

    /// Writes text to standard output.
    /// Asks a question on standard output and reads the answer (nil at the end of input or on Ctrl-C).
    func ask(_ question: String) -> String? { readLine { out(question) } }

    func out(_ text: String) {
        waitForBackground()
        writeOut(TerminalText.sanitize(text, keepingStyle: style(forStdout: true).enabled))
    }

    /// Writes text to standard error.
    func err(_ text: String) {
        waitForBackground()
        writeErr(TerminalText.sanitize(text, keepingStyle: style(forStdout: false).enabled))
    }

    /// Renders text and writes it to standard output on another thread, while this one goes on; every
    /// later write, prompt or progress line of this console waits for it first (``waitForBackground()``),
    /// so what the streams get, and in which order, is what ``out(_:)`` in place of this call gives.
    func writeInBackground(_ render: @escaping @Sendable () -> String) {
        waitForBackground()
        let keepingStyle = style(forStdout: true).enabled
        let write = SendableWriter(writeOut)
        background = BackgroundOutput { write.call(TerminalText.sanitize(render(), keepingStyle: keepingStyle)) }
    }

    /// Waits until the text of ``writeInBackground(_:)`` is written (the command ends with this too).
    func waitForBackground() {
        guard let background else { return }
        background.wait()
        self.background = nil
    }

    /// The standard-output writer, handed to the background thread: the command's thread does not
    /// write until that thread has ended (``waitForBackground()``).
    private struct SendableWriter: @unchecked Sendable {
        let call: (String) -> Void
        init(_ call: @escaping (String) -> Void) { self.call = call }
    }

    /// Writes orgctl's own GitHub workflow commands (`validate --format github`) to standard output:
    /// sanitised like ``out(_:)``, except that its lines may start with `::`.
    func workflowCommands(_ text: String) {
        waitForBackground()
        writeOut(TerminalText.sanitize(text, keepingStyle: false, workflowCommands: true))
    }

    /// A progress line for a long phase on standard error, or nil when standard error is not a
    /// terminal or `--quiet` was given (see ``Progress``).
    func progress(_ phase: String, unit: String = "", total: Int? = nil) -> Progress? {
        guard stderrIsTerminal, !quiet else { return nil }
        waitForBackground()
        return Progress(phase, unit: unit, total: total, write: writeErr)
    }

    /// Writes a line (or several) to standard output.
    func print(_ text: String) { out(text.hasSuffix("\n") ? text : text + "\n") }

    /// Writes a line to standard error.
    func printError(_ text: String) { err(text.hasSuffix("\n") ? text : text + "\n") }

    /// Informational chatter on standard error, silenced by --quiet.
    func info(_ text: String) { if !quiet { printError(text) } }

    func style(forStdout: Bool) -> Style {
        Style(enabled: !colorDisabled && (forStdout ? stdoutIsTerminal : stderrIsTerminal))
    }
}

/// ANSI styling that is a no-op when colour is off.
struct Style {
    var enabled: Bool

    /// The SGR codes used below: the only escape sequences ``Console`` lets through.
    static let codes: Set<String> = ["0", "1", "1;31", "1;33", "32", "36", "2"]

    private func wrap(_ code: String, _ text: String) -> String { enabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
    func bold(_ t: String) -> String { wrap("1", t) }
    func red(_ t: String) -> String { wrap("1;31", t) }
    func yellow(_ t: String) -> String { wrap("1;33", t) }
    func green(_ t: String) -> String { wrap("32", t) }
    func cyan(_ t: String) -> String { wrap("36", t) }
    func dim(_ t: String) -> String { wrap("2", t) }
}

/// Documented exit statuses (README "Exit codes").
public enum ExitCode {
    public static let success: Int32 = 0
    /// Invalid configuration, or a runtime error (database, files, secrets).
    public static let failure: Int32 = 1
    /// `plan --detailed-exitcode`: the plan has changes.
    public static let changesPresent: Int32 = 2
    /// `drift`: rows were changed outside orgctl since its last apply.
    public static let drift: Int32 = 3
    /// EX_USAGE: the command line itself is wrong.
    public static let usage: Int32 = 64
}

/// A failure a command reports to the user: what happened and what to do next.
///
/// `message` and `help` are printed as one line each, escaped as values (they quote paths, names
/// and database rows): a newline in them shows as `\n`. A list goes in `details`, one line each.
struct CommandFailure: Error {
    var message: String
    var help: String?
    var exitCode: Int32 = ExitCode.failure
    var details: [String] = []
    /// The configuration's diagnostics when the failure is an invalid configuration (already printed
    /// as text on standard error; machine formats also print them on standard output).
    var diagnostics: [Diagnostic] = []

    init(message: String, help: String?, exitCode: Int32 = ExitCode.failure, details: [String] = [], diagnostics: [Diagnostic] = []) {
        self.message = message
        self.help = help
        self.exitCode = exitCode
        self.details = details
        self.diagnostics = diagnostics
    }
}
