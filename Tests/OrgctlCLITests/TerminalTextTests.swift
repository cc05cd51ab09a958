import Foundation
import Testing

@testable import OrgctlCLI
import Spec

@Suite("Terminal text escaping")
struct TerminalTextTests {
    @Test("a value's control, format and separator characters are escaped visibly, as JSON writes them", arguments: [
        ("a\nb", #"a\nb"#), ("a\rb", #"a\rb"#), ("a\tb", #"a\tb"#), ("\u{1B}[31m", #"\u001b[31m"#), ("\u{7F}", #"\u007f"#),
        ("\u{85}", #"\u0085"#), ("\u{9B}", #"\u009b"#), ("\u{202E}", #"\u202e"#), ("\u{2066}x\u{2069}", #"\u2066x\u2069"#),
        ("\u{200E}\u{200F}\u{061C}", #"\u200e\u200f\u061c"#), ("\u{2028}\u{2029}", #"\u2028\u2029"#), ("z\u{200B}w", #"z\u200bw"#),
        ("\u{FEFF}", #"\ufeff"#), ("\u{E0001}", #"\udb40\udc01"#),
        ("plain ünïcödé 日本 🙂", "plain ünïcödé 日本 🙂"),
    ])
    func escapesValues(_ input: String, _ expected: String) {
        #expect(TerminalText.escape(input) == expected)
    }

    @Test("a quoted value escapes its quotes and backslashes too")
    func quoted() {
        #expect(TerminalText.quoted("a\"b\\c\n") == #""a\"b\\c\n""#)
    }

    @Test("no output line can start a GitHub workflow command, whatever blank precedes it", arguments: [
        "::error::x", "  ::add-mask::x", "\t::stop-commands::t", "\u{A0}::error::x", "\u{3000}::warning::x", "ok\n::error::x",
        "\u{2003}\u{2003}::notice::x",
    ])
    func lineStart(_ text: String) {
        let sanitized = TerminalText.sanitize(text, keepingStyle: false)
        for line in sanitized.split(separator: "\n") {
            #expect(!line.unicodeScalars.drop { $0 == " " || $0 == "\t" || $0.properties.generalCategory == .spaceSeparator }
                .starts(with: "::".unicodeScalars), "\(sanitized.debugDescription)")
        }
        #expect(sanitized.contains(#"\u003a:"#), "\(sanitized.debugDescription)")
    }

    @Test("legacy and other CI command prefixes are broken anywhere in a line", arguments: ["x ##[add-mask]y", "x ##vso[task.setvariable]y",
                                                                                          "x ##teamcity[message text='y']", "##[error]y"])
    func commandPrefixes(_ text: String) {
        let sanitized = TerminalText.sanitize(text, keepingStyle: false)
        #expect(!sanitized.contains("##"), "\(sanitized)")
        #expect(sanitized.contains(#"#\u0023"#))
    }

    @Test("layout is kept: newlines, tabs, Markdown headings, a '::' inside a line, and orgctl's colours on a terminal")
    func layoutKept() {
        let text = "### orgctl plan\n\ttab\nurl: https://x::y\n#### section\n"
        #expect(TerminalText.sanitize(text, keepingStyle: false) == text)
        let style = Style(enabled: true)
        let styled = style.red("error") + ": " + style.bold("x") + style.dim("[id]") + style.green("+") + style.cyan("note") + style.yellow("~")
        #expect(TerminalText.sanitize(styled, keepingStyle: true) == styled)
        // Only orgctl's own codes, and only when colour is on.
        #expect(TerminalText.sanitize(styled, keepingStyle: false) == styled.replacingOccurrences(of: "\u{1B}", with: #"\u001b"#))
        #expect(TerminalText.sanitize("\u{1B}[8mhidden\u{1B}[0m", keepingStyle: true) == #"\u001b[8mhidden"# + "\u{1B}[0m")
        #expect(TerminalText.sanitize("\u{1B}]0;title\u{07}", keepingStyle: true) == #"\u001b]0;title\u0007"#)
    }

    @Test("a JSON document passes the console still valid and with the same values")
    func jsonSurvives() throws {
        let hostile = "a\n::error::b\r\u{1B}[2J\u{202E}\u{2028}\u{85}\u{7F} ##[add-mask]c ##vso[x]d \u{E0001}"
        let text = JSONOutput.string(["key": hostile, "list": [hostile], "::": "##["])
        let sanitized = TerminalText.sanitize(text, keepingStyle: false)
        let decoded = try JSONSerialization.jsonObject(with: Data(sanitized.utf8)) as? [String: Any]
        #expect(decoded?["key"] as? String == hostile)
        #expect(decoded?["list"] as? [String] == [hostile])
        #expect(decoded?["::"] as? String == "##[")
        #expect(!sanitized.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || $0.value >= 0x7F && $0.value <= 0x9F || $0 == "\u{202E}" })
    }

    @Test("everything the Console writes is sanitised; workflow commands only through their own method")
    func console() {
        var out = "", err = ""
        let console = Console(out: { out += $0 }, err: { err += $0 }, stdoutIsTerminal: false, stderrIsTerminal: false, colorDisabled: false)
        console.print("::error::x\r")
        console.printError("\u{1B}[31m::add-mask::y")
        console.info("a\u{2028}::b")
        console.workflowCommands("::error file=a,line=1,col=1,title=t::m \u{1B}\n")
        #expect(out == #"\u003a:error::x\r"# + "\n" + #"::error file=a,line=1,col=1,title=t::m \u001b"# + "\n")
        #expect(err == #"\u001b[31m::add-mask::y"# + "\n" + #"a\u2028::b"# + "\n")
    }

    @Test("GitHub annotations keep notes and help, escape values, and stay one line each")
    func github() {
        let location = SourceLocation(file: "t/a,b:c.yaml", line: 3, column: 5)
        let diagnostic = Diagnostic(.error, "spec.duplicate", "duplicate member 'x\n::error::y'", at: location, help: "remove one\r",
                                    notes: [Diagnostic.Note("first declared here", at: SourceLocation(file: "t/b.yaml", line: 1, column: 2))])
        let text = DiagnosticRenderer.github([diagnostic])
        #expect(text == "::error file=t/a%2Cb%3Ac.yaml,line=3,col=5,title=spec.duplicate::duplicate member 'x\\n::error::y'"
            + "%0Anote: first declared here (t/b.yaml:1:2)%0Ahelp: remove one\\r\n")
    }

    @Test("text diagnostics escape the file name, message, notes and help")
    func textDiagnostics() {
        let location = SourceLocation(file: "::error::a\n.yaml", line: 1, column: 1)
        let diagnostic = Diagnostic(.error, "spec.x", "bad 'v\u{202E}'", at: location, help: "h\n::warning::",
                                    notes: [Diagnostic.Note("n\r", at: nil)])
        let text = DiagnosticRenderer(style: Style(enabled: false)).text([diagnostic])
        #expect(text == #"::error::a\n.yaml:1:1: error: bad 'v\u202e' [spec.x]"# + "\n" + #"note: n\r"# + "\n" + #"help: h\n::warning::"# + "\n")
    }

    @Test("a whole text is sanitised as its lines are: the byte-copy of plain lines changes nothing", arguments: [false, true])
    func lineByLine(_ workflowCommands: Bool) {
        // Pieces that trigger each rule, and plain ones, joined at random (a fixed seed) into many texts.
        let pieces = ["plan", " ", "\t", "\n", ":", "::", "  ::error::x", "#", "##", "##[", "##vso[", "# a", "\u{1B}[1m", "\u{1B}[0m", "\u{1B}]0;t\u{07}",
                      "\u{A0}", "\u{3000}::x", "é", "\u{202E}", "\u{85}", "\r", "\u{7F}", "tenant/acme/member/a@b.c", "= \"x\"", "\u{1F642}"]
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((seed >> 33) % UInt64(bound))
        }
        for _ in 0..<2000 {
            let text = (0..<next(24)).map { _ in pieces[next(pieces.count)] }.joined()
            for keepingStyle in [false, true] {
                #expect(TerminalText.sanitize(text, keepingStyle: keepingStyle, workflowCommands: workflowCommands)
                    == TerminalText.sanitizeByScalars(text, keepingStyle: keepingStyle, workflowCommands: workflowCommands), "\(text.debugDescription)")
            }
        }
    }
}

