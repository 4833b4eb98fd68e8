import Consensus

/// A `RaftStorage` that times each `persist` (one synced batch of a `Ready`'s hard state,
/// entries and snapshot) and tells `observe`: the Raft log's fsync latency
/// (`gridledger_raft_log_persist_duration_seconds`). Everything else goes straight to `base`.
///
/// Thread safety: as `base`; `observe` is called on the driver's task after each successful
/// persist and must be cheap.
struct TimedRaftStorage: RaftStorage {
    let base: any RaftStorage
    let observe: @Sendable (Duration) -> Void

    func load() throws -> PersistentState { try base.load() }

    func persist(hardState: HardState?, entries: [Entry], snapshot: Snapshot?) throws {
        let started = ContinuousClock.now
        try base.persist(hardState: hardState, entries: entries, snapshot: snapshot)
        observe(ContinuousClock.now - started)
    }

    func setApplied(_ index: UInt64, sync: Bool) throws { try base.setApplied(index, sync: sync) }
    func compact(upTo index: UInt64, snapshot: Snapshot) throws { try base.compact(upTo: index, snapshot: snapshot) }
    var durable: RaftDurableState { base.durable }
}
