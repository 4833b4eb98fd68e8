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
    package static func notServing(_ reason: String, storageFailure: Bool = false) -> ChainHealth {
        ChainHealth(serving: false, reason: reason, storageFailure: storageFailure)
    }

    /// The Health service name of a chain: `chain/<chain id>` (a chain id never holds `/`).
    public static func serviceName(_ chainID: String) -> String { "chain/" + chainID }

    /// How long a Raft group may go without a leader before its chain is not serving: three
    /// of the longest election timeouts (the timeout is randomized up to twice `electionTicks`).
    package static func noLeaderGrace(tick: Duration, electionTicks: Int) -> Duration {
        tick * (3 * 2 * electionTicks)
    }

    /// The rule above, from what the ledger and the Raft driver recorded.
    /// - Parameters:
    ///   - halted: the driver's halt reason, nil when it runs (or the chain is solo).
    ///   - storeFailure: the error of the last block write when it failed, nil when it succeeded.
    ///   - leaderless: how long the group has been without a known leader (nil: it has one, or solo).
    package static func assess(halted: String?, storeFailure: String?, leaderless: Duration?, grace: Duration) -> ChainHealth {
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

    package var servingStatus: ServingStatus { serving ? .serving : .notServing }

    private static func seconds(_ d: Duration) -> String {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        return String(format: "%.1f", Double(ms) / 1000)
    }
}
