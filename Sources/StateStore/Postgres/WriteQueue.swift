import Postgres

/// The writes ``PostgresDatabase`` holds back until something reads or the transaction commits,
/// arranged so that most of them reach the server as binary `COPY … FROM STDIN` instead of one
/// statement each (the server's cost per statement is what a first apply of 480k resources
/// spends most of its time on).
///
/// - A *run* of plain single-row inserts into one table with the same columns
///   (`INSERT INTO t (a, b) VALUES ($1, $2)`, exactly one row expected) is sent as one COPY.
///   A run ends where any other write comes, so the platform tables' writes (which have
///   foreign keys between them) reach the server in the order they were made.
/// - orgctl's own tables that nothing references and that reference nothing (``sideTables``:
///   the audit log, its tree, the resource records) get a queue each, apart from the platform
///   tables', so their inserts form long runs although an apply interleaves them with the
///   platform rows they describe. Within each queue the order is kept.
/// - The record of a resource is replaced with a delete-then-insert pair (PostgreSQL has no
///   `INSERT OR REPLACE`). Consecutive pairs become one delete of all their rows, then one run:
///   the same outcome as the pairs one by one, because a pair joins only when none of the
///   records inserted before it in the run has its address or its row (otherwise its delete
///   would have removed that record).
///
/// A run shorter than ``minimumCopyRows`` is sent as single statements, in the pipeline of its
/// neighbours. What reaches the tables is row for row what the single statements write: the
/// same values (ids come from ``PostgresDatabase/reserveRowID(table:)``, not from the COPY), the
/// same NULLs, in the same transaction.
struct WriteQueue {
    /// orgctl's tables whose writes may always move relative to other tables' writes: no foreign
    /// key from or to them, and no trigger or rule on any of orgctl's tables (the store refuses those).
    static let sideTables = ["orgctl_audit", "orgctl_merkle", "orgctl_resources"]
    /// The tables that may get a queue of their own in a write transaction whose database shows no
    /// foreign key from or to them (``WriteFacts``): every table of ``Layout`` that has no foreign key
    /// in the layout. Beside orgctl's own, `quotas`, whose upserts would otherwise split every run of
    /// tenant inserts into single statements.
    static let movableTables: [String] = Layout.tables.filter { table in
        !table.postgresOnly && table.columns.allSatisfy { $0.references == nil }
            && !Layout.tables.contains { other in other.columns.contains { $0.references?.hasPrefix(table.name + " ") == true } }
    }.map(\.name)
    /// Runs shorter than this go in a pipeline: a COPY costs a round trip of its own.
    static let minimumCopyRows = 8

    /// The tables with a queue of their own, in the order their writes are sent.
    private(set) var sides: [String]
    /// Whether `orgctl_resources` was empty when the transaction began and every write to it since is
    /// known here: then a record's delete-before-insert that matches no record inserted since deletes
    /// nothing, and is dropped (a first apply would otherwise send one per resource).
    private var tracksRecords: Bool
    /// Hashes of the addresses and rows of the records inserted in the transaction (a collision only
    /// keeps a delete that was not needed).
    private var recordedAddresses: Set<Int> = []
    private var recordedRows: Set<Int> = []
    /// Whether `role_permissions` was empty when the transaction began and every write to it since
    /// is known here: then a new role's delete of its permissions before it inserts them
    /// (``permissionsDelete``, expected to delete none) that names no role given permissions since
    /// deletes nothing, and is dropped (a first apply would otherwise send one per role, each
    /// ending the run of permission inserts).
    private var tracksPermissions: Bool
    private var permittedRoles: Set<Int64> = []
    /// The keys inserted in the transaction into each table that was empty when it began and whose
    /// every write since is known here: an upsert (``Upsert``) whose key is not among them inserts
    /// one row, as the plain insert before its `ON CONFLICT` does, and is queued as that insert, to
    /// join a run (a first apply's quota and Merkle node upserts, one statement each otherwise).
    private var upsertedKeys: [String: Set<[PostgresValue]>]

    /// A queue for a transaction whose database `facts` describe (default: nothing known).
    init(_ facts: WriteFacts = WriteFacts()) {
        sides = Self.sideTables + facts.movableTables.filter { !Self.sideTables.contains($0) }.sorted()
        side = Array(repeating: Lane(), count: sides.count)
        tracksRecords = facts.recordsEmpty
        tracksPermissions = facts.emptyTables.contains("role_permissions")
        upsertedKeys = Dictionary(uniqueKeysWithValues: facts.emptyTables.map { ($0, []) })
    }

