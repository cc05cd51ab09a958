internal import CYAML
import Synchronization

/// Limits that keep hostile input from costing unbounded time, memory or output.
public struct LoaderLimits: Sendable {
    /// Deepest nesting of mappings and lists. Real configurations nest fewer than ten levels.
    public var maxDepth = 64
    /// Longest mapping key, in bytes.
    public var maxKeyBytes = 1024
    /// Longest scalar value, in bytes (certificates are files, not inline values, but a PEM
    /// pasted inline still fits).
    public var maxScalarBytes = 1 << 20
    /// Nodes that aliases may add by expansion, per file: stops "billion laughs" bombs.
    public var maxAliasExpansion = 100_000
    /// Largest file read, in bytes.
    public var maxFileBytes = 256 << 20
    /// YAML bytes read in one run, over all files (`--max-input-bytes`).
    public var maxTotalBytes = defaultMaxTotalBytes
    /// YAML nodes built in one run, over all files (`--max-input-nodes`). Values under keys that
    /// their mapping cannot have are not built, so they do not count.
    public var maxTotalNodes = defaultMaxTotalNodes

    public static let defaultMaxTotalBytes = 256 << 20
    public static let defaultMaxTotalNodes = 5_000_000

    public init() {}
}

/// What one run may still read and build, shared by the files loaded in parallel.
public final class InputBudget: Sendable {
    let bytes = Atomic<Int>(0)
    let nodes = Atomic<Int>(0)

    public init() {}

    /// Nodes built so far in this run (for reports and tests).
    public var nodesBuilt: Int { nodes.load(ordering: .relaxed) }
}

/// One YAML document of a file: its root node and where it starts.
public struct Document: Sendable {
    public var root: Node
    public var start: Mark
}

/// Turns YAML text into positioned node trees with libyaml's event parser.
///
/// Everything outside the YAML core schema that could surprise a reviewer is an error here:
/// merge keys (`<<`), tags other than the core schema's, non-scalar keys and duplicate keys.
/// Anchors and aliases are allowed, with bounded expansion.
public struct YAMLLoader: Sendable {
    public var limits: LoaderLimits
    /// Which keys mappings can have: values under other keys are not built. `.any` builds everything.
    public var shape: YAMLShape
    /// Shared with the other files of the run; nil: no total budget.
    public var budget: InputBudget?

    public init(limits: LoaderLimits = LoaderLimits(), shape: YAMLShape = .any, budget: InputBudget? = nil) {
        self.limits = limits
        self.shape = shape
        self.budget = budget
    }

    /// Parses `bytes` (the contents of `file`) into documents, reporting problems into `diagnostics`.
    ///
    /// On a syntax error the documents parsed before it are still returned, so one run can report
    /// problems in earlier documents too.
    public func load(_ bytes: [UInt8], file: String, into diagnostics: inout Diagnostics) -> [Document] {
        if bytes.count > limits.maxFileBytes {
            diagnostics.error(
                "spec.file-too-large", "file is larger than \(limits.maxFileBytes >> 20) MiB",
                at: SourceLocation(file: file, line: 1, column: 1),
                help: "split the configuration into several files")
            return []
        }
        if let budget {
            let total = budget.bytes.add(bytes.count, ordering: .relaxed).newValue
            if total > limits.maxTotalBytes {
                diagnostics.error(
                    "spec.input-budget", "the configuration's files hold more than \(ByteSize(bytes: Int64(limits.maxTotalBytes))) of YAML",
                    at: SourceLocation(file: file, line: 1, column: 1),
                    help: "raise the budget with --max-input-bytes if the configuration really is this large")
                return []
            }
        }
        if let problem = Self.encodingProblem(bytes, file: file) {
            diagnostics.report(problem)
            return []
        }
        var builder = TreeBuilder(file: file, limits: limits, shape: shape, budget: budget)
        // A UTF-8 byte order mark (editors on Windows write one) is not content.
        let skip = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        bytes.withUnsafeBufferPointer { buffer in
            builder.run(UnsafeBufferPointer(rebasing: buffer[skip...]))
        }
        diagnostics.append(contentsOf: builder.diagnostics)
        return builder.documents
    }

