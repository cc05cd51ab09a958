public import Spec
public import StateStore

/// Address patterns for `--target` and `--exclude`: `*` matches within one path segment,
/// `**` matches any number of segments (`tenant/acme/**`, `tenant/*/member/*@acme.com`).
public struct AddressPattern: Sendable, CustomStringConvertible {
    public let description: String
    private let segments: [Substring]

    public init(_ text: String) {
        description = text
        segments = text.split(separator: "/", omittingEmptySubsequences: false)
    }

    /// Why `text` can never select an address, or nil when it can: addresses have no empty
    /// segments, so an empty pattern or one with `//` or a leading or trailing `/` is a slip.
    public static func problem(with text: String) -> String? {
        if text.isEmpty { return "an address pattern cannot be empty" }
        if text.split(separator: "/", omittingEmptySubsequences: false).contains(where: \.isEmpty) {
            return "an address pattern has no empty segments (no leading, trailing or double '/')"
        }
        return nil
    }

    public func matches(_ address: String) -> Bool {
        var steps = 0
        return matches(address, orAPrefix: false, steps: &steps)
    }

    /// True when the pattern matches this address or something below it (so `tenant/acme`
    /// also selects its children).
    public func selects(_ address: String) -> Bool {
        var steps = 0
        return matches(address, orAPrefix: !description.hasSuffix("**"), steps: &steps)
    }

    /// Whether the pattern matches the address (or, with `orAPrefix`, its first n segments for
    /// some n ≥ 1). The pattern's segments are run as a set of states over the address's
    /// segments (`**` stays or moves on, any other segment moves on when it matches), so a
    /// pattern of m segments costs at most m segment matches per address segment, whatever
    /// the number of `**`: no backtracking. `steps` counts the segment matches (for tests).
    func matches(_ address: String, orAPrefix: Bool, steps: inout Int) -> Bool {
        let parts = address.split(separator: "/", omittingEmptySubsequences: false)
        let accept = segments.count
        var states = [Bool](repeating: false, count: accept + 1)
        // A `**` may match no segment: a state on it also stands on the next one.
        func close(_ states: inout [Bool]) {
            for index in 0..<accept where states[index] && segments[index] == "**" { states[index + 1] = true }
        }
        states[0] = true
        close(&states)
        for part in parts {
            var next = [Bool](repeating: false, count: accept + 1)
            for index in 0..<accept where states[index] {
                steps += 1
                if segments[index] == "**" {
                    next[index] = true
                } else if Self.segmentMatches(segments[index], part) {
                    next[index + 1] = true
                }
            }
            close(&next)
            states = next
            if orAPrefix, states[accept] { return true }
        }
        return states[accept]
    }

    private static func segmentMatches(_ pattern: Substring, _ text: Substring) -> Bool {
        Glob.matches(String(pattern), String(text))
    }
}

/// What `--target`/`--exclude` did to a plan, so that a limited plan never reads as a complete one.
public struct Targeting: Sendable, Equatable {
    /// The patterns, as given.
    public var targets: [String]
    public var excludes: [String]
    /// How many changes of the whole plan the patterns left out.
    public var omitted: Int
    /// The patterns (targets, then excludes) that select no address in the configuration or the
    /// state: most likely a typo.
    public var unmatchedTargets: [String]
    public var unmatchedExcludes: [String]

    /// `--target 'a' --exclude 'b'`: how the plan was limited, for messages.
    public var options: String {
        (targets.map { "--target '\($0)'" } + excludes.map { "--exclude '\($0)'" }).joined(separator: " ")
    }

    /// One sentence for people: what is left out, and the patterns that match nothing.
    public var note: String {
        var text = "Targeting is in effect (\(options)): \(omitted) other change\(omitted == 1 ? " is" : "s are") left out of this plan."
        for pattern in unmatchedTargets { text += " --target '\(pattern)' matches no address." }
        for pattern in unmatchedExcludes { text += " --exclude '\(pattern)' matches no address." }
        return text
    }
}

