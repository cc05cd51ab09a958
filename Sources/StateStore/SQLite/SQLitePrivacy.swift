import Audit
import Foundation

extension SQLiteStateStore: PersonalDataStore, AuditEntrySearch {
    static func entryHolds(parameter: Int) -> String { "instr(entry, ?\(parameter)) > 0" }

    public func subjectResolver() throws(StateError) -> SubjectResolver { try subjectResolverShared() }

    public func personalData(email: String) throws(StateError) -> PersonalDataExport { try personalDataShared(email: email) }

    /// Erases with `secure_delete` on (deleted cells and freed pages are overwritten with zeros),
    /// then makes sure no byte of the forgotten addresses is left in the files: the WAL is
    /// checkpointed and truncated, the files are searched, and only when an address is still found
    /// (left in free space or in an index's interior pages by writes made without `secure_delete`,
    /// such as the apply that removed the member) is the database rebuilt with VACUUM.
    public func forget(_ request: ErasureRequest) throws -> ErasureOutcome {
        var outcome = try forgetShared(request, beforeWriting: { try connection.execute("PRAGMA secure_delete = ON") },
                                       beforeCommit: { try refuseCopiesInOtherTables($0) })
        guard !outcome.emails.isEmpty else { return outcome }
        let needles = AddressMatcher(outcome.emails)
        try storeCall("scrubbing the database files of") {
            try checkpoint()
            outcome.scrubbing.append("checkpointed and truncated the write-ahead log (secure_delete on for the erasure)")
            if let file = try filesHolding(needles) {
                try connection.execute("VACUUM")
                try checkpoint()
                outcome.scrubbing.append("rebuilt the database with VACUUM: \(file) still held an erased address in free space or index pages")
                if let still = try filesHolding(needles) {
                    throw StateError(.other, "an erased address is still in \(still) after VACUUM; the erasure itself is committed",
                                     help: "a row orgctl does not manage (a table of your own, a row written behind orgctl's back) holds it: find it (sqlite3 \(path) .dump | grep -i -c 'the address'), delete or change that row, then run sqlite3 \(path) 'VACUUM; PRAGMA wal_checkpoint(TRUNCATE)' (docs/audit-chain.md 8.5)")
                }
            }
            outcome.scrubbing.append("searched \(path) and its -wal and -shm files: no erased address remains")
        }
        return outcome
    }

    /// Every table of the file but the audit log (whose entries the chain check and the format 1 search have
    /// read), its tree (hashes) and the outbox (just redacted): a row holding the address there (a platform's
    /// own table, a row written behind orgctl's back) would be found by the search of the file only after the
    /// commit, when forget can no longer refuse.
    private func refuseCopiesInOtherTables(_ matcher: AddressMatcher) throws {
        guard !matcher.addresses.isEmpty else { return }
        let orgctl: Set<String> = ["orgctl_audit", "orgctl_merkle", "orgctl_outbox", "orgctl_outbox_attempts"]
        var tables: [String] = []
        try db.forEach("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name") { tables.append($0.text(0)) }
        func quoted(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        for table in tables where !orgctl.contains(table) {
            var columns: [String] = []
            try db.forEach("SELECT name FROM pragma_table_info(?1)", [.text(table)]) { columns.append(quoted($0.text(0))) }
            guard !columns.isEmpty else { continue }
            // Only rows holding an address's bytes (LIKE ignores ASCII case; an '@' for many addresses) are read into
            // Swift, which decides whether the address stands alone there.
            let addresses = matcher.addresses.count > AddressMatcher.searchedAddresses ? ["@"] : matcher.addresses.sorted()
            let needles: [SQLValue] = addresses.map { address in
                .text("%" + address.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%")
            }
            let filter = columns.flatMap { column in
                needles.indices.map { "CAST(\(column) AS TEXT) LIKE ?\($0 + 1) ESCAPE '\\'" }
            }.joined(separator: " OR ")
            var found: String?
            try db.query("SELECT \(columns.map { "CAST(\($0) AS BLOB)" }.joined(separator: ", ")) FROM \(quoted(table)) WHERE \(filter)", needles) { row in
                found = columns.indices.lazy.compactMap { row.isNull($0) ? nil : matcher.found(in: row.blob($0)).min() }.first
                return found == nil
            }
            if let found { throw ErasureRefusal.heldElsewhere(email: found, table: table) }
        }
    }

    /// `PRAGMA wal_checkpoint(TRUNCATE)`, which must not be kept from finishing by a reader.
    private func checkpoint() throws {
        let busy = try db.first("PRAGMA wal_checkpoint(TRUNCATE)") { $0.int(0) } ?? 0
        guard busy == 0 else {
            throw StateError(.locked, "another connection reads \(path), so its write-ahead log could not be truncated; the erasure itself is committed",
                             help: "stop the other readers and run 'orgctl privacy forget' again to finish removing the address from the files")
        }
    }

    /// The first of the database's files holding any address of `needles` (in any case, standing as an
    /// address of its own: `jimbob@x.com` is not `bob@x.com`), or nil.
    private func filesHolding(_ needles: AddressMatcher) throws -> String? {
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            guard let handle = FileHandle(forReadingAtPath: file) else { continue }
            defer { try? handle.close() }
            // Enough of the previous chunk that an address across the boundary, and the bytes around it that decide
            // whether it stands alone, are seen whole.
            let overlap = needles.longest + 4096
            var carry: [UInt8] = []
            while let chunk = try handle.read(upToCount: 1 << 22), !chunk.isEmpty {
                let window = carry + [UInt8](chunk)
                if needles.matches(window) { return file }
                carry = Array(window.suffix(overlap))
            }
        }
        return nil
    }
}