    /// SQL text (as sent: `$N`) → how it is queued.
    private var kinds: [String: Kind] = [:]
    private var main = Lane()
    /// Each side table's queue, at its index in ``sides`` (an array: a dictionary hashed the
    /// table's name for every write).
    private var side: [Lane]
    /// Statements and rows waiting.
    private(set) var statements = 0
    private(set) var rows = 0

    var isEmpty: Bool { statements == 0 && rows == 0 }

    /// Queues one write; false when it cannot wait behind the queued ones (they must be sent
    /// first; then it is queued again, into an empty queue, which always takes it).
    mutating func append(_ write: Statement) -> Bool {
        var write = write
        var kind = self.kind(write.sql)
        if kind.mentionsTracked {
            if let upsert = kind.upsert, upsertedKeys[upsert.table] != nil {
                if write.rows == 1 || write.rows == nil, let key = upsert.key(write.parameters),
                    upsertedKeys[upsert.table]?.insert(key).inserted == true
                {
                    write.sql = upsert.insert
                    kind = self.kind(upsert.insert)
                }
            } else {
                for table in kind.mentioned where upsertedKeys[table] != nil { upsertedKeys[table] = nil }
            }
        }
        if tracksRecords, kind.touchesRecords {
            switch kind.shape {
            case .recordDelete:
                if let (address, row) = Self.recordKey(write.parameters, at: (0, 1, 2)) {
                    if !recordedAddresses.contains(address.hashValue) && !recordedRows.contains(row.hashValue) { return true }
                } else {
                    tracksRecords = false
                }
            case .insert(let insert) where insert.isRecord:
                if let (address, row) = insert.record(write.parameters) {
                    recordedAddresses.insert(address.hashValue)
                    recordedRows.insert(row.hashValue)
                } else {
                    tracksRecords = false
                }
            default:
                tracksRecords = false  // any other write to the records: nothing is assumed any more
            }
        }
        if tracksPermissions, kind.touchesPermissions {
            switch kind.shape {
            case .permissionsDelete where write.rows == 0 && write.parameters.count == 1:
                if case .int(let role) = write.parameters[0], !permittedRoles.contains(role) { return true }
            case .insert(let insert) where insert.table == "role_permissions":
                if let role = insert.roleID(write.parameters) {
                    permittedRoles.insert(role)
                } else {
                    tracksPermissions = false
                }
            default:
                tracksPermissions = false
            }
        }
        let isRow: Bool
        switch kind.destination {
        case .main: isRow = main.append(write, shape: kind.shape)
        case .side(let index): isRow = side[index].append(write, shape: kind.shape)
        case .alone:
            guard isEmpty else { return false }
            isRow = main.append(write, shape: .other)
        }
        if isRow { rows += 1 } else { statements += 1 }
        return true
    }

    /// How a statement is queued (cached per SQL text).
    private mutating func kind(_ sql: String) -> Kind {
        if let known = kinds[sql] { return known }
        var kind = Self.classify(sql, sides: sides)
        // A table leaves `upsertedKeys` and never joins it again: a text that names none of its
        // tables now never will, and its writes skip the lookups.
        kind.mentionsTracked = kind.mentioned.contains { upsertedKeys[$0] != nil }
        kinds[sql] = kind
        return kind
    }

    /// The rows queued for the platform tables among `tables` (runs of inserts).
    func rows(into tables: Set<String>) -> Int {
        var count = 0
        for case .run(let run) in main.writes where tables.contains(run.insert.table) { count += run.writes.count }
        return count
    }

    /// Gives `tables` queues of their own from now on: the foreign keys between them were dropped
    /// (``DeferredKeys``), so their writes may move relative to other tables'. Only between
    /// batches (an empty queue); otherwise nothing changes.
    mutating func free(_ tables: [String]) {
        guard isEmpty else { return }
        sides += tables.filter { !sides.contains($0) }
        side = Array(repeating: Lane(), count: sides.count)
        kinds = [:]
    }

    /// Notes a statement sent without the queue (a query, a plain run, a bulk insert): one that may
    /// write the records ends what the queue assumes of them.
    mutating func sentDirectly(_ sql: String) {
        guard tracksRecords || tracksPermissions || !upsertedKeys.isEmpty else { return }
        let verb = sql.drop { $0 == " " || $0 == "\n" || $0 == "(" }.prefix(6).uppercased()
        guard verb != "SELECT" else { return }
        for table in upsertedKeys.keys where Self.mentions(sql, table) { upsertedKeys[table] = nil }
        if Self.mentions(sql, "orgctl_resources") { tracksRecords = false }
        if Self.mentions(sql, "role_permissions") { tracksPermissions = false }
    }

