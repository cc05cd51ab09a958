internal import CPostgres

/// Where the current row's fields are: a libpq result (rows, pipelines, single-row mode) or
/// the current tuple of a binary COPY stream. One storage serves every row of a query; it is
/// invalidated after each callback, so a `PostgresRow` kept past its callback reads as a row of
/// no columns instead of freed memory.
///
/// Its properties opt out of dynamic exclusivity checks: they are touched several times per field
/// on the streaming hot path (the checks were a sixth of the client's time), and the storage is
/// private to one connection, which is not `Sendable` and never re-entered while a row is read.
final class RowStorage {
    @exclusivity(unchecked) var generation = 0
    @exclusivity(unchecked) var columnCount = 0
    /// The result and the row in it, when the row comes from a PGresult.
    @exclusivity(unchecked) var result: OpaquePointer?
    @exclusivity(unchecked) var rowIndex: Int32 = 0
    /// The COPY tuple: the buffer and each field's start and length (-1 for NULL).
    @exclusivity(unchecked) var base: UnsafeRawPointer?
    @exclusivity(unchecked) var starts: [Int] = []
    @exclusivity(unchecked) var lengths: [Int] = []
    /// Column type OIDs; empty when unknown (COPY's binary format carries none).
    @exclusivity(unchecked) var types: [UInt32] = []

    func invalidate() {
        generation &+= 1
        result = nil
        base = nil
        columnCount = 0
    }

    /// The field's bytes, nil for NULL or a column out of range.
    @inline(__always)
    func field(_ column: Int) -> UnsafeRawBufferPointer? {
        guard column >= 0, column < columnCount else { return nil }
        if let result {
            let index = Int32(column)
            if PQgetisnull(result, rowIndex, index) != 0 { return nil }
            let length = Int(PQgetlength(result, rowIndex, index))
            return UnsafeRawBufferPointer(start: PQgetvalue(result, rowIndex, index), count: length)
        }
        guard let base else { return nil }
        let length = lengths[column]
        if length < 0 { return nil }
        return UnsafeRawBufferPointer(start: base + starts[column], count: length)
    }

    func type(_ column: Int) -> UInt32? {
        column >= 0 && column < types.count ? types[column] : nil
    }

    /// Points the storage at row `row` of `result` and reads the column types once per result.
    func use(result: OpaquePointer, row: Int32, readTypes: Bool) {
        self.result = result
        self.base = nil
        self.rowIndex = row
        columnCount = Int(PQnfields(result))
        if readTypes {
            types.removeAll(keepingCapacity: true)
            for column in 0..<Int32(columnCount) { types.append(PQftype(result, column)) }
        }
    }

    func values() -> [PostgresValue] {
        (0..<columnCount).map { value($0) }
    }

    func value(_ column: Int) -> PostgresValue {
        guard let bytes = field(column) else { return .null }
        guard let type = type(column) else { return .bytes(Array(bytes)) }
        if TypeOID.isInteger(type), let integer = BinaryFormat.integer(bytes) { return .int(integer) }
        if type == TypeOID.bool, bytes.count == 1 { return .bool(bytes[0] != 0) }
        if TypeOID.isText(type) || type == TypeOID.jsonb || type == TypeOID.timestamptz || type == TypeOID.timestamp {
            return .text(text(column))
        }
        return .bytes(Array(bytes))
    }

    func text(_ column: Int) -> String {
        guard let bytes = field(column) else { return "" }
        switch type(column) {
        case TypeOID.jsonb? where bytes.count >= 1 && bytes[0] == 1:
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[1...]), as: UTF8.self)
        case let type? where TypeOID.isInteger(type):
            return BinaryFormat.integer(bytes).map { String($0) } ?? ""
        case TypeOID.bool?:
            return bytes.count == 1 && bytes[0] != 0 ? "true" : "false"
        case let type? where (type == TypeOID.timestamptz || type == TypeOID.timestamp) && bytes.count == 8:
            let micro = BinaryFormat.integer(bytes)!
            return BinaryFormat.rfc3339(unixMicroseconds: micro &+ BinaryFormat.postgresEpochMicroseconds)
        default:
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    func int(_ column: Int) -> Int64 {
        guard let bytes = field(column) else { return 0 }
        if let type = type(column), TypeOID.isText(type) {
            return Int64(String(decoding: bytes, as: UTF8.self)) ?? 0
        }
        return BinaryFormat.integer(bytes) ?? 0
    }
}

