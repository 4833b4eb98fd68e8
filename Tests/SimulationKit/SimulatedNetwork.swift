import Consensus

/// Messages on the wire of a simulated Raft group, ordered by delivery tick then send order,
/// and the partitions (cut pairs) between members. Shared by the Raft core's simulation
/// (`Tests/ConsensusTests`) and the simulated cluster of full replicas
/// (`Tests/ClusterSimulationTests`). Faults (drop, delay, duplicate, partitions) are decided
/// by the simulation when a message is sent; this type only holds what is in flight.
///
/// Invariant: `queue` is sorted by `(at, seq)`; `seq` is unique and increasing.
public struct SimulatedNetwork {
    public struct InFlight {
        public var at: Int
        public var seq: Int
        public var message: Message
    }

    public private(set) var queue: [InFlight] = []
    private var nextSeq = 0
    /// Unordered pairs that cannot talk (a partition is a set of cut pairs).
    public private(set) var cuts: Set<Pair> = []

    public struct Pair: Hashable {
        public let a: NodeID, b: NodeID
        public init(_ x: NodeID, _ y: NodeID) {
            a = min(x, y)
            b = max(x, y)
        }
    }

    public init() {}

    public var isEmpty: Bool { queue.isEmpty }

    public mutating func enqueue(_ m: Message, at: Int) {
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
    public mutating func popDue(now: Int) -> Message? {
        guard let first = queue.first, first.at <= now else { return nil }
        queue.removeFirst()
        return first.message
    }

    public func isCut(_ x: NodeID, _ y: NodeID) -> Bool { cuts.contains(Pair(x, y)) }

    public mutating func cut(_ x: NodeID, _ y: NodeID) { cuts.insert(Pair(x, y)) }

    /// Splits `ids` into `side` and the rest.
    public mutating func partition(_ side: Set<NodeID>, among ids: [NodeID]) {
        for x in ids where side.contains(x) {
            for y in ids where !side.contains(y) { cut(x, y) }
        }
    }

    public mutating func heal() { cuts = [] }

    public mutating func dropAll() { queue = [] }
}
