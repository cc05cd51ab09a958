internal import CPostgres

extension PostgresConnection {
    /// Runs a query and hands its rows, one at a time, to `row`, which returns false to stop early.
    /// Never buffers the whole result. Without parameters the query streams through
    /// `COPY (sql) TO STDOUT (FORMAT binary)` (no result object per row; the query must be one
    /// that COPY accepts: SELECT, VALUES, TABLE, or a data-modifying statement with RETURNING);
    /// with parameters through libpq's single-row mode. Rows already handed over stay handed over
    /// when the query fails later. An error thrown by `row` stops the query and is rethrown.
    /// Stopping early (false or a throw) outside a transaction cancels the rest of the statement on
    /// the server, which rolls back a data-modifying one; inside a transaction the rest is read and
    /// discarded (a cancel would abort the transaction). `row` may not use this connection
    /// (it throws `.protocolViolation`); a `close()` from it takes effect when `query` returns.
    public func query(_ sql: String, _ parameters: [PostgresValue] = [], _ row: (PostgresRow) throws -> Bool) throws {
        try whileBusy { connection in
            if parameters.isEmpty {
                try streamCopy(connection, sql, row)
            } else {
                try streamSingleRows(connection, sql, parameters, row)
            }
        }
    }

    /// Why a stream stopped before its end.
    private enum Stop {
        case caller
        case thrown(any Error)
        case failed(PostgresError)
    }

    // MARK: COPY binary

    private func streamCopy(_ connection: OpaquePointer, _ sql: String, _ row: (PostgresRow) throws -> Bool) throws {
        var body = Substring(sql)
        while let last = body.last, last == ";" || last.isWhitespace { body.removeLast() }
        // The line breaks keep a trailing `--` comment from swallowing the closing parenthesis.
        let copy = "COPY (\n\(body)\n) TO STDOUT (FORMAT binary)"
        let idle = PQtransactionStatus(connection) == PQTRANS_IDLE
        try send(connection, copy, [], binaryResults: false)
        guard let first = PQgetResult(connection) else { throw failure(connection) }
        guard PQresultStatus(first) == PGRES_COPY_OUT else {
            // The query failed before any row (or was no query COPY accepts).
            let status = PQresultStatus(first)
            let error = status == PGRES_FATAL_ERROR ? self.error(from: first, connection) : PostgresError(
                kind: .protocolViolation, message: "the query did not start a COPY stream")
            PQclear(first)
            try? collect(connection) { _ in }
            throw error
        }
        PQclear(first)

        let decoder = CopyDecoder(storage: storage)
        var stop: Stop?
        var cancelled = false
        var buffer: UnsafeMutablePointer<CChar>?
        while true {
            let count = PQgetCopyData(connection, &buffer, 0)
            if count == -1 { break }
            if count < 0 {
                if stop == nil { stop = .failed(failure(connection)) }
                break
            }
            guard let data = buffer else { continue }
            if stop == nil {
                do {
                    if try !decoder.consume(UnsafeRawBufferPointer(start: data, count: Int(count)), row) { stop = .caller }
                } catch let error as PostgresError {
                    stop = .failed(error)
                } catch {
                    stop = .thrown(error)
                }
                if stop != nil, idle, !cancelled {
                    cancelled = true
                    cancel(connection)
                }
            }
            PQfreemem(data)
            buffer = nil
        }
        storage.invalidate()
        try finish(connection, stop: stop, cancelled: cancelled)
        // The server said the COPY succeeded; its data must have been complete too.
        if stop == nil, !decoder.finished {
            throw PostgresError(kind: .protocolViolation, message: "the COPY stream ended without its trailer")
        }
    }

    // MARK: Single-row mode

    private func streamSingleRows(
        _ connection: OpaquePointer, _ sql: String, _ parameters: [PostgresValue], _ row: (PostgresRow) throws -> Bool
    ) throws {
        let idle = PQtransactionStatus(connection) == PQTRANS_IDLE
        try send(connection, sql, parameters)
        guard PQsetSingleRowMode(connection) == 1 else {
            try? collect(connection) { _ in }
            throw PostgresError(kind: .protocolViolation, message: "cannot enter single-row mode")
        }
        var stop: Stop?
        var cancelled = false
        var typesRead = false
        var failure: PostgresError?
        while let result = PQgetResult(connection) {
            switch PQresultStatus(result) {
            case PGRES_SINGLE_TUPLE:
                if stop == nil {
                    storage.use(result: result, row: 0, readTypes: !typesRead)
                    typesRead = true
                    do {
                        if try !row(PostgresRow(storage: storage)) { stop = .caller }
                    } catch {
                        stop = .thrown(error)
                    }
                    storage.invalidate()
                    if stop != nil, idle, !cancelled {
                        cancelled = true
                        cancel(connection)
                    }
                }
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
                break
            default:
                if failure == nil { failure = error(from: result, connection) }
            }
            PQclear(result)
        }
        if let failure, !(cancelled && failure.sqlState == "57014") {
            if case .thrown(let error)? = stop { throw error }
            throw failure
        }
        if case .thrown(let error)? = stop { throw error }
        if stop == nil, failure == nil, PQstatus(connection) != CONNECTION_OK { throw self.failure(connection) }
    }

