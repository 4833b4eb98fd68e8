import Consensus
import GridBase

/// One simulated member: a `RaftNode` (nil while crashed) plus exactly what its shell has
/// made durable under the `Ready` contract, plus its state machine.
///
/// Durability model: `durable` changes only in `persist(_:)`, which a shell runs before it
/// sends a Ready's messages; the state machine (`applied`, `stateHash`) is durable as it
/// applies (GridLedger stores each applied block). A crash drops the `RaftNode`, so
/// everything not yet handed out in a Ready and persisted is lost.
struct SimulatedNode {
    let id: NodeID
    var raft: RaftNode?
    /// What survives a crash.
    var durable: PersistentState
    /// State machine: index of the last applied entry and a rolling hash of everything
    /// applied (the "state"), durable with the state machine.
    var stateHash: UInt64 = 0
    /// Commit index last seen by the invariant checker (not durable; test bookkeeping).
    var observedCommit: UInt64 = 0
    /// Number of crashes so far.
    var incarnation = 0

    var isUp: Bool { raft != nil }

    /// Rule 1 of the Ready contract: snapshot, then entries (truncating a conflicting
    /// suffix), then hard state, atomically.
    mutating func persist(_ ready: Ready) {
        if let s = ready.snapshotToPersist {
            durable.snapshot = s
            durable.entries = []
        }
        if let first = ready.entriesToPersist.first {
            durable.entries.removeAll { $0.index >= first.index }
            durable.entries.append(contentsOf: ready.entriesToPersist)
        }
        if let hs = ready.hardState { durable.hardState = hs }
    }

    /// Log compaction as a node would do it: the snapshot is stored, then the entries it
    /// covers are deleted.
    mutating func storeCompaction(_ s: Snapshot) {
        durable.snapshot = s
        durable.entries.removeAll { $0.index <= s.metadata.index }
    }

    /// The rolling hash of the state after applying `e` to a state with hash `h`.
    static func mix(_ h: UInt64, _ e: Entry) -> UInt64 {
        var x = h ^ 0x9E37_79B9_7F4A_7C15
        x = (x ^ e.term) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ e.index) &* 0x94D0_49BB_1331_11EB
        x ^= UInt64(e.kind.rawValue)
        for b in e.data { x = (x ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return x ^ (x >> 31)
    }

    /// Snapshot payload of the simulation's state machine: index(u64) hash(u64).
    static func snapshotData(index: UInt64, hash: UInt64) -> [UInt8] {
        be(index) + be(hash)
    }

    static func decodeSnapshotData(_ d: [UInt8]) -> (index: UInt64, hash: UInt64)? {
        guard d.count == 16 else { return nil }
        return (fromBE(d[0..<8]), fromBE(d[8..<16]))
    }

    static func be(_ v: UInt64) -> [UInt8] { BigEndianWriter.bytes(of: v) }

    static func fromBE(_ s: ArraySlice<UInt8>) -> UInt64 { BigEndianReader.integer(exactly: s) }
}
