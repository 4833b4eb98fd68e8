import GridBase

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
        var w = BigEndianWriter()
        switch self {
        case .addLearner(let id): w.u8(1); w.u64(id)
        case .promote(let id): w.u8(2); w.u64(id)
        case .remove(let id): w.u8(3); w.u64(id)
        case .bootstrap(let voters):
            w.u8(4)
            w.u32(UInt32(truncatingIfNeeded: voters.count))
            for v in voters { w.u64(v) }
        }
        return w.bytes
    }

    /// Decodes `encoded`; nil for malformed bytes (a replica then treats the entry as a no-op).
    public init?(decoding bytes: [UInt8]) {
        var r = BigEndianReader(bytes)
        guard let tag = try? r.u8() else { return nil }
        switch tag {
        case 1, 2, 3:
            guard bytes.count == 9, let id = try? r.u64(), id != noNode else { return nil }
            self = tag == 1 ? .addLearner(id) : tag == 2 ? .promote(id) : .remove(id)
        case 4:
            guard let count = try? r.u32() else { return nil }
            let n = Int(count)
            guard bytes.count == 5 + 8 * n else { return nil }
            var voters: [NodeID] = []
            for _ in 0..<n {
                guard let id = try? r.u64(), id != noNode else { return nil }
                voters.append(id)
            }
            self = .bootstrap(voters: voters)
        default:
            return nil
        }
    }
}