/// One row of a result, valid only inside the callback of `PostgresConnection.query` that
/// received it (kept longer, it reads as a row of no columns). Values are in PostgreSQL's binary
/// format. A column index out of range reads as NULL; nothing here traps.
///
/// Types: `query` without parameters streams through `COPY … (FORMAT binary)`, which carries no
/// column types, so the accessors decode by length (`int` takes 8, 4, 2 or 1 bytes) and `value`
/// returns `.bytes` for every non-NULL field. Results that come with types (`query` with
/// parameters, `rows`, `pipeline`) decode by type. Select `jsonb` as `col::text` when streaming
/// without parameters (its binary form starts with a version byte), and a timestamp with
/// `unixMicroseconds`.
public struct PostgresRow {
    let storage: RowStorage
    let generation: Int

    init(storage: RowStorage) {
        self.storage = storage
        self.generation = storage.generation
    }

    @inline(__always)
    private var valid: Bool { generation == storage.generation }

    public var count: Int { valid ? storage.columnCount : 0 }

    public func isNull(_ column: Int) -> Bool {
        !valid || storage.field(column) == nil
    }

    /// int2/int4/int8 by length (or, with a known text type, the text parsed); bool as 0/1; NULL as 0.
    public func int(_ column: Int) -> Int64 {
        valid ? storage.int(column) : 0
    }

    /// A bool (one byte, non-zero), an integer other than 0; NULL as false.
    public func bool(_ column: Int) -> Bool {
        guard valid, let bytes = storage.field(column) else { return false }
        if let type = storage.type(column), TypeOID.isText(type) {
            let text = String(decoding: bytes, as: UTF8.self)
            return text == "t" || text == "true"
        }
        return (BinaryFormat.integer(bytes) ?? 0) != 0
    }

    /// The text (invalid UTF-8 replaced, never a trap); NULL as "".
    public func text(_ column: Int) -> String {
        valid ? storage.text(column) : ""
    }

    public func optionalText(_ column: Int) -> String? {
        guard valid, storage.field(column) != nil else { return nil }
        return storage.text(column)
    }

    /// The raw value bytes (a copy); NULL as [].
    public func bytes(_ column: Int) -> [UInt8] {
        guard valid, let bytes = storage.field(column) else { return [] }
        return Array(bytes)
    }

    /// The raw value bytes without a copy, valid only inside `body`; NULL as an empty buffer.
    public func withBytes<T>(_ column: Int, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        guard valid, let bytes = storage.field(column) else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(bytes)
    }

    /// A timestamp/timestamptz column (8 bytes, PostgreSQL's binary form) as microseconds since the
    /// Unix epoch; NULL or another length as nil.
    public func unixMicroseconds(_ column: Int) -> Int64? {
        guard valid, let bytes = storage.field(column), bytes.count == 8, let raw = BinaryFormat.integer(bytes) else {
            return nil
        }
        return raw &+ BinaryFormat.postgresEpochMicroseconds
    }

    /// The value decoded by its column type when the result carries types: integers as `.int`,
    /// bool as `.bool`, character types, json, jsonb and timestamps (RFC 3339, UTC) as `.text`,
    /// everything else (bytea included) as `.bytes` of its binary form. Without types (COPY) every
    /// non-NULL value is `.bytes`.
    public func value(_ column: Int) -> PostgresValue {
        valid ? storage.value(column) : .null
    }
}
