/// A position in a configuration file.
///
/// `line` and `column` are 1-based; `column` counts Unicode scalars from the start of the line,
/// as editors and libyaml do. libyaml's 0-based marks are converted exactly once, in the loader.
public struct SourceLocation: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The file's path as the user named it (relative to the working directory when it was given so).
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }

    public static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        (lhs.file, lhs.line, lhs.column) < (rhs.file, rhs.line, rhs.column)
    }
}

/// How serious a diagnostic is. Errors make a configuration invalid; warnings do not.
public enum Severity: String, Sendable, Comparable, CaseIterable {
    case note, warning, error

    private var rank: Int {
        switch self {
        case .note: 0
        case .warning: 1
        case .error: 2
        }
    }

    public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.rank < rhs.rank }
}

/// One problem found in a configuration: data, not text.
///
/// Messages are lowercase, name the thing and read as a rule; `help` says how to fix it.
public struct Diagnostic: Hashable, Sendable {
    /// A secondary location that explains the main one ("first defined here").
    public struct Note: Hashable, Sendable {
        public var message: String
        public var location: SourceLocation?

        public init(_ message: String, at location: SourceLocation? = nil) {
            self.message = message
            self.location = location
        }
    }

    public var severity: Severity
    /// A stable identifier such as `spec.unknown-key`, documented in docs/spec.md.
    public var id: String
    public var message: String
    public var location: SourceLocation?
    public var notes: [Note]
    /// What to do about it ("did you mean 'members'?").
    public var help: String?

    public init(
        _ severity: Severity, _ id: String, _ message: String, at location: SourceLocation?,
        help: String? = nil, notes: [Note] = []
    ) {
        self.severity = severity
        self.id = id
        self.message = message
        self.location = location
        self.help = help
        self.notes = notes
    }
}

/// Collects diagnostics during one run; the exit status comes from what was reported.
public struct Diagnostics: Sendable {
    public private(set) var items: [Diagnostic] = []

    public init() {}

    public var hasErrors: Bool { items.contains { $0.severity == .error } }
    public var errorCount: Int { items.count { $0.severity == .error } }
    public var warningCount: Int { items.count { $0.severity == .warning } }

    public mutating func report(_ diagnostic: Diagnostic) { items.append(diagnostic) }

    public mutating func error(
        _ id: String, _ message: String, at location: SourceLocation?, help: String? = nil,
        notes: [Diagnostic.Note] = []
    ) {
        items.append(Diagnostic(.error, id, message, at: location, help: help, notes: notes))
    }

    public mutating func warning(
        _ id: String, _ message: String, at location: SourceLocation?, help: String? = nil,
        notes: [Diagnostic.Note] = []
    ) {
        items.append(Diagnostic(.warning, id, message, at: location, help: help, notes: notes))
    }

    public mutating func append(contentsOf other: Diagnostics) { items.append(contentsOf: other.items) }

    /// Diagnostics in a stable order: by file, line, column, then id, so output is deterministic.
    public var sorted: [Diagnostic] {
        items.enumerated().sorted { a, b in
            let la = a.element.location, lb = b.element.location
            switch (la, lb) {
            case let (x?, y?) where x != y: return x < y
            case (nil, _?): return true
            case (_?, nil): return false
            default: return a.offset < b.offset
            }
        }.map(\.element)
    }
}
