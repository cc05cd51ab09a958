public import Spec

/// A resource as the state database holds it.
public struct StoredResource: Sendable {
    public var resource: Resource
    /// The row's surrogate id in its table; survives renames.
    public var rowID: Int64
    /// Digest of the row as it is now (see ``ResourceDigest``).
    public var digest: Digest
    /// Digest of the row as orgctl last wrote it, or nil when orgctl never wrote it
    /// (created outside orgctl, or not adopted yet).
    public var appliedDigest: Digest?

    public init(resource: Resource, rowID: Int64, digest: Digest, appliedDigest: Digest?) {
        self.resource = resource
        self.rowID = rowID
        self.digest = digest
        self.appliedDigest = appliedDigest
    }

    /// True when something other than orgctl changed the row since orgctl last wrote it.
    public var isDrifted: Bool { appliedDigest != nil && appliedDigest != digest }

    public var address: String { resource.address }
}

/// The newest entry of the audit chain (sequence 0 and the genesis hash for an empty chain).
public struct AuditHead: Hashable, Sendable, Codable {
    public var sequence: Int64
    /// Hex of the entry's chain hash.
    public var hash: String

    public init(sequence: Int64, hash: String) {
        self.sequence = sequence
        self.hash = hash
    }
}

/// Everything `plan` needs from the database, read in one consistent snapshot.
public struct StoredState: Sendable {
    /// In table order; look resources up by address with ``resource(at:)``.
    public let resources: [StoredResource]
    /// Position of each address in `resources`.
    private let index: [String: Int]
    public var auditHead: AuditHead
    public var databaseID: String
    /// Addresses orgctl recorded as applied whose rows no longer exist (deleted outside orgctl).
    public var missingApplied: [String]
    /// What a check of the audit chain in the same snapshot found; `.unchecked` unless the state
    /// was read with ``SQLiteStateStore/readCheckingChain(state:shouldStop:)``.
    public var auditChain: AuditChainCheck = .unchecked
    /// What apply last recorded of the configuration's governance policies (`orgctl_meta` key
    /// `policies`, canonical JSON of their digests), nil when nothing is recorded.
    public var recordedPolicies: String?

    /// Positions of two resources with one address (the first such pair), which only a database
    /// edited outside orgctl can hold; the reader refuses such a state.
    let duplicate: (first: Int, second: Int)?

    public init(resources: [StoredResource], auditHead: AuditHead, databaseID: String, missingApplied: [String] = []) {
        self.resources = resources
        var index: [String: Int] = [:]
        index.reserveCapacity(resources.count)
        var duplicate: (first: Int, second: Int)?
        for (position, resource) in resources.enumerated() {
            if let earlier = index.updateValue(position, forKey: resource.address), duplicate == nil { duplicate = (earlier, position) }
        }
        self.index = index
        self.duplicate = duplicate
        self.auditHead = auditHead
        self.databaseID = databaseID
        self.missingApplied = missingApplied
    }
}

extension StoredState {
    public func resource(at address: String) -> StoredResource? {
        index[address].map { resources[$0] }
    }

    /// The position of `address` in `resources`.
    public func position(of address: String) -> Int? { index[address] }

    /// What changed outside orgctl since it last applied, by address as stored: each drifted
    /// row's current digest (hex), and `""` for each applied row deleted outside orgctl. A plan
    /// records it; apply compares it with the state then to refuse a plan that went stale.
    public var driftDigests: [String: String] {
        var drift: [String: String] = [:]
        for resource in resources where resource.appliedDigest != resource.digest { drift[resource.address] = resource.digest.description }
        for address in missingApplied { drift[address] = "" }
        return drift
    }
}
