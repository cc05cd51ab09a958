/// What the loader knows of a document's shape before decoding it: which mappings have fixed keys.
///
/// The value of a key that its mapping cannot have is never built: it is an error anyway
/// (`spec.unknown-key`, reported at the key), and a hostile file could put any amount of content
/// there. The loader replaces it with an empty scalar while still checking nesting depth.
public indirect enum YAMLShape: Sendable {
    /// Anything: built in full.
    case any
    /// A mapping with these keys only.
    case object([String: YAMLShape])
    /// A mapping keyed by names, each value of this shape.
    case map(YAMLShape)
    /// A list of values of this shape.
    case list(YAMLShape)

    /// The shape of the value under `key` in a mapping of this shape; nil when the key cannot occur.
    func value(forKey key: String) -> YAMLShape? {
        switch self {
        case .object(let fields): fields[key]
        case .map(let value): value
        case .any, .list: .any
        }
    }

    /// The shape of an item in a list of this shape.
    var item: YAMLShape {
        if case .list(let item) = self { return item }
        return .any
    }
}
