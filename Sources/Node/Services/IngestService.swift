import Chain
import GridBase
import GridClient
import GridProto
import Wire

/// `Ingest.Submit`, `Ingest.SubmitReadings`, `Ingest.StreamReadings`. The TLS caller is the
/// transaction's carrier: the signer itself or a node of the chain
/// (`TransactionValidator.checkCarrier`). Security refusals (`PERMISSION_DENIED`,
/// `UNAUTHENTICATED`) are logged through `refusals`.
struct IngestService: Sendable {
    let chains: ChainSet
    let refusals: RefusalLog

    func register(in router: inout RPCRouter) {
        let chains = self.chains
        let refusals = self.refusals
        /// Runs a submission; a security refusal is logged (rate limited) before it is thrown.
        @Sendable func logged<T>(_ ctx: RPCCallContext, _ body: () async throws -> T) async throws -> T {
            do {
                return try await answeringChainErrors(body)
            } catch let error as RPCError where error.code == .permissionDenied || error.code == .unauthenticated {
                refusals.note(ctx.peer, method: ctx.method, code: error.code, reason: error.message)
                throw error
            }
        }
        router.unary(GridMethod.Ingest.submit, roles: [.collector, .marketing, .bank, .finance, .device, .admin, .node]) {
            (request: SubmitRequest, ctx) in
            let tx = try Self.transaction(request)
            return try await logged(ctx) { try await Self.ledger(for: request, tx, chains).submit(tx, carrier: ctx.peer) }
        }
        router.unary(GridMethod.Ingest.submitReadings, roles: [.collector, .node]) { (request: SubmitRequest, ctx) in
            let tx = try Self.transaction(request)
            return try await logged(ctx) { try await Self.ledger(for: request, tx, chains).submit(tx, readingsOnly: true, carrier: ctx.peer) }
        }
        // Acknowledgements go out in request order; up to `window` submissions are in flight
        // at once, so one stream can fill several blocks without waiting for each.
        router.bidirectional(GridMethod.Ingest.streamReadings, roles: [.collector, .node]) {
            (requests: RequestStream<SubmitRequest>, out: ResponseWriter<StreamAck>, ctx) in
            let window = 64
            // Credits bound the submissions whose acknowledgement is not yet sent.
            let (credits, creditsIn) = AsyncStream<Void>.makeStream()
            for _ in 0..<window { creditsIn.yield() }
            let (acks, acksIn) = AsyncStream<Task<StreamAck, Never>>.makeStream()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await task in acks {
                        try await out.send(await task.value)
                        creditsIn.yield()
                    }
                }
                var creditIterator = credits.makeAsyncIterator()
                var sequence: UInt64 = 0
                for try await request in requests {
                    _ = await creditIterator.next()
                    let seq = sequence
                    sequence += 1
                    // The next request is read only once this one is queued (or refused):
                    // batches enter the chain in stream order, so a later batch repeating an
                    // earlier one's readings is the duplicate, never the other way round.
                    let (queued, queuedIn) = AsyncStream<Void>.makeStream()
                    acksIn.yield(Task<StreamAck, Never> {
                        defer { queuedIn.finish() }
                        do {
                            let tx = try Self.transaction(request)
                            let response = try await logged(ctx) {
                                try await Self.ledger(for: request, tx, chains)
                                    .submit(tx, readingsOnly: true, carrier: ctx.peer, whenQueued: { queuedIn.finish() })
                            }
                            return StreamAck(sequence: seq, code: StatusCode.ok.rawValue, message: "", response: response)
                        } catch let error as RPCError {
                            var response: SubmitResponse?
                            if error.code == .alreadyExists, let raw = error.metadataValue("gridledger-tx-location-bin") {
                                response = SubmitResponse(location: try? TxLocation(serializedBytes: raw), outcome: nil, alreadyExisted: true)
                            }
                            return StreamAck(sequence: seq, code: error.code.rawValue, message: error.message, response: response)
                        } catch {
                            return StreamAck(sequence: seq, code: StatusCode.internal.rawValue, message: "\(error)", response: nil)
                        }
                    })
                    for await _ in queued {}
                }
                acksIn.finish()
                try await group.waitForAll()
            }
        }
    }

    /// The chain a submission is for: the request's `chain_id`, else the node's only chain,
    /// else the chain its payload names (the ledger checks the payload agrees).
    static func ledger(for request: SubmitRequest, _ tx: SignedTransaction, _ chains: ChainSet) throws -> Ledger {
        if request.chainId.isEmpty, chains.all.count > 1, let payload = try? TxPayload(serializedBytes: tx.payload) {
            return try chains.ledger(payload.chainId)
        }
        return try chains.ledger(request.chainId)
    }

    static func transaction(_ request: SubmitRequest) throws -> SignedTransaction {
        guard let tx = request.transaction else { throw RPCError(.invalidArgument, "request has no transaction") }
        return tx
    }
}
