import Foundation
import GridProto
import GridCrypto
import Identity
import NIOCore
import Wire

/// Signs transaction payloads with a party's certificate key (ECDSA P-256 over SHA-256),
/// as the C and Python clients do.
public struct TransactionSigner: Sendable {
    private let keyPair: CertificateKeyPair

    public init(certificatePath: String, keyPath: String) throws {
        keyPair = try CertificateKeyPair(certificatePath: certificatePath, privateKeyPath: keyPath)
    }

    /// Who signs: the identity in the certificate.
    public var identity: PeerIdentity { keyPair.identity }

    public func sign(_ payload: TxPayload) throws -> SignedTransaction {
        let bytes = payload.serializedBytes()
        return SignedTransaction(payload: bytes, signature: try keyPair.sign(bytes), signerCertificate: keyPair.certificateDER)
    }

    /// A reading-batch payload for `chainID`, from this signer's district.
    public func readingsPayload(chainID: String, batchID: String, readings: [Reading], createdMs: Int64? = nil) -> TxPayload {
        payload(chainID: chainID, body: .readings(ReadingBatch(district: identity.district ?? "", batchId: batchID, readings: readings)), createdMs: createdMs)
    }

    /// A payload of any kind for `chainID` (a registration, an anchor, a parameter ...).
    public func payload(chainID: String, body: TxPayload.Body, createdMs: Int64? = nil) -> TxPayload {
        var nonce = [UInt8](repeating: 0, count: 8)
        for i in nonce.indices { nonce[i] = UInt8.random(in: 0...255) }
        return TxPayload(chainId: chainID, createdMs: createdMs ?? Int64(Date().timeIntervalSince1970 * 1000), nonce: nonce.hex, body: body)
    }

    /// The transaction id of a signed transaction: SHA-256 of its payload.
    public static func transactionID(_ transaction: SignedTransaction) -> [UInt8] {
        Digest.sha256(transaction.payload)
    }
}

/// Typed calls of the chain services, for Swift clients (the CLI, the simulator, tests).
public struct ChainClient: Sendable {
    public let rpc: RPCClient

    public init(_ rpc: RPCClient) { self.rpc = rpc }

    // `chain` names the chain on a node that serves several; "" = its only chain.

    public func chainInfo(chain: String = "", timeout: Duration = .seconds(10)) async throws -> ChainInfo {
        try await rpc.unary(QueryService.prefix + "GetChainInfo", GetChainInfoRequest(chainId: chain), as: ChainInfo.self, timeout: .init(timeout))
    }

    public func submitReadings(_ transaction: SignedTransaction, chain: String = "", timeout: Duration = .seconds(30)) async throws -> SubmitResponse {
        try await rpc.unary(IngestService.submitReadingsMethod, SubmitRequest(transaction: transaction, chainId: chain), as: SubmitResponse.self, timeout: .init(timeout))
    }

    public func submit(_ transaction: SignedTransaction, chain: String = "", timeout: Duration = .seconds(30)) async throws -> SubmitResponse {
        try await rpc.unary(IngestService.submitMethod, SubmitRequest(transaction: transaction, chainId: chain), as: SubmitResponse.self, timeout: .init(timeout))
    }

    public func block(at height: UInt64, chain: String = "") async throws -> GetBlockResponse {
        try await rpc.unary(QueryService.prefix + "GetBlock", GetBlockRequest(height: height, byHeight: true, hash: [], chainId: chain), as: GetBlockResponse.self)
    }

    public func transaction(_ id: [UInt8], chain: String = "") async throws -> GetTransactionResponse {
        try await rpc.unary(QueryService.prefix + "GetTransaction", GetTransactionRequest(txId: id, chainId: chain), as: GetTransactionResponse.self)
    }

    public func state(_ key: String, chain: String = "", consistency: Consistency = .local) async throws -> GetStateResponse {
        try await rpc.unary(QueryService.prefix + "GetState", GetStateRequest(key: key, consistency: consistency, chainId: chain), as: GetStateResponse.self)
    }

    public func history(_ key: String, chain: String = "", limit: UInt32 = 100) async throws -> GetHistoryResponse {
        try await rpc.unary(QueryService.prefix + "GetHistory", GetHistoryRequest(key: key, limit: limit, chainId: chain), as: GetHistoryResponse.self)
    }

    public func subscribeBlocks(from height: UInt64, chain: String = "") -> ResponseStream<GetBlockResponse> {
        rpc.serverStreaming(QueryService.prefix + "SubscribeBlocks", SubscribeBlocksRequest(fromHeight: height, chainId: chain), as: GetBlockResponse.self)
    }

    /// A proof from district block `height` up to the main-chain block that anchors it.
    public func proveBlock(_ height: UInt64, chain: String = "") async throws -> BlockProof {
        try await rpc.unary(AnchorService.proveMethod, ProveBlockRequest(chainId: chain, height: height), as: BlockProof.self, timeout: .seconds(30))
    }

    // Fee control (district chains).

    /// A district's results as its anchors carried them up to the main chain: totals, and a
    /// page of accounts after `after` (admin, marketing).
    public func districtResults(_ district: String, after: String = "", limit: UInt32 = 100, chain: String = "") async throws -> GetDistrictResultsResponse {
        try await rpc.unary(
            DistrictResultsService.method, GetDistrictResultsRequest(chainId: chain, district: district, afterAccount: after, limit: limit),
            as: GetDistrictResultsResponse.self)
    }

    public func account(_ id: String, chain: String = "") async throws -> GetAccountResponse {
        try await rpc.unary(FeeControlService.prefix + "GetAccount", GetAccountRequest(chainId: chain, account: id), as: GetAccountResponse.self)
    }

    public func accounts(state: AccountState = .normal, anyWarning: Bool = false, chain: String = "", limit: UInt32 = 100) async throws -> [Account] {
        try await rpc.unary(FeeControlService.prefix + "ListAccounts", ListAccountsRequest(chainId: chain, state: state, anyWarning: anyWarning, limit: limit), as: ListAccountsResponse.self).accounts
    }

    public func commands(status: CommandStatus = .unspecified, chain: String = "", limit: UInt32 = 100) async throws -> [ControlCommand] {
        try await rpc.unary(FeeControlService.prefix + "ListCommands", ListCommandsRequest(chainId: chain, status: status, limit: limit), as: ListCommandsResponse.self).commands
    }

    /// Role device: the district's pending commands, then each new one.
    public func subscribeCommands(chain: String = "") -> ResponseStream<ControlCommand> {
        rpc.serverStreaming(FeeControlService.subscribeCommandsMethod, SubscribeCommandsRequest(chainId: chain), as: ControlCommand.self)
    }

    /// Role marketing: the notices issued from `height` on.
    public func subscribeNotices(from height: UInt64 = 1, chain: String = "") -> ResponseStream<Notice> {
        rpc.serverStreaming(FeeControlService.subscribeNoticesMethod, SubscribeNoticesRequest(chainId: chain, fromHeight: height), as: Notice.self)
    }

    public func streamReadings() async throws -> BidirectionalCall<SubmitRequest, StreamAck> {
        try await rpc.bidirectional(IngestService.streamReadingsMethod, requestType: SubmitRequest.self, responseType: StreamAck.self)
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        self = .nanoseconds(duration.nanoseconds)
    }
}
