// libFuzzer target for the audit-chain verifier: what `orgctl audit verify` does with the rows of
// orgctl_audit, minus SQLite.
//
// The input is split at '\n' into entry byte strings (canonical JSON never holds a raw newline).
// Each becomes one StoredAuditRecord at the next sequence number, with a correctly chained
// previous hash and hash, so the verifier gets past the hash checks and parses every entry. The
// first byte of the input, when it is '#', '!' or '~', first damages the chain the way a person
// with the sqlite3 CLI would: '#' flips a bit of one record's hash, '!' drops a record, '~' swaps
// two neighbours (the second byte picks which).
//
// Properties checked on every input (a violation stops the fuzzer like a crash):
//   - no trap, whatever the bytes (CanonicalJSON.decode, AuditEntry(canonicalBytes:), ChainVerifier);
//   - an entry that AuditEntry accepts re-encodes to exactly its bytes, and decoding any JSON the
//     parser accepts then encoding it canonically is a fixed point (encode∘decode∘encode = encode);
//   - the verifier accepts exactly the records an independent check accepts (entry well formed,
//     its seq equals its position), stops at the first bad one, and reports that record;
//   - a damaged chain is never reported as intact.
import Audit
import Foundation

let printResult = ProcessInfo.processInfo.environment["FUZZ_PRINT"] == "1"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = Array(UnsafeBufferPointer(start: data, count: size))
    var damage: UInt8 = 0, which = 0
    if let first = input.first, first == UInt8(ascii: "#") || first == UInt8(ascii: "!") || first == UInt8(ascii: "~") {
        damage = first
        which = input.count > 1 ? Int(input[1]) : 0
        input.removeFirst(min(2, input.count))
    }
    let lines = input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)

    // Every line on its own: the JSON layer and the entry layer.
    var wellFormed: [Bool] = []
    for line in lines {
        if let value = try? CanonicalJSON.decode(line) {
            let encoded = CanonicalJSON.encode(value)
            guard let reparsed = try? CanonicalJSON.decode(encoded) else {
                preconditionFailure("the canonical encoding of an accepted value is not accepted")
            }
            precondition(CanonicalJSON.encode(reparsed) == encoded, "canonical encoding is not a fixed point")
        }
        if let entry = try? AuditEntry(canonicalBytes: line) {
            precondition(entry.canonicalBytes() == line, "an accepted entry does not re-encode to its bytes")
            wellFormed.append(true)
            if printResult { print("entry \(entry.sequence): \(entry.action) \(entry.address)") }
        } else {
            wellFormed.append(false)
        }
    }

    // The records as orgctl writes them.
    var records: [StoredAuditRecord] = []
    var previous = AuditHash.genesis
    for (index, line) in lines.enumerated() {
        let hash = AuditHash.chain(previous: previous, leaf: AuditHash.leaf(line))
        records.append(StoredAuditRecord(sequence: Int64(index + 1), entry: line, previousHash: previous, hash: hash))
        previous = hash
    }
    // Which records are good in the undamaged chain: well formed, and its seq field is its position.
    func sequenceMatches(_ index: Int) -> Bool {
        guard wellFormed[index], let entry = try? AuditEntry(canonicalBytes: lines[index]) else { return false }
        return entry.sequence == Int64(index + 1)
    }
    let expectedGood = (0..<lines.count).first { !sequenceMatches($0) } ?? lines.count

    var damagedAt: Int?
    if damage != 0, !records.isEmpty {
        let at = which % records.count
        switch damage {
        case UInt8(ascii: "#"): records[at].hash[which % 32] ^= 0x01; damagedAt = at
        case UInt8(ascii: "!"): records.remove(at: at); damagedAt = at < records.count ? at : nil
        default:
            if records.count > 1 {
                let other = at + 1 < records.count ? at + 1 : at - 1
                records.swapAt(at, other); damagedAt = min(at, other)
            }
        }
    }

    var verifier = ChainVerifier()
    var reported: ChainBreak?
    for record in records {
        if let found = verifier.check(record) { reported = found; break }
    }
    if printResult { print("verified \(verifier.count) of \(records.count): \(reported.map(String.init(describing:)) ?? "intact")") }

    if let damagedAt {
        // Every record before the damage is as written, so the verifier gets at least as far as the
        // first bad entry or the damage, whichever comes first, and never says the chain is intact.
        precondition(reported != nil, "a damaged chain (\(Character(Unicode.Scalar(damage))) at \(damagedAt)) verified as intact")
        precondition(verifier.count == Int64(min(damagedAt, expectedGood)),
                     "verified \(verifier.count) records; expected \(min(damagedAt, expectedGood))")
    } else if damage == 0 || records.isEmpty || damage == UInt8(ascii: "!") {
        // Undamaged (or the last record dropped, which leaves a valid shorter chain).
        let good = min(expectedGood, records.count)
        precondition(verifier.count == Int64(good), "verified \(verifier.count) records; expected \(good)")
        precondition((reported == nil) == (good == records.count), "break reported: \(String(describing: reported)), expected \(good) of \(records.count) good")
        if let reported { precondition(reported.sequence == Int64(good + 1), "break reported at the wrong record: \(reported)") }
    }
    return 0
}
