/// The leader's pending ReadIndex requests (Raft thesis §6.4, etcd-io/raft `read_only.go`),
/// in arrival order. A request is confirmed when a quorum of voters acknowledged a
/// heartbeat carrying its context (or a later one's).
///
/// Invariant: `queue` and `pending` hold the same contexts; contexts are unique.
struct ReadOnlyQueue: Sendable {
    struct Request: Sendable {
        /// Member that asked (this leader itself for local reads).
        var from: NodeID
        var context: [UInt8]
        /// Commit index when the request arrived.
        var index: UInt64
        var acks: Set<NodeID>
    }

    private var pending: [[UInt8]: Request] = [:]
    private var queue: [[UInt8]] = []

    var isEmpty: Bool { queue.isEmpty }
    var lastContext: [UInt8]? { queue.last }

    /// Adds a request; duplicates of a pending context are ignored (returns false).
    mutating func add(index: UInt64, from: NodeID, context: [UInt8]) -> Bool {
        if pending[context] != nil { return false }
        pending[context] = Request(from: from, context: context, index: index, acks: [])
        queue.append(context)
        return true
    }

    /// Records `id`'s acknowledgement of `context`; returns the acks so far, or nil for an
    /// unknown context.
    mutating func ack(_ id: NodeID, context: [UInt8]) -> Set<NodeID>? {
        guard var request = pending[context] else { return nil }
        request.acks.insert(id)
        pending[context] = request
        return request.acks
    }

    /// Removes and returns every request up to and including `context`, oldest first.
    mutating func release(through context: [UInt8]) -> [Request] {
        guard let pos = queue.firstIndex(of: context) else { return [] }
        let done = queue[...pos].compactMap { pending.removeValue(forKey: $0) }
        queue.removeFirst(pos + 1)
        return done
    }

    mutating func reset() {
        pending = [:]
        queue = []
    }
}
