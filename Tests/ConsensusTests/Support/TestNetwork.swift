import Consensus
import XCTest

/// An instant, lossless network for scenario tests (etcd-io/raft `network` in raft_test.go):
/// `deliverAll()` runs every member's Ready loop and delivers messages until quiet, except
/// across cut links or of filtered kinds. Each member's persistence follows the `Ready`
/// contract, so `restart` rebuilds a member from exactly what it persisted.
struct TestNetwork {
    var nodes: [NodeID: RaftNode] = [:]
    var persisted: [NodeID: PersistentState] = [:]
    var applied: [NodeID: [Entry]] = [:]
    var readStates: [NodeID: [ReadState]] = [:]
    var snapshotsInstalled: [NodeID: [Snapshot]] = [:]
    /// Messages dropped because of cuts/filters, for inspection.
    var dropped: [Message] = []
    private var cut: Set<[NodeID]> = []
    var dropKinds: Set<MessageKind> = []
    var configure: (inout RaftConfiguration) -> Void

    /// A group founded by `voters`, plus `others` started empty (to be added later).
    init(voters: [NodeID], others: [NodeID] = [], configure: @escaping (inout RaftConfiguration) -> Void = { _ in }) {
        self.configure = configure
        for id in voters { persisted[id] = .bootstrap(voters: voters) }
        for id in others { persisted[id] = PersistentState() }
        for id in voters + others { start(id) }
        deliverAll()
    }

    func config(_ id: NodeID) -> RaftConfiguration {
        var c = RaftConfiguration(id: id)
        configure(&c)
        return c
    }

    mutating func start(_ id: NodeID, seed: UInt64? = nil) {
        nodes[id] = try! RaftNode(configuration: config(id), state: persisted[id] ?? PersistentState(), randomSeed: seed ?? id)
    }

    /// Drops the in-memory member and rebuilds it from what it persisted.
    mutating func restart(_ id: NodeID) {
        nodes[id] = nil
        start(id, seed: id &* 7919)
    }

    mutating func isolate(_ id: NodeID) {
        for other in nodes.keys where other != id { cut.insert([min(id, other), max(id, other)]) }
    }

    mutating func heal() { cut = []; dropKinds = [] }

    /// Runs `id`'s Ready loop once: persist, apply, advance; returns the messages to send.
    mutating func drain(_ id: NodeID) -> [Message] {
        guard var r = nodes[id] else { return [] }
        var out: [Message] = []
        while r.hasReady {
            let rd = r.ready()
            var p = persisted[id] ?? PersistentState()
            if let s = rd.snapshotToPersist {
                p.snapshot = s
                p.entries = []
                snapshotsInstalled[id, default: []].append(s)
                p.applied = s.metadata.index
            }
            if let first = rd.entriesToPersist.first {
                p.entries.removeAll { $0.index >= first.index }
                p.entries += rd.entriesToPersist
            }
            if let hs = rd.hardState { p.hardState = hs }
            applied[id, default: []] += rd.committedEntries
            if let last = rd.committedEntries.last { p.applied = last.index }
            persisted[id] = p
            readStates[id, default: []] += rd.readStates
            out += rd.messages
            r.advance(rd)
        }
        nodes[id] = r
        return out
    }

    /// Delivers messages until no member has anything to send.
    mutating func deliverAll(maxRounds: Int = 10_000) {
        for _ in 0..<maxRounds {
            var batch: [Message] = []
            for id in nodes.keys.sorted() { batch += drain(id) }
            if batch.isEmpty { return }
            for m in batch { deliver(m) }
        }
        XCTFail("network did not quiesce")
    }

    mutating func deliver(_ m: Message) {
        if cut.contains([min(m.from, m.to), max(m.from, m.to)]) || dropKinds.contains(m.kind) || nodes[m.to] == nil {
            dropped.append(m)
            return
        }
        try? nodes[m.to]?.step(m)
    }

    mutating func tick(_ id: NodeID, _ times: Int = 1) {
        for _ in 0..<times { nodes[id]?.tick(); deliverAll() }
    }

    mutating func tickAll(_ times: Int = 1) {
        for _ in 0..<times {
            for id in nodes.keys.sorted() { nodes[id]?.tick() }
            deliverAll()
        }
    }

    /// Ticks only `id` until it leaves the follower role (campaigns), then delivers.
    mutating func campaign(_ id: NodeID) {
        for _ in 0..<100 {
            nodes[id]?.tick()
            if let r = nodes[id], r.role != .follower { break }
        }
        deliverAll()
    }

    var leaders: [NodeID] { nodes.keys.sorted().filter { nodes[$0]?.role == .leader } }

    mutating func propose(_ id: NodeID, _ data: [UInt8]) throws(RaftError) {
        guard var r = nodes[id] else { return }
        defer { nodes[id] = r }
        try r.propose(data)
    }

    mutating func with<T>(_ id: NodeID, _ body: (inout RaftNode) throws(RaftError) -> T) throws(RaftError) -> T {
        var r = nodes[id]!
        defer { nodes[id] = r }
        return try body(&r)
    }
}

/// Hands out a single node's effects (persisting nothing): ready + advance.
func takeReady(_ r: inout RaftNode) -> Ready {
    let rd = r.ready()
    r.advance(rd)
    return rd
}
