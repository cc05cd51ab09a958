internal import CPostgres

extension PostgresConnection {
    /// Where the connection stands between statements (`PQtransactionStatus`).
    public enum TransactionStatus: Sendable, Equatable {
        /// No transaction open (autocommit).
        case idle
        /// Inside BEGIN … COMMIT, all statements so far succeeded.
        case inTransaction
        /// Inside a transaction in which a statement failed: only ROLLBACK is useful now.
        case failed
        /// A statement is running (only seen from inside a `query` callback).
        case active
        /// The connection is closed or broken.
        case unknown
    }

    public var transactionStatus: TransactionStatus {
        guard let connection else { return .unknown }
        switch PQtransactionStatus(connection) {
        case PQTRANS_IDLE: return .idle
        case PQTRANS_INTRANS: return .inTransaction
        case PQTRANS_INERROR: return .failed
        case PQTRANS_ACTIVE: return .active
        default: return .unknown
        }
    }

    /// False once the connection is closed or broken (the server went away, the backend was
    /// terminated): open a new connection then.
    public var isConnected: Bool {
        guard let connection else { return false }
        return PQstatus(connection) == CONNECTION_OK
    }

    /// `name` as a quoted SQL identifier (`"my schema"`, embedded quotes doubled), for the places
    /// where a statement cannot take a parameter: DDL, `SET search_path`, a configurable schema.
    public func escapeIdentifier(_ name: String) throws(PostgresError) -> String {
        try escape(name) { PQescapeIdentifier($0, $1, $2) }
    }

    /// `text` as a quoted SQL string literal, correct for the connection's encoding and its
    /// `standard_conforming_strings` (an `E'…'` literal when it holds backslashes).
    public func escapeLiteral(_ text: String) throws(PostgresError) -> String {
        try escape(text) { PQescapeLiteral($0, $1, $2) }
    }

    private func escape(
        _ text: String, _ function: (OpaquePointer, UnsafePointer<CChar>, Int) -> UnsafeMutablePointer<CChar>?
    ) throws(PostgresError) -> String {
        let connection = try open()
        try checkNoNUL(text, what: "the value to quote")
        let escaped = text.withCString { function(connection, $0, text.utf8.count) }
        guard let escaped else { throw failure(connection) }
        defer { PQfreemem(escaped) }
        return String(cString: escaped)
    }
}
