/// A single membership change, carried by an `Entry` of kind `.configChange` and applied
/// when that entry is applied (one change at a time: at most one voter is added or removed
/// per change, so old and new majorities always overlap; Raft thesis §4.1).
///
/// Wire grammar of `encoded` (all integers big-endian):
///   change    := tag(u8) body
///   tag 1 addLearner, 2 promote, 3 remove: body := id(u64)
///   tag 4 bootstrap:                       body := count(u32) id(u64){count}
public enum ConfChange: Sendable, Hashable {
    /// The initial voters of a new group; only ever written by `PersistentState.bootstrap`.
    case bootstrap(voters: [NodeID])
    /// Add a non-voting member that receives the log.
    case addLearner(NodeID)
    /// Make a learner a voter (refused by the leader unless it is a learner).
    case promote(NodeID)
    /// Remove a voter or learner. A removed leader steps down once the change is applied.
    case remove(NodeID)

    public var encoded: [UInt8] {
        var out: [UInt8] = []
        func put64(_ v: UInt64) { for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(s))) } }
        switch self {
        case .addLearner(let id): out.append(1); put64(id)
        case .promote(let id): out.append(2); put64(id)
        case .remove(let id): out.append(3); put64(id)
        case .bootstrap(let voters):
            out.append(4)
            let n = UInt32(truncatingIfNeeded: voters.count)
            for s in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: n >> UInt32(s))) }
            for v in voters { put64(v) }
        }
        return out
    }

    /// Decodes `encoded`; nil for malformed bytes (a replica then treats the entry as a no-op).
    public init?(decoding bytes: [UInt8]) {
        func get64(_ at: Int) -> UInt64? {
            guard at + 8 <= bytes.count else { return nil }
            var v: UInt64 = 0
            for i in at..<(at + 8) { v = v << 8 | UInt64(bytes[i]) }
            return v
        }
        guard let tag = bytes.first else { return nil }
        switch tag {
        case 1, 2, 3:
            guard bytes.count == 9, let id = get64(1), id != noNode else { return nil }
            self = tag == 1 ? .addLearner(id) : tag == 2 ? .promote(id) : .remove(id)
        case 4:
            guard bytes.count >= 5 else { return nil }
            var n = 0
            for i in 1..<5 { n = n << 8 | Int(bytes[i]) }
            guard bytes.count == 5 + 8 * n else { return nil }
            var voters: [NodeID] = []
            for k in 0..<n {
                guard let id = get64(5 + 8 * k), id != noNode else { return nil }
                voters.append(id)
            }
            self = .bootstrap(voters: voters)
        default:
            return nil
        }
    }
}
