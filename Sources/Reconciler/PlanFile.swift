public import Foundation
import Spec
public import StateStore

/// The on-disk form of a saved plan (`plan --out FILE`): versioned JSON with no secret values.
///
/// Secrets appear only as keyed fingerprints; apply resolves each reference again and refuses
/// the plan when a value no longer matches its fingerprint.
public struct PlanFile: Codable, Sendable {
    public static let magic = "orgctl-plan"

    public var format: String
    public var formatVersion: Int
    public var orgctlVersion: String
    public var planID: String
    public var databaseID: String
    public var auditHead: AuditHead
    public var source: String
    public var storedCount: Int
    public var drift: [String: String]
    public var secrets: [SecretEntry]
    public var changes: [ChangeEntry]

    public struct SecretEntry: Codable, Sendable {
        public var key: String
        public var env: String?
        public var file: String?
        public var written: String?
    }

    public struct ChangeEntry: Codable, Sendable {
        public var address: String
        public var kind: String
        public var parent: String?
        public var action: Action
        public var reason: String?
        public var beforeDigest: String?
        public var changedOutside: Bool
        public var fields: [FieldEntry]
        /// A rename: the address the row was stored under.
        public var renamedFrom: String?
        /// An API key that apply issues (`issue`) or rotates (`rotate`); never key material.
        public var key: KeyIssue?
    }

    public struct FieldEntry: Codable, Sendable {
        public var name: String
        public var before: EncodedValue
        public var after: EncodedValue
    }

    /// A tagged value: exactly one member is set (`null: true` for null).
    public struct EncodedValue: Codable, Sendable {
        public var null: Bool?
        public var bool: Bool?
        public var int: Int64?
        public var string: String?
        public var list: [String]?
        public var secretFingerprint: String?
        public var documentSHA256: String?
        public var documentText: String?

        init(_ value: Value) {
            switch value {
            case .null: null = true
            case .bool(let b): bool = b
            case .int(let i): int = i
            case .string(let s): string = s
            case .list(let l): list = l
            case .secret(let f): secretFingerprint = f
            case .document(let d, let t): documentSHA256 = d; documentText = t
            }
        }

        var value: Value? {
            if null == true { return .null }
            if let bool { return .bool(bool) }
            if let int { return .int(int) }
            if let string { return .string(string) }
            if let list { return .list(list) }
            if let secretFingerprint { return .secret(fingerprint: secretFingerprint) }
            if let documentSHA256 { return .document(sha256: documentSHA256, text: documentText ?? "") }
            return nil
        }
    }

    public init(plan: Plan, orgctlVersion: String, source: String) {
        format = Self.magic
        formatVersion = Plan.formatVersion
        self.orgctlVersion = orgctlVersion
        planID = plan.id
        databaseID = plan.databaseID
        auditHead = plan.auditHead
        self.source = source
        storedCount = plan.storedCount
        drift = plan.drift
        secrets = plan.secretSources.sorted { $0.key < $1.key }.map { key, source in
            switch source {
            case .environment(let name): SecretEntry(key: key, env: name)
            // Absolute, so the saved plan applies from any working directory.
            case .file(let written, let path):
                SecretEntry(key: key, file: URL(fileURLWithPath: path).standardizedFileURL.path, written: written)
            }
        }
        changes = plan.changes.map { change in
            ChangeEntry(address: change.address, kind: change.kind.rawValue, parent: change.parent, action: change.action,
                        reason: change.reason, beforeDigest: change.beforeDigest, changedOutside: change.changedOutside,
                        fields: change.fields.map { FieldEntry(name: $0.name, before: EncodedValue($0.before), after: EncodedValue($0.after)) },
                        renamedFrom: change.renamedFrom, key: change.key)
        }
    }

    public struct DecodingFailure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Reads a saved plan; anything that is not a well-formed plan of this version is refused.
    public static func decode(_ data: Data) throws(DecodingFailure) -> PlanFile {
        let file: PlanFile
        do {
            file = try JSONDecoder().decode(PlanFile.self, from: data)
        } catch {
            throw DecodingFailure(description: "the file is not an orgctl saved plan (\(Self.describe(error, in: data)))")
        }
        guard file.format == magic else { throw DecodingFailure(description: "the file is not an orgctl saved plan") }
        guard file.formatVersion == Plan.formatVersion else {
            throw DecodingFailure(description: "the saved plan has format version \(file.formatVersion); this orgctl reads version \(Plan.formatVersion)")
        }
        return file
    }

    private static func describe(_ error: any Error, in data: Data) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty:
            "unreadable value at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.dataCorrupted(let context):
            // Foundation also says "not valid JSON" for well-formed JSON with a number out of range.
            (try? JSONSerialization.jsonObject(with: data)) != nil
                ? "a number is out of range: whole numbers must fit in 64 bits" : context.debugDescription
        case DecodingError.keyNotFound(let key, _): "missing '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "wrong type at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        default: "unreadable"
        }
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// The plan this file describes.
    public func plan() throws(DecodingFailure) -> Plan {
        var result: [Change] = []
        result.reserveCapacity(changes.count)
        for entry in changes {
            guard let kind = ResourceKind(rawValue: entry.kind) else {
                throw DecodingFailure(description: "the saved plan names an unknown resource kind '\(entry.kind)'")
            }
            var fields: [FieldChange] = []
            for field in entry.fields {
                guard let before = field.before.value, let after = field.after.value else {
                    throw DecodingFailure(description: "the saved plan has an unreadable value for \(entry.address) \(field.name)")
                }
                fields.append(FieldChange(name: field.name, before: before, after: after))
            }
            result.append(Change(address: entry.address, kind: kind, parent: entry.parent, action: entry.action, fields: fields,
                                 reason: entry.reason, beforeDigest: entry.beforeDigest, changedOutside: entry.changedOutside,
                                 renamedFrom: entry.renamedFrom, key: entry.key))
        }
        var sources: [String: SecretSource] = [:]
        for secret in secrets {
            if let env = secret.env { sources[secret.key] = .environment(env) }
            else if let file = secret.file { sources[secret.key] = .file(written: secret.written ?? file, path: file) }
        }
        return Plan(id: planID, databaseID: databaseID, auditHead: auditHead, changes: result, drift: drift,
                    secretSources: sources, storedCount: storedCount)
    }
}
