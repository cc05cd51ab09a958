import Foundation
internal import Spec

/// A state-database problem, worded for an operator: what happened and what to do next.
public struct StateError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        case locked, readOnly, corrupt, notADatabase, notOrgctl, newerSchema, full, io, cantOpen
        case missingKey, badKey, secret, auditBroken, stale, other
    }

    public var kind: Kind
    public var message: String
    public var help: String

    public init(_ kind: Kind, _ message: String, help: String) {
        self.kind = kind
        self.message = message
        self.help = help
    }

    public var description: String { message }

    /// Translates a SQLite failure; the SQL text stays out of user messages (it is not actionable).
    init(_ error: SQLiteError, path: String) {
        switch error.kind {
        case .busy:
            self.init(.locked, "\(error.userMessage) ('\(path)')",
                      help: "wait for the other apply to finish, or raise --lock-timeout")
        case .readOnly:
            // A read-only folder stops even plan: SQLite must create the WAL and shared-memory files
            // beside a WAL-mode database to read it. A read-only file alone still allows plan.
            let folder = FilePath.folder(of: path)
            if !FileManager.default.isWritableFile(atPath: folder.isEmpty ? "." : folder) {
                self.init(.readOnly, "the folder of the state database is read-only: '\(folder.isEmpty ? "." : folder)' ('\(path)')",
                          help: "make the folder writable by this user: SQLite creates '\((path as NSString).lastPathComponent)-wal' and '-shm' beside the database, even to read it")
            } else {
                self.init(.readOnly, "\(error.userMessage): '\(path)'",
                          help: "make the file writable by this user, or run a read-only command (plan)")
            }
        case .corrupt:
            self.init(.corrupt, "\(error.userMessage): '\(path)'",
                      help: "restore the database from a backup; orgctl will not write to a corrupt file")
        case .notADatabase:
            self.init(.notADatabase, "'\(path)' is not a SQLite database",
                      help: "point --state (or ORGCTL_STATE) at an orgctl state database, or at a new file name")
        case .full:
            self.init(.full, "\(error.userMessage): '\(path)'", help: "free disk space (or raise the file-size limit) and run apply again")
        case .cantOpen:
            self.init(.cantOpen, "\(error.userMessage): '\(path)'", help: "check the path given by --state or ORGCTL_STATE")
        case .ioError:
            self.init(.io, "\(error.userMessage): '\(path)'", help: "check the disk and the file system, then retry")
        case .constraint, .other:
            self.init(.other, "\(error.userMessage): '\(path)'", help: "run 'orgctl audit verify' and check the database with 'sqlite3 \(path) \"PRAGMA integrity_check\"'")
        }
    }
}