    /// Everything queued, in an order that keeps what the tables end up holding (the platform
    /// tables' writes in the order made, then each side table's); the queue is empty after.
    mutating func take() -> [Write] {
        var all = main.writes
        for lane in side { all += lane.writes }
        removeAll()
        return all
    }

    mutating func removeAll() {
        main = Lane()
        side = Array(repeating: Lane(), count: sides.count)
        statements = 0
        rows = 0
    }

    // MARK: What a statement is

    /// SQLStateTransaction's delete before it inserts a record, as PostgresDatabase sends it.
    static let recordDelete = "DELETE FROM orgctl_resources WHERE address = $1 OR (kind = $2 AND row_id = $3)"
    /// SQLStateTransaction's delete of a role's permissions before it inserts them, as sent.
    static let permissionsDelete = "DELETE FROM role_permissions WHERE role_id = $1"

    static func classify(_ sql: String, sides: [String] = sideTables) -> Kind {
        let mentioned = Layout.tables.map(\.name).filter { mentions(sql, $0) }
        let destination: Destination
        if mentioned.count == 1, let index = sides.firstIndex(of: mentioned[0]) {
            destination = .side(index)
        } else if mentioned.contains(where: sides.contains) {
            destination = .alone  // a side table together with another one: it keeps its place among all writes
        } else {
            destination = .main
        }
        let shape: Shape = sql == recordDelete ? .recordDelete : sql == permissionsDelete ? .permissionsDelete : PlainInsert(sql).map { .insert($0) } ?? .other
        return Kind(destination: destination, shape: shape, touchesRecords: mentioned.contains("orgctl_resources"),
                    touchesPermissions: mentioned.contains("role_permissions"), mentioned: mentioned, upsert: Upsert(sql))
    }

    /// The address and row of a record write whose parameters hold them at these positions.
    static func recordKey(_ values: [PostgresValue], at positions: (address: Int, kind: Int, rowID: Int)) -> (String, RecordRow)? {
        guard values.count > max(positions.address, positions.kind, positions.rowID), case .text(let address) = values[positions.address],
            case .text(let kind) = values[positions.kind], case .int(let rowID) = values[positions.rowID]
        else { return nil }
        return (address, RecordRow(kind: kind, rowID: rowID))
    }

    /// Whether `name` occurs in `sql` as a whole word.
    static func mentions(_ sql: String, _ name: String) -> Bool {
        let text = Array(sql.utf8), word = Array(name.utf8)
        func isWordByte(_ byte: UInt8) -> Bool {
            byte == UInt8(ascii: "_") || (byte >= 48 && byte <= 57) || ((byte | 0x20) >= 97 && (byte | 0x20) <= 122)
        }
        var start = 0
        while start + word.count <= text.count {
            if text[start..<start + word.count].elementsEqual(word), start == 0 || !isWordByte(text[start - 1]),
                start + word.count == text.count || !isWordByte(text[start + word.count])
            {
                return true
            }
            start += 1
        }
        return false
    }

    enum Destination {
        /// The platform tables' queue.
        case main
        /// The queue of this side table (its index in ``sides``).
        case side(Int)
        /// No queue: sent after everything queued before it.
        case alone
    }

    struct Kind {
        var destination: Destination
        var shape: Shape
        /// Whether the statement names `orgctl_resources`.
        var touchesRecords = false
        /// Whether the statement names `role_permissions`.
        var touchesPermissions = false
        /// The tables of ``Layout`` it names.
        var mentioned: [String] = []
        /// Whether it named a table of `upsertedKeys` when it was classified.
        var mentionsTracked = false
        var upsert: Upsert?
    }

    /// `INSERT INTO t (c1, …, cn) VALUES ($1, …, $n) ON CONFLICT (k1, …) DO …` into a table of
    /// ``Layout``: without a row of its key, exactly what the plain insert before `ON CONFLICT` does.
    struct Upsert {
        let table: String
        /// The plain insert.
        let insert: String
        /// Where the key's values are among the parameters.
        let keyPositions: [Int]

