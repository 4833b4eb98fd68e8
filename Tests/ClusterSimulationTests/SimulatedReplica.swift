import Consensus
import Foundation
import GridProto
import Logging
import Store
import Synchronization

@testable import Chain
@testable import Node

/// One full replica of the district chain in the simulated cluster: the node's own `Ledger`
/// (validation, execution with the contracts, block building, verified apply) over a
/// `ChainStore` in its own directory, and a `RaftShell` (the code `RaftDriver` runs) over
/// `MemoryRaftStorage`, a capturing network and a state machine that routes committed
/// entries to the ledger and installs snapshots by block transfer from the leader.
///
/// A crash drops the ledger, the shell and everything they held in memory (caches, the
/// pending proposal, the un-synced applied index); the chain store and the Raft storage keep
/// what was synced. A restart opens them again, as a node does.
final class SimulatedReplica {
    /// A client's transaction waiting in this replica's queue (it is the leader, or was).
    struct Queued {
        let request: Int
        let tx: ValidatedTransaction
    }

    /// The block this replica proposed and waits for, with the requests it answers.
    struct Proposal {
        let built: Ledger.BuiltBlock
        let requests: [Int]
        let deadline: Int
    }

    let id: NodeID
    let directory: String
    let storage = MemoryRaftStorage()
    let outbox = Outbox()
    private(set) var ledger: Ledger?
    private(set) var shell: RaftShell?
    var queue: [Queued] = []
    var proposal: Proposal?
    /// Blocks of this replica already compared with the other replicas' (`ClusterInvariants`).
    var observedHeight: UInt64 = 0
    /// Times this replica was started (crash-restarts + 1).
    private(set) var incarnation = 0

    var isUp: Bool { shell != nil }

    init(id: NodeID, directory: String) {
        self.id = id
        self.directory = directory
    }

    /// Messages the shell sent during one `drain`, collected for the simulated network.
    final class Outbox: RaftNetwork {
        private let messages = Mutex<[Message]>([])
        func send(_ messages: [Message]) { self.messages.withLock { $0 += messages } }
        func take() -> [Message] { messages.withLock { m in defer { m.removeAll() }; return m } }
    }

    /// Routes a committed entry to the ledger (every entry of this chain's group that is not
    /// the core's own is a block), and installs a snapshot by fetching the blocks it names
    /// from `fetch` — the same loop (`BlockTransfer.apply`) a node runs over `Query.GetBlock`.
    final class StateMachine: RaftStateMachine {
        let ledger: Ledger
        let fetch: @Sendable (NodeID, UInt64) throws -> Block?

        init(ledger: Ledger, fetch: @escaping @Sendable (NodeID, UInt64) throws -> Block?) {
            self.ledger = ledger
            self.fetch = fetch
        }

        func apply(_ entry: Entry) throws { try ledger.applyCommitted(entry.data) }

        func snapshotData() -> [UInt8] { BlockTransfer.snapshotData(ledger.reader.head) }

        func install(_ snapshot: Snapshot, from leader: NodeID) async throws {
            let (height, hash) = try BlockTransfer.decode(snapshot.data)
            guard try !BlockTransfer.reached(height: height, hash: hash, by: ledger) else { return }
            try await BlockTransfer.apply(upTo: height, hash: hash, to: ledger) { try self.fetch(leader, $0) }
        }
    }

    /// Opens the chain store and the ledger, and starts the shell from the Raft storage
    /// (bootstrapping the founders' group on their first start).
    func start(configuration: RaftConfiguration, founders: [NodeID], seed: UInt64, clock: @escaping @Sendable () -> Int64,
               compactEvery: UInt64, fetch: @escaping @Sendable (NodeID, UInt64) throws -> Block?) throws {
        precondition(!isUp)
        var logger = Logger(label: "sim.n\(id)")
        logger.logLevel = .critical
        let parties = SimulatedParties.shared
        let store = try ChainStore(directory: directory, chainID: SimulatedParties.district, cacheBytes: 1 << 20, writeBufferBytes: 256 << 10)
        let ledger = try Ledger(
            chainID: SimulatedParties.district, nodeID: "n\(id)", store: store, verifier: parties.verifier,
            limits: LedgerLimits(), kind: .district, mainChainID: SimulatedParties.mainChain, logger: logger, wallClockMs: clock)
        shell = try RaftShell(
            configuration: configuration, storage: storage, network: outbox,
            stateMachine: StateMachine(ledger: ledger, fetch: fetch), bootstrapVoters: founders, seed: seed,
            logger: logger, keepEntries: 2, compactEvery: compactEvery)
        self.ledger = ledger
        incarnation += 1
    }

    /// Power off: memory is lost, synced storage stays.
    func crash() {
        shell = nil
        ledger = nil
        queue = []
        proposal = nil
        _ = outbox.take()
        storage.crash()
    }
}
