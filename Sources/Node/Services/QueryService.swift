import Chain
import GridBase
import GridClient
import GridCrypto
import GridProto
import Identity
import Store
import Wire

/// `Query.*`: blocks, transactions, world state and its history, and a live block stream.
/// Every role may call them; what each may read is `ReadPolicy`'s (checked before any data
/// is touched).
struct QueryService: Sendable {
    let chains: ChainSet
    let gate: ReadGate
    /// Identifies a transaction's signer (collectors and devices read only their own).
    let verifier: SignerVerifier

    func register(in router: inout RPCRouter) {
        let any = Set(Role.allCases)
        let chains = self.chains
        let gate = self.gate
        let verifier = self.verifier
        router.unary(GridMethod.Query.getChainInfo, roles: any) { (request: GetChainInfoRequest, ctx) in
            let ledger = try chains.ledger(request.chainId)
            try gate.check(ctx, ledger, .chainInfo)
            let head = ledger.reader.head
            return ChainInfo(chainId: ledger.chainID, height: head?.height ?? 0, headHash: head?.hash ?? [], hashSuite: ledger.hashing.suite.rawValue)
        }
        router.unary(GridMethod.Query.getBlock, roles: any) { (request: GetBlockRequest, ctx) in
            let ledger = try chains.ledger(request.chainId)
            try gate.check(ctx, ledger, .blocks)
            try await Self.barrier(request.consistency, ledger)
            let height: UInt64
            if request.byHeight {
                height = request.height
            } else if !request.hash.isEmpty {
                guard let h = try ledger.reader.height(ofBlockHash: request.hash) else {
                    throw RPCError(.notFound, "no block with hash \(Bounded.quote(request.hash.hex))")
                }
                height = h
            } else {
                throw RPCError(.invalidArgument, "give a height (by_height) or a hash")
            }
            guard let block = try ledger.reader.block(at: height), let header = block.header else {
                throw RPCError(.notFound, "no block at height \(height) (head is \(ledger.reader.head?.height ?? 0))")
            }
            return GetBlockResponse(block: block, hash: ledger.hashing.headerHash(header))
        }
        router.unary(GridMethod.Query.getTransaction, roles: any) { (request: GetTransactionRequest, ctx) in
            let ledger = try chains.ledger(request.chainId)
            let decision = try gate.check(ctx, ledger, .transaction)
            try await Self.barrier(request.consistency, ledger)
            guard let location = try ledger.reader.txLocation(request.txId),
                  let block = try ledger.reader.block(at: location.height), let header = block.header,
                  Int(location.index) < block.transactions.count
            else {
                throw RPCError(.notFound, "no transaction \(Bounded.quote(request.txId.hex))")
            }
            let index = Int(location.index)
            if decision == .ownSubmissionsOnly {
                // The signer as of the block's time (its certificate was valid then).
                let signer = try? verifier.identify(certificateDER: block.transactions[index].signerCertificate, now: header.timestampMs / 1000)
                guard signer == ctx.peer else {
                    throw gate.refuse(ctx, "\(ReadPolicy.caller(ctx.peer.role, ctx.peer.district)) may read only the outcomes of its own submissions")
                }
            }
            return GetTransactionResponse(
                transaction: block.transactions[index],
                location: TxLocation(height: location.height, index: location.index, txId: request.txId, blockHash: ledger.hashing.headerHash(header)),
                outcome: index < block.outcomes.count ? block.outcomes[index] : nil)
        }
        router.unary(GridMethod.Query.getState, roles: any) { (request: GetStateRequest, ctx) in
            let ledger = try chains.ledger(request.chainId)
            try gate.check(ctx, ledger, .state(key: request.key))
            guard !request.key.isEmpty, !request.key.utf8.contains(0) else { throw RPCError(.invalidArgument, "invalid state key") }
            try await Self.barrier(request.consistency, ledger)
            guard let entry = try ledger.reader.state(request.key) else { return GetStateResponse(found: false, value: [], version: nil) }
            return GetStateResponse(found: true, value: entry.value, version: StateVersion(height: entry.height, txIndex: entry.txIndex))
        }
        router.unary(GridMethod.Query.getHistory, roles: any) { (request: GetHistoryRequest, ctx) in
            let ledger = try chains.ledger(request.chainId)
            try gate.check(ctx, ledger, .state(key: request.key))
            guard !request.key.isEmpty, !request.key.utf8.contains(0) else { throw RPCError(.invalidArgument, "invalid state key") }
            try await Self.barrier(request.consistency, ledger)
            let limit = request.limit == 0 ? 100 : min(Int(request.limit), 1000)
            let entries = try ledger.reader.history(request.key, limit: limit).map {
                HistoryEntry(version: StateVersion(height: $0.height, txIndex: $0.txIndex), value: $0.value ?? [], deleted: $0.value == nil)
            }
            return GetHistoryResponse(entries: entries)
        }
        router.unary(GridMethod.Query.listBlocks, roles: any) { (request: ListBlocksRequest, ctx) in
            let ledger = try chains.ledger(request.chainId)
            try gate.check(ctx, ledger, .blockHeaders)
            let head = ledger.reader.head?.height ?? 0
            let end = request.toHeight == 0 ? head + 1 : min(request.toHeight, head + 1)
            let pageSize = UInt64(request.pageSize == 0 ? 100 : min(request.pageSize, 1000))
            guard request.fromHeight < end else { return ListBlocksResponse(blocks: [], nextHeight: 0) }
            let stop = min(end, request.fromHeight + pageSize)
            var blocks: [BlockSummary] = []
            try ledger.reader.blocks(from: request.fromHeight, to: stop) { _, bytes in
                let block = try Block(serializedBytes: bytes)
                if let header = block.header {
                    blocks.append(BlockSummary(header: header, hash: ledger.hashing.headerHash(header)))
                }
                return true
            }
            return ListBlocksResponse(blocks: blocks, nextHeight: stop < end ? stop : 0)
        }
        router.serverStreaming(GridMethod.Query.subscribeBlocks, roles: any) {
            (request: SubscribeBlocksRequest, out: ResponseWriter<GetBlockResponse>, ctx) in
            let ledger = try chains.ledger(request.chainId)
            try gate.check(ctx, ledger, .blocks)
            try await answeringChainErrors {
                try await ledger.follow(from: request.fromHeight) { block, hash in
                    try await out.send(GetBlockResponse(block: block, hash: hash))
                }
            }
        }
    }

    /// `consistency = linearizable` waits for a ReadIndex confirmation; local reads do not.
    static func barrier(_ consistency: Consistency, _ ledger: Ledger) async throws {
        switch consistency {
        case .local: return
        case .linearizable: try await answeringChainErrors { try await ledger.linearizableReadBarrier() }
        default: throw RPCError(.invalidArgument, "unknown consistency \(consistency.rawValue)")
        }
    }
}