        init?(_ sql: String) {
            guard let conflict = sql.firstRange(of: " ON CONFLICT ("), sql.firstRange(of: " RETURNING ") == nil,
                let close = sql[conflict.upperBound...].firstIndex(of: ")"),
                sql[sql.index(after: close)...].hasPrefix(" DO UPDATE SET ") || sql[sql.index(after: close)...] == " DO NOTHING",
                let plain = PlainInsert(String(sql[..<conflict.lowerBound]))
            else { return nil }
            let names = sql[conflict.upperBound..<close].split(separator: ",").map { $0.trimmingSpaces }
            let positions = names.compactMap { name in plain.columns.firstIndex { $0.name == name } }
            guard !names.isEmpty, positions.count == names.count else { return nil }
            table = plain.table
            insert = plain.sql
            keyPositions = positions
        }

        func key(_ values: [PostgresValue]) -> [PostgresValue]? {
            guard keyPositions.allSatisfy({ $0 < values.count }) else { return nil }
            return keyPositions.map { values[$0] }
        }
    }

    enum Shape {
        case insert(PlainInsert)
        case recordDelete
        case permissionsDelete
        case other
    }

    // MARK: Queued writes

    struct Statement {
        var sql: String
        var parameters: [PostgresValue]
        var rows: Int?
        var failure: (Int) -> StateError
    }

    enum Write {
        case statement(Statement)
        case run(Run)
        case deleteRecords(RecordDeletes)
    }

    /// One queue: its writes in order.
    struct Lane {
        private(set) var writes: [Write] = []
        /// The addresses and rows of the records inserted after the last ``Write/deleteRecords``.
        private var recordAddresses: Set<String> = []
        private var recordRows: Set<RecordRow> = []

        /// Queues the write; true when it joined a run or a batch of record deletes (a row), false
        /// when it waits as a statement of its own.
        mutating func append(_ write: Statement, shape: Shape) -> Bool {
            switch shape {
            case .recordDelete:
                guard write.parameters.count == 3, case .text(let address) = write.parameters[0],
                    case .text(let kind) = write.parameters[1], case .int(let rowID) = write.parameters[2]
                else { break }
                let row = RecordRow(kind: kind, rowID: rowID)
                if case .deleteRecords(let batch)? = writes.last {
                    batch.add(address: address, row: row)
                } else if writes.count >= 2, case .run(let run) = writes[writes.count - 1], run.insert.isRecord,
                    case .deleteRecords(let batch) = writes[writes.count - 2], !recordAddresses.contains(address), !recordRows.contains(row)
                {
                    // Moves before the run: none of its records has this address or row.
                    batch.add(address: address, row: row)
                } else {
                    let batch = RecordDeletes()
                    batch.add(address: address, row: row)
                    writes.append(.deleteRecords(batch))
                    recordAddresses = []
                    recordRows = []
                }
                return true
            case .insert(let insert):
                // A plain single-row insert inserts one row or fails (no trigger or rule: the store
                // refuses them), so one whose count is not checked (`rows` nil) runs as well.
                guard write.rows == 1 || write.rows == nil, insert.fits(write.parameters) else { break }
                // One instance per statement text (the queue's classification cache): compared by identity.
                if case .run(let run)? = writes.last, run.insert === insert {
                    run.writes.append(write)
                } else {
                    let run = Run(insert)
                    run.writes.append(write)
                    writes.append(.run(run))
                }
                // Only a run right after a batch of deletes takes later deletes before it: only its
                // records are checked against them.
                if insert.isRecord, writes.count >= 2, case .deleteRecords = writes[writes.count - 2],
                    let (address, row) = insert.record(write.parameters)
                {
                    recordAddresses.insert(address)
                    recordRows.insert(row)
                }
                return true
            case .permissionsDelete, .other:
                break
            }
            writes.append(.statement(write))
            return false
        }
    }

    /// Single-row inserts into one table with the same columns, in order.
    final class Run {
        let insert: PlainInsert
        var writes: [Statement] = []
        init(_ insert: PlainInsert) { self.insert = insert }
    }

    struct RecordRow: Hashable {
        var kind: String
        var rowID: Int64
    }

    /// The records to delete before a run of record inserts: by address, and by row.
    final class RecordDeletes {
        private(set) var addresses: [String] = []
        private(set) var kinds: [String] = []
        private(set) var rowIDs: [Int64] = []

        func add(address: String, row: RecordRow) {
            addresses.append(address)
            kinds.append(row.kind)
            rowIDs.append(row.rowID)
        }

        /// Two statements (an `OR` of both conditions would scan the table): each deletes what
        /// one half of the pairs' condition matches, so together they delete what the pairs did.
        var statements: [(sql: String, parameters: [PostgresValue])] {
            [("DELETE FROM orgctl_resources WHERE address = ANY ($1::text[])", [.text(Self.arrayLiteral(addresses))]),
             ("DELETE FROM orgctl_resources r USING unnest($1::text[], $2::bigint[]) AS u (kind, row_id) WHERE r.kind = u.kind AND r.row_id = u.row_id",
              [.text(Self.arrayLiteral(kinds)), .text("{" + rowIDs.map(String.init).joined(separator: ",") + "}")])]
        }

