import Foundation

/// Where the state lives, as `--state` (or `ORGCTL_STATE`) names it: a path is a SQLite file, a
/// `postgres://` or `postgresql://` URI a PostgreSQL database (libpq's connection URI, so the
/// `PG*` environment variables, `~/.pgpass`, `PGSERVICE` and `sslmode` all apply), whose
/// orgctl objects live in one schema (`--state-schema`, default `orgctl`).
public enum StateLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(conninfo: String, schema: String)

    public static let defaultSchema = "orgctl"

    public init(_ text: String, schema: String = StateLocation.defaultSchema) {
        if PostgresStateStore.isConnectionURI(text) {
            self = .postgres(conninfo: text, schema: schema)
        } else {
            self = .sqlite(path: text)
        }
    }

    /// The location for messages, hints and saved plans: a path as it is, a URI without its
    /// password (and the schema when it is not the default).
    public var display: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(_, let schema): argument + (schema == Self.defaultSchema ? "" : " (schema \(schema))")
        }
    }

    /// The `--state` value to show in a command line: the path, or the URI without its password.
    public var argument: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(let conninfo, _): PostgresStateStore.redacted(conninfo)
        }
    }

    /// The file a SQLite state lives in (nil for a server database).
    public var filePath: String? {
        if case .sqlite(let path) = self { return path }
        return nil
    }

    /// Whether a state exists there: the file, or orgctl's tables in the schema. When that cannot
    /// be told (the server cannot be reached), true: opening it then says what is wrong.
    public var exists: Bool {
        switch self {
        case .sqlite(let path): FileManager.default.fileExists(atPath: path)
        case .postgres(let conninfo, let schema): PostgresStateStore.schemaExists(conninfo: conninfo, schema: schema)
        }
    }
}

/// Opens the state wherever it lives.
public enum StateStores {
    /// Opens (and for `.readWrite`, creates or migrates) the state at `location`; nil for
    /// `.readOnly` when there is no state there yet (the state is empty). See
    /// ``SQLiteStateStore/open(path:access:lockTimeoutMilliseconds:key:readsOlderSchema:adopt:)``
    /// and ``PostgresStateStore/open(conninfo:schema:access:lockTimeoutMilliseconds:key:applicationName:)``.
    ///
    /// - Parameter applicationName: how this process shows to other sessions on a server (a waiting
    ///   apply names the holder of the lock with it).
    /// - Parameter createsMissing: false to get nil instead of a new state where there is none
    ///   (the one connection to a server then both asks and opens).
    /// - Parameter defersMigration: `.readWrite`: an older schema is migrated by the first write, in
    ///   its transaction, not when opening (see ``PostgresStateStore``'s `open`; `privacy forget` on
    ///   either backend). apply passes it for PostgreSQL only: it plans from an older SQLite file
    ///   read-only instead.
    public static func open(_ location: StateLocation, access: StateAccessMode, lockTimeoutMilliseconds: Int32, key: StateKey?,
                            readsOlderSchema: Bool = false, adopt: Bool = false, applicationName: String = "orgctl",
                            createsMissing: Bool = true, defersMigration: Bool = false) throws(StateError) -> (any StateStore)? {
        switch location {
        case .sqlite(let path):
            if !createsMissing, !FileManager.default.fileExists(atPath: path) { return nil }
            return try SQLiteStateStore.open(path: path, access: access, lockTimeoutMilliseconds: lockTimeoutMilliseconds, key: key,
                                             readsOlderSchema: readsOlderSchema, adopt: adopt, defersMigration: defersMigration)
        case .postgres(let conninfo, let schema):
            if adopt {
                throw StateError(.other, "adopting a platform database works on SQLite files only",
                                 help: "adopt the platform's SQLite database, then move it with 'orgctl state migrate --to postgres://…'; or export the PostgreSQL tables with 'orgctl export' and apply the result")
            }
            return try PostgresStateStore.open(conninfo: conninfo, schema: schema, access: access, lockTimeoutMilliseconds: lockTimeoutMilliseconds,
                                               key: key, applicationName: applicationName, createsMissing: createsMissing,
                                               defersMigration: defersMigration)
        }
    }
}
