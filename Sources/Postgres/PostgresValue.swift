/// A parameter or a decoded result value. Integers of every width are `.int`; `jsonb`, `json`,
/// `timestamptz` and every character type come back as `.text` (see `PostgresRow.value`).
public enum PostgresValue: Sendable, Equatable, Hashable {
    case null
    case int(Int64)
    case text(String)
    case bytes([UInt8])
    case bool(Bool)
}

/// The column types `PostgresConnection.copyIn` can write in COPY's binary format, and the
/// values each accepts (`.null` goes into any of them):
///
/// | type | accepts |
/// |---|---|
/// | `int8`, `int4`, `int2` | `.int` (in range for the width) |
/// | `text` | `.text` |
/// | `jsonb` | `.text` (the JSON document) |
/// | `bytea` | `.bytes` |
/// | `bool` | `.bool` |
/// | `timestamptz` | `.text` in RFC 3339 (`2026-12-06T17:54:42Z`, optional fraction, `Z` or `±hh:mm`), or `.int` microseconds since the Unix epoch |
public enum PostgresColumnType: Sendable, Equatable {
    case int8, int4, int2, text, bytea, bool, jsonb, timestamptz

    var name: String {
        switch self {
        case .int8: "int8"
        case .int4: "int4"
        case .int2: "int2"
        case .text: "text"
        case .bytea: "bytea"
        case .bool: "bool"
        case .jsonb: "jsonb"
        case .timestamptz: "timestamptz"
        }
    }
}

/// What one statement of `PostgresConnection.pipeline` returned: its affected-row count
/// (`PQcmdTuples`, 0 when the statement reports none) and its rows, decoded like `PostgresRow.value`.
public struct PipelineResult: Sendable, Equatable {
    public var affectedRows: Int
    public var rows: [[PostgresValue]]

    public init(affectedRows: Int, rows: [[PostgresValue]]) {
        self.affectedRows = affectedRows
        self.rows = rows
    }
}
