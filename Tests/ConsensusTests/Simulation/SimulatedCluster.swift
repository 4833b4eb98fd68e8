import Consensus
import SimulationKit
import GridBase

/// A deterministic simulation of a Raft group (the shape of etcd-io/raft `rafttest` and
/// hashicorp/raft `fuzzy`): N `RaftNode`s, each behind a shell that honours the `Ready`
/// contract exactly, over a seeded network that drops, delays (in ticks), duplicates and
/// reorders messages, with partitions, crashes (losing what was not persisted) and
/// restarts, random client proposals, log compaction and, optionally, membership changes.
///
/// Everything random comes from one `SplitMix64(seed)`, and nothing iterates a `Dictionary`
/// in hash order, so a run is a pure function of `(seed, options)`: `RAFT_SEED=<n>`
/// replays it with a trace.
struct SimulatedCluster {
    struct Options {
        var voters = 3
        /// Ids beyond the founders that membership chaos may add (they start empty).
        var spares = 0
        var electionTicks = 10
        var chaosTicks = 300
        /// Ticks after healing before liveness is judged, then ticks allowed to commit.
        var settleTicks = 60
        var commitTicks = 60
        var dropRate = 0.05
        var duplicateRate = 0.02
        /// Network delay in ticks: uniform in `0...maxDelay`.
        var maxDelay = 2
        var partitionRate = 0.01
        var healRate = 0.04
        var crashRate = 0.006
        var restartRate = 0.05
        /// Probability that a shell crashes after persisting a Ready but before sending it.
        var crashMidReadyRate = 0.002
        var proposeRate = 0.3
        /// Compact once this many entries are applied beyond the snapshot (0: never).
        var compactAfter = 25
        var membershipRate = 0.0
        var readIndexRate = 0.05
        var transferRate = 0.003
        var maxSizePerMessage = 64
        var maxInflightMessages = 4
        var maxInflightBytes = 256
        var maxUncommittedEntriesSize = 4096
    }

    let seed: UInt64
    let options: Options
    var rng: SplitMix64
    var now = 0
    var ids: [NodeID]
    var nodes: [NodeID: SimulatedNode] = [:]
    var network = SimulatedNetwork()
    var checker = InvariantChecker()
    /// When non-nil, every event is appended here.
    var trace: [String]?
    private var nextValue: UInt64 = 1
    /// Values proposed that a leader accepted, and reads confirmed.
    private(set) var proposed = 0
    private(set) var confirmedReads = 0
    private(set) var membershipChanges = 0
    private(set) var snapshotsInstalled = 0
    /// Members removed (never re-added: ids are not reused).
    private var removed: Set<NodeID> = []
    /// Pending ReadIndex requests: context → (node, commit index observed anywhere at request time).
    private var pendingReads: [[UInt8]: (node: NodeID, minIndex: UInt64)] = [:]
    private var nextReadID: UInt64 = 1
    /// The liveness probe's value and the members that applied it.
    private var marker: [UInt8] = []
    private var markerAppliedBy: Set<NodeID> = []
    /// Index at which the marker was applied (same everywhere, by state machine safety).
    private var markerIndex: UInt64 = 0
    /// Set once the chaos phase ends: no more drops.
    private var healed = false

    init(seed: UInt64, options: Options = Options(), tracing: Bool = false) {
        self.seed = seed
        self.options = options
        rng = SplitMix64(seed: seed)
        ids = (1...UInt64(options.voters + options.spares)).map { $0 }
        trace = tracing ? [] : nil
        let founders = Array(ids.prefix(options.voters))
        for id in ids {
            let state = founders.contains(id) ? PersistentState.bootstrap(voters: founders) : PersistentState()
            nodes[id] = SimulatedNode(id: id, raft: nil, durable: state)
            start(id)
        }
    }

    // MARK: Randomness

    mutating func chance(_ p: Double) -> Bool {
        p > 0 && Double(rng.next() % 1_000_000) < p * 1_000_000
    }

    mutating func pick<T>(_ xs: [T]) -> T? {
        xs.isEmpty ? nil : xs[Int(rng.next() % UInt64(xs.count))]
    }

    mutating func log(_ s: @autoclosure () -> String) {
        if trace != nil { trace?.append("t=\(now) \(s())") }
    }

    // MARK: Lifecycle

