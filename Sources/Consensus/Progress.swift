/// The leader's view of one member's log (etcd-io/raft `tracker/progress.go`).
///
/// - `probe`: the leader does not know where the logs match; it sends at most one append
///   per heartbeat interval (`msgAppFlowPaused`) and backs `next` off on rejections.
/// - `replicate`: the logs match up to `match`; the leader streams appends optimistically
///   (`next` runs ahead of `match`) within the `inflights` window.
/// - `snapshot`: a snapshot at `pendingSnapshot` is in transit; nothing else is sent.
///
/// Invariants: `match < next`; in `replicate`, every in-flight index is in `[next-?, next)`
/// and `> match`; in `snapshot`, `pendingSnapshot > 0`.
public struct Progress: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        case probe, replicate, snapshot
    }

    /// Highest index known replicated on the member.
    public internal(set) var match: UInt64
    /// Index of the next entry to send.
    public internal(set) var next: UInt64
    public internal(set) var state: State = .probe
    /// Index of the snapshot in transit (state `snapshot`), else 0.
    public internal(set) var pendingSnapshot: UInt64 = 0
    /// Heard from since the last check-quorum round.
    public internal(set) var recentActive: Bool = false
    /// In `probe`: an append was sent and we wait for an answer or a heartbeat response.
    var msgAppFlowPaused: Bool = false
    var inflights: Inflights
    public internal(set) var isLearner: Bool

    init(next: UInt64, isLearner: Bool, maxInflight: Int, maxInflightBytes: Int) {
        self.match = 0
        self.next = next
        self.isLearner = isLearner
        self.inflights = Inflights(capacity: maxInflight, maxBytes: maxInflightBytes)
    }

    /// Number of unacknowledged appends in flight.
    public var inflightCount: Int { inflights.count }

    mutating func resetState(_ s: State) {
        msgAppFlowPaused = false
        pendingSnapshot = 0
        state = s
        inflights.reset()
    }

    mutating func becomeProbe() {
        if state == .snapshot {
            let pending = pendingSnapshot
            resetState(.probe)
            next = max(match + 1, pending + 1)
        } else {
            resetState(.probe)
            next = match + 1
        }
    }

    mutating func becomeReplicate() {
        resetState(.replicate)
        next = match + 1
    }

    mutating func becomeSnapshot(_ index: UInt64) {
        resetState(.snapshot)
        pendingSnapshot = index
    }

    /// An acknowledgement up to `n`: returns true when `match` grew.
    mutating func maybeUpdate(_ n: UInt64) -> Bool {
        var updated = false
        if match < n {
            match = n
            updated = true
            msgAppFlowPaused = false
        }
        next = max(next, n + 1)
        return updated
    }

    /// A rejection of the append at `rejected` with the follower's hint `matchHint`:
    /// returns true when `next` moved (the rejection was not stale).
    mutating func maybeDecrease(rejected: UInt64, matchHint: UInt64) -> Bool {
        if state == .replicate {
            if rejected <= match { return false }
            next = match + 1
            return true
        }
        if next - 1 != rejected { return false }
        next = max(min(rejected, matchHint + 1), match + 1)
        msgAppFlowPaused = false
        return true
    }

    /// Records that an append with `count` entries (last index `lastIndex`) was sent.
    mutating func sentEntries(count: Int, lastIndex: UInt64, bytes: Int) {
        switch state {
        case .replicate:
            if count > 0 {
                next = lastIndex + 1
                inflights.add(index: lastIndex, bytes: bytes)
            }
            msgAppFlowPaused = inflights.isFull
        case .probe:
            if count > 0 { msgAppFlowPaused = true }
        case .snapshot:
            break
        }
    }

    /// True when the leader must not send appends to this member now.
    var isPaused: Bool {
        switch state {
        case .probe: return msgAppFlowPaused
        case .replicate: return inflights.isFull
        case .snapshot: return true
        }
    }
}
