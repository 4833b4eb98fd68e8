import Consensus
import Synchronization

/// A Raft group's stable storage in memory (the in-memory twin of `LevelDBRaftStorage`, for
/// the simulated cluster and the shell's tests; hashicorp/raft keeps its `InmemStore` beside
/// the real one the same way): what `persist` and
/// `compact` store is durable when they return (as `LevelDBRaftStorage`, one synced batch
/// each); `setApplied(sync: false)` is not, and `crash()` forgets it — unless a later synced
/// call made it durable, as LevelDB's log does (a synced write flushes every earlier one).
///
/// Thread safety: a mutex guards the state (the simulation calls it from one task anyway).
/// Invariant: entries are consecutive and follow the snapshot index.
final class MemoryRaftStorage: RaftStorage {
    private struct State {
        var hardState = HardState()
        var snapshot: Snapshot?
        var entries: [Entry] = []
        var appliedDurable: UInt64 = 0
        var appliedVolatile: UInt64 = 0

        var durable: RaftDurableState {
            let snapshotIndex = snapshot?.metadata.index ?? 0
            let snapshotTerm = snapshot?.metadata.term ?? 0
            return RaftDurableState(
                hardState: hardState, snapshotIndex: snapshotIndex, snapshotTerm: snapshotTerm,
                lastIndex: entries.last?.index ?? snapshotIndex, lastTerm: entries.last?.term ?? snapshotTerm)
        }

        /// A synced write: everything written before it is durable too.
        mutating func synced() { appliedDurable = appliedVolatile }
    }

    private let state = Mutex(State())

    func load() throws -> PersistentState {
        state.withLock { s in
            PersistentState(hardState: s.hardState, snapshot: s.snapshot, entries: s.entries, applied: s.appliedVolatile)
        }
    }

    func persist(hardState: HardState?, entries: [Entry], snapshot: Snapshot?) throws {
        state.withLock { s in
            if let snapshot {
                // §7 rule 6: an existing entry with the snapshot's index and term keeps the log
                // after it (a snapshot handed out again after a restart is persisted
                // idempotently); otherwise the snapshot replaces the whole log.
                let index = snapshot.metadata.index
                let storedTerm = index == s.snapshot?.metadata.index ? s.snapshot?.metadata.term : s.entries.first { $0.index == index }?.term
                if storedTerm == snapshot.metadata.term {
                    s.entries.removeAll { $0.index <= index }
                } else {
                    s.entries.removeAll()
                }
                s.snapshot = snapshot
            }
            if let first = entries.first {
                s.entries.removeAll { $0.index >= first.index }  // §5.3: a conflicting suffix goes
                s.entries += entries
            }
            if let hardState { s.hardState = hardState }
            s.synced()
        }
    }

    func setApplied(_ index: UInt64, sync: Bool) throws {
        state.withLock { s in
            s.appliedVolatile = max(s.appliedVolatile, index)
            if sync { s.synced() }
        }
    }

    func compact(upTo index: UInt64, snapshot: Snapshot) throws {
        state.withLock { s in
            s.snapshot = snapshot
            s.entries.removeAll { $0.index <= index }
            s.synced()
        }
    }

    var durable: RaftDurableState { state.withLock { $0.durable } }

    /// A machine crash: what was written without a sync is gone.
    func crash() {
        state.withLock { $0.appliedVolatile = $0.appliedDurable }
    }
}
