public import Spec
public import StateStore

/// Renamed tenants, teams and roles, and how addresses move with them.
///
/// A rename moves a resource and everything below it (`tenant/old/member/x` becomes
/// `tenant/new/member/x`). Tenants and system roles are keyed by their stored address; a team or
/// tenant role by its address after its tenant's rename (`tenant/new/team/old`), so nested
/// renames compose: first the tenant part of an address moves, then the team or role part.
public struct Renames: Sendable {
    /// Top level (`tenant/…`, `role/…`): old address -> new address, and back.
    private var topNew: [String: String] = [:]
    private var topOld: [String: String] = [:]
    /// Below a tenant (`tenant/t/team/…`, `tenant/t/role/…`), in the tenant's new namespace.
    private var nestedNew: [String: String] = [:]
    private var nestedOld: [String: String] = [:]
    /// New address -> the address the row was stored under, for each renamed resource.
    public private(set) var storedAddresses: [String: String] = [:]

    public var isEmpty: Bool { storedAddresses.isEmpty }

    public init() {}

    /// The renames a plan's changes carry (for apply and staleness checks of a saved plan).
    public init(_ changes: [Change]) {
        // By position: only the renames are read whole, not every change copied.
        for index in changes.indices {
            if let from = changes[index].renamedFrom { add(from: from, to: changes[index].address, parent: changes[index].parent) }
        }
    }

    /// Records that the resource stored at `from` (its address as read) is now `to`.
    mutating func add(from: String, to: String, parent: String?) {
        storedAddresses[to] = from
        if let parent {
            // `from` is in the stored namespace: re-root its last segment under the parent's new address.
            let old = "\(parent)/\(Self.lastTwoSegments(from))"
            nestedNew[old] = to
            nestedOld[to] = old
        } else {
            topNew[from] = to
            topOld[to] = from
        }
    }

    /// `team/old` of `tenant/acme/team/old`.
    private static func lastTwoSegments(_ address: String) -> Substring {
        let utf8 = address.utf8
        guard let last = utf8.lastIndex(of: UInt8(ascii: "/")),
            let previous = utf8[..<last].lastIndex(of: UInt8(ascii: "/"))
        else { return address[...] }
        return address[utf8.index(after: previous)...]
    }

    /// The end of the first `count` segments of `address` (the index of the following `/` or the end),
    /// or nil when it has fewer segments.
    private static func prefixEnd(_ address: String, segments count: Int) -> String.Index? {
        var seen = 0
        let utf8 = address.utf8
        var index = utf8.startIndex
        while index != utf8.endIndex {
            if utf8[index] == UInt8(ascii: "/") {
                seen += 1
                if seen == count { return index }
            }
            index = utf8.index(after: index)
        }
        return seen == count - 1 ? utf8.endIndex : nil
    }

    private static func move(_ address: String, segments: Int, _ map: [String: String]) -> String {
        guard !map.isEmpty, let end = prefixEnd(address, segments: segments) else { return address }
        guard let moved = map[String(address[..<end])] else { return address }
        return moved + address[end...]
    }

    /// Where a stored address is after the renames.
    public func current(_ storedAddress: String) -> String {
        let top = Self.move(storedAddress, segments: 2, topNew)
        return Self.move(top, segments: 4, nestedNew)
    }

    /// Where an address after the renames is stored now.
    public func stored(_ currentAddress: String) -> String {
        let nested = Self.move(currentAddress, segments: 4, nestedOld)
        return Self.move(nested, segments: 2, topOld)
    }

    /// The stored state seen under the new addresses: each resource below a renamed one moves, and a
    /// team whose parent team was renamed names the parent's new slug (it is the same row, so the
    /// row does not change). Digests stay those of the rows as stored. Linear in the resources.
    public func translated(_ state: StoredState) -> StoredState {
        guard !isEmpty else { return state }
        var resources: [StoredResource] = []
        resources.reserveCapacity(state.resources.count)
        for stored in state.resources {
            let address = current(stored.address)
            var moved = stored
            if address != stored.address {
                moved.resource.address = address
                moved.resource.parent = stored.resource.parent.map(current)
            }
            if stored.resource.kind == .team, !nestedNew.isEmpty, let tenant = moved.resource.parent,
                case .string(let slug) = stored.resource["parent"],
                let renamed = nestedNew["\(tenant)/team/\(slug)"]
            {
                let newSlug = String(renamed.split(separator: "/").last ?? "")
                moved.resource.attributes = moved.resource.attributes.map { $0.name == "parent" ? Attribute("parent", .string(newSlug)) : $0 }
            }
            resources.append(moved)
        }
        var translated = StoredState(resources: resources, auditHead: state.auditHead, databaseID: state.databaseID,
                                     missingApplied: state.missingApplied.map(current).sorted())
        translated.recordedPolicies = state.recordedPolicies
        return translated
    }

