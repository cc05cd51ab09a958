import Foundation
import Testing

@testable import Spec

/// `orgctl schema` checked with Python's `jsonschema` (the reference implementation editors'
/// language servers agree with): it accepts every valid configuration the repository holds and
/// rejects the structural errors `orgctl validate` rejects.
///
/// Needs python3 with the jsonschema package (`pip install jsonschema`; .ci/run installs it).
@Suite("JSON Schema")
struct FormatSchemaTests {
    static let repository = sourceDirectory().appendingPathComponent("../..").standardizedFileURL

    /// Every document of every YAML file under the valid configurations of the repository.
    static func validConfigurationFiles() -> [String] {
        let roots = ["examples/config", "Tests/SpecTests/Fixtures/valid-unusual", "Tests/EndToEndTests/Cases"]
        var files: [String] = []
        for root in roots {
            let folder = repository.appendingPathComponent(root).path
            guard let walker = FileManager.default.enumerator(atPath: folder) else { continue }
            while let entry = walker.nextObject() as? String {
                if entry.hasSuffix(".yaml") || entry.hasSuffix(".yml") { files.append(folder + "/" + entry) }
            }
        }
        return files.sorted()
    }

    @Test("the schema accepts every valid configuration, the kinds' examples and every key's example")
    func acceptsValidConfigurations() throws {
        var cases: [SchemaCase] = []
        let files = Self.validConfigurationFiles()
        #expect(files.count >= 20, "found only \(files)")
        for file in files {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
            var diagnostics = Diagnostics()
            let documents = YAMLLoader().load(bytes, file: file, into: &diagnostics)
            #expect(!diagnostics.hasErrors, "\(file): \(dump(diagnostics.items))")
            for (index, document) in documents.enumerated() where !document.root.isNull {
                cases.append(SchemaCase(name: "\(file.replacingOccurrences(of: Self.repository.path + "/", with: ""))#\(index)",
                                        instance: YAMLJSON.json(document.root), valid: true))
            }
        }
        // Text that a YAML 1.2 reader takes for numbers and booleans is text to orgctl.
        let numeric = tenant(slug: "42", name: "2024", "teams:\n  a: {name: 1.5, description: true}\napiKeys:\n  k: {scopes: [apps.read], description: 7}")
        let numericScratch = Scratch.with(tenant: numeric)
        expectClean(try numericScratch.load())
        cases.append(SchemaCase(name: "numbers and booleans as text", instance: try YAMLJSON.parse(numeric), valid: true))
        for kind in SpecFormat.kinds {
            cases.append(SchemaCase(name: "example of \(kind.name)", instance: try YAMLJSON.parse(kind.example), valid: true))
            cases.append(SchemaCase(name: "sample of every \(kind.name) key", instance: try YAMLJSON.parse(Sample.document(kind, mode: .all)),
                                    valid: true))
        }
        for (kind, path, object) in FormatDescriptionTests.objectPaths {
            for field in object.fields {
                guard let example = field.example else { continue }
                let yaml = example.hasPrefix("\n") ? "value:\(example)\n" : "value: \(example)\n"
                guard case .object(let members) = try YAMLJSON.parse(yaml), let value = members.first?.1 else {
                    Issue.record("example of \(field.name) did not parse")
                    continue
                }
                cases.append(SchemaCase(name: "example of \(([kind.name.lowercased()] + path + [field.name]).joined(separator: "."))",
                                        instance: value, valid: true, schema: JSONSchema.schema(of: field.type)))
            }
        }
        try SchemaCase.check(cases)
    }

