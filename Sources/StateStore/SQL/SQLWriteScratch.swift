import Audit
import Crypto
import Spec

/// What the per-resource writes of one apply (``SQLStateTransaction``) keep between resources, so
/// that a first apply of many thousand resources does not rebuild the same text or contexts for
/// each: the INSERT statement text per table and column list, one SHA-256 context for the audit
/// chain and the Merkle tree, and the previous entry's chain hash as bytes. Not thread-safe: one
/// transaction's.
final class SQLWriteScratch {
    private var inserts: [(table: String, columns: [String], returningID: Bool, sql: String)] = []
    private var tableMaps: [ResourceKind: TableMap] = [:]
    /// Hashes the audit entries appended and the Merkle nodes they complete.
    let auditHasher = AuditChainHasher()
    /// The head last appended and its chain hash as bytes, so the next append need not decode it.
    private var last: (head: AuditHead, hash: [UInt8])?

    /// The chain hash of `head` as bytes: the one remembered, or else decoded from its hex (the
    /// genesis hash where that is not hex), as `appendAudit` always did.
    func chainHash(of head: AuditHead) -> [UInt8] {
        if let last, last.head == head { return last.hash }
        return Hex.decode(head.hash) ?? AuditHash.genesis
    }

    /// Records `hash`, the chain hash `head` holds in hex.
    func remember(_ hash: [UInt8], of head: AuditHead) {
        last = (head, hash)
    }

    /// `TableMap.of(kind)`, built once per kind.
    func tableMap(of kind: ResourceKind) -> TableMap {
        if let known = tableMaps[kind] { return known }
        let map = TableMap.of(kind)
        tableMaps[kind] = map
        return map
    }

    /// `INSERT INTO table (c1, c2, …) VALUES (?1, ?2, …)`, with ` RETURNING id` when asked: built
    /// once per distinct column list (a handful per kind), then found again by comparing lists.
    func insertStatement(table: String, columns: [String], returningID: Bool) -> String {
        for known in inserts where known.returningID == returningID && known.columns.count == columns.count
            && known.table == table && known.columns == columns {
            return known.sql
        }
        let placeholders = (1...columns.count).map { "?\($0)" }.joined(separator: ", ")
        let sql = "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES (\(placeholders))" + (returningID ? " RETURNING id" : "")
        inserts.append((table, columns, returningID, sql))
        return sql
    }

    /// The last non-empty `/`-separated segment of `address` (`""` when it has none): what
    /// `address.split(separator: "/").last` gives, without building every segment.
    static func lastSegment(of address: String) -> String {
        var text = address
        let ascii = text.withUTF8 { bytes -> String? in
            // Only in ASCII text is a byte `/` always a `Character` "/" (no combining mark can follow it).
            guard bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
            let slash = UInt8(ascii: "/")
            var end = bytes.count
            while end > 0, bytes[end - 1] == slash { end -= 1 }
            var start = end
            while start > 0, bytes[start - 1] != slash { start -= 1 }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }
        return ascii ?? String(address.split(separator: "/").last ?? "")
    }

    /// Every `/`-separated segment of `address`, empty ones included: what
    /// `address.split(separator: "/", omittingEmptySubsequences: false)` gives.
    static func segments(of address: String) -> [String] {
        guard let ascii = asciiSlashes(address) else {
            return address.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        }
        return address.utf8.split(separator: ascii, omittingEmptySubsequences: false).map { String(Substring($0)) }
    }

    /// The byte `/` when every byte of `address` is ASCII, so a byte `/` is a `Character` "/"
    /// (no combining mark can follow it); nil for other text, which takes the `Character` path.
    private static func asciiSlashes(_ address: String) -> UInt8? {
        address.utf8.allSatisfy { $0 < 0x80 } ? UInt8(ascii: "/") : nil
    }
}
