/// A 1-based line and column inside one file.
public struct Mark: Hashable, Sendable {
    public var line: Int32
    public var column: Int32

    public init(line: Int32, column: Int32) {
        self.line = line
        self.column = column
    }
}

/// A YAML node with its position: the tree the Spec module decodes from.
///
/// Scalars stay text; their meaning is decided by the field that reads them, so YAML 1.1
/// booleans such as `no` and `on` are never silently turned into booleans.
public struct Node: Sendable {
    public enum Style: UInt8, Sendable {
        /// Unquoted: `true`, `42`, `~` may mean a boolean, a number or null to the field reading it.
        case plain
        /// Quoted or block (`'…'`, `"…"`, `|`, `>`): always a string.
        case quoted
    }

    public struct Pair: Sendable {
        public var key: Node
        public var value: Node
    }

    public enum Content: Sendable {
        case scalar(String, Style)
        case sequence([Node])
        case mapping([Pair])
    }

    public var content: Content
    public var mark: Mark

    public init(_ content: Content, at mark: Mark) {
        self.content = content
        self.mark = mark
    }

    /// The scalar's text, if this node is a scalar.
    public var scalar: String? {
        if case .scalar(let text, _) = content { return text }
        return nil
    }

    /// True for `~`, `null`, `Null`, `NULL` and an empty plain scalar.
    public var isNull: Bool {
        guard case .scalar(let text, .plain) = content else { return false }
        switch text {
        case "", "~", "null", "Null", "NULL": return true
        default: return false
        }
    }

    /// How the node is named in messages: "a mapping", "a list", "the string 'x'".
    public var kindDescription: String {
        switch content {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .scalar:
            isNull ? "null" : "a scalar"
        }
    }
}
