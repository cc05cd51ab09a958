internal import Crypto

/// RFC 9162 (RFC 6962) Merkle tree hashing over the audit entries: pure functions, no I/O.
///
/// Leaves are the entries in sequence order (entry `seq` is leaf index `seq - 1`); a leaf's
/// hash is ``AuditHash/leaf(_:)``. Interior nodes hash `0x01 ‖ left ‖ right`; a tree of `n > 1`
/// leaves splits at `k`, the largest power of two smaller than `n`.
public enum MerkleHash {
    public static let byteCount = 32

    /// `MTH({})`: SHA-256 of the empty string, the root of the empty tree.
    public static let emptyRoot = SHA256.hash([])

    /// `SHA-256(0x01 ‖ left ‖ right)`.
    public static func node(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        // One node per appended entry on average: hash from a stack buffer, not a temporary array.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1 + left.count + right.count) { buffer in
            buffer[0] = 0x01
            _ = UnsafeMutableBufferPointer(rebasing: buffer[1...]).initialize(from: left)
            _ = UnsafeMutableBufferPointer(rebasing: buffer[(1 + left.count)...]).initialize(from: right)
            return SHA256.hash(UnsafeRawBufferPointer(buffer))
        }
    }

    /// The root of the tree over `leafHashes` by the RFC's recursive definition. A reference
    /// for small trees (tests); logs use ``CompactRange`` or ``MerkleTreeReader``.
    public static func root(leafHashes: ArraySlice<[UInt8]>) -> [UInt8] {
        switch leafHashes.count {
        case 0: return emptyRoot
        case 1: return leafHashes[leafHashes.startIndex]
        default:
            let split = leafHashes.startIndex + Int(largestPowerOfTwo(below: Int64(leafHashes.count)))
            return node(root(leafHashes: leafHashes[..<split]), root(leafHashes: leafHashes[split...]))
        }
    }

    /// The largest power of two strictly smaller than `n` (`n` ≥ 2).
    static func largestPowerOfTwo(below n: Int64) -> Int64 {
        Int64(1) << (63 - (n - 1).leadingZeroBitCount)
    }
}

/// The right edge of a growing tree: one hash per maximal perfect subtree of the leaves so
/// far (one per set bit of the size), so appending a leaf and computing the root need only
/// O(log n) memory. Used to maintain the stored tree on append and to verify a log by
/// streaming it.
public struct CompactRange: Sendable {
    /// The leaves appended so far.
    public private(set) var size: Int64 = 0
    /// (level, hash) of each perfect subtree, left to right, levels strictly decreasing.
    private var peaks: [(level: Int, hash: [UInt8])] = []

    public init() {}

    /// The range for a tree of `size` leaves, from the hashes of its perfect subtrees.
    ///
    /// - Parameter node: the hash of the perfect subtree at `level` with index `index` (it
    ///   covers leaves `index·2^level ..< (index+1)·2^level`).
    public init(size: Int64, node: (_ level: Int, _ index: Int64) throws -> [UInt8]) rethrows {
        precondition(size >= 0)
        var start: Int64 = 0
        for level in stride(from: 62, through: 0, by: -1) where size & (Int64(1) << level) != 0 {
            peaks.append((level, try node(level, start >> level)))
            start += Int64(1) << level
        }
        self.size = size
    }

    /// Appends a leaf; `completed` is called for every perfect subtree this completes
    /// (the leaf itself at level 0, then each merged node up the tree).
    public mutating func append(leafHash: [UInt8], completed: (_ level: Int, _ index: Int64, _ hash: [UInt8]) throws -> Void) rethrows {
        try append(leafHash: leafHash, node: MerkleHash.node, completed: completed)
    }

    /// Appends a leaf as ``append(leafHash:completed:)`` does, hashing the merged nodes with
    /// `hasher`'s context (for a loop of appends: no OpenSSL context per node).
    public mutating func append(leafHash: [UInt8], hasher: AuditChainHasher,
                                completed: (_ level: Int, _ index: Int64, _ hash: [UInt8]) throws -> Void) rethrows {
        try append(leafHash: leafHash, node: hasher.node, completed: completed)
    }

    private mutating func append(leafHash: [UInt8], node: ([UInt8], [UInt8]) -> [UInt8],
                                 completed: (_ level: Int, _ index: Int64, _ hash: [UInt8]) throws -> Void) rethrows {
        var level = 0
        var hash = leafHash
        try completed(0, size, hash)
        while let last = peaks.last, last.level == level {
            peaks.removeLast()
            hash = node(last.hash, hash)
            level += 1
            try completed(level, size >> level, hash)
        }
        peaks.append((level, hash))
        size += 1
    }

    /// Appends a leaf.
    public mutating func append(leafHash: [UInt8]) {
        append(leafHash: leafHash) { _, _, _ in }
    }

    /// The root hash of the tree over the leaves so far.
    public var root: [UInt8] {
        guard var hash = peaks.last?.hash else { return MerkleHash.emptyRoot }
        for peak in peaks.dropLast().reversed() { hash = MerkleHash.node(peak.hash, hash) }
        return hash
    }
}

/// Tree hashes, roots and proofs for a log whose perfect-subtree hashes can be looked up.
///
/// Every hash a root or proof needs is a perfect subtree or a fold of O(log n) of them, so a
/// proof costs O(log n) lookups (O(log² n) in the worst case of the right edge) whatever the
/// size of the log.
public struct MerkleTreeReader {
    /// The hash of the perfect subtree at `level` with index `index`.
    public typealias NodeLookup = (_ level: Int, _ index: Int64) throws -> [UInt8]

    /// The number of leaves.
    public let size: Int64
    private let node: NodeLookup

    public init(size: Int64, node: @escaping NodeLookup) {
        self.size = size
        self.node = node
    }

