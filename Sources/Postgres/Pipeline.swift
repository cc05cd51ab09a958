internal import CPostgres

/// A statement prepared on a session: its text and its parameters' types (a NULL or text
/// parameter has type 0, which the server infers, so one text can be prepared more than once).
struct PreparedKey: Hashable {
    var sql: String
    var types: [UInt32]
}

extension PostgresConnection {
    /// The name of the session's prepared statement for `sql` with these parameter types,
    /// preparing it (`PQprepare`, one round trip) the first time.
    func prepared(_ connection: OpaquePointer, _ sql: String, _ parameters: Parameters) throws(PostgresError) -> String {
        let key = PreparedKey(sql: sql, types: parameters.typeOIDs)
        if let name = preparedStatements[key] { return name }
        let name = "orgctl_\(preparedStatements.count + 1)"
        let result = parameters.withPointers { count, types, _, _, _ in PQprepare(connection, name, sql, count, types) }
        defer { PQclear(result) }
        guard let result, PQresultStatus(result) == PGRES_COMMAND_OK else {
            if let result { throw error(from: result, connection, statementIndex: nil) }
            throw failure(connection)
        }
        preparedStatements[key] = name
        return name
    }

    /// Sends every statement in libpq's pipeline mode and one sync: one network round trip for
    /// all. Results come back in order (rows decoded like `PostgresRow.value`). Outside an explicit
    /// transaction the statements run as one implicit transaction: when one fails, the ones
    /// before it are rolled back and the ones after it are not run (libpq's pipeline semantics);
    /// the first failure is thrown, with `statementIndex` set.
    public func pipeline(_ statements: [(sql: String, parameters: [PostgresValue])]) throws(PostgresError) -> [PipelineResult] {
        let connection = try open()
        guard !statements.isEmpty else { return [] }
        // Everything is checked and encoded before the pipeline starts: a bad value sends nothing.
        var encoded: [Parameters] = []
        encoded.reserveCapacity(statements.count)
        for (index, statement) in statements.enumerated() {
            do {
                try checkNoNUL(statement.sql, what: "statement \(index + 1)")
                encoded.append(try Parameters(statement.parameters))
            } catch {
                var error = error
                error.statementIndex = index
                throw error
            }
        }
        // Each distinct statement is prepared once per session (before the pipeline: one round trip
        // each), so the server parses and plans it once, not once per row.
        var names: [String] = []
        names.reserveCapacity(statements.count)
        for (index, (statement, parameters)) in zip(statements, encoded).enumerated() {
            do {
                names.append(try prepared(connection, statement.sql, parameters))
            } catch {
                var error = error
                error.statementIndex = index
                throw error
            }
        }
        guard PQenterPipelineMode(connection) == 1 else { throw failure(connection) }
        defer { _ = PQexitPipelineMode(connection) }

        var sendFailure: PostgresError?
        var sent = 0
        for (name, parameters) in zip(names, encoded) {
            let queued = parameters.withPointers { count, _, values, lengths, formats in
                PQsendQueryPrepared(connection, name, count, values, lengths, formats, 1)
            }
            guard queued == 1 else {
                sendFailure = failure(connection)
                break
            }
            sent += 1
        }
        if PQpipelineSync(connection) != 1, sendFailure == nil { sendFailure = failure(connection) }

        var results: [PipelineResult] = []
        results.reserveCapacity(sent)
        var first: PostgresError?
        for index in 0..<sent {
            var outcome = PipelineResult(affectedRows: 0, rows: [])
            while let result = PQgetResult(connection) {
                switch PQresultStatus(result) {
                case PGRES_TUPLES_OK:
                    let count = PQntuples(result)
                    outcome.rows.reserveCapacity(Int(count))
                    for row in 0..<count {
                        storage.use(result: result, row: row, readTypes: row == 0)
                        outcome.rows.append(storage.values())
                    }
                    storage.invalidate()
                    outcome.affectedRows = PostgresConnection.affectedRows(result)
                case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                    outcome.affectedRows = PostgresConnection.affectedRows(result)
                    if first == nil {
                        do {
                            try checkCommit(statements[index].sql, tag: PostgresConnection.commandTag(result), statementIndex: index)
                        } catch {
                            first = error
                        }
                    }
                case PGRES_PIPELINE_ABORTED:
                    if first == nil {
                        first = PostgresError(
                            kind: .query, message: "the pipeline was aborted before this statement", statementIndex: index)
                    }
                case PGRES_PIPELINE_SYNC:
                    break
                case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
                    if first == nil {
                        first = PostgresError(
                            kind: .protocolViolation, message: "COPY is not supported in a pipeline", statementIndex: index)
                    }
                default:
                    if first == nil { first = error(from: result, connection, statementIndex: index) }
                }
                PQclear(result)
            }
            results.append(outcome)
        }
        // The sync's own result ends the pipeline.
        var spins = 0
        while spins < 4, let result = PQgetResult(connection) {
            let status = PQresultStatus(result)
            PQclear(result)
            if status == PGRES_PIPELINE_SYNC { break }
            spins += 1
        }
        if let error = first ?? sendFailure { throw error }
        if PQstatus(connection) != CONNECTION_OK { throw failure(connection) }
        return results
    }
}
