import Foundation

/// Text that a thread of its own renders and writes to standard output while the command goes on
/// (``Console/writeInBackground(_:)``): `apply --auto-approve` shows its plan this way while the
/// apply already runs, instead of rendering it first (the plan's text of a large first apply takes
/// seconds). Every later write of the console waits for it (``wait()``), so the streams get the
/// same bytes in the same order as when the text was written in place.
final class BackgroundOutput: @unchecked Sendable {
    // @unchecked: `done` is guarded by `condition`; the thread's closure is handed over once.
    private let condition = NSCondition()
    private var done = false

    /// Starts a thread that runs `work` (which renders and writes the text).
    init(_ work: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            work()
            condition.lock()
            done = true
            condition.broadcast()
            condition.unlock()
        }
        thread.start()
    }

    /// Waits until the text is written.
    func wait() {
        condition.lock()
        while !done { condition.wait() }
        condition.unlock()
    }
}