    /// Rejects what libyaml would misreport or accept: UTF-16/32 input, NUL bytes and invalid UTF-8,
    /// each with the exact position of the first bad byte.
    static func encodingProblem(_ bytes: [UInt8], file: String) -> Diagnostic? {
        if bytes.starts(with: [0xFE, 0xFF]) || bytes.starts(with: [0xFF, 0xFE]) {
            return Diagnostic(
                .error, "spec.encoding", "file is not UTF-8 (it starts with a UTF-16 byte order mark)",
                at: SourceLocation(file: file, line: 1, column: 1), help: "save the file as UTF-8")
        }
        var line = 1
        var column = 1
        var index = 0
        let count = bytes.count
        return bytes.withUnsafeBufferPointer { b -> Diagnostic? in
            while index < count {
                let byte = b[index]
                if byte < 0x80 {
                    if byte == 0 {
                        return Diagnostic(
                            .error, "spec.encoding", "file contains a NUL byte",
                            at: SourceLocation(file: file, line: line, column: column),
                            help: "YAML files are text: remove the NUL byte (is this a binary file?)")
                    }
                    if byte == 0x0A {
                        line += 1
                        column = 1
                    } else {
                        column += 1
                    }
                    index += 1
                    continue
                }
                let length: Int
                let minimum: UInt32
                var scalar: UInt32
                switch byte {
                case 0xC2...0xDF: (length, minimum, scalar) = (2, 0x80, UInt32(byte & 0x1F))
                case 0xE0...0xEF: (length, minimum, scalar) = (3, 0x800, UInt32(byte & 0x0F))
                case 0xF0...0xF4: (length, minimum, scalar) = (4, 0x10000, UInt32(byte & 0x07))
                default: length = 0; minimum = 0; scalar = 0
                }
                var valid = length > 0 && index + length <= count
                if valid {
                    for k in 1..<length {
                        let next = b[index + k]
                        if next & 0xC0 != 0x80 { valid = false; break }
                        scalar = scalar << 6 | UInt32(next & 0x3F)
                    }
                }
                if valid, scalar < minimum || scalar > 0x10FFFF || (0xD800...0xDFFF).contains(scalar) {
                    valid = false
                }
                if !valid {
                    return Diagnostic(
                        .error, "spec.encoding", "file is not valid UTF-8",
                        at: SourceLocation(file: file, line: line, column: column),
                        help: "save the file as UTF-8; the byte 0x\(String(byte, radix: 16, uppercase: true)) cannot start or continue a character here")
                }
                index += length
                column += 1
            }
            return nil
        }
    }
}

/// Builds nodes from libyaml events with an explicit stack (no recursion, so depth cannot
/// overflow the call stack).
private struct TreeBuilder {
    let file: String
    let limits: LoaderLimits
    var diagnostics = Diagnostics()
    var documents: [Document] = []

    private enum FrameKind { case sequence, mapping }

    private struct Frame {
        var kind: FrameKind
        var mark: Mark
        var anchor: String?
        var items: [Node] = []
        var pairs: [Node.Pair] = []
        var pendingKey: Node?
        /// Nodes in this subtree counting alias expansion; feeds the expansion limit.
        var size = 1
        /// Keys seen so far, once the mapping is large enough that a linear scan would cost.
        var keyIndex: [String: Mark]?
        /// Which keys this mapping can have (or what its items are).
        var shape: YAMLShape = .any
        /// The shape of the value of `pendingKey`; `skipValue` when the key cannot occur here.
        var valueShape: YAMLShape = .any
        var skipValue = false
    }

    private var stack: [Frame] = []
    private var anchors: [String: (node: Node, size: Int)] = [:]
    private var expanded = 0
    private var documentStart = Mark(line: 1, column: 1)
    private var failed = false
    private let shape: YAMLShape
    private let budget: InputBudget?
    /// Nodes built and not yet added to the shared budget.
    private var unreported = 0
    /// Open collections inside a value that is being skipped.
    private var skipDepth = 0
    /// The open collections of a skipped value: their size counting alias expansion, and anchor.
    private var skipFrames: [(size: Int, anchor: String?, mark: Mark)] = []

    init(file: String, limits: LoaderLimits, shape: YAMLShape = .any, budget: InputBudget? = nil) {
        self.file = file
        self.limits = limits
        self.shape = shape
        self.budget = budget
    }

    /// True when the next node is the value of a key its mapping cannot have.
    private var skipsNextValue: Bool {
        guard let top = stack.last else { return false }
        return top.kind == .mapping && top.pendingKey != nil && top.skipValue
    }

    /// What stands for a value that is not built (an anchor on it names this too).
    private func placeholder(_ mark: Mark) -> Node { Node(.scalar("", .plain), at: mark) }

    /// Counts a built node against the run's budget, in batches (the budget is shared across threads).
    private mutating func count(at mark: Mark) {
        unreported += 1
        if unreported >= 4096 { flushBudget(at: mark) }
    }

