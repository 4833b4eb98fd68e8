import Chain
import GridBase
import Synchronization
import Wire

/// The chains one node serves, by id: each with its ledger and, when ordered by Raft, its
/// driver, transport and member registry. Every RPC names the chain it is for; "" means the
/// node's only chain.
///
/// Thread safety: the table is behind a mutex; it is filled at start and emptied at stop.
final class ChainSet: Sendable {
    /// One chain on this node.
    final class Runtime: Sendable {
        let ledger: Ledger
        let raft: Raft?
        /// Anchoring and downlink with the main chain (district chains that have one).
        let sync: ChainSync?

        struct Raft: Sendable {
            let driver: RaftDriver
            let transport: RaftTransport
            let registry: MemberRegistry
            let members: [NodeConfiguration.Chain.Member]
        }

        init(ledger: Ledger, raft: Raft?, sync: ChainSync? = nil) {
            self.ledger = ledger
            self.raft = raft
            self.sync = sync
        }
    }

    private let table = Mutex<[String: Runtime]>([:])
    /// Chains closed while the node runs (being reopened after a storage failure), with why.
    private let closedTable = Mutex<[String: String]>([:])

    /// Takes chain `id` out of service (its calls are UNAVAILABLE with `reason`) and
    /// returns it for closing.
    func close(_ id: String, reason: String) -> Runtime? {
        closedTable.withLock { $0[id] = reason }
        return table.withLock { $0.removeValue(forKey: id) }
    }

    func setClosed(_ id: String, reason: String) { closedTable.withLock { $0[id] = reason } }

    /// The closed chains and why, sorted by id.
    var closed: [(id: String, reason: String)] {
        closedTable.withLock { $0.sorted { $0.key < $1.key }.map { (id: $0.key, reason: $0.value) } }
    }

    func add(_ runtime: Runtime) {
        table.withLock { $0[runtime.ledger.chainID] = runtime }
        closedTable.withLock { _ = $0.removeValue(forKey: runtime.ledger.chainID) }
    }

    /// Removes and returns every chain (at stop).
    func removeAll() -> [Runtime] {
        closedTable.withLock { $0.removeAll() }
        return table.withLock { t in
            defer { t.removeAll() }
            return t.keys.sorted().compactMap { t[$0] }
        }
    }

    var all: [Runtime] { table.withLock { t in t.keys.sorted().compactMap { t[$0] } } }

    func runtime(_ id: String) -> Runtime? { table.withLock { $0[id] } }

    /// The chain a request names; "" is the only chain. Throws `NOT_FOUND` for a chain this
    /// node does not serve, `INVALID_ARGUMENT` when "" is ambiguous, `UNAVAILABLE` when
    /// the node is not serving its chains (starting or stopping).
    func resolve(_ id: String) throws -> Runtime {
        try table.withLock { t in
            if id.isEmpty {
                if t.count == 1, let only = t.values.first { return only }
                if t.isEmpty { throw RPCError(.unavailable, "node is not serving its chains (starting or stopping); retry") }
                throw RPCError(.invalidArgument, "this node serves chains \(t.keys.sorted().joined(separator: ", ")): name one (chain_id)")
            }
            guard let runtime = t[id] else {
                if let reason = closedTable.withLock({ $0[id] }) {
                    throw RPCError(.unavailable, "chain \(id) is being reopened after a storage failure (\(reason)); retry")
                }
                if t.isEmpty { throw RPCError(.unavailable, "node is not serving its chains (starting or stopping); retry") }
                throw RPCError(.notFound, "this node serves no chain \(Bounded.quote(id)) (it serves \(t.keys.sorted().joined(separator: ", ")))")
            }
            return runtime
        }
    }

    func ledger(_ id: String) throws -> Ledger { try resolve(id).ledger }
}
