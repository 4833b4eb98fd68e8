import GridCrypto
import GridProto
import NIOCore
import Wire

/// Typed calls of a node's services over one connection (`GridConnection`): what the CLI,
/// the simulator, the benchmarks, the tests and other nodes call, each under its
/// `GridMethod` path.
///
/// `chain` names the chain on a node that serves several; `""` is its only chain
/// (`INVALID_ARGUMENT` on a node serving several, `NOT_FOUND` for a chain it does not
/// serve). Every call throws `RPCError` with the server's status or a local
/// `DEADLINE_EXCEEDED` / `UNAVAILABLE` / `RESOURCE_EXHAUSTED`; `timeout` nil means no
/// deadline. Which role may call what: Docs/wire-protocol.md and Docs/permissions.md.
///
/// Thread safety: a value over a thread-safe `RPCClient`; calls may run concurrently (up to
/// the server's concurrent-stream limit). The caller owns the connection and closes it
/// with `rpc.close()`.
public struct ChainClient: Sendable {
    /// The connection the calls go over.
    public let rpc: RPCClient

    public init(_ rpc: RPCClient) { self.rpc = rpc }

    // MARK: Node (Health, Ops)

    /// `Ops.GetStatus`: the node's status, every chain's included (roles ops, admin).
    public func status(timeout: Duration? = .seconds(10)) async throws -> GetStatusResponse {
        try await rpc.unary(GridMethod.Ops.getStatus, GetStatusRequest(), as: GetStatusResponse.self, timeout: timeout.map(TimeAmount.init))
    }

    /// `Health.Check` of `service`: `""` is the node, `chain/<id>` one chain. An unknown
    /// name throws `NOT_FOUND`.
    public func health(_ service: String = "", timeout: Duration? = nil) async throws -> HealthCheckResponse {
        try await rpc.unary(GridMethod.Health.check, HealthCheckRequest(service: service), as: HealthCheckResponse.self, timeout: timeout.map(TimeAmount.init))
    }

    /// `Health.Watch` of `service`: the current status at once, then each change.
    public func watchHealth(_ service: String = "") -> ResponseStream<HealthCheckResponse> {
        rpc.serverStreaming(GridMethod.Health.watch, HealthCheckRequest(service: service), as: HealthCheckResponse.self)
    }

    // MARK: Submitting

    /// `Ingest.Submit`: a signed transaction of any kind. Answers once the transaction is
    /// durable in a block (or refused: the response's outcome says why).
    public func submit(_ transaction: SignedTransaction, chain: String = "", timeout: Duration = .seconds(30)) async throws -> SubmitResponse {
        try await rpc.unary(GridMethod.Ingest.submit, SubmitRequest(transaction: transaction, chainId: chain), as: SubmitResponse.self, timeout: .init(timeout))
    }

    /// `Ingest.SubmitReadings`: a signed reading batch (roles collector, node).
    public func submitReadings(_ transaction: SignedTransaction, chain: String = "", timeout: Duration = .seconds(30)) async throws -> SubmitResponse {
        try await rpc.unary(GridMethod.Ingest.submitReadings, SubmitRequest(transaction: transaction, chainId: chain), as: SubmitResponse.self, timeout: .init(timeout))
    }

    /// `Ingest.StreamReadings`: reading batches in, one `StreamAck` per batch, in order.
    public func streamReadings() async throws -> BidirectionalCall<SubmitRequest, StreamAck> {
        try await rpc.bidirectional(GridMethod.Ingest.streamReadings, requestType: SubmitRequest.self, responseType: StreamAck.self)
    }

    // MARK: Queries

    /// `Query.GetChainInfo`: the chain's head (height, hash) and identity.
    public func chainInfo(chain: String = "", timeout: Duration = .seconds(10)) async throws -> ChainInfo {
        try await rpc.unary(GridMethod.Query.getChainInfo, GetChainInfoRequest(chainId: chain), as: ChainInfo.self, timeout: .init(timeout))
    }

