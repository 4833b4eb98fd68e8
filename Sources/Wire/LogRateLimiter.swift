import NIOCore
import Synchronization

/// At most one log line per key and interval, with the number of occurrences that were not
/// logged since the last line: a flood of refusals costs one line every few seconds, not
/// one per refusal, yet none goes unmentioned.
///
/// Thread safety: state behind a mutex; use from any thread.
public final class LogRateLimiter: Sendable {
    private struct Entry {
        var lastLogged: NIODeadline
        var suppressed: Int
    }

    public let interval: TimeAmount
    /// At most this many distinct keys are remembered; beyond it the oldest are forgotten.
    private let maxKeys: Int
    private let entries = Mutex<[String: Entry]>([:])

    public init(interval: TimeAmount = .seconds(10), maxKeys: Int = 1024) {
        self.interval = interval
        self.maxKeys = maxKeys
    }

    /// Whether a line for `key` may be logged now; when it may, also how many occurrences
    /// were suppressed since the previous line.
    public func shouldLog(_ key: String, now: NIODeadline = .now()) -> (log: Bool, suppressed: Int) {
        entries.withLock { entries in
            if var entry = entries[key] {
                if now - entry.lastLogged < interval {
                    entry.suppressed += 1
                    entries[key] = entry
                    return (false, 0)
                }
                entries[key] = Entry(lastLogged: now, suppressed: 0)
                return (true, entry.suppressed)
            }
            if entries.count >= maxKeys {
                // Forget entries whose interval is over; if none is, forget them all (a line
                // too many is better than unbounded memory).
                entries = entries.filter { now - $0.value.lastLogged < interval }
                if entries.count >= maxKeys { entries.removeAll() }
            }
            entries[key] = Entry(lastLogged: now, suppressed: 0)
            return (true, 0)
        }
    }
}
