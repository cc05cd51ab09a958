/// The database layout: platform tables (the contract the SaaS platform reads) and orgctl's
/// own `orgctl_` tables. Documented column by column in docs/state-schema.md.
///
/// `migrations[i]` takes a database from schema version `i` to `i + 1`; version 0 is an empty
/// file. A database whose version is newer than `currentVersion` was written by a newer orgctl
/// and is refused.
enum Schema {
    static let currentVersion = 9
    static let applicationID: Int32 = 0x6F72_6763  // "orgc": marks the file as an orgctl database

    /// One statement of a migration step. Adding a column or a table is data rather than SQL
    /// text, so that adoption can skip a column a platform database already has, and a read-only
    /// command can read an older database as if migrated (added columns as NULL, new tables
    /// empty) without writing to it.
    enum Statement {
        case sql(String)
        case addColumn(table: String, column: String, type: String)
        /// `CREATE TABLE name definition`, where the definition is the column list and any table options.
        case createTable(name: String, definition: String)
        /// Drops a table an earlier step created (its layout stays in ``Layout/droppedTables``, for the
        /// versions that have it). A read-only command reading an older database as migrated ignores the table.
        case dropTable(name: String)
        /// Rebuilds table `name` as `definition` (SQLite can neither drop a constraint nor change a column):
        /// the old table is renamed away, the new one created, `columns` of every row copied, the old one
        /// dropped, and `then` run (the new table's indexes). PostgreSQL runs `postgres` instead. A view,
        /// trigger or index of the user's on the table is handled by `SQLiteStateStore` (see `rebuild`).
        case rebuildTable(name: String, definition: String, columns: [String], then: [String], postgres: [String])

        var sql: String {
            switch self {
            case .sql(let text): text
            case .addColumn(let table, let column, let type): "ALTER TABLE \(table) ADD COLUMN \(column) \(type);"
            case .createTable(let name, let definition): "CREATE TABLE \(name) \(definition);"
            case .dropTable(let name): "DROP TABLE IF EXISTS \(name);"
            case .rebuildTable(let name, let definition, let columns, let then, _):
                ([
                    "ALTER TABLE \(name) RENAME TO \(Self.rebuiltName(name));",
                    "CREATE TABLE \(name) \(definition);",
                    "INSERT INTO \(name) (\(columns.joined(separator: ", "))) SELECT \(columns.joined(separator: ", ")) FROM \(Self.rebuiltName(name));",
                    "DROP TABLE \(Self.rebuiltName(name));",
                ] + then).joined(separator: "\n")
            }
        }

        /// The name the old table has while ``rebuildTable(name:definition:columns:then:postgres:)`` copies it.
        static func rebuiltName(_ table: String) -> String { "\(table)_before_rebuild" }
    }

    static let migrations: [[Statement]] = [
        // 0 -> 1: the first layout.
        [.sql(orgctlTablesV1 + platformTablesV1)],
        // 1 -> 2: API keys issued by apply: the rotation counter and its scope rule, and the key's
        // display prefix and SHA-256 (never the key).
        [
            .addColumn(table: "api_keys", column: "rotation", type: "INTEGER"),
            .addColumn(table: "api_keys", column: "rotate_on_scope_change", type: "INTEGER"),
            .addColumn(table: "api_keys", column: "key_prefix", type: "TEXT"),
            .addColumn(table: "api_keys", column: "key_sha256", type: "TEXT"),
        ],
        // 2 -> 3: the RFC 9162 Merkle tree over the audit entries (docs/audit-chain.md section 7).
        // Only perfect subtrees at levels 4, 8, 12, … are stored; the rest is computed from them
        // and from the entries. `SQLiteStateStore` fills it in for existing entries in the same
        // transaction (see `merkleMigration`).
        [
            .createTable(name: "orgctl_merkle", definition: """
                (
                    level INTEGER NOT NULL CHECK (level > 0 AND level % 4 = 0),
                    idx   INTEGER NOT NULL CHECK (idx >= 0),
                    hash  BLOB NOT NULL CHECK (length(hash) = 32),
                    PRIMARY KEY (level, idx)
                ) STRICT, WITHOUT ROWID
                """)
        ],
        // 3 -> 4: the attribute values orgctl wrote, for `orgctl drift` (see AppliedValues).
        // Rows applied before this step keep NULL until orgctl writes them again.
        [.addColumn(table: "orgctl_resources", column: "applied", type: "BLOB")],
        // 4 -> 5: row digests keyed with the state key (see ResourceDigest). No statement: each stored
        // digest d becomes HMAC(digest key, d) in Swift (`SQLiteStateStore.keyStoredDigests`), in the
        // same transaction, and the key's check value and id are recorded in `orgctl_meta`.
        [],
        // 5 -> 6: the webhook outbox: events written by apply in its transaction, their delivery
        // attempts, and endpoints disabled by a 410 (see Outbox/OutboxSQL.swift, docs/webhooks.md).
        OutboxSQL.tables.map { .createTable(name: $0.name, definition: $0.definition) },
        // 6 -> 7: data subjects (audit entry format 2, docs/audit-chain.md section 8): the person behind
        // each subject token, the values of a subject that entries name by token, and which entries
        // name each subject (see Privacy/SubjectTable.swift). Entries written before keep format 1.
        SubjectTable.tables.map { .createTable(name: $0.name, definition: $0.definition) },
        // 7 -> 8: the index of which entries name each subject goes: `privacy export` finds a subject's
        // entries by their token in the entries themselves, which it had to confirm anyway (an index in
        // a database others can write is a hint), and a first apply no longer writes a row per mention.
        [.dropTable(name: "orgctl_subject_entries")],
        // 8 -> 9: the e-mail uniqueness of `orgctl_subjects` becomes the named index `orgctl_subjects_email`
        // (an inline UNIQUE constraint's index cannot be dropped), so that a first apply can insert its
        // subjects without the index and build it once before it commits (SQLite/DeferredIndexes.swift).
        [
            .rebuildTable(name: "orgctl_subjects", definition: """
                (
                    id    TEXT PRIMARY KEY,
                    email TEXT NOT NULL
                ) STRICT, WITHOUT ROWID
                """, columns: ["id", "email"],
                then: ["CREATE UNIQUE INDEX orgctl_subjects_email ON orgctl_subjects (email);"],
                postgres: ["ALTER TABLE orgctl_subjects DROP CONSTRAINT IF EXISTS orgctl_subjects_email_key;",
                           "CREATE UNIQUE INDEX IF NOT EXISTS orgctl_subjects_email ON orgctl_subjects (email);"]),
        ],
    ]