    func configuration(_ id: NodeID) -> RaftConfiguration {
        RaftConfiguration(
            id: id, electionTicks: options.electionTicks, heartbeatTicks: 1,
            maxSizePerMessage: options.maxSizePerMessage, maxInflightMessages: options.maxInflightMessages,
            maxInflightBytes: options.maxInflightBytes, preVote: true, checkQuorum: true,
            maxUncommittedEntriesSize: options.maxUncommittedEntriesSize)
    }

    /// (Re)starts `id` from its durable state.
    mutating func start(_ id: NodeID) {
        guard var n = nodes[id], n.raft == nil else { return }
        do {
            n.raft = try RaftNode(configuration: configuration(id), state: n.durable, randomSeed: rng.next())
        } catch {
            checker.fail("restart of \(id) failed: \(error)")
        }
        nodes[id] = n
        log("start n\(id) term=\(n.durable.hardState.term) commit=\(n.durable.hardState.commit) applied=\(n.durable.applied) last=\(n.durable.entries.last?.index ?? 0)")
        process(id)
    }

    mutating func crash(_ id: NodeID) {
        guard var n = nodes[id], n.raft != nil else { return }
        n.raft = nil
        n.incarnation += 1
        nodes[id] = n
        log("crash n\(id)")
    }

    var upIDs: [NodeID] { ids.filter { nodes[$0]?.isUp == true } }

    // MARK: The shell

    /// Runs the shell loop for `id` until the node has nothing ready: persist, (maybe
    /// crash), send, apply, advance.
    mutating func process(_ id: NodeID) {
        var rounds = 0
        while var n = nodes[id], var raft = n.raft, raft.hasReady {
            rounds += 1
            if rounds > 1000 { checker.fail("node \(id): hasReady never settles"); return }
            let ready = raft.ready()
            n.persist(ready)
            if !healed && ready.mustSync && chance(options.crashMidReadyRate) {
                nodes[id] = n
                crash(id)
                log("  (crashed after persisting, before sending)")
                return
            }
            for m in ready.messages where !send(m) && m.kind == .snapshot {
                // The transport reports a failed snapshot send (etcd ReportSnapshot).
                raft.reportSnapshot(to: m.to, success: false)
            }
            if let s = ready.snapshotToPersist {
                guard let (index, hash) = SimulatedNode.decodeSnapshotData(s.data), index == s.metadata.index else {
                    checker.fail("node \(id): snapshot data does not match metadata")
                    return
                }
                n.stateHash = hash
                n.durable.applied = index
                snapshotsInstalled += 1
                checker.observeSnapshot(node: id, index: index, hash: hash)
                log("n\(id) installed snapshot \(index)")
            }
            for e in ready.committedEntries {
                if e.index != n.durable.applied + 1 {
                    checker.fail("node \(id): applied index \(e.index) after \(n.durable.applied)")
                }
                n.stateHash = SimulatedNode.mix(n.stateHash, e)
                n.durable.applied = e.index
                checker.observeApply(node: id, entry: e, hash: n.stateHash)
                if !marker.isEmpty && e.data == marker {
                    markerAppliedBy.insert(id)
                    markerIndex = e.index
                }
                if e.kind == .configChange, case .remove(let gone)? = ConfChange(decoding: e.data) { removed.insert(gone) }
            }
            for rs in ready.readStates {
                confirmedReads += 1
                if let p = pendingReads.removeValue(forKey: rs.context) {
                    // Linearizability: the read index is at least the commit index any member
                    // had observed when the read was issued, and we have applied it.
                    if rs.index < p.minIndex {
                        checker.fail("read index: node \(id) got read index \(rs.index) below \(p.minIndex) committed before the request")
                    }
                }
                if n.durable.applied < rs.index {
                    checker.fail("read state: node \(id) got index \(rs.index) with applied \(n.durable.applied)")
                }
            }
            raft.advance(ready)
            if let ss = ready.softState { log("n\(id) is \(ss.role) term=\(raft.term) leader=\(ss.leader)") }
            if raft.role == .leader {
                checker.observeLeader(id, term: raft.term, log: raft.log)
                checker.observeLeaderCommit(term: raft.term, log: raft.log, from: n.observedCommit)
            }
            n.observedCommit = raft.log.committed
            n.raft = raft
            nodes[id] = n
            maybeCompact(id)
        }
    }