    /// `Query.GetBlock` by height.
    public func block(at height: UInt64, chain: String = "") async throws -> GetBlockResponse {
        try await rpc.unary(GridMethod.Query.getBlock, GetBlockRequest(height: height, byHeight: true, hash: [], chainId: chain), as: GetBlockResponse.self)
    }

    /// `Query.ListBlocks`: block headers from `from` (a page; `to` 0 means the head).
    public func listBlocks(from: UInt64, to: UInt64 = 0, pageSize: UInt32 = 0, chain: String = "") async throws -> ListBlocksResponse {
        try await rpc.unary(GridMethod.Query.listBlocks, ListBlocksRequest(fromHeight: from, toHeight: to, pageSize: pageSize, chainId: chain), as: ListBlocksResponse.self)
    }

    /// `Query.GetTransaction` by id (`TransactionSigner.transactionID`).
    public func transaction(_ id: [UInt8], chain: String = "") async throws -> GetTransactionResponse {
        try await rpc.unary(GridMethod.Query.getTransaction, GetTransactionRequest(txId: id, chainId: chain), as: GetTransactionResponse.self)
    }

    /// `Query.GetState`: one world-state key, as of this node (`.local`) or as of the
    /// chain's commit index (`.linearizable`).
    public func state(_ key: String, chain: String = "", consistency: Consistency = .local) async throws -> GetStateResponse {
        try await rpc.unary(GridMethod.Query.getState, GetStateRequest(key: key, consistency: consistency, chainId: chain), as: GetStateResponse.self)
    }

    /// `Query.GetHistory`: a key's versions, newest first, at most `limit`.
    public func history(_ key: String, chain: String = "", limit: UInt32 = 100) async throws -> GetHistoryResponse {
        try await rpc.unary(GridMethod.Query.getHistory, GetHistoryRequest(key: key, limit: limit, chainId: chain), as: GetHistoryResponse.self)
    }

    /// `Query.SubscribeBlocks`: committed blocks from `height` on, then each new one.
    public func subscribeBlocks(from height: UInt64, chain: String = "") -> ResponseStream<GetBlockResponse> {
        rpc.serverStreaming(GridMethod.Query.subscribeBlocks, SubscribeBlocksRequest(fromHeight: height, chainId: chain), as: GetBlockResponse.self)
    }

    /// `Query.ProveBlock`: a proof from district block `height` up to the main-chain block
    /// that anchors it (verify it offline with `ProofVerifier`, Docs/anchoring.md).
    public func proveBlock(_ height: UInt64, chain: String = "") async throws -> BlockProof {
        try await rpc.unary(GridMethod.Query.proveBlock, ProveBlockRequest(chainId: chain, height: height), as: BlockProof.self, timeout: .seconds(30))
    }

    /// `proveBlock`, then `ProofVerifier.verify` on the answer: the proof and what it
    /// establishes. With `verifier` (the deployment CA) the anchor's member signatures are
    /// checked too. Throws what `proveBlock` throws, or `ProofVerifier.Failure` when the
    /// node's proof does not verify (the node is not trusted for the answer).
    public func proveAndVerifyBlock(
        _ height: UInt64, chain: String = "", verifier: SignerVerifier? = nil
    ) async throws -> (proof: BlockProof, verified: ProofVerifier.Verified) {
        let proof = try await proveBlock(height, chain: chain)
        return (proof, try ProofVerifier.verify(proof, verifier: verifier).get())
    }

    // MARK: Fee control (district chains; district results on the main chain)

    /// A district's results as its anchors carried them up to the main chain: totals, and a
    /// page of accounts after `after` (admin, marketing).
    public func districtResults(_ district: String, after: String = "", limit: UInt32 = 100, chain: String = "") async throws -> GetDistrictResultsResponse {
        try await rpc.unary(
            GridMethod.FeeControl.getDistrictResults, GetDistrictResultsRequest(chainId: chain, district: district, afterAccount: after, limit: limit),
            as: GetDistrictResultsResponse.self)
    }

