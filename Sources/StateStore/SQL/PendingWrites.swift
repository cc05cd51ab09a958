/// Writes that a transaction holds back until it is about to commit, such as the subject rows of
/// audit entry format 2 (buffered and written sorted by key: `Privacy/SubjectTable.swift`).
///
/// The write transaction itself runs them, on both backends, just before its COMMIT
/// (`SQLiteConnection.transaction`, `PostgresStateStore.inTransaction`), and drops them when it
/// rolls back: whoever writes through a transaction (apply, rekey, forget, a writer added later)
/// gets its held-back rows written without having to remember a call of its own.
final class PendingWrites {
    private var writes: [() throws -> Void] = []

    /// Holds `write` back until the transaction commits.
    func add(_ write: @escaping () throws -> Void) { writes.append(write) }

    /// Runs the held-back writes in the order they were added (and any that they add), and forgets them.
    func run() throws {
        while !writes.isEmpty {
            let now = writes
            writes = []
            for write in now { try write() }
        }
    }

    /// Forgets the held-back writes (the transaction rolled back).
    func discard() { writes = [] }
}
