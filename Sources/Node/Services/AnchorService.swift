import GridProto
import Wire

/// `/gridledger.Anchor/Sign` (district members sign anchors for their leader) and
/// `/gridledger.Query/ProveBlock` (a district block's proof up to a main-chain header; the
/// proof carries the anchor's uplink summary, account balances included, so `ReadPolicy`
/// lets only those who read the district's accounts have it).
struct AnchorService: Sendable {
    static let signMethod = "/gridledger.Anchor/Sign"
    static let proveMethod = "/gridledger.Query/ProveBlock"
    let chains: ChainSet
    let gate: ReadGate

    func register(in router: inout RPCRouter) {
        let chains = self.chains
        let gate = self.gate
        router.unary(Self.signMethod, roles: [.node]) { (request: AnchorSignRequest, ctx) in
            let runtime = try chains.resolve(request.chainId)
            guard let sync = runtime.sync else {
                throw RPCError(.failedPrecondition, "chain \(runtime.ledger.chainID) does not anchor on a main chain")
            }
            let members = runtime.raft.map { Set($0.registry.names.values) } ?? []
            guard members.contains(ctx.peer.name), ctx.peer.district == runtime.ledger.chainID else {
                throw RPCError(.permissionDenied, "node \(ctx.peer.name) is not a member of chain \(runtime.ledger.chainID)")
            }
            return try sync.sign(request)
        }
        router.unary(Self.proveMethod, roles: Set(Role.allCases)) { (request: ProveBlockRequest, ctx) in
            let runtime = try chains.resolve(request.chainId)
            try gate.check(ctx, runtime.ledger, .blockProof)
            guard let sync = runtime.sync else {
                throw RPCError(.failedPrecondition, "chain \(runtime.ledger.chainID) does not anchor on a main chain")
            }
            return try await sync.prove(height: request.height)
        }
    }
}