    /// Documents orgctl validate rejects for their structure, each next to the base Platform.
    static let rejected: [(name: String, tenant: String)] = [
        ("unknown top-level key", sampleTenant(rest: "maintainer: alice")),
        ("unknown key in a team", sampleTenant(rest: "teams:\n  a: {name: A, lead: alice}")),
        ("unknown key in a member", sampleTenant(members: "alice@acme.com: {role: owner, until: 2027-01-01}")),
        ("missing slug", "apiVersion: orgctl.dev/v1\nkind: Tenant\nname: Acme\nplan: free\n"),
        ("missing plan", "apiVersion: orgctl.dev/v1\nkind: Tenant\nslug: acme\nname: Acme\n"),
        ("wrong apiVersion", sampleTenant().replacingOccurrences(of: "orgctl.dev/v1", with: "orgctl.dev/v2")),
        ("unknown kind", sampleTenant().replacingOccurrences(of: "kind: Tenant", with: "kind: Organization")),
        ("a list where a map is expected", sampleTenant(members: nil, rest: "members:\n  - alice@acme.com")),
        ("a status that does not exist", sampleTenant(status: "paused")),
        ("a quoted number", sampleTenant(rest: "quotas: {seats: \"5\"}")),
        ("an unknown quota", sampleTenant(rest: "quotas: {users: 5}")),
        ("a size without unit", sampleTenant(rest: "quotas: {storage: 100}")),
        ("a YAML 1.1 boolean", sampleTenant(rest: "sso: {enforce: yes}")),
        ("a duration without unit", sampleTenant(rest: "security: {sessionTimeout: 3600}")),
        ("maxRetries out of range", sampleTenant(rest: "webhooks:\n  a: {url: https://example.com/h, events: [member.added], maxRetries: 11}")),
        ("a webhook without events", sampleTenant(rest: "webhooks:\n  a: {url: https://example.com/h}")),
        ("a webhook with no events listed", sampleTenant(rest: "webhooks:\n  a: {url: https://example.com/h, events: []}")),
        ("an http URL", sampleTenant(rest: "webhooks:\n  a: {url: http://example.com/h, events: [member.added]}")),
        ("an inline secret", sampleTenant(rest: "webhooks:\n  a: {url: https://example.com/h, events: [member.added], secret: hunter2}")),
        ("a secret reference with two keys", sampleTenant(rest: "webhooks:\n  a: {url: https://example.com/h, events: [member.added], secret: {env: A, file: b}}")),
        ("a secret reference with a bad variable name", sampleTenant(rest: "webhooks:\n  a: {url: https://example.com/h, events: [member.added], secret: {env: 1A}}")),
        ("a SAML provider with an OIDC key", sampleTenant(plan: "business", rest: """
            sso:
              providers:
                okta: {type: saml, entityId: x, ssoUrl: https://example.com/sso, certificate: {file: c.pem}, clientId: y}
            """)),
        ("an OIDC provider without clientSecret", sampleTenant(plan: "business", rest: """
            sso:
              providers:
                google: {type: oidc, issuer: https://accounts.google.com, clientId: y}
            """)),
        ("a provider type that does not exist", sampleTenant(plan: "business", rest: "sso:\n  providers:\n    x: {type: ldap}")),
        ("a team slug with capitals", sampleTenant(rest: "teams:\n  Platform: {name: P}")),
        ("a member key that is not an e-mail", sampleTenant(members: "alice: owner")),
        ("a team role that does not exist", sampleTenant(rest: "teams:\n  a: {members: {alice@acme.com: owner}}")),
        ("a colour without #", sampleTenant(rest: "branding: {primaryColor: C8102E}")),
        ("a date in another format", sampleTenant(rest: "apiKeys:\n  a: {scopes: [apps.read], expires: 31.01.2027}")),
        ("a role without permissions", sampleTenant(rest: "roles:\n  a: {description: x}")),
        ("a null member", sampleTenant(members: "alice@acme.com:")),
        ("a document that is a list", "- apiVersion: orgctl.dev/v1\n"),
    ]

    @Test("the schema rejects the structural errors validate rejects")
    func rejectsStructuralErrors() throws {
        var cases: [SchemaCase] = []
        for (name, text) in Self.rejected {
            let scratch = Scratch.with(tenant: text)
            let result = try scratch.load()
            #expect(result.errors.contains { FormatDescriptionTests.structuralIDs.contains($0.id) || $0.id == "spec.url" },
                    "validate accepts '\(name)': \(dump(result.items))")
            cases.append(SchemaCase(name: name, instance: try YAMLJSON.parse(text), valid: false))
        }
        // A Platform without plans, with an empty plans map, and with an unknown key in a plan.
        for (name, text) in [
            ("a Platform without plans", "apiVersion: orgctl.dev/v1\nkind: Platform\nroles: {owner: {permissions: ['*']}}\n"),
            ("a Platform with no plans listed", "apiVersion: orgctl.dev/v1\nkind: Platform\nplans: {}\n"),
            ("an unknown feature", basePlatform.replacingOccurrences(of: "features: [sso, custom-roles]", with: "features: [sso, sms]")),
            ("an unknown key in a plan", basePlatform.replacingOccurrences(of: "rateLimit: 100/h", with: "rateLimt: 100/h")),
        ] {
            let scratch = Scratch.with(platform: text, tenant: nil)
            #expect(try scratch.load().diagnostics.hasErrors, "validate accepts '\(name)'")
            cases.append(SchemaCase(name: name, instance: try YAMLJSON.parse(text), valid: false))
        }
        try SchemaCase.check(cases)
    }
}