    /// Team addresses (after the renames) whose parent team is renamed: their rows keep `parent_id`,
    /// but the parent's slug, which their digest covers, changes.
    func teamsWithRenamedParent(in translated: StoredState) -> [StoredResource] {
        guard !nestedNew.isEmpty else { return [] }
        let renamedTeams = Set(nestedOld.keys)
        return translated.resources.filter { stored in
            guard stored.resource.kind == .team, let tenant = stored.resource.parent, case .string(let slug) = stored.resource["parent"]
            else { return false }
            return renamedTeams.contains("\(tenant)/team/\(slug)")
        }
    }
}

extension Renames {
    /// Resolves `previously:` against the stored state. Per earlier slug: matching nothing stored is
    /// a warning (the rename was applied, or never existed); the resource existing under both its new
    /// and an earlier slug, or two earlier slugs matching, is an error. One hash lookup per entry.
    public static func resolve(desired: DesiredState, stored: StoredState) -> (renames: Renames, diagnostics: [Diagnostic]) {
        var renames = Renames()
        var diagnostics: [Diagnostic] = []
        guard !desired.renames.isEmpty else { return (renames, diagnostics) }
        // Tenants and system roles first, so a nested rename looks its tenant up where it is stored.
        let ordered = desired.renames.filter { $0.parent == nil } + desired.renames.filter { $0.parent != nil }
        for rename in ordered {
            let what = rename.kind == .tenant ? "tenant" : rename.kind == .team ? "team" : "role"
            // In the stored namespace: the parent's rename (if any) undone.
            func storedAddress(_ address: String) -> String { renames.stored(address) }
            let current = storedAddress(rename.address)
            let currentExists = stored.position(of: current) != nil
            var matches: [Located<String>] = []
            for old in rename.previously {
                let address = storedAddress(old.value)
                if stored.position(of: address) != nil {
                    matches.append(Located(address, at: old.location))
                } else {
                    diagnostics.append(Diagnostic(.warning, "spec.rename-unmatched",
                                                  "'\(Self.slug(old.value))' in previously of \(rename.address) matches no stored \(what)",
                                                  at: old.location,
                                                  help: "nothing is renamed from it; once every state database was applied, remove it from previously"))
                }
            }
            guard let first = matches.first else { continue }
            if currentExists {
                diagnostics.append(Diagnostic(.error, "spec.rename-ambiguous",
                                              "\(rename.address) and \(first.value), which its previously names, both exist in the state database",
                                              at: first.location,
                                              help: "orgctl cannot keep both rows under one address: remove '\(Self.slug(first.value))' from previously (\(first.value) is then deleted), or delete one of the two rows first"))
            } else if matches.count > 1 {
                diagnostics.append(Diagnostic(.error, "spec.rename-ambiguous",
                                              "previously of \(what) \(rename.address) matches two stored \(what)s: \(first.value) and \(matches[1].value)",
                                              at: matches[1].location,
                                              help: "keep in previously only the slug whose row (and children) should become \(rename.address)",
                                              notes: [.init("first match listed here", at: first.location)]))
            } else {
                renames.add(from: first.value, to: rename.address, parent: rename.parent)
            }
        }
        var sorted = Diagnostics()
        for diagnostic in diagnostics { sorted.report(diagnostic) }
        return (renames, sorted.sorted)
    }

    private static func slug(_ address: String) -> Substring {
        guard let slash = address.utf8.lastIndex(of: UInt8(ascii: "/")) else { return address[...] }
        return address[address.utf8.index(after: slash)...]
    }
}
