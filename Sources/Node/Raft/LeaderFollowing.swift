import Consensus
import GridProto
import Wire

/// Forwards a follower's submission to the chain's leader and follows leadership while the
/// call is out (issue 11: a paused leader must not stall writes sent through followers).
///
/// The call goes to the leader this node knows. When this node's view of the leader changes
/// before the answer (the old leader is paused or partitioned and the others elected a new
/// one), the call is cancelled and sent to the new leader; when the forward fails as
/// UNAVAILABLE (leader unreachable, or no longer leading), it waits up to `leaderWait` for
/// another leader and sends there. When this node becomes the leader itself, `run` returns
/// nil and the caller queues the transaction locally.
///
/// Safety: a transaction is identified by its id, so a copy that reached the old leader and
/// the copy sent to the new one commit at most once (the new leader answers ALREADY_EXISTS
/// with the location when the old copy was committed first); a copy in the old leader's
/// uncommitted log is discarded when it rejoins (Raft §5.3).
struct LeaderFollowing: Sendable {
    /// This node's view: the leader it knows (0: none) and whether it leads itself.
    let view: @Sendable () -> (leader: NodeID, selfLeads: Bool)
    let forward: @Sendable (SignedTransaction, NodeID) async throws -> SubmitResponse
    /// How long to wait for another leader after a failed forward (a few election timeouts).
    let leaderWait: Duration
    /// How often the view is checked while a call is out (well under an election timeout).
    var checkEvery: Duration = .milliseconds(20)
    /// Leaders tried at most, so that a flapping group cannot hold a caller for ever.
    var maxAttempts = 8

    private enum Outcome: Sendable {
        case answered(SubmitResponse)
        case failed(any Error)
        case leaderChanged
    }

    /// - Parameter first: the leader to try first; 0 (none known: an election is on) waits
    ///   up to `leaderWait` for one.
    func run(_ transaction: SignedTransaction, leader first: NodeID) async throws -> SubmitResponse? {
        var leader = first
        if leader == 0 {
            guard await waitForAnotherLeader(than: 0) else { throw RPCError(.unavailable, "the chain has no leader right now; retry") }
            let now = view()
            if now.selfLeads { return nil }
            leader = now.leader
        }
        for attempt in 1...maxAttempts {
            let outcome = await race(transaction, to: leader)
            switch outcome {
            case .answered(let response):
                return response
            case .failed(let error):
                try Task.checkCancellation()
                guard attempt < maxAttempts, let rpc = error as? RPCError, rpc.code == .unavailable || rpc.code == .deadlineExceeded else {
                    throw error
                }
                guard await waitForAnotherLeader(than: leader) else { throw error }
            case .leaderChanged:
                try Task.checkCancellation()
            }
            let now = view()
            if now.selfLeads { return nil }
            leader = now.leader
        }
        throw RPCError(.unavailable, "leadership changed \(maxAttempts) times while forwarding; retry")
    }

    /// The forward, or a leader change seen first (then the forward is cancelled).
    private func race(_ transaction: SignedTransaction, to leader: NodeID) async -> Outcome {
        let view = self.view, forward = self.forward, checkEvery = self.checkEvery
        return await withTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                do { return .answered(try await forward(transaction, leader)) } catch { return .failed(error) }
            }
            group.addTask {
                while !Task.isCancelled {
                    let now = view()
                    if now.selfLeads || (now.leader != 0 && now.leader != leader) { return .leaderChanged }
                    try? await Task.sleep(for: checkEvery)
                }
                return nil
            }
            var result: Outcome = .failed(RPCError(.cancelled, "forwarding cancelled"))
            while let next = await group.next() {
                if let next {
                    result = next
                    break
                }
            }
            group.cancelAll()
            return result
        }
    }

    /// Waits until this node knows a leader other than `old` (or leads itself).
    private func waitForAnotherLeader(than old: NodeID) async -> Bool {
        let end = ContinuousClock.now + leaderWait
        while ContinuousClock.now < end, !Task.isCancelled {
            let now = view()
            if now.selfLeads || (now.leader != 0 && now.leader != old) { return true }
            try? await Task.sleep(for: checkEvery)
        }
        return false
    }
}