/// One instance for the Python checker: valid or not under the whole schema, or under `schema`.
struct SchemaCase {
    var name: String
    var instance: JSON
    var valid: Bool
    var schema: JSON?

    static let checker = """
        import json, sys
        try:
            import jsonschema
        except ImportError:
            print("MISSING jsonschema: pip install jsonschema (.ci/run installs it)")
            sys.exit(0)
        request = json.load(open(sys.argv[1]))
        root = request["schema"]
        jsonschema.Draft202012Validator.check_schema(root)
        for case in request["cases"]:
            schema = case.get("schema") or root
            errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(case["instance"]), key=lambda e: list(e.path))
            detail = "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}"[:300] for e in errors[:3])
            print(json.dumps({"name": case["name"], "valid": not errors, "detail": detail}))
        """

    static func check(_ cases: [SchemaCase], sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("orgctl-schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let request: JSON = .object([
            ("schema", JSONSchema.document()),
            ("cases", .array(cases.map { c in
                .object([("name", .string(c.name)), ("instance", c.instance)] + (c.schema.map { [("schema", $0)] } ?? []))
            })),
        ])
        let requestFile = folder.appendingPathComponent("request.json")
        let script = folder.appendingPathComponent("check.py")
        try request.rendered().write(to: requestFile, atomically: true, encoding: .utf8)
        try checker.write(to: script, atomically: true, encoding: .utf8)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, requestFile.path]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        try #require(!text.hasPrefix("MISSING"), "\(text)", sourceLocation: sourceLocation)
        try #require(process.terminationStatus == 0, "python3 failed: \(errorText)", sourceLocation: sourceLocation)
        let lines = text.split(separator: "\n")
        #expect(lines.count == cases.count, "\(text)\(errorText)", sourceLocation: sourceLocation)
        for (line, expected) in zip(lines, cases) {
            let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            let valid = result?["valid"] as? Bool
            #expect(valid == expected.valid,
                    "\(expected.name): the schema \(expected.valid ? "rejects" : "accepts") it \(result?["detail"] as? String ?? "")\n\(expected.instance.rendered())",
                    sourceLocation: sourceLocation)
        }
    }
}

/// YAML as a YAML 1.2 language server sees it: unquoted `true`/`false` are booleans, unquoted
/// numbers are numbers, `~`/`null`/empty are null, everything else a string.
enum YAMLJSON {
    static func parse(_ text: String) throws -> JSON {
        var diagnostics = Diagnostics()
        let documents = YAMLLoader().load(Array(text.utf8), file: "inline.yaml", into: &diagnostics)
        try #require(!diagnostics.hasErrors && documents.count == 1, "\(dump(diagnostics.items))\n\(text)")
        return json(documents[0].root)
    }

    static func json(_ node: Node) -> JSON {
        switch node.content {
        case .mapping(let pairs): return .object(pairs.map { ($0.key.scalar ?? "", json($0.value)) })
        case .sequence(let items): return .array(items.map(json))
        case .scalar(let text, let style):
            guard style == .plain else { return .string(text) }
            if node.isNull { return .null }
            if ["true", "True", "TRUE"].contains(text) { return .bool(true) }
            if ["false", "False", "FALSE"].contains(text) { return .bool(false) }
            if text.range(of: #"^[-+]?[0-9]+$"#, options: .regularExpression) != nil, let value = Int64(text) { return .integer(value) }
            if text.range(of: #"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"#, options: .regularExpression) != nil {
                // A float: the checker only needs to see a number.
                return .integer(0)
            }
            return .string(text)
        }
    }
}

private func sampleTenant(plan: String = "enterprise", status: String? = nil, members: String? = "alice@acme.com: owner", rest: String = "")
    -> String
{
    tenant(slug: "acme", name: "Acme", plan: plan, status: status, domains: "[acme.com]", members: members, rest)
}
