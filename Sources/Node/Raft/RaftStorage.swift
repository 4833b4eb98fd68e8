import Consensus

/// The Raft shell's stable storage: what `RaftDriver` needs to keep a `RaftNode` durable
/// (the core's `Ready` persistence contract, step 1) and to restart it. Today's
/// implementation is `LevelDBRaftStorage`; tests use in-memory doubles.
///
/// Contract:
/// - `persist` stores a `Ready`'s hard state, entries and snapshot (Raft §5.3: entries
///   replace a conflicting suffix; §7: a snapshot replaces the log it covers) and returns
///   only once they are durable, or throws having stored nothing.
/// - `durable` reports what is on stable storage *now*, as the storage knows it, not as the
///   caller assumes: the driver checks each `Ready` against it before sending its messages
///   (`RaftPersistenceRule`).
/// - `setApplied` records how far the state machine has applied the log (`sync: false` may
///   be lost on a machine crash; the node then re-applies).
/// - `compact` replaces the applied entries up to `index` by `snapshot` (Raft §7).
/// - `load` returns the state a restarted core starts from.
protocol RaftStorage: Sendable {
    func load() throws -> PersistentState
    func persist(hardState: HardState?, entries: [Entry], snapshot: Snapshot?) throws
    func setApplied(_ index: UInt64, sync: Bool) throws
    func compact(upTo index: UInt64, snapshot: Snapshot) throws
    var durable: RaftDurableState { get }
}
