import Foundation
import Postgres

extension PostgresStateStore: PersonalDataStore, AuditEntrySearch {
    static func entryHolds(parameter: Int) -> String { "position(?\(parameter) in entry) > 0" }

    public func subjectResolver() throws(StateError) -> SubjectResolver { try subjectResolverShared() }

    public func personalData(email: String) throws(StateError) -> PersonalDataExport { try personalDataShared(email: email) }

    /// The tables whose rows held the forgotten values: rewritten after the erasure so that no dead
    /// tuple in their files keeps them (docs/audit-chain.md 8.5).
    static let scrubbedTables = ["members", "team_members", "orgctl_resources", "orgctl_subjects", "orgctl_subject_values",
                                 "orgctl_outbox", "orgctl_outbox_attempts", "orgctl_lock"]

    /// Erases, then rewrites the tables that held the values with VACUUM FULL (a new file per
    /// table, the old one unlinked), since a deleted or updated row stays in the table's file as a
    /// dead tuple until then. What PostgreSQL keeps elsewhere (WAL, archives, base backups,
    /// replicas) is outside orgctl's reach and documented.
    public func forget(_ request: ErasureRequest) throws -> ErasureOutcome {
        var outcome = try forgetShared(request) {}
        guard !outcome.emails.isEmpty else { return outcome }
        var rewritten: [String] = [], locked: [String] = []
        try storeCall("rewriting the tables of") {
            // VACUUM FULL copies every row version that a snapshot taken before the erasure may still
            // see: wait (up to the lock timeout) for the sessions that hold one to end.
            let erased = try db.first("SELECT clock_timestamp()::text", []) { $0.text(0) } ?? ""
            let older = """
                SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND backend_xmin IS NOT NULL AND xact_start < ?1::timestamptz
                """
            let deadline = Date().addingTimeInterval(Double(lockTimeoutMilliseconds) / 1000)
            var holding = try db.integer(older, [.text(erased)])
            while holding > 0, Date() < deadline {
                usleep(50_000)
                holding = try db.integer(older, [.text(erased)])
            }
            // VACUUM FULL takes an ACCESS EXCLUSIVE lock, which waits behind any session holding a lock on the table
            // (an idle transaction that read it): each waits at most the lock timeout, and a table it could not lock is
            // left for the user to rewrite, with a warning, instead of hanging after the erasure committed.
            try db.run("SET lock_timeout = \(max(1, Int(lockTimeoutMilliseconds)))", [])
            defer { _ = try? db.run("RESET lock_timeout", []) }
            for table in Self.scrubbedTables {
                do {
                    try db.run("VACUUM FULL \(table)", [])
                    rewritten.append(table)
                } catch let error as PostgresError where error.sqlState == "55P03" {
                    locked.append(table)
                }
            }
            if holding > 0 {
                outcome.scrubbing.append("warning: \(holding) session(s) of this database hold snapshots from before the erasure and may keep copies in the rewritten tables: run 'VACUUM FULL' on them once those sessions end")
            }
            if !locked.isEmpty {
                outcome.scrubbing.append("warning: another session held a lock on \(locked.joined(separator: ", ")) for longer than the lock timeout (\(lockTimeoutMilliseconds) ms), so \(locked.count == 1 ? "it was" : "they were") not rewritten and may keep copies of the erased rows: once that session ends, run \(locked.map { "'VACUUM FULL \(PostgresSchema.quoted(schema)).\($0)'" }.joined(separator: ", "))")
            }
        }
        if !rewritten.isEmpty {
            outcome.scrubbing.append("rewrote \(rewritten.joined(separator: ", ")) with VACUUM FULL; WAL segments, archives, backups and replicas keep older copies (docs/audit-chain.md 8.5)")
        }
        return outcome
    }
}