    /// The SQL of migration step `step`, all of it.
    static func migrationSQL(_ step: Int) -> String {
        migrations[step].map(\.sql).joined(separator: "\n")
    }

    /// The step that creates `orgctl_merkle`: after it runs, the tree is computed for the entries already stored.
    static let merkleMigration = 2

    /// The step that keys the stored row digests (it needs the state key when rows are recorded).
    static let keyedDigestMigration = 4

    /// The step that creates the subject tables of audit entry format 2 (`privacy forget` needs them).
    static let subjectTablesMigration = 6

    /// Levels of the Merkle tree stored in `orgctl_merkle`: multiples of this (never level 0, whose
    /// hashes are the entries' leaf hashes). Any other node is folded from at most 2^(stride-1)
    /// stored nodes or entries, so a proof stays O(log n) reads while the table holds about one
    /// row per 15 entries.
    static let merkleStride = 4

    static func isStoredMerkleLevel(_ level: Int) -> Bool { level > 0 && level % merkleStride == 0 }

    /// orgctl's own tables as of version 1: what adopting a platform database adds to it
    /// (before the later migration steps run).
    static let orgctlTablesV1 = """
        CREATE TABLE orgctl_meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) STRICT;

        CREATE TABLE orgctl_resources (
            kind      TEXT NOT NULL,
            row_id    INTEGER NOT NULL,
            address   TEXT NOT NULL UNIQUE,
            digest    TEXT NOT NULL,
            audit_seq INTEGER NOT NULL,
            PRIMARY KEY (kind, row_id)
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE orgctl_audit (
            seq       INTEGER PRIMARY KEY,
            entry     BLOB NOT NULL,
            prev_hash BLOB NOT NULL,
            hash      BLOB NOT NULL
        ) STRICT;
        """

    /// Read-only stand-ins for orgctl's tables in a platform database not adopted yet, created in
    /// the connection's temporary schema (which shadows nothing: the file has no `orgctl_` tables).
    static let unadoptedStandIns = """
        CREATE TEMP TABLE orgctl_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TEMP TABLE orgctl_resources (kind TEXT, row_id INTEGER, address TEXT, digest TEXT, audit_seq INTEGER, applied BLOB,
                                            PRIMARY KEY (kind, row_id));
        CREATE TEMP TABLE orgctl_audit (seq INTEGER PRIMARY KEY, entry BLOB, prev_hash BLOB, hash BLOB);
        CREATE TEMP TABLE orgctl_merkle (level INTEGER, idx INTEGER, hash BLOB, PRIMARY KEY (level, idx));
        """

