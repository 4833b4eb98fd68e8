import GridBase

/// One member's Raft state machine: pure, deterministic, single-threaded.
///
/// Drive it with `tick()` (time), `step(_:)` (messages from peers) and the request methods
/// (`propose`, `proposeConfChange`, `transferLeadership`, `readIndex`, ...). It performs no
/// I/O, reads no clock and draws randomness only from its own seeded `SplitMix64`. All
/// effects accumulate until the owner takes them with `ready()`, carries them out under
/// the persistence contract written on `Ready`, and calls `advance(_:)`.
///
/// Ownership / threading: a value type; the owner (the node's Raft loop) must serialize all
/// calls. Copying a `RaftNode` forks it, which tests use freely.
///
/// Invariants (checked by the simulation tests in Tests/ConsensusTests/Simulation):
/// - Election safety: at most one leader per term (§5.2).
/// - Log matching: two logs with an entry of equal index and term agree on all entries up
///   to it (§5.3).
/// - Leader completeness: a committed entry is in every later leader's log (§5.4).
/// - State machine safety: all members apply the same entries in the same order (§5.4.3).
/// - `term` never decreases; at most one vote per term.
public struct RaftNode: Sendable {
    public let configuration: RaftConfiguration
    /// This member's id (`configuration.id`).
    public var id: NodeID { configuration.id }
    /// Current term (persisted through `Ready.hardState`).
    public internal(set) var term: UInt64
    /// Vote cast in `term`, or `noNode` (persisted).
    public internal(set) var vote: NodeID
    public internal(set) var role: RaftRole = .follower
    /// Leader of `term` as far as this member knows, or `noNode`.
    public internal(set) var leader: NodeID = noNode
    /// The log (read-only outside the core).
    public internal(set) var log: RaftLog

    var tracker: ProgressTracker
    var rng: SplitMix64
    var electionElapsed = 0
    var heartbeatElapsed = 0
    var randomizedElectionTimeout = 0

    /// Outgoing messages not yet taken by `ready()`.
    var messages: [Message] = []
    /// Confirmed reads waiting until the applied index reaches theirs.
    var readStates: [ReadState] = []
    var readOnly = ReadOnlyQueue()
    /// ReadIndex requests a new leader received before committing an entry of its term.
    var pendingReadIndexMessages: [Message] = []
    /// Target of an ongoing leadership transfer, or `noNode`.
    public internal(set) var leadTransferee: NodeID = noNode
    /// Log index of the latest configuration change the leader appended (or its last index
    /// when it became leader); a new change is refused while `applied < pendingConfIndex`.
    var pendingConfIndex: UInt64 = 0
    /// Payload bytes the leader appended that are not yet committed and applied.
    var uncommittedSize = 0
    /// Membership after each configuration change applied since the snapshot, oldest first;
    /// `confHistory[0]` is the membership at the snapshot (or empty at index 0).
    var confHistory: [(index: UInt64, conf: ConfState)]

    /// The hard state last acknowledged as durable through `advance`.
    var persistedHardState: HardState
    /// The soft state last reported in a `Ready`.
    var reportedSoftState: SoftState

    /// Creates (or re-creates after a restart) a member from what it persisted.
    ///
    /// - Parameters:
    ///   - configuration: validated with `RaftConfiguration.validate()`.
    ///   - state: what the node durably holds; see `PersistentState`. Membership is
    ///     rebuilt from the snapshot and the configuration changes in `(snapshot, applied]`.
    ///   - randomSeed: seeds the election-timeout jitter. Use a different seed per member
    ///     (and per restart) in production; tests use it for replay.
    /// - Throws: `RaftError.invalidConfiguration`, `RaftError.corruptState`.
    public init(configuration: RaftConfiguration, state: PersistentState, randomSeed: UInt64) throws(RaftError) {
        try configuration.validate()
        self.configuration = configuration
        log = try RaftLog(state)
        term = state.hardState.term
        vote = state.hardState.vote
        rng = SplitMix64(seed: randomSeed)
        tracker = ProgressTracker(maxInflight: configuration.maxInflightMessages, maxInflightBytes: configuration.maxInflightBytes)
        persistedHardState = HardState(term: state.hardState.term, vote: state.hardState.vote, commit: log.committed)
        reportedSoftState = SoftState(leader: noNode, role: .follower)

        let base = state.snapshot.map { ($0.metadata.index, $0.metadata.confState) } ?? (0, ConfState())
        confHistory = [(base.0, base.1)]
        var conf = base.1
        if log.applied > log.offset {
            for e in log.entries(from: log.firstIndex, through: log.applied) ?? [] where e.kind == .configChange {
                if let change = ConfChange(decoding: e.data) {
                    conf = conf.applying(change)
                    confHistory.append((e.index, conf))
                }
            }
        }
        tracker.apply(conf, nextIndex: log.lastIndex + 1)
        becomeFollower(term: term, leader: noNode)
        reportedSoftState = softState
    }

