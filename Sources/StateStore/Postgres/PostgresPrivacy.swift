extension PostgresStateStore: PersonalDataStore {
    public func subjectResolver() throws(StateError) -> SubjectResolver { try subjectResolverShared() }

    public func personalData(email: String) throws(StateError) -> PersonalDataExport { try personalDataShared(email: email) }

    /// The tables whose rows held the forgotten values: rewritten after the erasure so that no dead
    /// tuple in their files keeps them (docs/audit-chain.md 8.5).
    static let scrubbedTables = ["members", "team_members", "orgctl_resources", "orgctl_subjects", "orgctl_subject_values",
                                 "orgctl_subject_entries", "orgctl_outbox", "orgctl_outbox_attempts"]

    /// Erases, then rewrites the tables that held the values with VACUUM FULL (a new file per
    /// table, the old one unlinked), since a deleted or updated row stays in the table's file as a
    /// dead tuple until then. What PostgreSQL keeps elsewhere (WAL, archives, base backups,
    /// replicas) is outside orgctl's reach and documented.
    public func forget(_ request: ErasureRequest) throws -> ErasureOutcome {
        var outcome = try forgetShared(request) {}
        guard !outcome.emails.isEmpty else { return outcome }
        try storeCall("rewriting the tables of") {
            for table in Self.scrubbedTables { try db.run("VACUUM FULL \(table)", []) }
        }
        outcome.scrubbing.append("rewrote \(Self.scrubbedTables.joined(separator: ", ")) with VACUUM FULL; WAL segments, archives, backups and replicas keep older copies (docs/audit-chain.md 8.5)")
        return outcome
    }
}
