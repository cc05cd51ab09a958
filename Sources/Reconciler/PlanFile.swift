public import Foundation
public import Spec
public import StateStore

/// The on-disk form of a saved plan (`plan --out FILE`): versioned JSON with no secret values.
///
/// Secrets appear only as keyed fingerprints; apply resolves each reference again and refuses
/// the plan when a value no longer matches its fingerprint.
///
/// The file is authenticated: `mac` is an HMAC-SHA256, under a key derived from the state key,
/// of the file's canonical encoding without `mac` (see ``authenticated(with:)``). Apply refuses
/// a file whose MAC does not verify, so whoever can write the artifact but does not hold the
/// state key can neither edit a reviewed plan nor make one.
public struct PlanFile: Codable, Sendable {
    public static let magic = "orgctl-plan"
    /// 2: the file carries a MAC (`mac`); version 1 files (without one) are refused.
    public static let formatVersion = 2

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
    /// `hmac-sha256:<hex>` over ``canonicalBytes()``; nil in a file not authenticated yet.
    public var mac: String?
    /// The policy checks when the plan was saved; absent when the configuration declares no policies.
    public var policies: [SavedPolicyCheck]?
    /// The digest of the policies the state recorded when planned (``Plan/recordedPolicies``); absent when none.
    public var recordedPolicies: String?
    /// The policies apply records (``Plan/policyChange``), each as stored in the state; absent when unchanged.
    public var policyChange: PolicyChangeEntry?

    public struct PolicyChangeEntry: Codable, Sendable {
        public var before: String?
        public var after: String?
    }

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

    public init(plan: Plan, orgctlVersion: String, source: String, policies: PolicyReport = PolicyReport(checks: [])) {
        self.policies = policies.isEmpty ? nil : policies.checks.map(SavedPolicyCheck.init)
        format = Self.magic
        formatVersion = Self.formatVersion
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
        recordedPolicies = plan.recordedPolicies
        policyChange = plan.policyChange.map { PolicyChangeEntry(before: $0.before?.storedText, after: $0.after?.storedText) }
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
        guard file.formatVersion == formatVersion else {
            throw DecodingFailure(description: "the saved plan has format version \(file.formatVersion); this orgctl reads version \(formatVersion)")
        }
        return file
    }

    private static func describe(_ error: any Error, in data: Data) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty:
            "unreadable value at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.dataCorrupted:
            // Foundation also says "not valid JSON" for well-formed JSON with a number out of range.
            // Foundation's own wording ("The given data was not valid JSON.") is not shown: it names no rule.
            (try? JSONSerialization.jsonObject(with: data)) != nil
                ? "a number is out of range: whole numbers must fit in 64 bits" : "it is not JSON"
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

    /// What the MAC covers: the encoding (sorted keys) of the decoded values without `mac`. It is
    /// computed from the values, not from the bytes read, so any change to what apply would use
    /// (however it is spelled in the file) changes it, and re-spelling alone does not.
    func canonicalBytes() throws -> [UInt8] {
        var unsigned = self
        unsigned.mac = nil
        return [UInt8](try unsigned.encoded())
    }

    /// The file with its MAC under `key` (what `plan --out` writes).
    public func authenticated(with key: StateKey) throws -> PlanFile {
        var signed = self
        signed.mac = key.planMAC(try canonicalBytes())
        return signed
    }

    /// Refuses a file that `plan --out` did not write with this state key, or that was changed since.
    public func verify(with key: StateKey) throws(DecodingFailure) {
        guard let mac else {
            throw DecodingFailure(description: "the saved plan carries no authentication code, so nothing shows that 'orgctl plan --out' wrote it")
        }
        guard let bytes = try? canonicalBytes(), key.isValidPlanMAC(mac, for: bytes) else {
            throw DecodingFailure(description: "the saved plan's authentication code does not match: it was changed after 'orgctl plan --out' wrote it, or written with another state key")
        }
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
        var plan = Plan(id: planID, databaseID: databaseID, auditHead: auditHead, changes: result, drift: drift,
                        secretSources: sources, storedCount: storedCount)
        plan.recordedPolicies = recordedPolicies
        if let entry = policyChange {
            func record(_ text: String?) throws(DecodingFailure) -> PolicyRecord? {
                guard let text else { return nil }
                guard let record = PolicyRecord(storedText: text) else {
                    throw DecodingFailure(description: "the saved plan has an unreadable policy record")
                }
                return record
            }
            let change = PolicyChange(before: try record(entry.before), after: try record(entry.after))
            guard change.before != change.after else { throw DecodingFailure(description: "the saved plan records the policies it found") }
            plan.policyChange = change
        }
        return plan
    }
}