    private mutating func flushBudget(at mark: Mark) {
        guard let budget, unreported > 0, !failed else { return }
        let total = budget.nodes.add(unreported, ordering: .relaxed).newValue
        unreported = 0
        if total > limits.maxTotalNodes {
            fail("spec.input-budget", "the configuration has more than \(limits.maxTotalNodes) YAML nodes", at: mark,
                 help: "raise the budget with --max-input-nodes if the configuration really is this large")
        }
    }

    private func location(_ mark: Mark) -> SourceLocation {
        SourceLocation(file: file, line: Int(mark.line), column: Int(mark.column))
    }

    private static func mark(_ m: yaml_mark_t) -> Mark {
        Mark(line: Int32(clamping: m.line + 1), column: Int32(clamping: m.column + 1))
    }

    /// The input while `run` parses it (libyaml reads from the same memory).
    private var input: UnsafeBufferPointer<UInt8>?

    private func isFollowedByColon(_ offset: Int) -> Bool {
        guard let input else { return false }
        var index = offset
        while index < input.count, input[index] == 0x20 { index += 1 }
        return index < input.count && input[index] == UInt8(ascii: ":")
    }

    mutating func run(_ buffer: UnsafeBufferPointer<UInt8>) {
        input = buffer
        defer { input = nil }
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            diagnostics.error("spec.yaml", "out of memory while starting the YAML parser", at: location(Mark(line: 1, column: 1)))
            return
        }
        defer { yaml_parser_delete(&parser) }
        // libyaml keeps this pointer: every parse call happens inside the caller's buffer scope.
        yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)

        while !failed {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else {
                reportSyntaxError(parser, buffer)
                return
            }
            defer { yaml_event_delete(&event) }
            if event.type == YAML_STREAM_END_EVENT {
                flushBudget(at: Self.mark(event.start_mark))
                return
            }
            if skipDepth > 0 || skipsNextValue {
                skip(&event)
            } else {
                handle(&event)
            }
        }
    }

    /// Follows the events of a value that is not built. Nothing is kept but what the checks need:
    /// nesting depth, tags, and anchors with their expanded sizes (they name a placeholder), so
    /// depth limits, forbidden tags, undefined aliases and alias bombs are reported as if it were.
    private mutating func skip(_ event: inout yaml_event_t) {
        let start = Self.mark(event.start_mark)
        switch event.type {
        case YAML_SCALAR_EVENT:
            guard checkTag(event.data.scalar.tag, at: start, scalar: true) else { return }
            if let anchor = event.data.scalar.anchor { anchors[String(cString: anchor)] = (placeholder(start), 1) }
            skipped(size: 1, at: start)
        case YAML_ALIAS_EVENT:
            guard let target = expand(&event, at: start) else { return }
            skipped(size: target.size, at: start)
        case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
            let isMapping = event.type == YAML_MAPPING_START_EVENT
            guard checkTag(isMapping ? event.data.mapping_start.tag : event.data.sequence_start.tag, at: start, scalar: false) else { return }
            guard withinDepth(stack.count + skipDepth, at: start) else { return }
            skipDepth += 1
            let anchor = isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor
            skipFrames.append((size: 1, anchor: anchor.map { String(cString: $0) }, mark: start))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let frame = skipFrames.popLast() else { return }
            skipDepth -= 1
            if let anchor = frame.anchor { anchors[anchor] = (placeholder(frame.mark), frame.size) }
            skipped(size: frame.size, at: frame.mark)
        default:
            break
        }
    }

    /// The node an alias names, counted against the expansion limit; nil (reported) when it names
    /// no anchor or the limit is passed.
    private mutating func expand(_ event: inout yaml_event_t, at start: Mark) -> (node: Node, size: Int)? {
        let name = String(cString: event.data.alias.anchor)
        guard let target = anchors[name] else {
            fail("spec.yaml-alias", "alias '*\(name)' names no anchor defined before it", at: start,
                 help: "define the anchor '&\(name)' earlier in the same document")
            return nil
        }
        expanded += target.size
        if expanded > limits.maxAliasExpansion {
            fail(
                "spec.alias-bomb", "aliases expand to more than \(limits.maxAliasExpansion) nodes", at: start,
                help: "write the repeated content out, or use fewer nested aliases")
            return nil
        }
        return target
    }

    /// False (reported) when a collection opened at `depth` open collections would be too deep.
    private mutating func withinDepth(_ depth: Int, at start: Mark) -> Bool {
        guard depth >= limits.maxDepth else { return true }
        fail(
            "spec.too-deep", "nesting is deeper than \(limits.maxDepth) levels", at: start,
            help: "flatten the structure; orgctl configurations nest only a few levels")
        return false
    }

    /// A finished node inside a skipped value: counted in its parent, or, at the top, replaced by a placeholder.
    private mutating func skipped(size: Int, at mark: Mark) {
        if skipFrames.isEmpty {
            add(placeholder(mark), size: 1)
        } else {
            skipFrames[skipFrames.count - 1].size += size
        }
    }

    private mutating func reportSyntaxError(_ parser: yaml_parser_t, _ buffer: UnsafeBufferPointer<UInt8>) {
        let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
        let context = parser.context.map { String(cString: $0) }
        var mark = Self.mark(parser.problem_mark)
        // Reader errors (bad characters) carry a byte offset instead of a mark: count lines up to it.
        let offset: Int
        if parser.error == YAML_READER_ERROR {
            offset = Int(parser.problem_offset)
            mark = Self.position(ofOffset: offset, in: buffer)
        } else {
            offset = Int(parser.problem_mark.index)
        }
        var help = "fix the YAML syntax at this position"
        var message = problem
        var id = "spec.yaml-syntax"
        if offset >= 0, offset < buffer.count, buffer[offset] == 0x09 {
            message = "a tab character is used for indentation"
            help = "YAML indentation must use spaces: replace the tab with spaces"
        } else if parser.error == YAML_READER_ERROR {
            message = "file contains a control character that YAML does not allow"
            help = "remove the control character (YAML text may not hold raw control codes)"
        } else if context == "while scanning a simple key" {
            // libyaml gives up on plain keys longer than 1024 characters.
            id = "spec.key-too-long"
            message = "mapping key is longer than \(limits.maxKeyBytes) bytes"
            help = "use a shorter key"
            mark = Self.mark(parser.context_mark)
        } else if problem.contains("mapping values are not allowed") {
            help = "quote the value if it contains ': ', or check the indentation of this line"
        } else if problem.contains("did not find expected key") {
            help = "check the indentation: keys of one mapping must start in the same column"
        }
        if mark.line == 0 { mark = Mark(line: 1, column: 1) }
        var notes: [Diagnostic.Note] = []
        if let context, id == "spec.yaml-syntax" {
            notes.append(.init("\(context) that started here", at: location(Self.mark(parser.context_mark))))
        }
        diagnostics.error(id, message, at: location(mark), help: help, notes: notes)
    }

    /// 1-based line and column (in characters) of a byte offset.
    private static func position(ofOffset offset: Int, in buffer: UnsafeBufferPointer<UInt8>) -> Mark {
        var line: Int32 = 1, column: Int32 = 1
        for byte in buffer.prefix(max(0, min(offset, buffer.count))) {
            if byte == 0x0A {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return Mark(line: line, column: column)
    }

    private mutating func fail(_ id: String, _ message: String, at mark: Mark, help: String) {
        diagnostics.error(id, message, at: location(mark), help: help)
        failed = true
    }

    private mutating func checkTag(_ tag: UnsafeMutablePointer<yaml_char_t>?, at mark: Mark, scalar: Bool) -> Bool {
        guard let tag else { return true }
        let text = String(cString: tag)
        let core: Set<String> = [
            "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq",
            "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null",
            "tag:yaml.org,2002:float", "!",
        ]
        if core.contains(text) { return true }
        fail(
            "spec.yaml-tag", "tag '\(String(text.prefix(80)))' is not allowed", at: mark,
            help: "remove the tag; orgctl reads plain YAML (only the core schema tags such as !!str are accepted)")
        return false
    }

    private mutating func handle(_ event: inout yaml_event_t) {
        let start = Self.mark(event.start_mark)
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            documentStart = start
            anchors.removeAll(keepingCapacity: true)
        case YAML_DOCUMENT_END_EVENT, YAML_STREAM_START_EVENT, YAML_NO_EVENT:
            break
        case YAML_SCALAR_EVENT:
            let data = event.data.scalar
            guard checkTag(data.tag, at: start, scalar: true) else { return }
            // A key, or a scalar that libyaml could not take as a key because it is longer than its
            // 1024-character simple-key limit but is followed by ':'.
            let isKey = stack.last.map { $0.kind == .mapping && $0.pendingKey == nil } ?? false
                || (data.length > limits.maxKeyBytes && isFollowedByColon(Int(event.end_mark.index)))
            if isKey && data.length > limits.maxKeyBytes {
                fail("spec.key-too-long", "mapping key is longer than \(limits.maxKeyBytes) bytes", at: start, help: "use a shorter key")
                return
            }
            if data.length > limits.maxScalarBytes {
                fail(
                    "spec.value-too-long", "value is longer than \(limits.maxScalarBytes) bytes", at: start,
                    help: "shorten the value")
                return
            }
            let text = String(decoding: UnsafeBufferPointer(start: data.value, count: data.length), as: UTF8.self)
            var style: Node.Style = data.style == YAML_PLAIN_SCALAR_STYLE ? .plain : .quoted
            if let tag = data.tag, String(cString: tag) == "tag:yaml.org,2002:str" { style = .quoted }
            let node = Node(.scalar(text, style), at: start)
            if let anchor = data.anchor { anchors[String(cString: anchor)] = (node, 1) }
            add(node, size: 1)
        case YAML_ALIAS_EVENT:
            guard let target = expand(&event, at: start) else { return }
            add(target.node, size: target.size)
        case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
            let isMapping = event.type == YAML_MAPPING_START_EVENT
            let tag = isMapping ? event.data.mapping_start.tag : event.data.sequence_start.tag
            guard checkTag(tag, at: start, scalar: false) else { return }
            guard withinDepth(stack.count, at: start) else { return }
            let anchorPointer = isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor
            let shape: YAMLShape
            if let top = stack.last {
                shape = top.kind == .sequence ? top.shape.item : top.pendingKey != nil ? top.valueShape : .any
            } else {
                shape = self.shape
            }
            stack.append(
                Frame(kind: isMapping ? .mapping : .sequence, mark: start, anchor: anchorPointer.map { String(cString: $0) },
                      shape: shape))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let frame = stack.popLast() else { return }
            let node: Node
            switch frame.kind {
            case .sequence: node = Node(.sequence(frame.items), at: frame.mark)
            case .mapping: node = Node(.mapping(frame.pairs), at: frame.mark)
            }
            if let anchor = frame.anchor { anchors[anchor] = (node, frame.size) }
            add(node, size: frame.size)
        default:
            break
        }
    }

    /// Attaches a finished node to its parent, or makes it a document root.
    private mutating func add(_ node: Node, size: Int) {
        count(at: node.mark)
        guard !stack.isEmpty else {
            // An empty document (a trailing '---', or only comments) holds nothing: skip it.
            if case .scalar("", .plain) = node.content { return }
            documents.append(Document(root: node, start: documentStart))
            return
        }
        let top = stack.count - 1
        stack[top].size += size
        switch stack[top].kind {
        case .sequence:
            stack[top].items.append(node)
        case .mapping:
            guard let key = stack[top].pendingKey else {
                guard case .scalar(let text, let style) = node.content else {
                    fail(
                        "spec.complex-key", "mapping key is \(node.kindDescription), not a scalar", at: node.mark,
                        help: "use a plain name as the key")
                    return
                }
                if text.utf8.count > limits.maxKeyBytes {
                    fail(
                        "spec.key-too-long", "mapping key is longer than \(limits.maxKeyBytes) bytes", at: node.mark,
                        help: "use a shorter key")
                    return
                }
                if text == "<<" && style == .plain {
                    fail(
                        "spec.merge-key", "merge keys ('<<') are not supported", at: node.mark,
                        help: "write the keys out, or reference a shared value with an alias ('*name') as a whole value")
                    return
                }
                if let first = firstOccurrence(of: text, at: node.mark, in: top) {
                    diagnostics.error(
                        "spec.duplicate-key", "key '\(text)' is defined more than once in this mapping",
                        at: location(node.mark), help: "remove one of the two definitions",
                        notes: [.init("first defined here", at: location(first))])
                }
                stack[top].pendingKey = node
                if let shape = stack[top].shape.value(forKey: text) {
                    stack[top].valueShape = shape
                    stack[top].skipValue = false
                } else {
                    stack[top].skipValue = true
                }
                return
            }
            stack[top].pairs.append(Node.Pair(key: key, value: node))
            stack[top].pendingKey = nil
        }
    }

    /// Where `key` was first defined in the mapping at `index`, or nil (and records it) when new.
    private mutating func firstOccurrence(of key: String, at mark: Mark, in index: Int) -> Mark? {
        if stack[index].keyIndex == nil {
            if stack[index].pairs.count < 12 {
                return stack[index].pairs.first { $0.key.scalar == key }?.key.mark
            }
            var keys: [String: Mark] = [:]
            keys.reserveCapacity(stack[index].pairs.count * 2)
            for pair in stack[index].pairs where keys[pair.key.scalar ?? ""] == nil {
                keys[pair.key.scalar ?? ""] = pair.key.mark
            }
            stack[index].keyIndex = keys
        }
        if let existing = stack[index].keyIndex?[key] { return existing }
        stack[index].keyIndex?[key] = mark
        return nil
    }
}
