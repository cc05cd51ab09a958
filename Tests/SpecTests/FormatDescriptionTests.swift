import Foundation
import Testing

@testable import Spec

/// The format description (``SpecFormat``) agrees with the decoder: the same keys, the same
/// required keys, types the decoder accepts. The schema, `explain` and the docs are generated
/// from the description, so these tests keep all of them honest.
@Suite("format description")
struct FormatDescriptionTests {
    /// Every mapping of the format, by the path of keys from the document root.
    static let objectPaths: [(kind: FormatKind, path: [String], object: FormatObject)] = {
        var result: [(FormatKind, [String], FormatObject)] = []
        func visit(_ kind: FormatKind, _ object: FormatObject, _ path: [String]) {
            result.append((kind, path, object))
            for field in object.fields {
                if let nested = field.type.nestedObject { visit(kind, nested, path + [field.name]) }
            }
        }
        for kind in SpecFormat.kinds { visit(kind, kind.object, []) }
        return result
    }()

    static let unknownKey = "zzqqxx"

    static func load(_ document: String) throws -> LoadResult {
        let scratch = Scratch()
        scratch.write("document.yaml", document)
        return try scratch.load()
    }

    @Test("the decoder allows exactly the keys the description lists, in every mapping")
    func unknownKeyListsAgree() throws {
        #expect(Self.objectPaths.count >= 15)
        for (kind, path, object) in Self.objectPaths {
            let document = Sample.document(kind, mode: .required, inject: path)
            let result = try Self.load(document)
            let reports = result.items.filter { $0.id == "spec.unknown-key" && $0.message.contains("'\(Self.unknownKey)'") }
            let where_ = ([kind.name] + path).joined(separator: ".")
            guard reports.count == 1, let help = reports[0].help, help.hasPrefix("allowed keys are: ") else {
                Issue.record("\(where_): expected one unknown-key report listing the allowed keys in:\n\(dump(result.items))\n\(document)")
                continue
            }
            let allowed = Set(help.dropFirst("allowed keys are: ".count).components(separatedBy: ", "))
            #expect(allowed == Set(object.fields.map(\.name)), "\(where_): decoder allows \(allowed.sorted()), description lists \(object.fields.map(\.name))")
        }
    }

    static let structuralIDs: Set<String> = [
        "spec.unknown-key", "spec.missing-key", "spec.type", "spec.value", "spec.duration", "spec.rate", "spec.date", "spec.size",
        "spec.color", "spec.name", "spec.range", "spec.empty", "spec.secret-reference", "spec.inline-secret", "spec.document",
        "spec.kind", "spec.api-version",
    ]

    @Test("a document with every key the description lists has no structural errors")
    func everyDescribedKeyDecodes() throws {
        for kind in SpecFormat.kinds {
            for mode in [Sample.Mode.required, .all] {
                let document = Sample.document(kind, mode: mode)
                let result = try Self.load(document)
                let structural = result.items.filter { Self.structuralIDs.contains($0.id) }
                #expect(structural.isEmpty, "\(kind.name) (\(mode)):\n\(dump(structural))\n\(document)")
            }
        }
    }

    @Test("every key the description marks required is required by the decoder, and no other")
    func requiredKeysAgree() throws {
        for (kind, path, object) in Self.objectPaths {
            var required = object.fields.filter(\.isRequired).map(\.name)
            if let variants = object.variants { required += variants.cases[0].fields }
            for name in required {
                let document = Sample.document(kind, mode: .required, remove: (path, name))
                let result = try Self.load(document)
                let missing = result.items.filter { $0.id == "spec.missing-key" && $0.message.contains("'\(name)'") }
                #expect(!missing.isEmpty, "\(([kind.name] + path + [name]).joined(separator: ".")) left out, no spec.missing-key in:\n\(dump(result.items))")
            }
        }
    }

    @Test("the example documents of each kind are valid together")
    func kindExamplesAreValid() throws {
        let scratch = Scratch()
        for kind in SpecFormat.kinds { scratch.write("\(kind.name.lowercased()).yaml", kind.example) }
        expectClean(try scratch.load())
    }

    @Test("allowed values come from the model's enumerations")
    func allowedValues() {
        guard case .oneOf(let statuses) = SpecFormat.tenant.object.field("status")?.type else {
            Issue.record("tenant.status is not a list of values")
            return
        }
        #expect(statuses == TenantStatus.allCases.map(\.rawValue))
        #expect(SpecFormat.quotas.fields.map(\.name) == QuotaName.allCases.map(\.rawValue))
        #expect(SpecFormat.features == Validator.knownFeatures)
    }

    // MARK: explain

    @Test("explain resolves paths through maps and members", arguments: [
        ("tenant.sso.providers", "providers"), ("tenant.members.role", "role"), ("platform.plans.quotas.storage", "storage"),
        ("Tenant.teams.<slug>.members", "members"), ("tenant.webhooks.*.secret", "secret"),
    ])
    func explainResolves(_ path: String, _ last: String) throws {
        let resolved = try FormatDocumentation.resolve(path).get()
        #expect(resolved.fields.last?.name == last)
    }