extension Plan {
    /// The plan limited to changes selected by `targets` (all when empty) and not by `excludes`,
    /// with ``targeting`` telling what was left out.
    ///
    /// A kept create whose parent is also being created keeps that parent too, so the result
    /// always applies.
    ///
    /// - Parameter known: whether a pattern selects any address of the configuration or the state
    ///   (the ones that select none are reported in ``Targeting``).
    public func filtered(targets: [AddressPattern], excludes: [AddressPattern], known: (AddressPattern) -> Bool = { _ in true }) -> Plan {
        guard !targets.isEmpty || !excludes.isEmpty else { return self }
        var keep = Set<String>()
        for change in changes {
            let targeted = targets.isEmpty || targets.contains { $0.selects(change.address) }
            let excluded = excludes.contains { $0.selects(change.address) }
            if targeted && !excluded { keep.insert(change.address) }
        }
        // Keep what a kept create needs that is also being created: its parent, the parent team a
        // team names, and the tenant member a team membership refers to. Keep the renames of a kept
        // change's ancestors too: what it changes is stored under their new addresses only once they are renamed.
        let creates = Dictionary(changes.filter { $0.action == .create }.map { ($0.address, $0) }, uniquingKeysWith: { a, _ in a })
        let updates = Dictionary(changes.filter { $0.action == .update }.map { ($0.address, $0) }, uniquingKeysWith: { a, _ in a })
        let renames = Dictionary(changes.filter { $0.renamedFrom != nil }.map { ($0.address, $0) }, uniquingKeysWith: { a, _ in a })
        if !renames.isEmpty {
            for change in changes where keep.contains(change.address) {
                // Ancestors are the even-length prefixes: `tenant/a` and `tenant/a/team/b` of `tenant/a/team/b/member/c`.
                let parts = change.address.split(separator: "/", omittingEmptySubsequences: false)
                for length in stride(from: 2, to: parts.count, by: 2) {
                    let ancestor = parts[..<length].joined(separator: "/")
                    if renames[ancestor] != nil { keep.insert(ancestor) }
                }
            }
        }
        func dependencies(of change: Change) -> [String] {
            var result: [String] = []
            if let parent = change.parent { result.append(parent) }
            if change.kind == .team, let tenant = change.parent, let field = change.fields.first(where: { $0.name == "parent" }),
                case .string(let slug) = field.after
            {
                result.append("\(tenant)/team/\(slug)")
            }
            if change.kind == .teamMember, let member = Reconciler.memberAddress(ofTeamMember: change.address) {
                result.append(member)
            }
            return result
        }
        var queue = Array(keep)
        while let address = queue.popLast() {
            guard let change = creates[address] ?? updates[address] else { continue }
            for dependency in dependencies(of: change) where creates[dependency] != nil && !keep.contains(dependency) {
                keep.insert(dependency)
                queue.append(dependency)
            }
        }
        var result = self
        result.changes = changes.filter { keep.contains($0.address) }
        result.id = Reconciler.planID(databaseID: databaseID, auditHead: auditHead, changes: result.changes, policies: policyChange)
        result.secretSources = secretSources.filter { key, _ in keep.contains(String(key.prefix { $0 != "#" })) }
        result.targeting = Targeting(
            targets: targets.map(\.description), excludes: excludes.map(\.description), omitted: changes.count - result.changes.count,
            unmatchedTargets: targets.filter { !known($0) }.map(\.description),
            unmatchedExcludes: excludes.filter { !known($0) }.map(\.description))
        return result
    }
}

extension Reconciler {
    /// Whether `pattern` selects an address of the configuration or of the stored state.
    public static func selectsAny(_ pattern: AddressPattern, desired: DesiredState, stored: StoredState) -> Bool {
        desired.resources.contains { pattern.selects($0.address) } || stored.resources.contains { pattern.selects($0.address) }
    }
}