/// Re-checks what a saved plan writes against the rules `validate` applies, before apply writes it.
///
/// The MAC says who made the file; this says the values are ones a valid configuration produces.
/// ``result(of:on:)`` builds the state the plan would leave (renames, creates, updates and deletes
/// applied to the stored resources), limited to the Platform's catalogs and the tenants the plan
/// touches (every tenant when it changes a catalog); the caller exports it to a configuration
/// folder, validates that with the same loader `validate` uses, flattens it again and hands the
/// result to ``mismatches(_:stored:derived:)``, which requires every value written to be exactly
/// what that configuration holds at that address (so an address that does not match its kind,
/// parent or row, or a field no configuration can write, is refused too).
public enum SavedPlanCheck {
    /// The resources after `plan`, within the tenants it touches; nil when nothing needs checking.
    public static func result(of plan: Plan, on stored: StoredState) -> [Resource]? {
        var touched: Set<String> = []
        for change in plan.changes where change.action != .adopt {
            touched.insert(change.group)
            if let from = change.renamedFrom { touched.insert(Change.group(of: from)) }
        }
        guard !touched.isEmpty else { return nil }
        let everyTenant = touched.contains("platform")
        // Renames as apply does them (the rows move with everything below them), in one pass.
        var resources: [String: Resource] = [:]
        for stored in Renames(plan.changes).translated(stored).resources {
            let group = Change.group(of: stored.address)
            if group == "platform" || everyTenant || touched.contains(group) { resources[stored.address] = stored.resource }
        }
        for change in plan.changes {
            switch change.action {
            case .create:
                resources[change.address] = Resource(address: change.address, kind: change.kind, parent: change.parent,
                                                      attributes: change.fields.filter { !$0.after.isNull }.map { Attribute($0.name, $0.after) })
            case .update:
                guard var resource = resources[change.address] else { continue }
                let names = Set(change.fields.map(\.name))
                resource.attributes = resource.attributes.filter { !names.contains($0.name) }
                    + change.fields.filter { !$0.after.isNull }.map { Attribute($0.name, $0.after) }
                resource.attributes.sort { $0.name < $1.name }
                resources[change.address] = resource
            case .delete:
                resources[change.address] = nil
            case .adopt:
                break
            }
        }
        return Array(resources.values)
    }

    /// What the plan writes that the re-derived configuration does not hold, one line each; empty when it all agrees.
    public static func mismatches(_ plan: Plan, stored: StoredState, derived: DesiredState) -> [String] {
        var index: [String: Resource] = [:]
        for resource in derived.resources { index[resource.address] = resource }
        var problems: [String] = []
        for change in plan.changes {
            // Deletes and adoptions write no value: the row they name must be the one stored there.
            if change.action == .delete || change.action == .adopt {
                guard let row = stored.resource(at: change.address)?.resource else { continue }  // stale: apply says so
                if row.kind != change.kind || row.parent != change.parent {
                    problems.append("\(change.address): the plan says a \(change.kind.rawValue), the state holds a \(row.kind.rawValue) there")
                }
                for field in change.fields where field.before != row[field.name] {
                    problems.append("\(change.address): '\(field.name)' is recorded as \(field.before), the state holds \(row[field.name])")
                }
                continue
            }
            guard let resource = index[change.address] else {
                // An update of a row that is gone is a stale plan, which apply reports as such.
                if change.action == .update, change.renamedFrom == nil, stored.resource(at: change.address) == nil { continue }
                problems.append("\(change.address): no valid configuration puts a \(change.kind.rawValue) at this address")
                continue
            }
            if resource.kind != change.kind || resource.parent != change.parent {
                problems.append("\(change.address): the address names a \(resource.kind.rawValue) of \(resource.parent ?? "the platform"), not a \(change.kind.rawValue) of \(change.parent ?? "the platform")")
            }
            for field in change.fields {
                if KeyMaterial.isKeyMaterial(field.name) {
                    problems.append("\(change.address): '\(field.name)' is key material, which only apply itself writes")
                    continue
                }
                let expected = resource[field.name]
                let agrees: Bool
                switch (field.after, expected) {
                case (.secret, .secret): agrees = true  // compared with the resolved value's fingerprint at apply
                default: agrees = field.after == expected
                }
                if !agrees { problems.append("\(change.address): '\(field.name)' would be written as \(field.after), which the configuration rules do not give") }
            }
        }
        return problems
    }
}