    /// `FeeControl.GetAccount`: one prepaid account.
    public func account(_ id: String, chain: String = "") async throws -> GetAccountResponse {
        try await rpc.unary(GridMethod.FeeControl.getAccount, GetAccountRequest(chainId: chain, account: id), as: GetAccountResponse.self)
    }

    /// `FeeControl.ListAccounts`: the accounts in `state` (or with any warning), at most `limit`.
    public func accounts(state: AccountState = .normal, anyWarning: Bool = false, chain: String = "", limit: UInt32 = 100) async throws -> [Account] {
        try await rpc.unary(GridMethod.FeeControl.listAccounts, ListAccountsRequest(chainId: chain, state: state, anyWarning: anyWarning, limit: limit), as: ListAccountsResponse.self).accounts
    }

    /// `FeeControl.ListCommands`: control commands by status (`.unspecified`: all), at most `limit`.
    public func commands(status: CommandStatus = .unspecified, chain: String = "", limit: UInt32 = 100) async throws -> [ControlCommand] {
        try await rpc.unary(GridMethod.FeeControl.listCommands, ListCommandsRequest(chainId: chain, status: status, limit: limit), as: ListCommandsResponse.self).commands
    }

    /// Role device: the district's pending commands, then each new one.
    public func subscribeCommands(chain: String = "", timeout: Duration? = nil) -> ResponseStream<ControlCommand> {
        rpc.serverStreaming(GridMethod.Control.subscribeCommands, SubscribeCommandsRequest(chainId: chain), as: ControlCommand.self, timeout: timeout.map(TimeAmount.init))
    }

    /// Role marketing: the notices issued from `height` on.
    public func subscribeNotices(from height: UInt64 = 1, chain: String = "", timeout: Duration? = nil) -> ResponseStream<Notice> {
        rpc.serverStreaming(GridMethod.Notices.subscribe, SubscribeNoticesRequest(chainId: chain, fromHeight: height), as: Notice.self, timeout: timeout.map(TimeAmount.init))
    }

    // MARK: Membership (role admin)

    /// `Admin.TransferLeader`: hand the chain's leadership to member `node`.
    public func transferLeader(to node: UInt64, chain: String = "") async throws -> MemberResponse {
        try await rpc.unary(GridMethod.Admin.transferLeader, MemberRequest(chainId: chain, nodeId: node), as: MemberResponse.self)
    }

    /// `Admin.AddMember`: add a learner (`request` names id, name, address and optional pin).
    public func addMember(_ request: MemberRequest) async throws -> MemberResponse {
        try await rpc.unary(GridMethod.Admin.addMember, request, as: MemberResponse.self)
    }

    /// `Admin.PromoteMember`: make a caught-up learner a voter.
    public func promoteMember(_ node: UInt64, chain: String = "") async throws -> MemberResponse {
        try await rpc.unary(GridMethod.Admin.promoteMember, MemberRequest(chainId: chain, nodeId: node), as: MemberResponse.self)
    }

    /// `Admin.RemoveMember`: remove member `node` from the chain's group.
    public func removeMember(_ node: UInt64, chain: String = "") async throws -> MemberResponse {
        try await rpc.unary(GridMethod.Admin.removeMember, MemberRequest(chainId: chain, nodeId: node), as: MemberResponse.self)
    }

    // MARK: Node to node (role node)

    /// `Anchor.Sign`: ask a district member to sign an anchor range its leader proposes.
    public func signAnchor(_ request: AnchorSignRequest, timeout: Duration? = nil) async throws -> AnchorSignResponse {
        try await rpc.unary(GridMethod.Anchor.sign, request, as: AnchorSignResponse.self, timeout: timeout.map(TimeAmount.init))
    }

    /// `Raft.Send`: open the client-streaming call a member's Raft messages go over.
    public func raftSend() async throws -> ClientStreamingCall<RaftEnvelope, RaftSendAck> {
        try await rpc.clientStreaming(GridMethod.Raft.send, requestType: RaftEnvelope.self, responseType: RaftSendAck.self)
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let parts = duration.components
        self = .nanoseconds(parts.seconds * 1_000_000_000 + parts.attoseconds / 1_000_000_000)
    }
}