    mutating func maybeCompact(_ id: NodeID) {
        guard options.compactAfter > 0, var n = nodes[id], var raft = n.raft else { return }
        let applied = raft.log.applied
        guard applied >= raft.log.offset + UInt64(options.compactAfter), applied == n.durable.applied else { return }
        do {
            let s = try raft.compact(upTo: applied, snapshotData: SimulatedNode.snapshotData(index: applied, hash: n.stateHash))
            n.storeCompaction(s)
            n.raft = raft
            nodes[id] = n
            log("n\(id) compacted to \(applied)")
        } catch {
            checker.fail("compaction of \(id) at \(applied) failed: \(error)")
        }
    }

    /// Hands a message to the network, deciding its fate; false when it is dropped.
    /// After `heal` nothing is dropped (delays and duplicates remain).
    mutating func send(_ m: Message) -> Bool {
        if network.isCut(m.from, m.to) || (!healed && chance(options.dropRate)) {
            log("drop \(Self.describe(m))")
            return false
        }
        let copies = chance(options.duplicateRate) ? 2 : 1
        for _ in 0..<copies {
            let delay = options.maxDelay == 0 ? 0 : Int(rng.next() % UInt64(options.maxDelay + 1))
            network.enqueue(m, at: now + delay)
        }
        return true
    }

    /// The transport tells the leader how a snapshot send ended (etcd's ReportSnapshot).
    mutating func reportSnapshotLater(_ m: Message, success: Bool) {
        guard var n = nodes[m.from], var raft = n.raft else { return }
        raft.reportSnapshot(to: m.to, success: success)
        n.raft = raft
        nodes[m.from] = n
    }

    mutating func deliver(_ m: Message) {
        guard var n = nodes[m.to], var raft = n.raft, !network.isCut(m.from, m.to) else {
            log("lost \(Self.describe(m))")
            if m.kind == .snapshot { reportSnapshotLater(m, success: false); process(m.from) }
            return
        }
        log("deliver \(Self.describe(m))")
        do {
            try raft.step(m)
        } catch .invalidMessage(let why) {
            // Responses from members removed meanwhile are expected; anything else is a bug.
            if !removed.contains(m.from) && !why.contains("non-member") { checker.fail("node \(m.to) rejected \(Self.describe(m)): \(why)") }
        } catch {
            if case .notLeader = error {} else { checker.fail("node \(m.to) failed on \(Self.describe(m)): \(error)") }
        }
        n.raft = raft
        nodes[m.to] = n
        process(m.to)
        if m.kind == .snapshot {
            reportSnapshotLater(m, success: true)
            process(m.from)
        }
    }

    static func describe(_ m: Message) -> String {
        var s = "\(m.kind) \(m.from)->\(m.to) term=\(m.term)"
        switch m.kind {
        case .append: s += " prev=\(m.index)/\(m.logTerm) n=\(m.entries.count) commit=\(m.commit)"
        case .appendResponse: s += " index=\(m.index)" + (m.reject ? " reject hint=\(m.rejectHint)/\(m.logTerm)" : "")
        case .vote, .preVote: s += " last=\(m.index)/\(m.logTerm)"
        case .voteResponse, .preVoteResponse: s += m.reject ? " reject" : " grant"
        case .heartbeat: s += " commit=\(m.commit)"
        case .snapshot: s += " snap=\(m.snapshot?.metadata.index ?? 0)"
        default: break
        }
        return s
    }

    // MARK: Driving

    var leaderIDs: [NodeID] { upIDs.filter { nodes[$0]?.raft?.role == .leader } }

    /// One tick of simulated time: faults, client requests, clocks, then delivery.
    mutating func step(chaos: Bool) {
        now += 1
        if chaos { injectFaults() }
        clientRequests(chaos: chaos)
        for id in upIDs {
            nodes[id]?.raft?.tick()
            process(id)
        }
        var deliveries = 0
        while let m = network.popDue(now: now) {
            deliver(m)
            deliveries += 1
            if deliveries > 100_000 { checker.fail("message storm"); return }
        }
    }

    mutating func injectFaults() {
        if network.cuts.isEmpty {
            if chance(options.partitionRate) {
                var side: Set<NodeID> = []
                for id in ids where rng.next() % 2 == 0 { side.insert(id) }
                if chance(0.3), let lone = pick(ids) { side = [lone] }  // isolate one node
                network.partition(side, among: ids)
                log("partition \(side.sorted()) | rest")
            }
        } else if chance(options.healRate) {
            network.heal()
            log("heal")
        }
        if chance(options.crashRate), let victim = pick(upIDs) { crash(victim) }
        for id in ids where nodes[id]?.isUp == false && !removed.contains(id) {
            if chance(options.restartRate) { start(id) }
        }
    }

