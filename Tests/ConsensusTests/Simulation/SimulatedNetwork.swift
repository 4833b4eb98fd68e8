import Consensus

/// Messages on the wire of a simulated cluster, ordered by delivery tick then send order.
/// Faults (drop, delay, duplicate, partitions) are decided by `SimulatedCluster` when a
/// message is sent; this type only holds what is in flight.
///
/// Invariant: `queue` is sorted by `(at, seq)`; `seq` is unique and increasing.
struct SimulatedNetwork {
    struct InFlight {
        var at: Int
        var seq: Int
        var message: Message
    }

    private(set) var queue: [InFlight] = []
    private var nextSeq = 0
    /// Unordered pairs that cannot talk (a partition is a set of cut pairs).
    private(set) var cuts: Set<Pair> = []

    struct Pair: Hashable {
        let a: NodeID, b: NodeID
        init(_ x: NodeID, _ y: NodeID) {
            a = min(x, y)
            b = max(x, y)
        }
    }

    var isEmpty: Bool { queue.isEmpty }

    mutating func enqueue(_ m: Message, at: Int) {
        let item = InFlight(at: at, seq: nextSeq, message: m)
        nextSeq += 1
        // Binary search for the insertion point (after all items with at <= item.at).
        var lo = 0
        var hi = queue.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if queue[mid].at <= at { lo = mid + 1 } else { hi = mid }
        }
        queue.insert(item, at: lo)
    }

    /// Removes and returns the next message due at or before `now`.
    mutating func popDue(now: Int) -> Message? {
        guard let first = queue.first, first.at <= now else { return nil }
        queue.removeFirst()
        return first.message
    }

    func isCut(_ x: NodeID, _ y: NodeID) -> Bool { cuts.contains(Pair(x, y)) }

    mutating func cut(_ x: NodeID, _ y: NodeID) { cuts.insert(Pair(x, y)) }

    /// Splits `ids` into `side` and the rest.
    mutating func partition(_ side: Set<NodeID>, among ids: [NodeID]) {
        for x in ids where side.contains(x) {
            for y in ids where !side.contains(y) { cut(x, y) }
        }
    }

    mutating func heal() { cuts = [] }

    mutating func dropAll() { queue = [] }
}
