import Audit
import Testing

private func hex(_ bytes: [UInt8]) -> String { bytes.map { String($0, radix: 16).leftPadded() }.joined() }

extension String {
    fileprivate func leftPadded() -> String { count == 1 ? "0" + self : self }
}

@Suite("hashes")
struct AuditHashTests {
    @Test func genesisIsThirtyTwoZeroBytes() {
        #expect(AuditHash.genesis == [UInt8](repeating: 0, count: 32))
    }

    /// Values computed independently with Python's hashlib (see docs/audit-chain.md).
    @Test func leafAndChainHashesMatchTheDocumentedExample() {
        let leaf = AuditHash.leaf(exampleEntry.canonicalBytes())
        #expect(hex(leaf) == "fab8a13c4c577276b303e1f1120454b1acdf44e8e58791be477f8ada98d476b3")
        let chained = AuditHash.chain(previous: AuditHash.genesis, leaf: leaf)
        #expect(hex(chained) == "f443ea80e7b0243b77dce8bca1b240df516e6729a95307e9f1948ed187812749")
        #expect(StoredAuditRecord(entry: exampleEntry, previousHash: AuditHash.genesis).hash == chained)
    }

    /// The allocation-free hasher gives the documented example's hash, and one instance gives each
    /// entry of a chain its own hash (nothing carries over from the entry before).
    @Test func reusedChainHasherMatchesAuditHash() {
        let hasher = AuditChainHasher()
        var hash = [UInt8](repeating: 0xFF, count: 32)
        for record in [StoredAuditRecord(entry: exampleEntry, previousHash: AuditHash.genesis)] + goodChain() {
            record.entry.withUnsafeBytes { entry in
                record.previousHash.withUnsafeBytes { previous in
                    hash.withUnsafeMutableBytes { hasher.chainHash(previous: previous, entry: entry, into: $0) }
                }
            }
            #expect(hash == AuditHash.chain(previous: record.previousHash, leaf: AuditHash.leaf(record.entry)))
        }
    }

    /// RFC 9162 leaf hash of an empty entry: SHA-256 of the single byte 0x00.
    @Test func leafHashPrefixesAZeroByte() {
        #expect(hex(AuditHash.leaf([])) == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    }
}

/// A chain of five entries, as StateStore would append them.
private func goodChain() -> [StoredAuditRecord] {
    var previous = AuditHash.genesis
    return (Int64(1)...5).map { sequence in
        let record = StoredAuditRecord(entry: entry(sequence), previousHash: previous)
        previous = record.hash
        return record
    }
}

private func entry(_ sequence: Int64, seqField: Int64? = nil, actor: String = "alice") -> AuditEntry {
    AuditEntry(
        sequence: seqField ?? sequence, time: AuditTime.string(fromUnixSeconds: 1_795_374_000 + sequence)!,
        actor: actor, source: "git:3f2c1a9", planID: "plan-1", action: "update",
        address: "tenant.acme.team.t\(sequence)", before: ["size": .int(sequence)], after: ["size": .int(sequence + 1)])
}

/// Feeds records in order; returns the first break, the verifier's final count and head.
private func verify(_ records: [StoredAuditRecord]) -> (ChainBreak?, Int64, [UInt8]) {
    var verifier = ChainVerifier()
    var first: ChainBreak?
    for record in records {
        let found = verifier.check(record)
        if first == nil { first = found }
    }
    return (first, verifier.count, verifier.head)
}

@Suite("chain verification")
struct ChainVerifierTests {
    @Test func acceptsAGoodChain() {
        let chain = goodChain()
        let (found, count, head) = verify(chain)
        #expect(found == nil)
        #expect(count == 5)
        #expect(head == chain[4].hash)
        #expect(chain[0].previousHash == AuditHash.genesis)
    }

    @Test func emptyChainHeadIsGenesis() {
        let verifier = ChainVerifier()
        #expect(verifier.count == 0 && verifier.head == AuditHash.genesis)
    }

    @Test func catchesAnEditedEntry() {
        var chain = goodChain()
        chain[2].entry = entry(3, actor: "mallory").canonicalBytes()
        let (found, count, head) = verify(chain)
        #expect(found == ChainBreak(sequence: 3, problem: .hashMismatch))
        #expect(count == 2 && head == chain[1].hash)
    }

