import Chain
import Consensus
import GridProto
import Wire

/// The ledger's ordering seam (`ChainOrdering`) over this node's Raft group: blocks are
/// proposed to the `RaftDriver`, linearizable reads go through its ReadIndex, and a
/// follower's submissions go to the leader through `LeaderFollowing`.
///
/// Thread safety: immutable; the driver and the forwarder are safe from any task.
/// Errors: the driver's refusals (`RPCError` UNAVAILABLE: halted, not the leader, timed out)
/// reach the ledger as `ChainError` with the same code and message; what a leader answers a
/// forwarded submission is passed through unchanged.
struct RaftOrdering: ChainOrdering {
    let driver: RaftDriver
    /// Submits a transaction to the current leader (from a follower).
    let forwardToLeader: @Sendable (SignedTransaction, NodeID) async throws -> SubmitResponse
    let proposeTimeout: Duration
    /// How long a follower waits for a new leader after a failed forward.
    var leaderWait: Duration = .seconds(3)

    func propose(_ block: [UInt8]) async throws {
        do {
            try await driver.propose(block)
        } catch let error as RPCError {
            throw ChainError(error.code, error.message)
        }
    }

    func readIndex() async throws -> UInt64 {
        do {
            return try await driver.readIndex()
        } catch let error as RPCError {
            throw ChainError(error.code, error.message)
        }
    }

    func waitApplied(_ index: UInt64, timeout: Duration) async -> Bool {
        await driver.waitApplied(index, timeout: timeout)
    }

    var status: OrderingStatus {
        let raft = driver.status
        var status = OrderingStatus()
        status.nodeID = raft.id
        status.isLeader = raft.role == .leader
        status.roleName = raft.role.statusName
        status.term = raft.term
        status.leader = raft.leader
        status.commit = raft.commit
        status.applied = raft.applied
        status.lastIndex = raft.lastIndex
        status.progress = raft.progress
        status.halted = raft.halted
        status.noLeaderSince = raft.noLeaderSince
        return status
    }

    var noLeaderGrace: Duration { driver.noLeaderGrace }

    func forward(_ transaction: SignedTransaction, leader: UInt64) async throws -> SubmitResponse? {
        let following = LeaderFollowing(
            view: { [driver] in let s = driver.status; return (s.leader, s.role == .leader) },
            forward: forwardToLeader, leaderWait: leaderWait)
        return try await following.run(transaction, leader: leader)
    }
}

extension Ledger {
    /// The Raft driver ordering this chain; nil when the chain is solo.
    var raftDriver: RaftDriver? { (ordering as? RaftOrdering)?.driver }
}
