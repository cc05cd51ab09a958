internal import CSQLite

/// The SQLite orgctl runs with (`orgctl version`).
public enum SQLiteLibrary {
    /// The version of the loaded SQLite library, e.g. `3.45.1` (not the headers it was built with).
    public static var version: String { String(cString: sqlite3_libversion()) }
}
