/// Everything the node must do after the core changed state: the only way effects leave
/// a `RaftNode`. Obtain it with `RaftNode.ready()`, act on it, then hand it back with
/// `RaftNode.advance(_:)` before calling `ready()` again.
///
/// **Persistence contract** (the Raft safety argument depends on it; etcd-io/raft `doc.go`):
/// 1. Durably persist — fsync, as one atomic batch — `snapshotToPersist` (if any), then
///    `entriesToPersist`, then `hardState` (if any). Persisting `entriesToPersist` replaces
///    every previously persisted entry whose index is `>=` the first one's index (a
///    follower's conflicting suffix is thereby truncated). Persisting `snapshotToPersist`
///    discards every previously persisted entry (InstallSnapshot rule 7: the log is
///    replaced; entries that follow it, if any, are in `entriesToPersist`).
/// 2. Only then send `messages`. A vote grant, an append acknowledgement or a candidate's
///    vote request all promise state that must survive a crash.
/// 3. Install `snapshotToPersist` into the state machine (if any), then apply
///    `committedEntries` in order. Applying may happen after step 1 even before step 2
///    completes; it must never happen before step 1.
/// 4. Serve the reads in `readStates`: each is safe once step 3 is done.
/// 5. Call `advance(self)`.
///
/// A crash at any point loses at most what step 1 had not yet made durable; on restart the
/// node rebuilds the `RaftNode` from `PersistentState`.
///
/// Invariant: `committedEntries` are consecutive, start right after the last applied
/// index, and are empty while a snapshot is waiting to be persisted. `entriesToPersist`
/// are consecutive. Every `ReadState.index` is at most the applied index reached after
/// step 3.
public struct Ready: Sendable, Hashable {
    /// The hard state, when it changed since the last `advance`; persist it.
    public var hardState: HardState?
    /// New entries to append to stable storage (see rule 1 for truncation).
    public var entriesToPersist: [Entry]
    /// A snapshot received from the leader; persist and install it.
    public var snapshotToPersist: Snapshot?
    /// Messages to send once everything above is durable. Delivery may drop, delay,
    /// duplicate or reorder them; Raft tolerates all of that.
    public var messages: [Message]
    /// Entries known committed, to apply to the state machine in order.
    public var committedEntries: [Entry]
    /// Linearizable reads confirmed by the leader (see `ReadState`).
    public var readStates: [ReadState]
    /// Leader and role, when they changed since the previous Ready.
    public var softState: SoftState?

    public init(
        hardState: HardState? = nil, entriesToPersist: [Entry] = [], snapshotToPersist: Snapshot? = nil,
        messages: [Message] = [], committedEntries: [Entry] = [], readStates: [ReadState] = [],
        softState: SoftState? = nil
    ) {
        self.hardState = hardState
        self.entriesToPersist = entriesToPersist
        self.snapshotToPersist = snapshotToPersist
        self.messages = messages
        self.committedEntries = committedEntries
        self.readStates = readStates
        self.softState = softState
    }

    /// True when something must be persisted before `messages` may be sent. A shell can
    /// `assert` that it has synced whenever this is true before it sends.
    public var mustSync: Bool {
        hardState != nil || !entriesToPersist.isEmpty || snapshotToPersist != nil
    }
}
