import Audit
import Crypto
import Testing

/// Published vectors of transparency-dev/merkle (proof/verify_test.go): the eight leaf inputs,
/// the roots of the trees over the first 1…8 of them, and its inclusion and consistency proofs.
/// The numbers were copied from that file by hand; no code was taken.
enum TransparencyDevVectors {
    static let leaves: [[UInt8]] = [
        "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
    ].map(h)

    /// roots[n - 1] is the root of the tree over leaves[0..<n]; the empty tree's root is SHA-256("").
    static let emptyRoot = h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    static let roots: [[UInt8]] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ].map(h)

    struct Inclusion: Sendable, CustomTestStringConvertible {
        var leaf: Int64  // 1-based, as in the source
        var size: Int64
        var proof: [[UInt8]]
        var testDescription: String { "leaf \(leaf) of \(size)" }
    }

    static let inclusions: [Inclusion] = [
        Inclusion(leaf: 1, size: 1, proof: []),
        Inclusion(leaf: 1, size: 8, proof: [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ].map(h)),
        Inclusion(leaf: 6, size: 8, proof: [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ].map(h)),
        Inclusion(leaf: 3, size: 3, proof: ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"].map(h)),
        Inclusion(leaf: 2, size: 5, proof: [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ].map(h)),
    ]

    struct Consistency: Sendable, CustomTestStringConvertible {
        var size1: Int64
        var size2: Int64
        var proof: [[UInt8]]
        var testDescription: String { "\(size1) to \(size2)" }
    }

    static let consistencies: [Consistency] = [
        Consistency(size1: 1, size2: 1, proof: []),
        Consistency(size1: 1, size2: 8, proof: [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ].map(h)),
        Consistency(size1: 6, size2: 8, proof: [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ].map(h)),
        Consistency(size1: 2, size2: 5, proof: [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ].map(h)),
        Consistency(size1: 6, size2: 7, proof: [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ].map(h)),
    ]

    /// "abacaba…": an arbitrary hash that is no node of the tree.
    static let someHash = h("abacaba000000000000000000000000000000000000000000060061e00123456")

    static var leafHashes: [[UInt8]] { leaves.map(AuditHash.leaf) }

    /// A reader over the first `size` vector leaves, looking perfect subtrees up by the reference root.
    static func reader(size: Int64) -> MerkleTreeReader {
        let hashes = leafHashes
        return MerkleTreeReader(size: size) { level, index in
            let start = Int(index) << level
            return MerkleHash.root(leafHashes: hashes[start..<(start + (1 << level))])
        }
    }
}

