import Foundation
import Testing

/// Starts a process with `start`, SIGKILLs it `delay` seconds later and waits for it: the crash
/// tests' kill at a chosen moment. A process that ended by itself first must have succeeded; then
/// `finishedIn` is how long it ran (the caller shortens its estimate of a run's length with it).
func killAfter(_ delay: Double, sourceLocation: SourceLocation = #_sourceLocation,
               _ start: () throws -> Started) throws -> (run: Run, finishedIn: TimeInterval?) {
    let launched = Date()
    let process = try start()
    if delay > 0 { usleep(UInt32(delay * 1_000_000)) }
    process.kill()
    let run = process.wait()
    guard !run.signaled else { return (run, nil) }
    #expect(run.status == 0, "the process ended by itself and failed: \(run)", sourceLocation: sourceLocation)
    return (run, Date().timeIntervalSince(launched))
}
