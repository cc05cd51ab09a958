import Foundation
import Spec
import Testing

/// The moment every test treats as now, so date and certificate rules are stable:
/// 2026-11-22T12:00:00Z.
let fixedNow = Date(timeIntervalSince1970: 1_795_348_800)

/// Marks the position a diagnostic is expected at, inside YAML written in a test (as
/// swift-syntax's tests do). `Scratch` removes it before writing the file.
let marker = "1️⃣"

/// A small valid Platform document. Line numbers matter only to tests that place a marker in it.
let basePlatform = """
    apiVersion: orgctl.dev/v1
    kind: Platform
    plans:
      free:
        quotas: {seats: 3, teams: 2, apps: 3, storage: 1GiB, webhooks: 1, apiKeys: 1}
        rateLimit: 100/h
      business:
        quotas: {seats: 100, teams: 10, apps: 10, storage: 100GiB, webhooks: 10, apiKeys: 10}
        rateLimit: 1000/h
        features: [sso, custom-roles]
      enterprise:
        quotas: {seats: unlimited, teams: unlimited, apps: unlimited, storage: 1TiB, webhooks: 100, apiKeys: 100}
        features: [sso, custom-roles, ip-allowlist, audit-export]
    permissions:
      apps.create: {category: apps, description: Create apps}
      apps.read: {category: apps}
      users.read: {category: users}
      users.invite: {category: users}
      billing.manage: {category: billing}
      audit.read: {category: audit}
    roles:
      owner: {permissions: ["*"]}
      admin: {permissions: ["apps.*", "users.*", "billing.*", "audit.read"]}
      member: {permissions: [apps.read, apps.create]}
      viewer: {permissions: ["*.read"]}
      guest: {permissions: [apps.read], maxDuration: 30d}
    events: [organization.updated, member.added, member.removed, team.updated, webhook.test]

    """

/// A Tenant document: the header fields, then `rest` verbatim (top-level keys, unindented).
///
/// `members` is the body of the members map, one entry per line, written unindented; nil leaves
/// the section out.
func tenant(
    slug: String = "acme", name: String = "Acme", plan: String = "enterprise", status: String? = nil,
    domains: String? = "[acme.com]", members: String? = "alice@acme.com: owner", _ rest: String = ""
) -> String {
    var text = "apiVersion: orgctl.dev/v1\nkind: Tenant\nslug: \(slug)\nname: \(name)\nplan: \(plan)\n"
    if let status { text += "status: \(status)\n" }
    if let domains { text += "domains: \(domains)\n" }
    if let members {
        text += "members:\n"
        for line in members.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
            text += "  \(line)\n"
        }
    }
    if !rest.isEmpty { text += rest.hasSuffix("\n") ? rest : rest + "\n" }
    return text
}

/// A throw-away configuration folder under the system's temporary directory.
final class Scratch {
    let root: String
    /// Where the marker was in the text written, once removed: the expected diagnostic position.
    private(set) var markedLocation: Spec.SourceLocation?

    init() {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("spectests-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func path(_ relative: String) -> String { root + "/" + relative }

    /// Writes `text` (the marker removed) to `relative`; creates folders as needed.
    @discardableResult
    func write(_ relative: String, _ text: String) -> String {
        var text = text
        if let range = text.range(of: marker) {
            markedLocation = Self.location(of: range.lowerBound, in: text, file: path(relative))
            text.removeSubrange(range)
        }
        return writeBytes(relative, Array(text.utf8))
    }

    @discardableResult
    func writeBytes(_ relative: String, _ bytes: [UInt8]) -> String {
        let full = path(relative)
        let folder = (full as NSString).deletingLastPathComponent
        try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: full, contents: Data(bytes)))
        return full
    }

    func mkdir(_ relative: String) {
        try! FileManager.default.createDirectory(atPath: path(relative), withIntermediateDirectories: true)
    }

    func symlink(_ relative: String, to destination: String) {
        try! FileManager.default.createSymbolicLink(atPath: path(relative), withDestinationPath: destination)
    }

    /// Writes the base platform and `tenantText` as tenants/acme.yaml.
    static func with(platform: String = basePlatform, tenant tenantText: String? = tenant()) -> Scratch {
        let scratch = Scratch()
        scratch.write("platform.yaml", platform)
        if let tenantText { scratch.write("tenants/acme.yaml", tenantText) }
        return scratch
    }

    func load(now: Date = fixedNow) throws -> LoadResult {
        try ConfigurationLoader(now: now).load(path: root)
    }

    /// 1-based line and column (in Unicode scalars) of `index` in `text`.
    static func location(of index: String.Index, in text: String, file: String) -> Spec.SourceLocation {
        var line = 1
        var column = 1
        for scalar in text[..<index].unicodeScalars {
            if scalar == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return Spec.SourceLocation(file: file, line: line, column: column)
    }
}

extension LoadResult {
    var items: [Diagnostic] { diagnostics.items }
    var errors: [Diagnostic] { diagnostics.items.filter { $0.severity == .error } }
    func with(id: String) -> [Diagnostic] { diagnostics.items.filter { $0.id == id } }
}

/// One line per diagnostic, for readable expectation failures.
func dump(_ diagnostics: [Diagnostic]) -> String {
    diagnostics.isEmpty ? "(no diagnostics)" : diagnostics.map(render).joined(separator: "\n")
}

func render(_ d: Diagnostic) -> String {
    var text = "\(d.location?.description ?? "-"): \(d.severity): \(d.message) [\(d.id)]"
    if let help = d.help { text += "\n  help: \(help)" }
    for note in d.notes { text += "\n  note: \(note.location?.description ?? "-"): \(note.message)" }
    return text
}

/// Expects exactly one diagnostic with `id` at `location` (and, when given, the severity, help
/// and a message fragment); returns it.
@discardableResult
func expectDiagnostic(
    _ result: LoadResult, _ id: String, _ severity: Severity = .error, at location: Spec.SourceLocation?,
    help: String? = nil, message: String? = nil, sourceLocation: Testing.SourceLocation = #_sourceLocation
) -> Diagnostic? {
    let matching = result.items.filter { $0.id == id && $0.location == location }
    guard matching.count == 1, let found = matching.first else {
        Issue.record(
            "expected one \(id) at \(location?.description ?? "-"), found \(matching.count) in:\n\(dump(result.items))",
            sourceLocation: sourceLocation)
        return nil
    }
    #expect(found.severity == severity, "\(render(found))", sourceLocation: sourceLocation)
    if let help { #expect(found.help == help, "\(render(found))", sourceLocation: sourceLocation) }
    if let message {
        #expect(found.message.contains(message), "\(render(found))", sourceLocation: sourceLocation)
    }
    return found
}

/// Expects no error and no warning at all.
func expectClean(_ result: LoadResult, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    #expect(result.items.isEmpty, "\(dump(result.items))", sourceLocation: sourceLocation)
    #expect(result.configuration != nil, sourceLocation: sourceLocation)
}

/// The directory of this source file's test target, for fixtures that must be written (re-recording).
func sourceDirectory(_ file: String = #filePath) -> URL {
    URL(fileURLWithPath: file).deletingLastPathComponent()
}

/// The tests' own copy of examples/config/certs/acme-okta.pem (valid until 2046), so that editing the examples
/// never changes what the tests see.
func exampleCertificate() -> [UInt8] {
    let url = sourceDirectory().appendingPathComponent("Fixtures/certificates/acme-okta.pem")
    guard let data = FileManager.default.contents(atPath: url.path) else {
        Issue.record("cannot read \(url.path)")
        return []
    }
    return [UInt8](data)
}
