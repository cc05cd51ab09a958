internal import CSQLite
internal import Foundation
internal import Spec

/// An error reported by SQLite, with the statement that caused it.
///
/// `sql` holds the SQL *text* only. Bound values never appear in an error, so a message
/// can be logged or shown without leaking the data being written.
struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, grouped the way an operator (or a retry policy) cares about it.
    enum Kind: Sendable, Hashable {
        /// `SQLITE_BUSY` or `SQLITE_LOCKED`: another connection holds a conflicting lock.
        case busy
        /// `SQLITE_READONLY*`, or `SQLITE_CANTOPEN` on an existing database whose file or
        /// folder is not writable (SQLite cannot create the `-wal`, `-shm` or journal file).
        case readOnly
        /// `SQLITE_CORRUPT*`.
        case corrupt
        /// `SQLITE_NOTADB`: the file exists but is not a SQLite database.
        case notADatabase
        /// `SQLITE_FULL`: the disk is full or `max_page_count` was reached.
        case full
        /// `SQLITE_CANTOPEN*` for any other reason (missing file, missing folder, a directory).
        case cantOpen
        /// `SQLITE_CONSTRAINT*`.
        case constraint
        /// `SQLITE_IOERR*`.
        case ioError
        /// Anything else, including misuse of the wrapper itself.
        case other
    }

    /// The extended result code (extended result codes are always enabled), for
    /// example 1299 (`SQLITE_CONSTRAINT_NOTNULL`).
    var code: Int32
    /// SQLite's message (`sqlite3_errmsg`) or the wrapper's own.
    var message: String
    /// The SQL text being run, never the values bound to it.
    var sql: String?
    var kind: Kind

    init(code: Int32, message: String, sql: String? = nil, kind: Kind) {
        self.code = code
        self.message = message
        self.sql = sql
        self.kind = kind
    }

    /// The primary result code (`code & 0xFF`), for example 19 (`SQLITE_CONSTRAINT`).
    var primaryCode: Int32 { code & 0xFF }

    var description: String {
        var text = "sqlite error \(code) (\(kind)): \(message)"
        if let sql { text += " while executing `\(sql)`" }
        return text
    }
}

extension SQLiteError {
    /// The error SQLite reports on `db` after a call returned `resultCode`.
    ///
    /// - Parameter databasePath: the database file, when `db` cannot tell (a failed open).
    init(db: OpaquePointer?, resultCode: Int32, sql: String?, databasePath: String? = nil) {
        var code = resultCode
        var message = String(cString: sqlite3_errstr(resultCode))
        var path = databasePath
        if let db {
            // The connection's error state describes the most recent API call; use it only
            // when it is about the failure we were handed.
            let extended = sqlite3_extended_errcode(db)
            if extended & 0xFF == resultCode & 0xFF {
                code = extended
                message = String(cString: sqlite3_errmsg(db))
            }
            if path == nil, let name = sqlite3_db_filename(db, "main") {
                let file = String(cString: name)
                if !file.isEmpty { path = file }
            }
        }
        var kind = Kind(code: code, databasePath: path)
        // A write that ran out of room: SQLite says SQLITE_FULL only for a short write with ENOSPC;
        // a write refused outright (ENOSPC, a quota, the file-size limit) comes back as SQLITE_IOERR_WRITE.
        if kind == .ioError, let db, [ENOSPC, EFBIG, EDQUOT].contains(sqlite3_system_errno(db)) { kind = .full }
        self.init(code: code, message: message, sql: sql, kind: kind)
    }

    /// An error detected by the wrapper before SQLite was involved.
    static func misuse(_ message: String, sql: String?, code: Int32 = SQLITE_MISUSE) -> SQLiteError {
        SQLiteError(code: code, message: message, sql: sql, kind: .other)
    }
}

extension SQLiteError.Kind {
    init(code: Int32, databasePath: String?) {
        switch code & 0xFF {
        case SQLITE_BUSY, SQLITE_LOCKED: self = .busy
        case SQLITE_READONLY: self = .readOnly
        case SQLITE_CORRUPT: self = .corrupt
        case SQLITE_NOTADB: self = .notADatabase
        case SQLITE_FULL: self = .full
        case SQLITE_CONSTRAINT: self = .constraint
        case SQLITE_IOERR: self = .ioError
        case SQLITE_CANTOPEN:
            self = Self.isExistingButNotWritable(databasePath) ? .readOnly : .cantOpen
        default: self = .other
        }
    }

    /// Whether `path` names an existing file that SQLite could not open because the file,
    /// or the folder that must hold its `-wal`/`-shm`/`-journal` companions, is not writable.
    private static func isExistingButNotWritable(_ path: String?) -> Bool {
        guard let path, !path.isEmpty, path != ":memory:" else { return false }
        let files = FileManager.default
        guard files.fileExists(atPath: path) else { return false }
        let folder = FilePath.folder(of: path)
        return !files.isWritableFile(atPath: path)
            || !files.isWritableFile(atPath: folder.isEmpty ? "." : folder)
    }
}

extension SQLiteError {
    /// A one-line explanation for an operator, naming the likely cause and where to look.
    var userMessage: String {
        switch kind {
        case .busy:
            "another orgctl apply, or another program, holds the state database's write lock"
        case .readOnly:
            "the state database is read-only (check the file and folder permissions)"
        case .corrupt:
            "the state database file is corrupt"
        case .notADatabase:
            "the file is not a SQLite database"
        case .full:
            "the disk is full (or the database reached its size limit)"
        case .cantOpen:
            "the state database cannot be opened (check that the file and its folder exist and are accessible)"
        case .constraint:
            "the state database rejected an inconsistent change (\(message))"
        case .ioError:
            "a disk I/O error occurred while accessing the state database"
        case .other:
            "the state database reported an error (\(message))"
        }
    }
}
