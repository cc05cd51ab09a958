import Foundation
import Testing

/// Golden plans: each folder under `Cases/` is one case.
///
/// - `prior/` (optional): a configuration applied first, building the prior state; absent = empty database.
/// - `prior.env`, `config.env` (optional): `NAME=value` lines added to the environment for the prior apply
///   and for planning `config/` (secret rotation).
/// - `prior.sql` (optional): SQL run after the prior apply (sqlite3 or psql): changes made outside orgctl, in SQL both
///   dialects read alike.
/// - `config/`: the configuration planned; `args` (optional): extra plan arguments, one per line.
/// - `plan.txt`, `plan.json`, `plan.md`: the expected `orgctl plan --no-color` output in each format.
///
/// Every case runs on both backends against the same expected files: SQLite and PostgreSQL must plan alike.
///
/// `ORGCTL_RECORD_GOLDEN=1 swift test --filter EndToEndTests` rewrites the expected files in the source tree (from the
/// SQLite run; the PostgreSQL run is still compared with them) and fails, so that every re-recording is reviewed
/// before it is committed.
@Suite("Golden plans")
struct GoldenPlanTests {
    /// Secret values used by the cases (overridden per case by `prior.env` / `config.env`).
    static let secrets: [String: String] = [
        "ACME_WEBHOOK_SECRET": "golden-acme-webhook-secret-4f9d2c",
        "ACME_OIDC_CLIENT_SECRET": "golden-acme-oidc-secret-8b1e7a",
        "GLOBEX_WEBHOOK_SECRET": "golden-globex-webhook-secret-2c6f0d",
    ]

