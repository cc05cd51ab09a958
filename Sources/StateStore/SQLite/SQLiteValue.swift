/// A value bound to a statement parameter or read from a result column.
///
/// Text is UTF-8 and may contain NUL characters; `""` and `[]` are values, not NULL.
enum SQLiteValue: Equatable, Sendable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}