        /// `{"a","b"}`: every element quoted, `\` and `"` escaped (PostgreSQL's array input syntax).
        static func arrayLiteral(_ elements: [String]) -> String {
            var text = "{"
            for (index, element) in elements.enumerated() {
                if index > 0 { text += "," }
                text += "\""
                for scalar in element.unicodeScalars {
                    if scalar == "\\" || scalar == "\"" { text += "\\" }
                    text.unicodeScalars.append(scalar)
                }
                text += "\""
            }
            return text + "}"
        }
    }
}

/// `INSERT INTO table (c1, …, cn) VALUES ($1, …, $n)` into a table of ``Layout``, whose columns'
/// types say how COPY encodes each value. A class: every queued write of one statement text
/// shares the instance its classification made.
final class PlainInsert {
    let sql: String
    let table: String
    let columns: [(name: String, type: PostgresColumnType)]
    /// Where the address, kind and row id are (orgctl_resources only).
    private let recordColumns: (address: Int, kind: Int, rowID: Int)?
    /// Where the role id is (role_permissions only).
    private let roleColumn: Int?

    var isRecord: Bool { recordColumns != nil }

    init?(_ sql: String) {
        let prefix = "INSERT INTO "
        guard sql.hasPrefix(prefix), sql.hasSuffix(")") else { return nil }
        let rest = sql.dropFirst(prefix.count).dropLast()
        guard let open = rest.firstRange(of: " ("), let values = rest.firstRange(of: ") VALUES (") else { return nil }
        let table = String(rest[..<open.lowerBound])
        let names = rest[open.upperBound..<values.lowerBound].split(separator: ",").map { $0.trimmingSpaces }
        let placeholders = rest[values.upperBound...].split(separator: ",").map { $0.trimmingSpaces }
        guard let layout = Layout.table(table), !names.isEmpty, placeholders == (1...names.count).map({ "$\($0)" }) else { return nil }
        var columns: [(name: String, type: PostgresColumnType)] = []
        for name in names {
            guard let column = layout.columns.first(where: { $0.name == name }) else { return nil }
            columns.append((name, PostgresDatabase.columnType(column.type)))
        }
        self.sql = sql
        self.table = table
        self.columns = columns
        if table == "orgctl_resources", let address = names.firstIndex(of: "address"), let kind = names.firstIndex(of: "kind"),
            let rowID = names.firstIndex(of: "row_id")
        {
            recordColumns = (address, kind, rowID)
        } else {
            recordColumns = nil
        }
        roleColumn = table == "role_permissions" ? names.firstIndex(of: "role_id") : nil
    }

    /// The role id of a `role_permissions` insert.
    func roleID(_ values: [PostgresValue]) -> Int64? {
        guard let roleColumn, roleColumn < values.count, case .int(let role) = values[roleColumn] else { return nil }
        return role
    }

    /// Whether every value has the form COPY sends for its column (otherwise the insert goes as a
    /// statement, whose parameters the server converts as it always did).
    func fits(_ values: [PostgresValue]) -> Bool {
        guard values.count == columns.count else { return false }
        for (value, column) in zip(values, columns) {
            switch (value, column.type) {
            case (.null, _), (.int, .int8), (.bytes, .bytea), (.bool, .bool): continue
            case (.text(let text), .text): if text.utf8.contains(0) { return false }
            default: return false
            }
        }
        return true
    }

    func record(_ values: [PostgresValue]) -> (String, WriteQueue.RecordRow)? {
        guard let recordColumns else { return nil }
        return WriteQueue.recordKey(values, at: recordColumns)
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String { String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}

/// What a write transaction found in its database when it began (after taking the apply lock),
/// which lets ``WriteQueue`` send less: tables free of foreign keys get queues of their own, and
/// an empty `orgctl_resources` needs no record deletes.
struct WriteFacts {
    /// Tables of ``WriteQueue/movableTables`` that no foreign key of the database references or
    /// leaves from (a platform may add its own).
    var movableTables: [String] = []
    /// Whether `orgctl_resources` held no row.
    var recordsEmpty = false
    /// The tables of ``Layout`` that held no row (only looked at when `orgctl_resources` held none).
    var emptyTables: [String] = []
}
