import Chain
import GridProto
import Logging
import Synchronization

/// Keeps each chain's `Health` entry (`chain/<id>`) equal to its `ChainHealth`: re-assessed
/// every `interval` (the no-leader rule depends on time passing, not only on events) and
/// logged on every change. A chain failing on a storage I/O error (a full disk) is closed
/// and reopened (`reopen`), again with a growing pause (2 s doubling to 30 s) until it
/// succeeds: LevelDB refuses every write after a failed one until it is reopened, so this is
/// how writes resume by themselves once space returns.
///
/// Thread safety: one task owns the loop; `stop()` may be called from any task.
final class ChainHealthMonitor: Sendable {
    private let task = Mutex<Task<Void, Never>?>(nil)
    static let firstReopenPause: Duration = .seconds(2)
    static let longestReopenPause: Duration = .seconds(30)

    /// Starts the loop over the chains `chains()` returns at each round, and the chains
    /// `closed()` reports closed after a failed reopen.
    func start(
        health: HealthService, chains: @escaping @Sendable () -> [ChainSet.Runtime], closed: @escaping @Sendable () -> [(id: String, reason: String)],
        interval: Duration, logger: Logger, reopen: @escaping @Sendable (_ id: String, _ reason: String) async -> Bool
    ) {
        let loop = Task {
            var last: [String: ChainHealth] = [:]
            // Per failing chain: when to try reopening next, and the pause after that.
            var nextReopen: [String: (at: ContinuousClock.Instant, pause: Duration)] = [:]
            func due(_ id: String) -> Bool {
                let now = ContinuousClock.now
                guard let next = nextReopen[id] else {
                    nextReopen[id] = (now + Self.firstReopenPause, Self.firstReopenPause)
                    return false
                }
                return now >= next.at
            }
            func attempted(_ id: String, _ ok: Bool) {
                guard !ok, let next = nextReopen[id] else { return }
                let pause = min(next.pause * 2, Self.longestReopenPause)
                nextReopen[id] = (ContinuousClock.now + pause, pause)
            }
            while !Task.isCancelled {
                for runtime in chains() {
                    let id = runtime.ledger.chainID
                    let now = runtime.ledger.health()
                    health.set(ChainHealth.serviceName(id), now.servingStatus)
                    if now.storageFailure {
                        if due(id) { attempted(id, await reopen(id, now.reason)) }
                    } else if now.serving {
                        nextReopen[id] = nil
                    }
                    guard last[id] != now else { continue }
                    if now.serving {
                        if last[id] != nil { logger.notice("chain serving again", metadata: ["chain": "\(id)"]) }
                    } else {
                        logger.warning("chain not serving", metadata: ["chain": "\(id)", "reason": "\(now.reason)"])
                    }
                    last[id] = now
                }
                for (id, reason) in closed() {
                    health.set(ChainHealth.serviceName(id), .notServing)
                    if due(id) { attempted(id, await reopen(id, reason)) }
                }
                try? await Task.sleep(for: interval)
            }
        }
        task.withLock { $0 = loop }
    }

    func stop() async {
        let running = task.withLock { t in defer { t = nil }; return t }
        running?.cancel()
        await running?.value
    }
}