func h(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        bytes.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

@Suite("Merkle tree (RFC 9162, transparency-dev/merkle vectors)")
struct MerkleTreeTests {
    typealias V = TransparencyDevVectors

    @Test func rootsOfSizesZeroToEight() {
        #expect(MerkleHash.emptyRoot == V.emptyRoot)
        #expect(MerkleHash.root(leafHashes: V.leafHashes[0..<0]) == V.emptyRoot)
        for size in 1...8 {
            #expect(MerkleHash.root(leafHashes: V.leafHashes[0..<size]) == V.roots[size - 1], "size \(size)")
        }
    }

    @Test func compactRangeGivesTheSameRootsWhileGrowing() {
        var range = CompactRange()
        #expect(range.root == V.emptyRoot)
        var completed: [String] = []
        for (index, leaf) in V.leafHashes.enumerated() {
            range.append(leafHash: leaf) { level, position, _ in completed.append("\(level):\(position)") }
            #expect(range.size == Int64(index + 1))
            #expect(range.root == V.roots[index])
        }
        // Every perfect subtree of 8 leaves completes exactly once: 8 leaves, 4 pairs, 2 quads, 1 root.
        #expect(completed.count == 15)
        #expect(completed.last == "3:0")
    }

    @Test func compactRangeResumesFromStoredSubtrees() throws {
        let hashes = V.leafHashes
        for size in 0...8 {
            var range = CompactRange(size: Int64(size)) { level, index in
                let start = Int(index) << level
                return MerkleHash.root(leafHashes: hashes[start..<(start + (1 << level))])
            }
            for leaf in hashes[size...] { range.append(leafHash: leaf) }
            #expect(range.root == V.roots[7], "resumed at \(size)")
        }
    }

    @Test func readerRootsMatch() throws {
        let reader = V.reader(size: 8)
        #expect(try reader.root(size: 0) == V.emptyRoot)
        for size in 1...8 { #expect(try reader.root(size: Int64(size)) == V.roots[size - 1]) }
    }

    @Test(arguments: V.inclusions)
    func inclusionProofsAreGeneratedAndVerified(_ vector: V.Inclusion) throws {
        let index = vector.leaf - 1
        let proof = try V.reader(size: 8).inclusionProof(index: index, treeSize: vector.size)
        #expect(proof == vector.proof)
        let root = V.roots[Int(vector.size) - 1]
        let leaf = V.leafHashes[Int(index)]
        #expect(MerkleVerifier.verifyInclusion(index: index, treeSize: vector.size, leafHash: leaf, proof: vector.proof, root: root))
    }

    /// The corruptions transparency-dev's verifier must reject (corruptInclusionProof).
    @Test(arguments: V.inclusions.filter { $0.size > 1 })
    func corruptedInclusionProofsFail(_ vector: V.Inclusion) {
        let index = vector.leaf - 1, size = vector.size, proof = vector.proof
        let root = V.roots[Int(size) - 1]
        let leaf = V.leafHashes[Int(index)]
        var probes: [(String, Int64, Int64, [UInt8], [[UInt8]], [UInt8])] = [
            ("index - 1", index - 1, size, leaf, proof, root),
            ("index + 1", index + 1, size, leaf, proof, root),
            ("index ^ 2", index ^ 2, size, leaf, proof, root),
            ("size * 2", index, size * 2, leaf, proof, root),
            ("size / 2", index, size / 2, leaf, proof, root),
            ("wrong leaf", index, size, Array("WrongLeaf".utf8), proof, root),
            ("empty root", index, size, leaf, proof, V.emptyRoot),
            ("random root", index, size, leaf, proof, V.someHash),
            ("trailing garbage", index, size, leaf, proof + [[]], root),
            ("trailing root", index, size, leaf, proof + [root], root),
            ("preceding garbage", index, size, leaf, [[]] + proof, root),
            ("preceding root", index, size, leaf, [root] + proof, root),
            ("removed component", index, size, leaf, Array(proof.dropLast()), root),
        ]
        for i in proof.indices {
            var wrong = proof
            wrong[i][0] ^= 8
            probes.append(("modified proof[\(i)] bit 3", index, size, leaf, wrong, root))
        }
        if proof.count > 1 { probes.append(("inserted component", index, size, leaf, [proof[0], V.someHash] + proof[1...], root)) }
        for (name, i, n, l, p, r) in probes {
            #expect(!MerkleVerifier.verifyInclusion(index: i, treeSize: n, leafHash: l, proof: p, root: r), "\(name) verified")
        }
    }

    @Test(arguments: V.consistencies)
    func consistencyProofsAreGeneratedAndVerified(_ vector: V.Consistency) throws {
        let proof = try V.reader(size: 8).consistencyProof(oldSize: vector.size1, newSize: vector.size2)
        #expect(proof == vector.proof)
        let (root1, root2) = (V.roots[Int(vector.size1) - 1], V.roots[Int(vector.size2) - 1])
        #expect(MerkleVerifier.verifyConsistency(oldSize: vector.size1, newSize: vector.size2, oldRoot: root1, newRoot: root2, proof: vector.proof))
    }

    /// The corruptions transparency-dev's verifier must reject (corruptConsistencyProof).
    @Test(arguments: V.consistencies.filter { !$0.proof.isEmpty })
    func corruptedConsistencyProofsFail(_ vector: V.Consistency) {
        let (s1, s2, proof) = (vector.size1, vector.size2, vector.proof)
        let (r1, r2) = (V.roots[Int(s1) - 1], V.roots[Int(s2) - 1])
        var probes: [(String, Int64, Int64, [UInt8], [UInt8], [[UInt8]])] = [
            ("size1 - 1", s1 - 1, s2, r1, r2, proof),
            ("size1 + 1", s1 + 1, s2, r1, r2, proof),
            ("size1 ^ 2", s1 ^ 2, s2, r1, r2, proof),
            ("size2 * 2", s1, s2 * 2, r1, r2, proof),
            ("size2 / 2", s1, s2 / 2, r1, r2, proof),
            ("wrong root1", s1, s2, Array("WrongRoot".utf8), r2, proof),
            ("wrong root2", s1, s2, r1, Array("WrongRoot".utf8), proof),
            ("swapped roots", s1, s2, r2, r1, proof),
            ("empty proof", s1, s2, r1, r2, []),
            ("trailing garbage", s1, s2, r1, r2, proof + [[]]),
            ("trailing root1", s1, s2, r1, r2, proof + [r1]),
            ("trailing root2", s1, s2, r1, r2, proof + [r2]),
            ("preceding garbage", s1, s2, r1, r2, [[]] + proof),
            ("preceding root1", s1, s2, r1, r2, [r1] + proof),
            ("preceding root2", s1, s2, r1, r2, [r2] + proof),
            ("preceding proof[0]", s1, s2, r1, r2, [proof[0]] + proof),
            ("truncated proof", s1, s2, r1, r2, Array(proof.dropLast())),
        ]
        for i in proof.indices {
            var wrong = proof
            wrong[i][0] ^= 16
            probes.append(("modified proof[\(i)] bit 4", s1, s2, r1, r2, wrong))
        }
        for (name, a, b, x, y, p) in probes {
            #expect(!MerkleVerifier.verifyConsistency(oldSize: a, newSize: b, oldRoot: x, newRoot: y, proof: p), "\(name) verified")
        }
    }

    /// transparency-dev's TestVerifyConsistency edge cases: which trivial sizes and roots pass.
    @Test func consistencyEdgeCases() {
        let root1 = Array("don't care 1".utf8), root2 = Array("don't care 2".utf8)
        let cases: [(Int64, Int64, [UInt8], [UInt8], [[UInt8]], Bool)] = [
            (0, 0, root1, root2, [], false),
            (1, 1, root1, root2, [], false),
            (0, 0, root1, root1, [], true),
            (0, 1, root1, root2, [], true),
            (1, 1, root2, root2, [], true),
            (1, 0, root1, root2, [], false),
            (2, 1, root1, root2, [], false),
            (1, 2, root1, root2, [], false),
            (0, 0, V.emptyRoot, root2, [], false),
            (1, 1, V.emptyRoot, root2, [], false),
            (0, 0, V.emptyRoot, V.emptyRoot, [V.emptyRoot], false),
            (0, 1, V.emptyRoot, V.emptyRoot, [V.emptyRoot], false),
            (1, 1, V.emptyRoot, V.emptyRoot, [V.emptyRoot], false),
        ]
        for (a, b, x, y, p, ok) in cases {
            #expect(MerkleVerifier.verifyConsistency(oldSize: a, newSize: b, oldRoot: x, newRoot: y, proof: p) == ok, "\(a)→\(b)")
        }
    }

    /// transparency-dev's TestVerifyInclusion probes: positions outside the tree never verify.
    @Test func inclusionOutsideTheTreeFails() {
        for (index, size) in [(Int64(0), Int64(0)), (0, 1), (1, 0), (2, 1)] {
            #expect(!MerkleVerifier.verifyInclusion(index: index, treeSize: size, leafHash: V.someHash, proof: [], root: []))
            #expect(!MerkleVerifier.verifyInclusion(index: index, treeSize: size, leafHash: [], proof: [], root: V.emptyRoot))
            #expect(!MerkleVerifier.verifyInclusion(index: index, treeSize: size, leafHash: V.someHash, proof: [], root: V.emptyRoot))
        }
    }

    /// Every proof between every pair of sizes up to 70 verifies (trees with ragged right edges).
    @Test func allProofsOfALargerTreeVerify() throws {
        let leaves = (0..<70).map { AuditHash.leaf([UInt8($0)]) }
        let reader = MerkleTreeReader(size: 70) { level, index in
            let start = Int(index) << level
            return MerkleHash.root(leafHashes: leaves[start..<(start + (1 << level))])
        }
        let roots = (0...70).map { MerkleHash.root(leafHashes: leaves[0..<$0]) }
        for size in Int64(1)...70 {
            #expect(try reader.root(size: size) == roots[Int(size)])
            for index in 0..<size {
                let proof = try reader.inclusionProof(index: index, treeSize: size)
                #expect(MerkleVerifier.verifyInclusion(index: index, treeSize: size, leafHash: leaves[Int(index)], proof: proof, root: roots[Int(size)]))
            }
            for old in 0...size {
                let proof = try reader.consistencyProof(oldSize: old, newSize: size)
                #expect(MerkleVerifier.verifyConsistency(oldSize: old, newSize: size, oldRoot: roots[Int(old)], newRoot: roots[Int(size)], proof: proof))
            }
        }
    }
}