    /// `MTH(D[start:end])` for a range that occurs in the RFC's recursion (start aligned to
    /// the largest power of two not above the range's length).
    func hash(_ start: Int64, _ end: Int64) throws -> [UInt8] {
        let count = end - start
        if count == 0 { return MerkleHash.emptyRoot }
        if count & (count - 1) == 0, start % count == 0 {
            return try node(count.trailingZeroBitCount, start / count)
        }
        let split = start + MerkleHash.largestPowerOfTwo(below: count)
        return MerkleHash.node(try hash(start, split), try hash(split, end))
    }

    /// The root of the first `size` leaves (`size` ≤ ``size``).
    public func root(size treeSize: Int64) throws -> [UInt8] {
        precondition(treeSize >= 0 && treeSize <= size)
        return try hash(0, treeSize)
    }

    /// RFC 9162 2.1.3.1 `PATH(index, D[0:treeSize])`: sibling hashes from the leaf's up to the root's children.
    public func inclusionProof(index: Int64, treeSize: Int64) throws -> [[UInt8]] {
        precondition(index >= 0 && index < treeSize && treeSize <= size)
        var proof: [[UInt8]] = []
        try path(index, 0, treeSize, into: &proof)
        return proof
    }

    private func path(_ index: Int64, _ start: Int64, _ end: Int64, into proof: inout [[UInt8]]) throws {
        guard end - start > 1 else { return }
        let split = start + MerkleHash.largestPowerOfTwo(below: end - start)
        if index < split {
            try path(index, start, split, into: &proof)
            proof.append(try hash(split, end))
        } else {
            try path(index, split, end, into: &proof)
            proof.append(try hash(start, split))
        }
    }

    /// RFC 9162 2.1.4.1 `PROOF(oldSize, D[0:newSize])`: empty when `oldSize` is 0 or equals `newSize`.
    public func consistencyProof(oldSize: Int64, newSize: Int64) throws -> [[UInt8]] {
        precondition(oldSize >= 0 && oldSize <= newSize && newSize <= size)
        guard oldSize > 0, oldSize < newSize else { return [] }
        var proof: [[UInt8]] = []
        try subproof(oldSize, 0, newSize, complete: true, into: &proof)
        return proof
    }

    private func subproof(_ m: Int64, _ start: Int64, _ end: Int64, complete: Bool, into proof: inout [[UInt8]]) throws {
        let count = end - start
        if m == count {
            if !complete { proof.append(try hash(start, end)) }
            return
        }
        let k = MerkleHash.largestPowerOfTwo(below: count)
        if m <= k {
            try subproof(m, start, start + k, complete: complete, into: &proof)
            proof.append(try hash(start + k, end))
        } else {
            try subproof(m - k, start + k, end, complete: false, into: &proof)
            proof.append(try hash(start, start + k))
        }
    }
}

/// Checks RFC 9162 inclusion and consistency proofs (sections 2.1.3.2 and 2.1.4.2).
public enum MerkleVerifier {
    /// The root that `proof` leads to from `leafHash` at `index` in a tree of `treeSize`
    /// leaves, or nil when the proof cannot be for that position (wrong length, a hash
    /// that is not 32 bytes, an index outside the tree).
    public static func rootFromInclusionProof(index: Int64, treeSize: Int64, leafHash: [UInt8], proof: [[UInt8]]) -> [UInt8]? {
        guard index >= 0, index < treeSize, leafHash.count == MerkleHash.byteCount else { return nil }
        var fn = index
        var sn = treeSize - 1
        var hash = leafHash
        for sibling in proof {
            guard sibling.count == MerkleHash.byteCount, sn != 0 else { return nil }
            if fn & 1 == 1 || fn == sn {
                hash = MerkleHash.node(sibling, hash)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                hash = MerkleHash.node(hash, sibling)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 ? hash : nil
    }

    /// Whether `proof` shows that the leaf `leafHash` is at `index` in the tree of `treeSize` leaves with `root`.
    public static func verifyInclusion(index: Int64, treeSize: Int64, leafHash: [UInt8], proof: [[UInt8]], root: [UInt8]) -> Bool {
        guard root.count == MerkleHash.byteCount else { return false }
        return rootFromInclusionProof(index: index, treeSize: treeSize, leafHash: leafHash, proof: proof) == root
    }

    /// Whether `proof` shows that the tree of `newSize` leaves with `newRoot` extends the tree of
    /// `oldSize` leaves with `oldRoot`. Equal sizes need equal roots and an empty proof; an old
    /// size of 0 needs an empty proof.
    public static func verifyConsistency(oldSize: Int64, newSize: Int64, oldRoot: [UInt8], newRoot: [UInt8], proof: [[UInt8]]) -> Bool {
        guard oldSize >= 0, oldSize <= newSize else { return false }
        if oldSize == newSize { return proof.isEmpty && oldRoot == newRoot }
        if oldSize == 0 { return proof.isEmpty }
        guard !proof.isEmpty, oldRoot.count == MerkleHash.byteCount, newRoot.count == MerkleHash.byteCount,
            proof.allSatisfy({ $0.count == MerkleHash.byteCount })
        else { return false }
        var path = proof
        if oldSize & (oldSize - 1) == 0 { path.insert(oldRoot, at: 0) }
        var fn = oldSize - 1
        var sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var oldHash = path[0]
        var newHash = path[0]
        for sibling in path.dropFirst() {
            guard sn != 0 else { return false }
            if fn & 1 == 1 || fn == sn {
                oldHash = MerkleHash.node(sibling, oldHash)
                newHash = MerkleHash.node(sibling, newHash)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                newHash = MerkleHash.node(newHash, sibling)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && oldHash == oldRoot && newHash == newRoot
    }
}
