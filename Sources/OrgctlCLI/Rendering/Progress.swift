import Foundation
import Synchronization

/// Progress of one long phase on standard error: `writing 52,000 of 144,000 changes (6 s)`.
///
/// Shown only when standard error is a terminal and `--quiet` is not given (``Console/progress(_:total:)``
/// returns nil otherwise), and only once the phase has taken half a second, so quick runs print
/// nothing. The work only counts (`advance()`, an atomic increment, cheap from any thread); a timer
/// redraws the line at most four times a second, and ``finish()`` erases it. One instance per
/// phase, owned by the command: no global state.
final class Progress: @unchecked Sendable {
    // @unchecked: `count` is atomic; `timer` (thread-safe itself) is set up in init and cancelled by
    // the owner's finish()/deinit; `write` is the console's standard-error writer (one write(2)
    // per call), called only from the timer's queue while the owner is busy with the phase.
    private let phase: String
    private let unit: String
    private let total: Int?
    private let count = Atomic<Int>(0)
    private let finished = Atomic<Bool>(false)
    private let started = DispatchTime.now()
    private let timer: any DispatchSourceTimer
    private let write: (String) -> Void

    init(_ phase: String, unit: String, total: Int?, write: @escaping (String) -> Void) {
        self.phase = phase
        self.unit = unit
        self.total = total
        self.write = write
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "orgctl.progress"))
        timer.schedule(deadline: .now() + .milliseconds(500), repeating: .milliseconds(250))
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            self.write("\r" + self.line() + "\u{1B}[K")
        }
        timer.resume()
    }

    deinit { timer.cancel() }

    /// One more item done.
    func advance(by items: Int = 1) { count.add(items, ordering: .relaxed) }

    /// Stops redrawing and erases the line (if it was ever drawn, the terminal shows nothing of it).
    func finish() {
        guard !finished.exchange(true, ordering: .relaxed) else { return }
        // Cancellation is asynchronous: wait for it, so no redraw follows the erase.
        let done = DispatchSemaphore(value: 0)
        timer.setCancelHandler { done.signal() }
        timer.cancel()
        done.wait()
        if DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds >= 500_000_000 { write("\r\u{1B}[K") }
    }

    /// `writing 52,000 of 144,000 changes (6 s)`, or `reading the state database (3 s)` without a count.
    func line() -> String {
        let seconds = (DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000_000
        let done = count.load(ordering: .relaxed)
        let counted: String
        if let total { counted = " \(Self.grouped(done)) of \(Self.grouped(total)) \(unit)" } else if done > 0 {
            counted = " \(Self.grouped(done)) \(unit)"
        } else {
            counted = ""
        }
        return "\(phase)\(counted) (\(seconds) s)"
    }

    /// 144000 as `144,000`.
    static func grouped(_ n: Int) -> String {
        let digits = String(n)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return out
    }
}