    @Test("explain of tenant.sso.providers shows the type, description, example and the provider's keys")
    func explainText() throws {
        let text = FormatDocumentation.explain(try FormatDocumentation.resolve("tenant.sso.providers").get())
        #expect(text.contains("FIELD:    sso.providers <map: slug → SSO provider>"))
        #expect(text.contains("EXAMPLE:\n    providers:\n      okta:\n        type: saml"))
        #expect(text.contains("FIELDS (of each SSO provider):"))
        #expect(text.contains("    type          <saml | oidc> -required-"))
        #expect(text.contains("WHEN ABSENT:\n    Not managed: stored providers are left alone."))
        for line in text.split(separator: "\n") where !line.hasPrefix("        ") {
            #expect(line.count <= 80, "longer than 80 columns: \(line)")
        }
    }

    @Test("explain names the mistake in a wrong path and suggests the right key")
    func explainErrors() {
        guard case .failure(let error) = FormatDocumentation.resolve("tenant.sso.provders") else {
            Issue.record("a misspelt key resolved")
            return
        }
        #expect(error.message == "SSO has no key 'provders'")
        #expect(error.help == "did you mean 'tenant.sso.providers'?")
        guard case .failure(let kindError) = FormatDocumentation.resolve("tennant") else {
            Issue.record("a misspelt kind resolved")
            return
        }
        #expect(kindError.help.hasPrefix("did you mean 'tenant'?"))
        guard case .failure(let scalarError) = FormatDocumentation.resolve("tenant.name.first") else {
            Issue.record("a key below a string resolved")
            return
        }
        #expect(scalarError.message == "'tenant.name' is a non-empty string and has no keys")
    }
}

/// Builds documents from the description: the required keys only, or every key, with sample
/// values of each type; optionally with an unknown key added to, or a key removed from, one mapping.
enum Sample {
    enum Mode { case required, all }

    static func document(_ kind: FormatKind, mode: Mode, inject: [String]? = nil, remove: ([String], String)? = nil) -> String {
        value(.object(kind.object), mode: mode, path: [], inject: inject, remove: remove).rendered() + "\n"
    }

    static func value(_ type: FormatType, mode: Mode, path: [String], inject: [String]?, remove: ([String], String)?) -> JSON {
        switch type {
        case .text(let rule): return .string(text(rule))
        case .boolean: return .bool(true)
        case .integer(let range): return .integer(range.lowerBound)
        case .oneOf(let values): return .string(values[0])
        case .constant(let value): return .string(value)
        case .list(let item, _): return .array([value(item, mode: mode, path: path, inject: inject, remove: remove)])
        case .map(let key, let item, _):
            return .object([(text(key), value(item, mode: mode, path: path, inject: inject, remove: remove))])
        case .secretReference: return .object([("env", .string("SAMPLE_SECRET"))])
        case .certificate: return .string("-----BEGIN CERTIFICATE-----")
        case .quota(let isSize): return isSize ? .string("1GiB") : .integer(1)
        case .either(let a, let b):
            let chosen = b.nestedObject != nil ? b : a
            return value(chosen, mode: mode, path: path, inject: inject, remove: remove)
        case .object(let object):
            var members: [(String, JSON)] = []
            let variantFields = object.variants.map { v in Set(v.cases.flatMap(\.fields)) } ?? []
            let chosenCase = object.variants?.cases[0].fields ?? []
            for field in object.fields {
                if variantFields.contains(field.name) && !chosenCase.contains(field.name) { continue }
                let wanted = mode == .all || field.isRequired || chosenCase.contains(field.name) || (inject.map { $0.starts(with: path + [field.name]) && $0.count > path.count } ?? false)
                    || (remove.map { $0.0.starts(with: path + [field.name]) && $0.0.count > path.count } ?? false)
                guard wanted else { continue }
                if let remove, remove.0 == path, remove.1 == field.name { continue }
                members.append((field.name, value(field.type, mode: mode, path: path + [field.name], inject: inject, remove: remove)))
            }
            if inject == path { members.append((FormatDescriptionTests.unknownKey, .integer(1))) }
            return .object(members)
        }
    }

    static func text(_ rule: TextRule) -> String {
        switch rule {
        case .any, .nonEmpty: "text"
        case .slug: "sample"
        case .dottedName, .dottedPattern: "apps.read"
        case .email: "alice@example.com"
        case .domain: "example.com"
        case .color: "#3B82F6"
        case .httpsURL: "https://example.com/hook"
        case .cidr: "203.0.113.0/24"
        case .duration(let range): range.map { Duration(seconds: $0.lowerBound).description } ?? "30s"
        case .rate: "100/h"
        case .date: "2027-01-31"
        case .environmentVariable: "SAMPLE_SECRET"
        }
    }
}
