import StateStore

extension ApplyCommand {
    /// An apply with nothing to change still migrates an older PostgreSQL schema, which was opened
    /// with `defersMigration` (planning migrated nothing): read-only commands refuse an older schema
    /// until an apply has migrated it, and their help sends the user to `orgctl apply`. The steps
    /// run in a write transaction of their own, which writes no row and no audit entry. (A SQLite
    /// file opened for writing was migrated when opened; an older one is planned from read-only,
    /// and read-only commands read it as migrated.)
    static func migrateWithoutChanges(_ planned: Planning.Result, _ console: Console) throws {
        guard let store = planned.store else { return }
        // The store is this thread's again only once the reading thread's chain check ended.
        planned.reading.stop()
        do {
            guard try store.hasOlderSchema else { return }
            let from = try store.schemaVersion
            try store.write { _ in }
            console.info("note: migrated the state's schema from version \(from) to \(try store.schemaVersion); no change was applied")
        } catch let error as StateError {
            throw CommandFailure(message: "\(error.message); the schema was not migrated", help: error.help)
        }
    }
}
