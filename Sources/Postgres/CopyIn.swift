internal import CPostgres

extension PostgresConnection {
    /// `COPY table (columns) FROM STDIN (FORMAT binary)`: sends every row and returns the number
    /// of rows copied. `table` and each column name are SQL text as written in a statement
    /// (schema-qualify and quote them yourself where needed). Each value must fit its column's
    /// type (see `PostgresColumnType`); a value that does not, or a row of the wrong length, ends
    /// the COPY on the server (nothing is copied) and throws `.protocolViolation`. Rows are sent in
    /// 256 KiB messages as they are produced, so `rows` can be a lazy sequence of any length.
    public func copyIn(
        table: String, columns: [(name: String, type: PostgresColumnType)], rows: some Sequence<[PostgresValue]>
    ) throws(PostgresError) -> Int {
        do {
            return try whileBusy { connection in try copy(connection, table: table, columns: columns, rows: rows) }
        } catch let error as PostgresError {
            throw error
        } catch {
            throw PostgresError(kind: .protocolViolation, message: "copy into \(table): \(error)")
        }
    }

    private func copy(
        _ connection: OpaquePointer, table: String, columns: [(name: String, type: PostgresColumnType)],
        rows: some Sequence<[PostgresValue]>
    ) throws(PostgresError) -> Int {
        let columnList = columns.map(\.name).joined(separator: ", ")
        try send(connection, "COPY \(table) (\(columnList)) FROM STDIN (FORMAT binary)", [], binaryResults: false)
        guard let first = PQgetResult(connection) else { throw failure(connection) }
        let status = PQresultStatus(first)
        guard status == PGRES_COPY_IN else {
            let error = status == PGRES_FATAL_ERROR ? self.error(from: first, connection) : PostgresError(
                kind: .protocolViolation, message: "the COPY statement did not start a COPY FROM STDIN")
            PQclear(first)
            try? collect(connection) { _ in }
            throw error
        }
        PQclear(first)

        var buffer = BinaryFormat.copyHeader
        buffer.reserveCapacity(1 << 18)
        var problem: PostgresError?
        let types = columns.map(\.type)
        var rowIndex = -1
        // A counter and an index loop, not enumerated()/zip: copyIn is generic over the sequence
        // and unspecialised across modules, where those tuples cost a metadata lookup per row.
        rowLoop: for values in rows {
            rowIndex += 1
            guard values.count == columns.count else {
                problem = PostgresError(
                    kind: .protocolViolation,
                    message: "copy into \(table): row \(rowIndex + 1) has \(values.count) values for \(columns.count) columns")
                break
            }
            BinaryFormat.append(Int16(truncatingIfNeeded: columns.count), to: &buffer)
            for index in 0..<types.count {
                if let message = CopyEncoding.append(values[index], as: types[index], to: &buffer) {
                    problem = PostgresError(
                        kind: .protocolViolation,
                        message: "copy into \(table): row \(rowIndex + 1), column \(columns[index].name): \(message)")
                    break rowLoop
                }
            }
            if buffer.count >= 1 << 18 {
                guard put(connection, buffer) else { break }
                buffer.removeAll(keepingCapacity: true)
            }
        }
        if let problem {
            _ = PQputCopyEnd(connection, "orgctl: \(problem.message)")
            try? collect(connection) { _ in }
            throw problem
        }
        BinaryFormat.append(Int16(-1), to: &buffer)
        if put(connection, buffer) { _ = PQputCopyEnd(connection, nil) }
        var copied = 0
        try collect(connection) { result in copied = PostgresConnection.affectedRows(result) }
        return copied
    }

    /// One CopyData message; false when the connection failed (the error comes with the results).
    private func put(_ connection: OpaquePointer, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            PQputCopyData(connection, raw.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(raw.count)) == 1
        }
    }
}

enum CopyEncoding {
    /// Appends the field (length and bytes); returns why the value does not fit the type instead.
    static func append(_ value: PostgresValue, as type: PostgresColumnType, to buffer: inout [UInt8]) -> String? {
        switch (type, value) {
        case (_, .null):
            BinaryFormat.append(Int32(-1), to: &buffer)
        case (.int8, .int(let integer)):
            BinaryFormat.append(Int32(8), to: &buffer)
            BinaryFormat.append(integer, to: &buffer)
        case (.int4, .int(let integer)):
            guard let narrow = Int32(exactly: integer) else { return "\(integer) does not fit in int4" }
            BinaryFormat.append(Int32(4), to: &buffer)
            BinaryFormat.append(narrow, to: &buffer)
        case (.int2, .int(let integer)):
            guard let narrow = Int16(exactly: integer) else { return "\(integer) does not fit in int2" }
            BinaryFormat.append(Int32(2), to: &buffer)
            BinaryFormat.append(narrow, to: &buffer)
        case (.bool, .bool(let flag)):
            BinaryFormat.append(Int32(1), to: &buffer)
            buffer.append(flag ? 1 : 0)
        case (.text, .text(let text)):
            return appendBytes(text.utf8, prefix: nil, to: &buffer)
        case (.jsonb, .text(let text)):
            return appendBytes(text.utf8, prefix: 1, to: &buffer)  // jsonb's binary form: version 1, then the text
        case (.bytea, .bytes(let bytes)):
            return appendBytes(bytes, prefix: nil, to: &buffer)
        case (.timestamptz, .int(let micro)):
            BinaryFormat.append(Int32(8), to: &buffer)
            BinaryFormat.append(micro &- BinaryFormat.postgresEpochMicroseconds, to: &buffer)
        case (.timestamptz, .text(let text)):
            guard let micro = BinaryFormat.unixMicroseconds(rfc3339: text) else {
                return "'\(text.prefix(40))' is not an RFC 3339 timestamp"
            }
            BinaryFormat.append(Int32(8), to: &buffer)
            BinaryFormat.append(micro - BinaryFormat.postgresEpochMicroseconds, to: &buffer)
        default:
            return "a \(value.kindName) value does not fit a \(type.name) column"
        }
        return nil
    }

    private static func appendBytes(_ bytes: some Collection<UInt8>, prefix: UInt8?, to buffer: inout [UInt8]) -> String? {
        let length = bytes.count + (prefix == nil ? 0 : 1)
        guard length <= Int(Int32.max) else { return "the value is larger than 2 GiB" }
        BinaryFormat.append(Int32(length), to: &buffer)
        if let prefix { buffer.append(prefix) }
        buffer.append(contentsOf: bytes)
        return nil
    }
}

extension PostgresValue {
    var kindName: String {
        switch self {
        case .null: "null"
        case .int: "int"
        case .text: "text"
        case .bytes: "bytes"
        case .bool: "bool"
        }
    }
}