    @Test func catchesAnEditedEntryWhoseOwnHashWasRecomputed() {
        var chain = goodChain()
        chain[2] = StoredAuditRecord(entry: entry(3, actor: "mallory"), previousHash: chain[1].hash)
        #expect(verify(chain).0 == ChainBreak(sequence: 4, problem: .previousHashMismatch))
    }

    @Test func catchesADeletedMiddleEntry() {
        var chain = goodChain()
        chain.remove(at: 2)
        #expect(verify(chain).0 == ChainBreak(sequence: 4, problem: .sequenceGap(expected: 3)))
    }

    @Test func catchesADeletedAndRenumberedEntry() {
        var chain = goodChain()
        chain.remove(at: 2)
        chain[2].sequence = 3
        chain[3].sequence = 4
        #expect(verify(chain).0 == ChainBreak(sequence: 3, problem: .previousHashMismatch))
    }

    @Test func catchesReorderedEntries() {
        var chain = goodChain()
        chain.swapAt(1, 2)
        #expect(verify(chain).0 == ChainBreak(sequence: 3, problem: .sequenceGap(expected: 2)))
    }

    @Test func catchesReorderedEntriesWithSwappedSequenceNumbers() {
        var chain = goodChain()
        chain.swapAt(1, 2)
        chain[1].sequence = 2
        chain[2].sequence = 3
        #expect(verify(chain).0 == ChainBreak(sequence: 2, problem: .previousHashMismatch))
    }

    @Test func catchesAWrongPreviousHash() {
        var chain = goodChain()
        chain[1].previousHash[0] ^= 1
        #expect(verify(chain).0 == ChainBreak(sequence: 2, problem: .previousHashMismatch))

        var first = goodChain()
        first[0].previousHash = []
        #expect(verify(first).0 == ChainBreak(sequence: 1, problem: .previousHashMismatch))
    }

    @Test func catchesAWrongStoredHash() {
        var chain = goodChain()
        chain[4].hash[31] ^= 0x80
        #expect(verify(chain).0 == ChainBreak(sequence: 5, problem: .hashMismatch))
    }

    @Test func catchesAnEntrySequenceMismatchEvenWithValidHashes() {
        var chain = Array(goodChain().prefix(2))
        let wrong = entry(3, seqField: 7)
        let bytes = wrong.canonicalBytes()
        chain.append(
            StoredAuditRecord(
                sequence: 3, entry: bytes, previousHash: chain[1].hash,
                hash: AuditHash.chain(previous: chain[1].hash, leaf: AuditHash.leaf(bytes))))
        #expect(verify(chain).0 == ChainBreak(sequence: 3, problem: .entrySequenceMismatch))
    }

    @Test func catchesAMalformedEntryEvenWithValidHashes() {
        let bytes = Array(#"{"seq":1}"#.utf8)
        let record = StoredAuditRecord(
            sequence: 1, entry: bytes, previousHash: AuditHash.genesis,
            hash: AuditHash.chain(previous: AuditHash.genesis, leaf: AuditHash.leaf(bytes)))
        #expect(verify([record]).0 == ChainBreak(sequence: 1, problem: .malformedEntry("missing field 'action'")))
    }

    @Test func reportsOnlyTheFirstBreak() {
        var chain = goodChain()
        chain[1].hash[0] ^= 1
        var verifier = ChainVerifier()
        #expect(verifier.check(chain[0]) == nil)
        let first = verifier.check(chain[1])
        #expect(first == ChainBreak(sequence: 2, problem: .hashMismatch))
        #expect(verifier.check(chain[2]) == first)
        #expect(verifier.check(chain[3]) == first)
        #expect(verifier.count == 1 && verifier.head == chain[0].hash)
        #expect(verifier.firstBreak == first)
    }

    @Test func describesBreaksInTheVerifierScriptsWords() {
        #expect(
            ChainBreak(sequence: 4, problem: .sequenceGap(expected: 3)).description
                == "broken at entry 4: sequence gap: expected entry 3")
        #expect(
            ChainBreak(sequence: 2, problem: .malformedEntry("missing field 'seq'")).description
                == "broken at entry 2: malformed entry: missing field 'seq'")
    }
}
