import GridProto
import Logging
import Synchronization

/// Whether one chain can make progress on this node, and if not, why: the single value that
/// `Health` reports for the service name `chain/<chain id>` and `Ops.GetStatus` reports as
/// `serving` / `not_serving_reason`.
///
/// A chain is NOT serving while
/// - its Raft driver is halted (a committed entry failed to apply or the Raft log could not
///   be written: the replica stops rather than diverge; only a restart clears it);
/// - its last block write to the chain store failed (LevelDB refuses every write after a
///   failed one, so the monitor closes and reopens the chain until writes succeed again);
/// - its Raft group has had no leader for longer than the grace period, three of the
///   longest randomized election timeouts, so that an ordinary election does not flap.
///   When a leader is known again, the chain serves again.
///
/// A solo chain has no leader to lose; only the first two apply.
public struct ChainHealth: Sendable, Equatable, CustomStringConvertible {
    public let serving: Bool
    /// Why the chain is not serving; empty while it serves.
    public let reason: String
    /// The cause is a storage I/O failure (a full disk, a failed write or sync): closing and
    /// reopening the chain's stores may cure it once the cause is gone (`ChainHealthMonitor`).
    public var storageFailure = false

    public static let serving = ChainHealth(serving: true, reason: "")
    static func notServing(_ reason: String, storageFailure: Bool = false) -> ChainHealth {
        ChainHealth(serving: false, reason: reason, storageFailure: storageFailure)
    }

    /// The Health service name of a chain: `chain/<chain id>` (a chain id never holds `/`).
    public static func serviceName(_ chainID: String) -> String { "chain/" + chainID }

    /// How long a Raft group may go without a leader before its chain is not serving: three
    /// of the longest election timeouts (the timeout is randomized up to twice `electionTicks`).
    static func noLeaderGrace(tick: Duration, electionTicks: Int) -> Duration {
        tick * (3 * 2 * electionTicks)
    }

    /// The rule above, from what the ledger and the Raft driver recorded.
    /// - Parameters:
    ///   - halted: the driver's halt reason, nil when it runs (or the chain is solo).
    ///   - storeFailure: the error of the last block write when it failed, nil when it succeeded.
    ///   - leaderless: how long the group has been without a known leader (nil: it has one, or solo).
    static func assess(halted: String?, storeFailure: String?, leaderless: Duration?, grace: Duration) -> ChainHealth {
        if let halted {
            let io = halted.contains("storage I/O error")
            return .notServing(
                io ? "chain halted by a storage failure (reopened by itself once writes succeed again): \(halted)"
                    : "chain halted (restart the node once the cause is fixed): \(halted)",
                storageFailure: io)
        }
        if let storeFailure {
            return .notServing("the last block write to the chain store failed (reopened by itself once writes succeed again): \(storeFailure)", storageFailure: true)
        }
        if let leaderless, leaderless > grace {
            return .notServing(
                "no Raft leader for \(Self.seconds(leaderless)) s (grace \(Self.seconds(grace)) s): a majority of the chain's members is not reachable from this node")
        }
        return .serving
    }

    public var description: String { serving ? "SERVING" : "NOT_SERVING (\(reason))" }

    var servingStatus: ServingStatus { serving ? .serving : .notServing }

    private static func seconds(_ d: Duration) -> String {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        return String(format: "%.1f", Double(ms) / 1000)
    }
}

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