    mutating func clientRequests(chaos: Bool) {
        guard let target = pick(upIDs) else { return }
        if chance(options.proposeRate) {
            // Clients try a random member; followers refuse (the node would forward).
            let value = SimulatedNode.be(nextValue)
            nextValue += 1
            do {
                try nodes[target]?.raft?.propose(value)
                proposed += 1
            } catch {}
            process(target)
        }
        if chance(options.readIndexRate) {
            let ctx = SimulatedNode.be(nextReadID)
            nextReadID += 1
            do {
                try nodes[target]?.raft?.readIndex(context: ctx)
                // Everything a leader has committed so far precedes this read.
                pendingReads[ctx] = (target, checker.maxCommitted)
            } catch {}
            process(target)
        }
        if chaos && chance(options.transferRate), let leader = leaderIDs.first, let to = pick(ids) {
            try? nodes[leader]?.raft?.transferLeadership(to: to)
            log("transfer leadership \(leader) -> \(to)")
            process(leader)
        }
        if chaos && chance(options.membershipRate) { membershipChange() }
    }

    /// Random single-step membership change, keeping at least 3 voters.
    mutating func membershipChange() {
        guard let leaderID = leaderIDs.first, var raft = nodes[leaderID]?.raft else { return }
        let conf = raft.confState
        var choices: [ConfChange] = []
        for id in ids where !conf.contains(id) && !removed.contains(id) { choices.append(.addLearner(id)) }
        for id in conf.learners { choices.append(.promote(id)); choices.append(.remove(id)) }
        if conf.voters.count > 3 { for id in conf.voters { choices.append(.remove(id)) } }
        guard let change = pick(choices) else { return }
        do {
            try raft.proposeConfChange(change)
            membershipChanges += 1
            log("propose \(change) at n\(leaderID)")
        } catch {
            log("conf change \(change) refused: \(error)")
        }
        nodes[leaderID]?.raft = raft
        process(leaderID)
    }

    // MARK: Checks

    /// Log matching across all live members, plus completeness of current leaders.
    mutating func checkLogs() {
        let live = upIDs.compactMap { id in nodes[id]?.raft.map { (id, $0.log) } }
        for i in 0..<live.count {
            for j in (i + 1)..<live.count where j < live.count {
                checker.checkLogMatching(live[i], live[j])
            }
        }
        for id in leaderIDs {
            if let r = nodes[id]?.raft { checker.checkCompleteness(leader: id, term: r.term, log: r.log) }
        }
    }

    /// Chaos, then heal everything and require progress: a leader exists and a fresh
    /// proposal is applied by every live member.
    mutating func run() {
        for t in 0..<options.chaosTicks {
            step(chaos: true)
            if t % 50 == 49 { checkLogs() }
            if !checker.ok { return }
        }
        network.heal()
        healed = true
        log("heal all; restart all")
        for id in ids where !removed.contains(id) { start(id) }
        for _ in 0..<options.settleTicks { step(chaos: false); if !checker.ok { return } }
        checkLogs()
        guard checker.ok else { return }
        // Liveness: some leader accepts a proposal and every member applies it.
        var committed = false
        marker = SimulatedNode.be(UInt64.max - seed)
        for t in 0..<options.commitTicks {
            if t % 20 == 0, markerAppliedBy.isEmpty, let l = leaderIDs.first {
                // (Re)propose: a proposal can be lost when leadership changes.
                try? nodes[l]?.raft?.propose(marker)
                process(l)
            }
            step(chaos: false)
            let members = upIDs.filter { id in
                !removed.contains(id) && (nodes[id]?.raft.map { $0.confState.contains(id) } ?? false)
            }
            if !members.isEmpty, markerIndex > 0,
               members.allSatisfy({ (nodes[$0]?.durable.applied ?? 0) >= markerIndex }) {
                committed = true
                break
            }
        }
        if leaderIDs.isEmpty { checker.fail("liveness: no leader \(options.settleTicks + options.commitTicks) ticks after healing") }
        else if !committed { checker.fail("liveness: proposal not applied by all members within \(options.commitTicks) ticks after healing (applied by \(markerAppliedBy.sorted()))") }
        checkLogs()
    }
}