    // MARK: Shared

    /// Reads the results that end a COPY stream and throws what stopped it: the caller's own error
    /// first, then a decoding failure, then the server's error (a cancel we asked for is no error).
    private func finish(_ connection: OpaquePointer, stop: Stop?, cancelled: Bool) throws {
        var serverError: PostgresError?
        do {
            try collect(connection) { _ in }
        } catch {
            serverError = error
        }
        switch stop {
        case .thrown(let error)?: throw error
        case .failed(let error)?: throw error
        case .caller?:
            if let serverError, !(cancelled && serverError.sqlState == "57014") { throw serverError }
        case nil:
            if let serverError { throw serverError }
        }
    }

    /// Asks the server to cancel the running statement. PQcancel returns once the server has
    /// taken the request, so the cancel cannot reach a later statement.
    func cancel(_ connection: OpaquePointer) {
        guard let handle = PQgetCancel(connection) else { return }
        var errorBuffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(handle, &errorBuffer, Int32(errorBuffer.count))
        PQfreeCancel(handle)
    }
}

/// Splits COPY's binary format (header, tuples, trailer) into rows. The server sends one tuple per
/// CopyData message; a tuple split across messages is still handled (kept until complete).
final class CopyDecoder {
    private let storage: RowStorage
    private var pending: [UInt8] = []
    private var headerRead = false
    private(set) var finished = false

    init(storage: RowStorage) {
        self.storage = storage
        storage.types.removeAll(keepingCapacity: true)  // COPY carries no types
    }

    /// Decodes every complete tuple of `chunk` (after what is pending); false when `row` stopped.
    func consume(_ chunk: UnsafeRawBufferPointer, _ row: (PostgresRow) throws -> Bool) throws -> Bool {
        if pending.isEmpty {
            let used = try decode(chunk, row)
            if used.stopped { return false }
            if used.consumed < chunk.count { pending.append(contentsOf: chunk[used.consumed...]) }
            return true
        }
        pending.append(contentsOf: chunk)
        let (consumed, stopped) = try pending.withUnsafeBytes { try decode($0, row) }
        if stopped { return false }
        pending.removeFirst(consumed)
        return true
    }

    private func decode(_ buffer: UnsafeRawBufferPointer, _ row: (PostgresRow) throws -> Bool) throws -> (
        consumed: Int, stopped: Bool
    ) {
        guard let base = buffer.baseAddress else { return (0, false) }
        let end = buffer.count
        var position = 0
        if !headerRead {
            guard end >= 19 else { return (0, false) }
            guard buffer[0..<11].elementsEqual(BinaryFormat.copySignature) else {
                throw PostgresError(kind: .protocolViolation, message: "the COPY stream does not start with the binary signature")
            }
            let flags = BinaryFormat.int32(base, 11)
            guard flags & (1 << 16) == 0 else {
                throw PostgresError(kind: .protocolViolation, message: "the COPY stream carries OIDs, which are not supported")
            }
            let extensionLength = Int(BinaryFormat.int32(base, 15))
            guard extensionLength >= 0 else {
                throw PostgresError(kind: .protocolViolation, message: "the COPY stream's header is malformed")
            }
            guard end >= 19 + extensionLength else { return (0, false) }
            position = 19 + extensionLength
            headerRead = true
        }
        while position + 2 <= end {
            if finished {
                throw PostgresError(kind: .protocolViolation, message: "the COPY stream has data after its trailer")
            }
            let fieldCount = Int(BinaryFormat.int16(base, position))
            if fieldCount == -1 {
                finished = true
                position += 2
                continue
            }
            guard fieldCount >= 0 else {
                throw PostgresError(kind: .protocolViolation, message: "the COPY stream has a tuple of \(fieldCount) fields")
            }
            // Find the tuple's extent before touching the storage.
            var cursor = position + 2
            var complete = true
            storage.starts.removeAll(keepingCapacity: true)
            storage.lengths.removeAll(keepingCapacity: true)
            for _ in 0..<fieldCount {
                guard cursor + 4 <= end else {
                    complete = false
                    break
                }
                let length = Int(BinaryFormat.int32(base, cursor))
                cursor += 4
                if length < -1 {
                    throw PostgresError(kind: .protocolViolation, message: "the COPY stream has a field of length \(length)")
                }
                storage.starts.append(cursor)
                storage.lengths.append(length)
                if length > 0 {
                    guard length <= end - cursor else {
                        complete = false
                        break
                    }
                    cursor += length
                }
            }
            guard complete else { break }
            storage.result = nil
            storage.base = UnsafeRawPointer(base)
            storage.columnCount = fieldCount
            let keepGoing = try row(PostgresRow(storage: storage))
            storage.invalidate()
            position = cursor
            if !keepGoing { return (position, true) }
        }
        return (position, false)
    }
}
