import Chain
import GridClient
import GridProto
import Identity
import Wire

/// `/gridledger.Anchor/Sign` (district members sign anchors for their leader) and
/// `/gridledger.Query/ProveBlock` (a district block's proof up to a main-chain header; the
/// proof carries the anchor's uplink summary, account balances included, so `ReadPolicy`
/// lets only those who read the district's accounts have it).
struct AnchorService: Sendable {
    let chains: ChainSet
    let gate: ReadGate
    let refusals: RefusalLog

    func register(in router: inout RPCRouter) {
        let chains = self.chains
        let gate = self.gate
        let refusals = self.refusals
        router.unary(GridMethod.Anchor.sign, roles: [.node]) { (request: AnchorSignRequest, ctx) in
            let runtime = try chains.resolve(request.chainId)
            // A member of the chain's Raft group, bound by certificate (`MemberBinding`).
            guard let registry = runtime.raft?.registry else {
                throw refusals.refuse(ctx.peer, method: ctx.method, "chain \(runtime.ledger.chainID) is ordered solo: no member may ask for its signature")
            }
            guard !registry.memberIDs(of: ctx.peer).isEmpty else {
                throw refusals.refuse(ctx.peer, method: ctx.method,
                                      "node \(ctx.peer.name) is not a member of chain \(runtime.ledger.chainID): \(registry.whyNotMember(ctx.peer))")
            }
            // Membership first: a non-member learns nothing about the chain.
            guard let sync = runtime.sync else {
                throw RPCError(.failedPrecondition, "chain \(runtime.ledger.chainID) does not anchor on a main chain")
            }
            return try sync.sign(request)
        }
        router.unary(GridMethod.Query.proveBlock, roles: Set(Role.allCases)) { (request: ProveBlockRequest, ctx) in
            let runtime = try chains.resolve(request.chainId)
            try gate.check(ctx, runtime.ledger, .blockProof)
            guard let sync = runtime.sync else {
                throw RPCError(.failedPrecondition, "chain \(runtime.ledger.chainID) does not anchor on a main chain")
            }
            return try await sync.prove(height: request.height)
        }
    }
}
