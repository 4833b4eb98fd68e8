import Synchronization

/// Tasks waiting for an index that only grows (a replica's applied Raft index, a chain's
/// head height) to reach theirs. Each waiter is resumed by the `advance` that reaches its
/// index, or by its own timeout; nothing polls.
///
/// Thread safety: every method may be called from any thread; continuations are resumed
/// outside the lock, each exactly once.
package final class IndexWaiters: Sendable {
    private struct Waiter {
        var index: UInt64
        var continuation: CheckedContinuation<Bool, Never>
        var timer: Task<Void, Never>?
    }

    private struct State {
        var current: UInt64
        var waiters: [UInt64: Waiter] = [:]
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>

    package init(current: UInt64 = 0) {
        state = Mutex(State(current: current))
    }

    /// The highest index `advance` has recorded.
    package var current: UInt64 { state.withLock { $0.current } }

    /// How many tasks are waiting (for tests).
    package var waiting: Int { state.withLock { $0.waiters.count } }

    /// Records that the index reached `index` (a lower one changes nothing) and resumes
    /// every waiter at or below it with `true`.
    package func advance(to index: UInt64) {
        let reached = state.withLock { s -> [Waiter] in
            guard index > s.current else { return [] }
            s.current = index
            let ids = s.waiters.filter { $0.value.index <= index }.map(\.key)
            return ids.compactMap { s.waiters.removeValue(forKey: $0) }
        }
        for waiter in reached {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: true)
        }
    }

    /// Returns `true` once the index is at least `index` (at once if it already is), or
    /// `false` when `timeout` passes first.
    package func wait(for index: UInt64, timeout: Duration) async -> Bool {
        await withCheckedContinuation { continuation in
            let id = state.withLock { s -> UInt64? in
                guard s.current < index else { return nil }
                s.nextID += 1
                s.waiters[s.nextID] = Waiter(index: index, continuation: continuation)
                return s.nextID
            }
            guard let id else { return continuation.resume(returning: true) }
            let timer = Task { [weak self] in
                try? await Task.sleep(for: timeout)
                guard !Task.isCancelled else { return }
                self?.expire(id)
            }
            let stillWaiting = state.withLock { s in
                s.waiters[id]?.timer = timer
                return s.waiters[id] != nil
            }
            if !stillWaiting { timer.cancel() }
        }
    }

    private func expire(_ id: UInt64) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.continuation.resume(returning: false)
    }
}