    // MARK: Observation

    /// Leader and role now.
    public var softState: SoftState { SoftState(leader: leader, role: role) }

    /// The hard state now (not necessarily durable yet).
    public var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }

    /// Current membership (as of the applied index).
    public var confState: ConfState { tracker.conf }

    /// The leader's view of each member's replication (empty unless leader), by id.
    public var progress: [NodeID: Progress] { role == .leader ? tracker.progress : [:] }

    /// Whether this member may campaign: it is a voter of the current membership.
    public var isPromotable: Bool { tracker.conf.isVoter(id) }

    // MARK: Driving

    /// Advances logical time by one tick: followers and candidates count towards an
    /// election timeout, leaders towards heartbeats and the check-quorum round.
    public mutating func tick() {
        if role == .leader {
            tickHeartbeat()
        } else {
            tickElection()
        }
    }

    /// Handles a message from a peer.
    ///
    /// Messages of a stale term are answered or ignored as Raft prescribes (not an error).
    /// - Throws: `RaftError.invalidMessage` for a message a correct peer cannot have sent
    ///   to this member (wrong addressee, sender 0, response from a non-member, malformed
    ///   snapshot); the message is ignored and the state is unchanged.
    public mutating func step(_ m: Message) throws(RaftError) {
        guard m.to == id else { throw .invalidMessage("addressed to \(m.to), not \(id)") }
        guard m.from != noNode else { throw .invalidMessage("sender id 0") }
        if m.kind != .transferLeader, m.from == id { throw .invalidMessage("message from self") }
        if m.kind == .snapshot, m.snapshot == nil || m.snapshot?.metadata.index == 0 {
            throw .invalidMessage("snapshot message without snapshot")
        }
        switch m.kind {
        case .appendResponse, .heartbeatResponse:
            // Responses only matter from members the leader tracks.
            if role == .leader, !tracker.conf.contains(m.from) { throw .invalidMessage("\(m.kind) from non-member \(m.from)") }
        case .propose, .readIndex, .transferLeader:
            // Forwarded requests are term-less ("local") messages.
            try stepLocal(m)
            return
        default:
            break
        }

        if m.term > term {
            if m.kind == .vote || m.kind == .preVote {
                let force = m.context == Message.campaignTransferContext
                let inLease = configuration.checkQuorum && leader != noNode && electionElapsed < configuration.electionTicks
                if !force && inLease {
                    // Leader lease (thesis §4.2.3): with a live leader, ignore disruptive
                    // candidates; do not even update the term.
                    return
                }
            }
            switch m.kind {
            case .preVote:
                break  // never change term because of a pre-vote request
            case .preVoteResponse where !m.reject:
                break  // the pre-candidate bumps its term when it wins
            case .append, .heartbeat, .snapshot:
                becomeFollower(term: m.term, leader: m.from)
            default:
                becomeFollower(term: m.term, leader: noNode)
            }
        } else if m.term < term {
            if (configuration.checkQuorum || configuration.preVote) && (m.kind == .heartbeat || m.kind == .append) {
                // A stale leader (or a member that was partitioned and bumped its term) gets
                // our term so it steps down and the cluster can make progress.
                send(Message(kind: .appendResponse, from: id, to: m.from, term: term))
            } else if m.kind == .preVote {
                send(Message(kind: .preVoteResponse, from: id, to: m.from, term: term, reject: true))
            }
            return
        }

        switch m.kind {
        case .preVote, .vote:
            handleVoteRequest(m)
        default:
            switch role {
            case .leader: stepLeader(m)
            case .candidate, .preCandidate: stepCandidate(m)
            case .follower, .learner: stepFollower(m)
            }
        }
    }

    // MARK: Ready / advance

    /// Whether `ready()` would return anything to do.
    public var hasReady: Bool {
        if softState != reportedSoftState { return true }
        if hardState != persistedHardState { return true }
        if !log.snapshotIsStable || log.stableIndex < log.lastIndex { return true }
        if !messages.isEmpty { return true }
        if log.snapshotIsStable && log.applied < log.committed { return true }
        return readStates.contains { $0.index <= log.applied }
    }

    /// Takes the pending effects. Messages and read states are handed out exactly once;
    /// entries to persist and committed entries are handed out again by the next `ready()`
    /// unless `advance` acknowledged them. Call `advance(_:)` with the result before the
    /// next `ready()`.
    public mutating func ready() -> Ready {
        var r = Ready()
        let hs = hardState
        if hs != persistedHardState { r.hardState = hs }
        r.entriesToPersist = log.unstableEntries
        if !log.snapshotIsStable { r.snapshotToPersist = log.snapshot }
        r.messages = messages
        messages = []
        r.committedEntries = log.nextCommittedEntries
        let appliedAfter = r.committedEntries.last?.index ?? (log.snapshotIsStable ? log.applied : log.offset)
        r.readStates = readStates.filter { $0.index <= appliedAfter }
        readStates.removeAll { $0.index <= appliedAfter }
        let ss = softState
        if ss != reportedSoftState {
            r.softState = ss
            reportedSoftState = ss
        }
        return r
    }

    /// Acknowledges that `ready` was handled as its contract says: its hard state, entries
    /// and snapshot are durable and its committed entries applied. Configuration changes
    /// among the committed entries take effect here.
    public mutating func advance(_ ready: Ready) {
        if let hs = ready.hardState { persistedHardState = hs }
        if let s = ready.snapshotToPersist { log.stableSnapshot(at: s.metadata.index) }
        if let last = ready.entriesToPersist.last { log.stable(to: last.index, term: last.term) }
        for e in ready.committedEntries where e.index == log.applied + 1 {
            log.applied(to: e.index)
            if role == .leader { uncommittedSize = max(0, uncommittedSize - e.payloadSize) }
            if e.kind == .configChange, let change = ConfChange(decoding: e.data) {
                applyConfChange(change, at: e.index)
            }
        }
    }

    // MARK: Shared helpers

    /// Queues `m` for the next `Ready`. Every message names its sender explicitly; only
    /// forwarded requests (`.readIndex`, `.transferLeader`) carry a sender other than `id`
    /// (the original requester / the transferee), so the leader answers the right member.
    mutating func send(_ m: Message) {
        var m = m
        if m.from == noNode { m.from = id }
        messages.append(m)
    }

    mutating func resetRandomizedElectionTimeout() {
        let base = configuration.electionTicks
        randomizedElectionTimeout = base + Int(rng.next() % UInt64(base))
    }

    var pastElectionTimeout: Bool { electionElapsed >= randomizedElectionTimeout }

    /// Common reset on every role change (etcd-io/raft `reset`).
    mutating func reset(term newTerm: UInt64) {
        if term != newTerm {
            term = newTerm
            vote = noNode
        }
        leader = noNode
        electionElapsed = 0
        heartbeatElapsed = 0
        resetRandomizedElectionTimeout()
        leadTransferee = noNode
        tracker.votes = [:]
        let last = log.lastIndex
        for mid in tracker.conf.members {
            var p = Progress(next: last + 1, isLearner: tracker.conf.isLearner(mid), maxInflight: tracker.maxInflight, maxInflightBytes: tracker.maxInflightBytes)
            if mid == id { p.match = last }
            tracker.progress[mid] = p
        }
        pendingConfIndex = 0
        uncommittedSize = 0
        readOnly.reset()
    }
}