@Suite("Progress")
struct ProgressTests {
    /// Collects what a progress line writes, and signals each write.
    final class Sink: @unchecked Sendable {
        let lock = NSLock()
        var writes: [String] = []
        let wrote = DispatchSemaphore(value: 0)
        func write(_ text: String) {
            lock.withLock { writes.append(text) }
            wrote.signal()
        }
    }

    @Test("counts are grouped, with the total when known")
    func line() {
        let progress = Progress("writing", unit: "changes", total: 144_000, write: { _ in })
        progress.advance(by: 52_000)
        #expect(progress.line().wholeMatch(of: /writing 52,000 of 144,000 changes \(\d+ s\)/) != nil, "\(progress.line())")
        progress.finish()
        let untotalled = Progress("reading the audit log", unit: "entries", total: nil, write: { _ in })
        #expect(untotalled.line().wholeMatch(of: /reading the audit log \(\d+ s\)/) != nil)
        untotalled.advance(by: 1_234_567)
        #expect(untotalled.line().wholeMatch(of: /reading the audit log 1,234,567 entries \(\d+ s\)/) != nil)
        untotalled.finish()
    }

    @Test("the line is redrawn in place and erased when the phase ends")
    func redrawAndErase() {
        let sink = Sink()
        let progress = Progress("writing", unit: "changes", total: 10, write: sink.write)
        progress.advance(by: 3)
        #expect(sink.wrote.wait(timeout: .now() + 30) == .success)
        progress.finish()
        progress.finish()  // a second finish is harmless
        let writes = sink.lock.withLock { sink.writes }
        #expect(writes.first?.wholeMatch(of: /\rwriting 3 of 10 changes \(\d+ s\)\x{1B}\[K/) != nil, "\(writes)")
        #expect(writes.last == "\r\u{1B}[K", "\(writes)")
    }

    @Test("only on a terminal, never with --quiet")
    func onlyOnTerminal() {
        let pipe = Console(out: { _ in }, err: { _ in }, stdoutIsTerminal: true, stderrIsTerminal: false, colorDisabled: true)
        #expect(pipe.progress("x") == nil)
        let terminal = Console(out: { _ in }, err: { _ in }, stdoutIsTerminal: false, stderrIsTerminal: true, colorDisabled: true)
        let shown = terminal.progress("x")
        #expect(shown != nil)
        shown?.finish()
        terminal.quiet = true
        #expect(terminal.progress("x") == nil)
    }
}