    /// The platform tables as of version 1. A database created by something other than orgctl
    /// can be adopted when its tables have exactly these names and columns.
    static let platformTablesV1 = """
        CREATE TABLE plans (
            id         INTEGER PRIMARY KEY,
            slug        TEXT NOT NULL UNIQUE,
            description TEXT,
            rate_limit  TEXT,
            features    TEXT
        ) STRICT;

        CREATE TABLE permissions (
            id          INTEGER PRIMARY KEY,
            name        TEXT NOT NULL UNIQUE,
            category    TEXT,
            description TEXT
        ) STRICT;

        CREATE TABLE events (
            id   INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE
        ) STRICT;

        CREATE TABLE tenants (
            id            INTEGER PRIMARY KEY,
            slug          TEXT NOT NULL UNIQUE,
            name          TEXT,
            plan          TEXT NOT NULL,
            status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'trial', 'suspended')),
            trial_ends    TEXT,
            domains       TEXT,
            primary_color TEXT,
            logo_url      TEXT,
            custom_domain TEXT
        ) STRICT;

        CREATE TABLE roles (
            id                   INTEGER PRIMARY KEY,
            tenant_id            INTEGER REFERENCES tenants (id),
            slug                 TEXT NOT NULL,
            description          TEXT,
            max_duration_seconds INTEGER
        ) STRICT;
        CREATE UNIQUE INDEX roles_system_slug ON roles (slug) WHERE tenant_id IS NULL;
        CREATE UNIQUE INDEX roles_tenant_slug ON roles (tenant_id, slug) WHERE tenant_id IS NOT NULL;

        CREATE TABLE role_permissions (
            role_id    INTEGER NOT NULL REFERENCES roles (id),
            permission TEXT NOT NULL,
            PRIMARY KEY (role_id, permission)
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE quotas (
            scope    TEXT NOT NULL CHECK (scope IN ('plan', 'tenant', 'team')),
            scope_id INTEGER NOT NULL,
            name     TEXT NOT NULL,
            value    INTEGER,
            PRIMARY KEY (scope, scope_id, name)
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE security_policies (
            tenant_id               INTEGER PRIMARY KEY REFERENCES tenants (id),
            mfa                     TEXT CHECK (mfa IN ('required', 'optional')),
            session_timeout_seconds INTEGER,
            ip_allowlist            TEXT
        ) STRICT;

        CREATE TABLE members (
            id        INTEGER PRIMARY KEY,
            tenant_id INTEGER NOT NULL REFERENCES tenants (id),
            email     TEXT NOT NULL,
            role      TEXT NOT NULL,
            expires   TEXT,
            UNIQUE (tenant_id, email)
        ) STRICT;

        CREATE TABLE teams (
            id          INTEGER PRIMARY KEY,
            tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
            slug        TEXT NOT NULL,
            name        TEXT,
            description TEXT,
            parent_id   INTEGER REFERENCES teams (id),
            UNIQUE (tenant_id, slug)
        ) STRICT;

        CREATE TABLE team_members (
            id        INTEGER PRIMARY KEY,
            team_id   INTEGER NOT NULL REFERENCES teams (id),
            member_id INTEGER NOT NULL REFERENCES members (id),
            role      TEXT NOT NULL CHECK (role IN ('lead', 'member')),
            UNIQUE (team_id, member_id)
        ) STRICT;
        CREATE INDEX team_members_member ON team_members (member_id);

        CREATE TABLE sso_settings (
            tenant_id        INTEGER PRIMARY KEY REFERENCES tenants (id),
            enforce          INTEGER,
            jit_enabled      INTEGER,
            jit_default_role TEXT
        ) STRICT;

        CREATE TABLE sso_providers (
            id                          INTEGER PRIMARY KEY,
            tenant_id                   INTEGER NOT NULL REFERENCES tenants (id),
            name                        TEXT NOT NULL,
            type                        TEXT NOT NULL CHECK (type IN ('saml', 'oidc')),
            entity_id                   TEXT,
            sso_url                     TEXT,
            certificate_pem             TEXT,
            certificate_sha256          TEXT,
            issuer                      TEXT,
            client_id                   TEXT,
            client_secret_ciphertext    BLOB,
            client_secret_key_id        TEXT,
            client_secret_fingerprint   TEXT,
            UNIQUE (tenant_id, name)
        ) STRICT;

        CREATE TABLE webhooks (
            id                 INTEGER PRIMARY KEY,
            tenant_id          INTEGER NOT NULL REFERENCES tenants (id),
            name               TEXT NOT NULL,
            url                TEXT,
            events             TEXT,
            secret_ciphertext  BLOB,
            secret_key_id      TEXT,
            secret_fingerprint TEXT,
            timeout_seconds    INTEGER,
            max_retries        INTEGER,
            enabled            INTEGER,
            UNIQUE (tenant_id, name)
        ) STRICT;

        CREATE TABLE api_keys (
            id          INTEGER PRIMARY KEY,
            tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
            name        TEXT NOT NULL,
            description TEXT,
            scopes      TEXT,
            rate_limit  TEXT,
            expires     TEXT,
            UNIQUE (tenant_id, name)
        ) STRICT;

        """
}
