// libFuzzer target for the saved-plan decoder: bytes -> PlanFile.decode -> PlanFile.plan(), what
// `orgctl apply PLANFILE` does with the file before it opens the state database.
//
// Built by fuzz/build.sh plan (swiftc, -sanitize=fuzzer,address); libFuzzer provides `main`.
// Properties checked on every input (a violation stops the fuzzer like a crash):
//   - decoding never traps; a refusal always has a non-empty message;
//   - checking the MAC (under a fixed state key) accepts or refuses with a message, never traps;
//   - a decoded file converts to a Plan or is refused with a message, never traps;
//   - re-encoding a decoded file and decoding that again gives the same bytes (the encoder and
//     the decoder agree, so a plan saved by orgctl is always read back as the same plan).
import Foundation
import Reconciler
import StateStore

let printResult = ProcessInfo.processInfo.environment["FUZZ_PRINT"] == "1"
/// Not a secret: fuzzed files are not made with it, so the check refuses them (and must not trap doing so).
let fixedKey = try! StateKey(raw: Array(repeating: 0x42, count: 32))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    let file: PlanFile
    do {
        file = try PlanFile.decode(bytes)
    } catch {
        precondition(!error.description.isEmpty, "a refusal without a message")
        if printResult { print("refused: \(error.description)") }
        return 0
    }
    do {
        try file.verify(with: fixedKey)
    } catch {
        precondition(!error.description.isEmpty, "a refusal without a message")
    }
    do {
        let plan = try file.plan()
        precondition(plan.changes.count == file.changes.count, "changes lost converting the file to a plan")
        _ = plan.summary
        if printResult { print("plan: \(plan.summary)") }
    } catch {
        precondition(!error.description.isEmpty, "a refusal without a message")
        if printResult { print("refused by plan(): \(error.description)") }
    }
    guard let once = try? file.encoded() else {
        // Encoding fails only for values JSON cannot hold; the decoder produced none of those.
        preconditionFailure("a decoded plan file cannot be encoded again")
    }
    let again: PlanFile
    do {
        again = try PlanFile.decode(once)
    } catch {
        preconditionFailure("orgctl cannot read back its own encoding of a plan it accepted: \(error.description)")
    }
    guard let twice = try? again.encoded() else { preconditionFailure("re-encoding failed") }
    precondition(once == twice, "encode(decode(encode(file))) differs from encode(file)")
    return 0
}
