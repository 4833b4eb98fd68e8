import ChainHashing
import Foundation
import GridProto
import GridCrypto
import Identity
import Logging
import Store
import Synchronization
import Contracts
import GridBase

/// One chain on one node with solo ordering: it admits signed transactions, cuts blocks,
/// executes them, commits each block in one synced LevelDB batch, and only then
/// acknowledges the block's transactions and publishes the block to subscribers.
///
/// Thread safety: `submit` and the queries may be called from any task. Blocks are built
/// and committed by one cutter task only, so commits are serialized.
/// Invariants:
/// - a submission is acknowledged only after the batch holding its block returned from a
///   synced write (a crash after that loses nothing acknowledged);
/// - a transaction id is in at most one of: the store, the pending queue;
/// - the pending queue holds at most `limits.maxPendingTransactions` transactions.
package final class Ledger: Sendable {
    package struct Pending {
        package let tx: ValidatedTransaction
        package let continuation: CheckedContinuation<SubmitResponse, Error>
    }

    private struct Queue {
        var pending: [Pending] = []
        var pendingBytes = 0
        var firstArrival: ContinuousClock.Instant?
        /// Ids in `pending` or in the block being committed, with duplicate submitters waiting.
        var inFlight: [[UInt8]: [CheckedContinuation<SubmitResponse, Error>]] = [:]
        var cutterWaiting: CheckedContinuation<Void, Never>?
        var stopping = false
    }

    package let chainID: String
    /// District side chain or main chain (which transactions it takes, who may read what).
    package let kind: ChainKind
    package let nodeID: String
    package let store: ChainStore
    /// The chain's hash suite (block hashes, Merkle and state roots).
    package let hashing: ChainHashing
    package let limits: LedgerLimits
    package let feed = BlockFeed()
    /// The read door for services, sync and block transfer (`ChainReader`).
    package var reader: ChainReader { ChainReader(store) }
    package let validator: TransactionValidator
    private let logger: Logger
    private let queue = Mutex(Queue())
    private let meterCache = MeterCache()
    private let rate = Mutex(RateWindow())
    private let cutter = Mutex<Task<Void, Never>?>(nil)
    /// The ordering group (Raft, in the node), when the chain has members; nil = solo.
    private let orderingBox = Mutex<(any ChainOrdering)?>(nil)
    /// The block this node proposed last and is waiting for, with what executing it gave.
    private let proposed = Mutex<ProposedBlock?>(nil)
    /// Held while a block is built (executed on the head) or a committed block is applied:
    /// on a Raft leader the cutter and the apply path may otherwise run at once, and a block
    /// built on a head whose state (and caches) is changing under it would differ from what
    /// the followers compute.
    private let executing = Mutex<Void>(())
    private let wallClockMs: @Sendable () -> Int64
    /// The head block's timestamp, by height (read from the store when the head moved
    /// without `afterCommit`, e.g. after a restart).
    private let headTime = Mutex<(height: UInt64, ms: Int64)?>(nil)
    /// Tasks waiting for the head to reach a height (a leader's own proposed block).
    private let headWaiters = IndexWaiters()
    /// The error of the last block write to the store, nil once a block commits (`ChainHealth`).
    private let storeFailure = Mutex<String?>(nil)
    /// Told of every durable block and every acknowledged batch (`observeCommits`).
    private let commitObserver = Mutex<(@Sendable (LedgerCommitEvent) -> Void)?>(nil)

    package struct ProposedBlock: Sendable {
        package let height: UInt64
        package let hash: [UInt8]
        package let writes: [StateWriteRecord]
        package let outcomes: [TxOutcome]
    }

    /// - Parameter hashSuite: the suite of a new chain; an existing chain keeps the suite its
    ///   genesis names, and a different `hashSuite` is a configuration error.
    /// - Parameter wallClockMs: the clock blocks are dated by (Unix milliseconds); injected
    ///   so tests can set it.
    package init(chainID: String, nodeID: String, store: ChainStore, verifier: SignerVerifier, limits: LedgerLimits,
         hashSuite: Digest.Suite = .sha256, kind: ChainKind = .district, mainChainID: String? = nil, logger: Logger,
         wallClockMs: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) throws {
        self.wallClockMs = wallClockMs
        if let genesis = try store.block(at: 0)?.header {
            guard let stored = ChainHashing.of(genesis) else {
                throw ConfigurationError("chain \(chainID) names an unknown hash suite '\(genesis.hashSuite)'")
            }
            guard stored.suite == hashSuite else {
                throw ConfigurationError("chain \(chainID) uses hash suite \(stored.suite.rawValue); the configuration says \(hashSuite.rawValue)")
            }
        }
        hashing = ChainHashing(suite: hashSuite)
        self.chainID = chainID
        self.kind = kind
        self.nodeID = nodeID
        self.store = store
        self.limits = limits
        self.logger = logger
        validator = TransactionValidator(chainID: chainID, verifier: verifier, maxBatchReadings: limits.maxBatchReadings, kind: kind, mainChainID: mainChainID)
        if store.head == nil {
            try commitGenesis()
        }
    }

    // MARK: Lifecycle

    /// Switches from solo ordering to an ordering group (before `start`).
    package func useOrdering(_ ordering: any ChainOrdering) {
        orderingBox.withLock { $0 = ordering }
    }

    /// Sets the observer of commits (metrics); see `LedgerCommitEvent` for its contract.
    package func observeCommits(_ observer: @escaping @Sendable (LedgerCommitEvent) -> Void) {
        commitObserver.withLock { $0 = observer }
    }

    private func report(_ event: LedgerCommitEvent) {
        commitObserver.withLock { $0 }?(event)
    }

    /// The ordering group; nil while the chain orders solo.
    package var ordering: (any ChainOrdering)? { orderingBox.withLock { $0 } }

    /// Makes the next read linearizable: with a group, waits for a leader-confirmed read
    /// index (ReadIndex) and for this replica to have applied it; a solo chain is its own
    /// leader.
    /// - Throws: `ChainError` UNAVAILABLE (no leader, halted, or not applied in time).
    package func linearizableReadBarrier() async throws {
        guard let ordering else { return }
        let index = try await ordering.readIndex()
        guard await ordering.waitApplied(index, timeout: .seconds(5)) else {
            throw ChainError(.unavailable, "replica did not reach the read index \(index) in time")
        }
    }

    /// Forgets the ordering group (after it stopped).
    package func detachOrdering() {
        orderingBox.withLock { $0 = nil }
    }

    package func start() {
        cutter.withLock { task in
            guard task == nil else { return }
            task = Task { await self.runCutter() }
        }
    }

    /// Stops admitting, commits what is pending, and stops the cutter.
    package func stop() async {
        let task = cutter.withLock { $0 }
        let waiting = queue.withLock { q -> CheckedContinuation<Void, Never>? in
            q.stopping = true
            defer { q.cutterWaiting = nil }
            return q.cutterWaiting
        }
        waiting?.resume()
        await task?.value
        cutter.withLock { $0 = nil }
        feed.finishAll()
    }

    // MARK: Submitting

    /// Validates, queues and waits until the transaction's block is durable.
    /// - Parameter readingsOnly: refuse other payloads than reading batches
    ///   (`Ingest.SubmitReadings`, `Ingest.StreamReadings`).
    /// - Parameter carrier: the TLS caller that submitted it, nil when this node submits its
    ///   own (`TransactionValidator.checkCarrier`).
    ///
    /// `whenQueued` runs once the transaction is in this leader's queue, so a caller that
    /// waits for it before submitting the next one keeps its own order in the chain. On a
    /// follower it runs when the transaction is handed to the forwarder: forwarded ones keep
    /// their pipelining (waiting for each to commit would cut a stream through a follower
    /// to one batch per block), and their order is the leader's arrival order.
    package func submit(_ signed: SignedTransaction, readingsOnly: Bool = false, carrier: PeerIdentity? = nil,
                whenQueued: (@Sendable () -> Void)? = nil) async throws -> SubmitResponse {
        let tx = try validator.validate(signed)
        if let carrier { try validator.checkCarrier(tx, carrier: carrier) }
        if readingsOnly, case .readings? = tx.payload.body {} else if readingsOnly {
            throw ChainError(.invalidArgument, "SubmitReadings takes reading batches only; use Ingest.Submit")
        }
        var whenQueued = whenQueued
        if let ordering {
            let status = ordering.status
            if let halted = status.halted { throw ChainError(.unavailable, "chain \(chainID) is halted: \(halted)") }
            if !status.isLeader {
                if let location = try store.txLocation(tx.id) {
                    throw try alreadyExists(id: tx.id, height: location.height, index: location.index)
                }
                whenQueued?()
                if let response = try await ordering.forward(signed, leader: status.leader) { return response }
                // This node became the leader meanwhile: queue it here (below); the caller
                // was already told it is on its way.
                whenQueued = nil
            }
        }
        if let location = try store.txLocation(tx.id) {
            throw try alreadyExists(id: tx.id, height: location.height, index: location.index)
        }
        try admissionCheck(tx.payload)
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<SubmitResponse, Error>) in
            enqueue(tx, c)
            whenQueued?()
        }
    }

    /// Queues `tx` for the next block, or fails `c` (shutting down, queue full); a
    /// transaction already queued makes `c` wait for that one.
    private func enqueue(_ tx: ValidatedTransaction, _ c: CheckedContinuation<SubmitResponse, Error>) {
        let outcome: Result<CheckedContinuation<Void, Never>?, ChainError> = queue.withLock { q in
            if q.stopping { return .failure(ChainError(.unavailable, "node is shutting down")) }
            if let waiting = q.inFlight[tx.id] {
                // Duplicates wait for the original; a bounded number of them.
                guard waiting.count < 64 else {
                    return .failure(ChainError(.resourceExhausted, "transaction \(tx.id.hex) is already being committed; too many duplicates waiting"))
                }
                q.inFlight[tx.id]!.append(c)
                return .success(nil)
            }
            guard q.pending.count < limits.maxPendingTransactions else {
                return .failure(ChainError(.resourceExhausted, "ingestion queue is full (\(limits.maxPendingTransactions) transactions); retry later"))
            }
            q.pending.append(Pending(tx: tx, continuation: c))
            q.pendingBytes += tx.byteSize
            q.inFlight[tx.id] = []
            if q.firstArrival == nil { q.firstArrival = .now }
            defer { q.cutterWaiting = nil }
            return .success(q.cutterWaiting)
        }
        switch outcome {
        case .failure(let error): c.resume(throwing: error)
        case .success(let wake): wake?.resume()
        }
    }

    /// Leader only: queues `transactions` back to back, in this order, and waits for all of
    /// them (the downlink keeps main-chain order this way). One result per transaction.
    package func submitInOrder(_ transactions: [SignedTransaction]) async -> [Result<SubmitResponse, Error>] {
        var validated: [ValidatedTransaction] = []
        for signed in transactions {
            do {
                validated.append(try validator.validate(signed))
            } catch {
                return transactions.map { _ in .failure(error) }
            }
        }
        if let ordering, !ordering.status.isLeader {
            return transactions.map { _ in .failure(ChainError(.unavailable, "not the leader of \(chainID)")) }
        }
        return await withTaskGroup(of: (Int, Result<SubmitResponse, Error>).self) { group in
            // Each task's continuation is registered before the next is enqueued.
            for (i, tx) in validated.enumerated() {
                let registered = AsyncStream<Void>.makeStream()
                group.addTask {
                    do {
                        if let location = try self.store.txLocation(tx.id) {
                            registered.continuation.finish()
                            throw try self.alreadyExists(id: tx.id, height: location.height, index: location.index)
                        }
                        let response = try await withCheckedThrowingContinuation { (c: CheckedContinuation<SubmitResponse, Error>) in
                            self.enqueue(tx, c)
                            registered.continuation.finish()
                        }
                        return (i, .success(response))
                    } catch {
                        registered.continuation.finish()
                        return (i, .failure(error))
                    }
                }
                for await _ in registered.stream {}
            }
            var results = [Result<SubmitResponse, Error>](repeating: .failure(ChainError(.internal, "no result")), count: validated.count)
            for await (i, result) in group { results[i] = result }
            return results
        }
    }

    package var pendingCount: Int { queue.withLock { $0.pending.count } }

    /// State-dependent refusals before a transaction is queued (the executor enforces the
    /// same rules when the block executes, so a race only changes which error is seen):
    /// an anchor by non-members, without a majority, or not continuing the district's
    /// previous anchor is refused here with its reason; an anchor of a range already
    /// anchored gets ALREADY_EXISTS with the original location.
    private func admissionCheck(_ payload: TxPayload) throws {
        guard case .anchor(let anchor)? = payload.body else { return }
        do {
            _ = try BlockExecutor.checkAnchor(anchor) { try store.state($0)?.value }
        } catch let rejection as ExecutionRejection {
            var error = ChainError(rejection.code, rejection.reason)
            if rejection.code == .alreadyExists, let entry = try store.state(AnchorKeys.anchor(anchor.district, from: anchor.fromHeight)),
               let block = try store.block(at: entry.height), Int(entry.txIndex) < block.transactions.count {
                let id = Digest.sha256(block.transactions[Int(entry.txIndex)].payload)
                let location = TxLocation(height: entry.height, index: entry.txIndex, txId: id, blockHash: try blockHash(at: entry.height) ?? [])
                error.location = location
            }
            throw error
        }
    }

    private func alreadyExists(id: [UInt8], height: UInt64, index: UInt32) throws -> ChainError {
        let hash = try blockHash(at: height) ?? []
        let location = TxLocation(height: height, index: index, txId: id, blockHash: hash)
        return ChainError(.alreadyExists, "transaction \(id.hex) is already on chain \(chainID) at height=\(height) index=\(index)", location: location)
    }

    // MARK: Cutting blocks

    private func runCutter() async {
        while true {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = queue.withLock { q -> Bool in
                    if !q.pending.isEmpty || q.stopping { return true }
                    q.cutterWaiting = c
                    return false
                }
                if resumeNow { c.resume() }
            }
            let (empty, stopping) = queue.withLock { ($0.pending.isEmpty, $0.stopping) }
            if empty {
                if stopping { return }
                continue
            }
            // Let the block fill up to its limits or its delay.
            while true {
                let (full, deadline, stopping) = queue.withLock { q in
                    (q.pending.count >= limits.maxBlockTransactions || q.pendingBytes >= limits.maxBlockBytes,
                     (q.firstArrival ?? .now) + limits.maxBlockDelay, q.stopping)
                }
                if full || stopping || ContinuousClock.now >= deadline { break }
                try? await Task.sleep(for: min(.milliseconds(1), deadline - ContinuousClock.now))
            }
            let batch: [Pending] = queue.withLock { q in
                var bytes = 0
                var n = 0
                while n < q.pending.count, n < limits.maxBlockTransactions {
                    if n > 0, bytes + q.pending[n].tx.byteSize > limits.maxBlockBytes { break }
                    bytes += q.pending[n].tx.byteSize
                    n += 1
                }
                let taken = Array(q.pending.prefix(n))
                q.pending.removeFirst(n)
                q.pendingBytes -= bytes
                q.firstArrival = q.pending.isEmpty ? nil : .now
                return taken
            }
            if batch.isEmpty { continue }
            // The block's time: now, or the head's if this clock is behind it (certificates
            // are screened at the time the block will carry).
            let now = wallClockMs()
            var timestampMs = now
            if let head = store.head, let headMs = try? headTimestampMs(head), headMs > now {
                timestampMs = headMs
                if headMs - now > 60_000 {
                    logger.warning("block time held at the previous block's, ahead of this clock", metadata: [
                        "ahead_ms": "\(headMs - now)", "chain": "\(chainID)"])
                }
            }
            let admitted = screen(batch, timestampMs: timestampMs)
            if admitted.isEmpty { continue }
            if let ordering {
                await commitThroughGroup(admitted, ordering, timestampMs: timestampMs)
            } else {
                commit(admitted, timestampMs: timestampMs)
            }
        }
    }

    /// What may go into a block stamped `timestampMs`: a transaction that reached the chain
    /// since it was queued (a retry after a timed-out proposal that committed after all) is
    /// answered ALREADY_EXISTS, and one whose certificates are not valid at the block's time
    /// (expired since admission) UNAUTHENTICATED, so no follower finds either in a block.
    private func screen(_ batch: [Pending], timestampMs: Int64) -> [Pending] {
        var admitted: [Pending] = []
        admitted.reserveCapacity(batch.count)
        for pending in batch {
            let refusal: ChainError?
            do {
                if let location = try store.txLocation(pending.tx.id) {
                    refusal = try alreadyExists(id: pending.tx.id, height: location.height, index: location.index)
                } else {
                    try validator.checkCertificateTimes(pending.tx, now: timestampMs / 1000)
                    refusal = nil
                }
            } catch let error as ChainError {
                refusal = error
            } catch {
                refusal = ChainError(.internal, "\(error)")
            }
            guard let refusal else {
                admitted.append(pending)
                continue
            }
            let waiters = queue.withLock { $0.inFlight.removeValue(forKey: pending.tx.id) ?? [] }
            pending.continuation.resume(throwing: refusal)
            for waiter in waiters { waiter.resume(throwing: refusal) }
        }
        return admitted
    }

    private func commit(_ batch: [Pending], timestampMs: Int64) {
        let cutAt = ContinuousClock.now
        let result: Result<(height: UInt64, hash: [UInt8], outcomes: [TxOutcome]), Error>
        do {
            result = .success(try buildAndCommit(batch.map(\.tx), timestampMs: timestampMs))
        } catch {
            result = .failure(error)
        }
        finishBatch(batch, result, cutAt: cutAt)
    }

    /// Acknowledges (or fails) every submission of a batch and its duplicate waiters.
    private func finishBatch(_ batch: [Pending], _ result: Result<(height: UInt64, hash: [UInt8], outcomes: [TxOutcome]), Error>, cutAt: ContinuousClock.Instant) {
        let waiters: [[CheckedContinuation<SubmitResponse, Error>]] = queue.withLock { q in
            batch.map { q.inFlight.removeValue(forKey: $0.tx.id) ?? [] }
        }
        switch result {
        case .success(let block):
            // Counted before anyone is told, so a status read after an acknowledgement has it.
            let readings = block.outcomes.reduce(0) { $0 + Int($1.readingsAccepted) }
            rate.withLock { $0.record(transactions: batch.count, readings: readings) }
            report(.acknowledged(transactions: batch.count, duration: ContinuousClock.now - cutAt))
            for (i, pending) in batch.enumerated() {
                let location = TxLocation(height: block.height, index: UInt32(i), txId: pending.tx.id, blockHash: block.hash)
                pending.continuation.resume(returning: SubmitResponse(location: location, outcome: block.outcomes[i], alreadyExisted: false))
                for duplicate in waiters[i] {
                    var error = ChainError(.alreadyExists, "transaction \(pending.tx.id.hex) is already on chain \(chainID) at height=\(block.height) index=\(i)")
                    error.location = location
                    duplicate.resume(throwing: error)
                }
            }
        case .failure(let error):
            let failure: ChainError
            if let refusal = error as? ChainError {
                failure = refusal
            } else {
                logger.critical("block commit failed: the chain cannot advance", metadata: ["error": "\(error)"])
                failure = ChainError(.internal, "block commit failed: \(error)")
            }
            for (i, pending) in batch.enumerated() {
                pending.continuation.resume(throwing: failure)
                for duplicate in waiters[i] { duplicate.resume(throwing: failure) }
            }
        }
    }

    /// Leader: builds the block on the applied head, proposes it to the group, waits until
    /// it is applied here (committed by a quorum and durable locally), then acknowledges.
    private func commitThroughGroup(_ batch: [Pending], _ ordering: any ChainOrdering, timestampMs: Int64) async {
        let cutAt = ContinuousClock.now
        let result: Result<(height: UInt64, hash: [UInt8], outcomes: [TxOutcome]), Error>
        do {
            let built = try prepareProposal(batch.map(\.tx), timestampMs: timestampMs)
            try await ordering.propose(built.bytes)
            let applied = await waitApplied(built.header.height, timeout: ordering.proposeTimeout)
            result = .success(try proposalResult(built, reachedHeight: applied))
        } catch {
            forgetProposal()
            result = .failure(error)
        }
        finishBatch(batch, result, cutAt: cutAt)
    }

    /// Leader: executes `transactions` on the applied head into the next block and remembers
    /// it as this replica's proposal, so applying it when it commits reuses the writes and
    /// outcomes computed here. The caller proposes `bytes` to the group, waits until the head
    /// reaches the block's height, then asks `proposalResult`. One proposal at a time.
    package func prepareProposal(_ transactions: [ValidatedTransaction], timestampMs: Int64) throws -> BuiltBlock {
        let built = try buildBlock(transactions, timestampMs: timestampMs)
        proposed.withLock { $0 = ProposedBlock(height: built.header.height, hash: built.hash, writes: built.writes, outcomes: built.outcomes) }
        return built
    }

    /// Leader: what became of the proposal `built`, once the head reached its height
    /// (`reachedHeight`) or the wait ran out. The transactions are acknowledged only when the
    /// block applied at that height is this very block; otherwise UNAVAILABLE (not committed
    /// in time, or another leader's block took the height: the caller retries). Forgets the
    /// proposal either way.
    package func proposalResult(_ built: BuiltBlock, reachedHeight: Bool) throws -> (height: UInt64, hash: [UInt8], outcomes: [TxOutcome]) {
        forgetProposal()
        guard reachedHeight, let hash = try blockHash(at: built.header.height) else {
            throw ChainError(.unavailable, "block \(built.header.height) was not committed in time (leadership may have changed); retry")
        }
        guard hash == built.hash else {
            throw ChainError(.unavailable, "another leader's block took height \(built.header.height); retry")
        }
        return (built.header.height, built.hash, built.outcomes)
    }

    /// Leader: drops the remembered proposal (it failed to propose, or its wait ended).
    package func forgetProposal() {
        proposed.withLock { $0 = nil }
    }

    /// Applies a block committed by the Raft group (every member, leader included): the
    /// block must extend the head, and every hash, signature, outcome and the state root must
    /// re-verify; otherwise this replica halts instead of storing a fork. Blocks at or below
    /// the head (replayed after a restart) must equal the stored ones.
    package func applyCommitted(_ bytes: [UInt8]) throws {
        try executing.withLock { _ in try applyCommittedLocked(bytes) }
    }

    private func applyCommittedLocked(_ bytes: [UInt8]) throws {
        guard let block = try? Block(serializedBytes: bytes), let header = block.header else {
            throw StoreError.corrupt("committed entry is not a block")
        }
        let hash = hashing.headerHash(header)
        guard let head = store.head else { throw StoreError.corrupt("no genesis block") }
        guard header.chainId == chainID else { throw StoreError.corrupt("committed block is for chain '\(header.chainId)'") }
        // A block that does not extend the head is a stale proposal: a leader built it on a
        // head that another leader's block (earlier in the log) has since extended. Every
        // replica sees the same log order, so every replica skips the same entries; the
        // proposer's clients are told to retry. A block equal to the stored one at its
        // height is a replay after a restart.
        if header.height <= head.height || header.previousHash != head.hash {
            if header.height <= head.height, try blockHash(at: header.height) == hash { return }
            logger.notice("stale block proposal skipped", metadata: ["height": "\(header.height)", "head": "\(head.height)", "proposer": "\(header.proposer)"])
            return
        }
        guard header.height == head.height + 1 else { throw StoreError.gap(expected: head.height + 1, got: header.height) }
        guard header.timestampMs >= (try headTimestampMs(head)) else {
            throw StoreError.corrupt("committed block \(header.height): timestamp \(header.timestampMs) is before block \(head.height)'s")
        }
        let ids = block.transactions.map { Digest.sha256($0.payload) }
        guard hashing.txRoot(ids) == header.txRoot, Int(header.txCount) == ids.count else {
            throw StoreError.corrupt("committed block \(header.height): transaction root mismatch")
        }
        let mine = proposed.withLock { p in p?.hash == hash ? p : nil }
        let writes: [StateWriteRecord]
        let outcomes: [TxOutcome]
        if let mine {
            (writes, outcomes) = (mine.writes, mine.outcomes)
        } else {
            var payloads: [TxPayload] = []
            for (i, tx) in block.transactions.enumerated() {
                do {
                    payloads.append(try validator.validate(tx, now: header.timestampMs / 1000).payload)
                } catch {
                    throw StoreError.corrupt("committed block \(header.height) transaction \(i) fails validation: \(error)")
                }
                if try store.txLocation(ids[i]) != nil {
                    throw StoreError.corrupt("committed block \(header.height) repeats transaction \(ids[i].hex)")
                }
            }
            let context = ExecutionContext(chainID: chainID, height: header.height, timestampMs: header.timestampMs)
            (writes, outcomes) = try BlockExecutor.execute(payloads, context: context, state: StoreStateReader(store: store, cache: meterCache))
        }
        guard outcomes == block.outcomes, hashing.outcomesRoot(outcomes) == header.outcomesRoot,
              hashing.stateRoot(previous: head.stateRoot, writes: writes, outcomes: outcomes) == header.stateRoot else {
            throw StoreError.corrupt("committed block \(header.height): state root differs after applying it here")
        }
        let written = try recordingStoreFailure {
            try store.commit(
                block: block, blockBytes: bytes, hash: hash, txIDs: ids,
                writes: writes.map { ChainStore.StateWrite(key: $0.key, value: $0.value, txIndex: $0.txIndex) },
                stateRoot: header.stateRoot)
        }
        afterCommit(height: header.height, hash: hash, bytes: bytes, writes: writes, timestampMs: header.timestampMs)
        report(.stored(height: header.height, transactions: ids.count, writeDuration: written))
        if mine == nil {
            rate.withLock { $0.record(transactions: ids.count, readings: outcomes.reduce(0) { $0 + Int($1.readingsAccepted) }) }
        }
    }

    /// Waits until the applied head reaches `height` (resumed by the commit that reaches it,
    /// `afterCommit`); false on timeout.
    private func waitApplied(_ height: UInt64, timeout: Duration) async -> Bool {
        if (store.head?.height ?? 0) >= height { return true }
        return await headWaiters.wait(for: height, timeout: timeout) || (store.head?.height ?? 0) >= height
    }

    /// Executes `transactions` on the current head and commits the block (synced).
    private func buildAndCommit(_ transactions: [ValidatedTransaction], timestampMs: Int64) throws -> (height: UInt64, hash: [UInt8], outcomes: [TxOutcome]) {
        let built = try buildBlock(transactions, timestampMs: timestampMs)
        let written = try recordingStoreFailure {
            try store.commit(
                block: built.block, blockBytes: built.bytes, hash: built.hash, txIDs: transactions.map(\.id),
                writes: built.writes.map { ChainStore.StateWrite(key: $0.key, value: $0.value, txIndex: $0.txIndex) },
                stateRoot: built.header.stateRoot)
        }
        afterCommit(height: built.header.height, hash: built.hash, bytes: built.bytes, writes: built.writes,
                    timestampMs: built.header.timestampMs)
        report(.stored(height: built.header.height, transactions: transactions.count, writeDuration: written))
        return (built.header.height, built.hash, built.outcomes)
    }

    /// Runs a block write, remembering its error for `health()` (and forgetting it once a
    /// write succeeds). Returns how long the write took.
    @discardableResult
    private func recordingStoreFailure(_ write: () throws -> Void) throws -> Duration {
        let started = ContinuousClock.now
        do {
            try write()
            storeFailure.withLock { $0 = nil }
            return ContinuousClock.now - started
        } catch {
            storeFailure.withLock { $0 = "\(error)" }
            throw error
        }
    }

    /// A block executed on the head and not yet stored.
    package struct BuiltBlock {
        package let block: Block
        package let header: BlockHeader
        package let bytes: [UInt8]
        package let hash: [UInt8]
        package let writes: [StateWriteRecord]
        package let outcomes: [TxOutcome]
    }

    /// Executes `transactions` on the current head and builds the next block (writes nothing).
    private func buildBlock(_ transactions: [ValidatedTransaction], timestampMs: Int64) throws -> BuiltBlock {
        try executing.withLock { _ in try buildBlockLocked(transactions, timestampMs: timestampMs) }
    }

    private func buildBlockLocked(_ transactions: [ValidatedTransaction], timestampMs: Int64) throws -> BuiltBlock {
        guard let head = store.head else { throw StoreError.corrupt("no genesis block") }
        // Block time never goes back (contracts expire commands and reset cycles by it),
        // even when this leader's clock is behind the previous leader's.
        let screenedMs = timestampMs
        let timestampMs = max(timestampMs, try headTimestampMs(head))
        if timestampMs != screenedMs {
            // The head moved since the batch was screened (a block of the previous leader
            // committed): certificates must hold at the later time too, or followers would
            // refuse the block. Rare; the batch is retried by its clients.
            for tx in transactions {
                do {
                    try validator.checkCertificateTimes(tx, now: timestampMs / 1000)
                } catch {
                    throw ChainError(.unavailable, "block time moved past a signer certificate's validity; retry")
                }
            }
        }
        let context = ExecutionContext(chainID: chainID, height: head.height + 1, timestampMs: timestampMs)
        let (writes, outcomes) = try BlockExecutor.execute(transactions.map(\.payload), context: context, state: StoreStateReader(store: store, cache: meterCache))
        let ids = transactions.map(\.id)
        var header = BlockHeader()
        header.chainId = chainID
        header.height = head.height + 1
        header.previousHash = head.hash
        header.timestampMs = timestampMs
        header.txRoot = hashing.txRoot(ids)
        header.stateRoot = hashing.stateRoot(previous: head.stateRoot, writes: writes, outcomes: outcomes)
        header.proposer = nodeID
        header.txCount = UInt32(transactions.count)
        header.hashSuite = hashing.suite.rawValue
        header.outcomesRoot = hashing.outcomesRoot(outcomes)
        let block = Block(header: header, transactions: transactions.map(\.signed), outcomes: outcomes)
        return BuiltBlock(block: block, header: header, bytes: block.serializedBytes(), hash: hashing.headerHash(header), writes: writes, outcomes: outcomes)
    }

    /// The timestamp of the head block `head`.
    private func headTimestampMs(_ head: ChainStore.Head) throws -> Int64 {
        if let cached = headTime.withLock({ $0 }), cached.height == head.height { return cached.ms }
        guard let header = try store.block(at: head.height)?.header else { throw StoreError.corrupt("head block \(head.height) is missing") }
        headTime.withLock { $0 = (head.height, header.timestampMs) }
        return header.timestampMs
    }

    /// Bookkeeping after a block is durable: caches, subscribers.
    private func afterCommit(height: UInt64, hash: [UInt8], bytes: [UInt8], writes: [StateWriteRecord], timestampMs: Int64) {
        headTime.withLock { $0 = (height, timestampMs) }
        meterCache.map.withLock { cache in
            for w in writes where w.key.hasPrefix("meter/") {
                if let v = w.value, let ts = BlockExecutor.decodeInt64(v) { cache[String(w.key.dropFirst(6))] = ts }
            }
            if cache.count > 200_000 { cache.removeAll() }
        }
        meterCache.applyCommitted(writes)
        feed.publish(height: height, hash: hash, blockBytes: bytes)
        headWaiters.advance(to: height)
    }

    private func commitGenesis() throws {
        var header = BlockHeader()
        header.chainId = chainID
        header.height = 0
        header.timestampMs = 0
        header.txRoot = hashing.txRoot([])
        header.stateRoot = hashing.genesisStateRoot(chainID: chainID)
        header.hashSuite = hashing.suite.rawValue
        header.outcomesRoot = hashing.outcomesRoot([])
        let block = Block(header: header, transactions: [], outcomes: [])
        try store.commit(block: block, blockBytes: block.serializedBytes(), hash: hashing.headerHash(header), txIDs: [], writes: [], stateRoot: header.stateRoot)
        logger.info("genesis block written", metadata: ["chain": "\(chainID)"])
    }

    // MARK: Queries

    package func blockHash(at height: UInt64) throws -> [UInt8]? {
        guard let block = try store.block(at: height), let header = block.header else { return nil }
        return hashing.headerHash(header)
    }

    /// Bytes of the files in `path` (the LevelDB directory: tables and log).
    package static func directoryBytes(_ path: String) -> UInt64 {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return 0 }
        return names.reduce(0) { sum, name in
            let size = (try? FileManager.default.attributesOfItem(atPath: path + "/" + name)[.size] as? NSNumber)?.uint64Value ?? 0
            return sum + size
        }
    }

    /// Whether this chain can make progress here (`ChainHealth` has the rule).
    package func health(now: ContinuousClock.Instant = .now) -> ChainHealth {
        let ordering = ordering
        let group = ordering?.status
        return ChainHealth.assess(
            halted: group?.halted, storeFailure: storeFailure.withLock { $0 },
            leaderless: group?.noLeaderSince.map { now - $0 }, grace: ordering?.noLeaderGrace ?? .zero)
    }

    package func status() -> ChainStatus {
        let head = store.head
        let (tps, rps, total) = rate.withLock { ($0.transactionsPerSecond, $0.readingsPerSecond, $0.totalTransactions) }
        var status = ChainStatus(
            chainId: chainID, height: head?.height ?? 0, headHash: head?.hash ?? [], role: "solo",
            pendingTransactions: UInt32(pendingCount), transactionsPerSecond: tps, readingsPerSecond: rps,
            storeBytes: Self.directoryBytes(store.directory + "/chain.ldb"), totalTransactions: total)
        if let raft = ordering?.status {
            status.role = raft.roleName
            status.raftNodeId = raft.nodeID
            status.raftTerm = raft.term
            status.raftLeader = raft.leader
            status.raftCommit = raft.commit
            status.raftApplied = raft.applied
            status.halted = raft.halted ?? ""
            status.raftPeers = raft.progress.keys.sorted().map { id in
                let match = raft.progress[id] ?? 0
                return RaftPeerStatus(nodeId: id, matchIndex: match, lag: raft.lastIndex > match ? raft.lastIndex - match : 0)
            }
        }
        let health = health()
        status.serving = health.serving
        status.notServingReason = health.reason
        return status
    }
}