    static let caseNames: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Paths.cases.path)) ?? []
        return names.filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: Paths.cases.appendingPathComponent(name).path, isDirectory: &isDirectory)
                && isDirectory.boolValue
        }.sorted()
    }()

    static let recording = ProcessInfo.processInfo.environment["ORGCTL_RECORD_GOLDEN"] == "1"

    static let formats: [(file: String, format: String)] = [("plan.txt", "text"), ("plan.json", "json"), ("plan.md", "markdown")]

    @Test("the golden cases are all there")
    func casesArePresent() {
        for required in [
            "create-every-kind", "update-every-kind", "delete", "drift", "empty-sections-delete-all", "no-changes",
            "secret-rotation", "target-exclude", "unmanaged-sections-left-alone",
        ] {
            #expect(Self.caseNames.contains(required), "missing golden case \(required) in \(Paths.cases.path)")
        }
    }

    @Test("plan output matches the recorded golden files", arguments: Backend.all, caseNames)
    func plan(_ backend: Backend, _ name: String) throws {
        let folder = Paths.cases.appendingPathComponent(name)
        let workspace = try Workspace(secrets: Self.secrets, name: "golden-\(name)", backend: backend)
        let database = workspace.state
        let manager = FileManager.default

        let prior = folder.appendingPathComponent("prior")
        if manager.fileExists(atPath: prior.path) {
            let applied = try workspace.run(["apply", prior.path, "--state", database, "--auto-approve", "--source", "test", "--no-color",
                                             "--secrets-out", try workspace.newKeysFile()],
                                            environment: try Self.environmentFile(folder, "prior.env"))
            try #require(applied.status == 0, "the prior configuration did not apply: \(applied)")
        }
        let sqlFile = folder.appendingPathComponent("prior.sql")
        if manager.fileExists(atPath: sqlFile.path) {
            try workspace.sql(database, try String(contentsOf: sqlFile, encoding: .utf8))
        }

        // Planned as a relative path, as users do: policy checks show file:line:column under it.
        _ = try workspace.copy(folder.appendingPathComponent("config"), as: "config")
        let environment = try Self.environmentFile(folder, "config.env")
        var extra: [String] = []
        let argsFile = folder.appendingPathComponent("args")
        if manager.fileExists(atPath: argsFile.path) {
            extra = try String(contentsOf: argsFile, encoding: .utf8).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        }

        var outputs: [String: String] = [:]
        for (file, format) in Self.formats {
            let run = try workspace.run(["plan", "config", "--state", database, "--no-color", "--format", format, "--source", "test"] + extra,
                                        environment: environment)
            try #require(run.status == 0, "plan --format \(format) failed: \(run)")
            outputs[file] = format == "json" ? Self.normalizeJSON(run.stdout) : run.stdout
        }

        // The three formats describe the same plan.
        try checkConsistency(text: outputs["plan.txt"] ?? "", json: outputs["plan.json"] ?? "", markdown: outputs["plan.md"] ?? "")

        for (file, _) in Self.formats {
            let actual = outputs[file] ?? ""
            let expectedURL = folder.appendingPathComponent(file)
            if Self.recording && backend == .sqlite {
                try actual.write(to: expectedURL, atomically: true, encoding: .utf8)
                Issue.record("re-recorded \(name)/\(file): review the change, then run again without ORGCTL_RECORD_GOLDEN")
                continue
            }
            guard let expected = try? String(contentsOf: expectedURL, encoding: .utf8) else {
                Issue.record("\(name)/\(file) is missing: record it with ORGCTL_RECORD_GOLDEN=1 swift test --filter EndToEndTests")
                continue
            }
            #expect(actual == expected, "\(name)/\(file) differs from the recorded plan:\n\(Self.firstDifference(expected, actual))")
        }

        // Plan never shows a secret's value.
        workspace.assertNoSecretLeaks(Array(Self.secrets.values) + Array(environment.values) + Array(try Self.environmentFile(folder, "prior.env").values))
    }

    /// The same changes, in the same order, with the same counts, in text, JSON and Markdown.
    func checkConsistency(text: String, json: String, markdown: String) throws {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "plan JSON is not an object")
        let changes = object["changes"] as? [[String: Any]] ?? []
        let summary = object["summary"] as? [String: Int] ?? [:]
        let symbols = ["create": "+", "update": "~", "delete": "-"]
        // The recorded policies' change (docs/cli.md, "Saved plans and policies") comes after the resources.
        let policyChange = object["policyChange"] as? [String: Any]
        let jsonHeads = changes.map { "\(symbols[$0["action"] as? String ?? ""] ?? "?") \($0["address"] as? String ?? "")" }
            + (policyChange.map { ["\(symbols[$0["action"] as? String ?? ""] ?? "?") policies"] } ?? [])
        let textHeads = text.lines.filter { $0.hasPrefix("  + ") || $0.hasPrefix("  ~ ") || $0.hasPrefix("  - ") }.map { line in
            // "  ~ tenant/acme (changed outside orgctl)  # reason" -> "~ tenant/acme"
            String(line.dropFirst(2).split(separator: " ").prefix(2).joined(separator: " "))
        }
        #expect(textHeads == jsonHeads, "text and JSON list different changes")
        let markdownHeads = markdown.lines.filter { $0.hasPrefix("+ ") || $0.hasPrefix("~ ") || $0.hasPrefix("- ") }.map { line in
            String(line.split(separator: " ").prefix(2).joined(separator: " "))
        }
        #expect(Set(markdownHeads) == Set(jsonHeads) && markdownHeads.count == jsonHeads.count, "Markdown and JSON list different changes")
        if changes.isEmpty && policyChange == nil {
            #expect(text == "No changes. The state database matches the configuration.\n")
        } else {
            let add = summary["add"] ?? -1, change = summary["change"] ?? -1, destroy = summary["destroy"] ?? -1
            #expect(add == changes.count { $0["action"] as? String == "create" })
            #expect(change == changes.count { $0["action"] as? String == "update" })
            #expect(destroy == changes.count { $0["action"] as? String == "delete" })
            let policies = policyChange.map { ", policies to \(["create": "record", "update": "update", "delete": "remove"][$0["action"] as? String ?? ""] ?? "?")" } ?? ""
            let line = "Plan: \(add) to add, \(change) to change, \(destroy) to destroy\(policies)."
            #expect(text.contains(line), "the text summary is not '\(line)'")
            #expect(markdown.contains("**\(line)**"), "the Markdown summary is not '\(line)'")
        }
    }

    static func environmentFile(_ folder: URL, _ name: String) throws -> [String: String] {
        let url = folder.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else { return [:] }
        var result: [String: String] = [:]
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") where !line.hasPrefix("#") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            result[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return result
    }

    /// The database id, plan id and audit head hash are random per database: replace them with placeholders.
    static func normalizeJSON(_ text: String) -> String {
        var result = text
        for (key, placeholder) in [("databaseId", "<database-id>"), ("planId", "<plan-id>"), ("hash", "<audit-head-hash>")] {
            if let regex = try? Regex("\"\(key)\" ?: ?\"[0-9a-f]+\"") {
                result = result.replacing(regex, with: "\"\(key)\" : \"\(placeholder)\"")
            }
        }
        return result
    }

    static func firstDifference(_ expected: String, _ actual: String) -> String {
        let e = expected.lines, a = actual.lines
        for i in 0..<max(e.count, a.count) {
            let el = i < e.count ? e[i] : "(end of file)", al = i < a.count ? a[i] : "(end of file)"
            if el != al { return "line \(i + 1):\n  expected: \(el)\n  actual:   \(al)" }
        }
        return "(no difference)"
    }
}
