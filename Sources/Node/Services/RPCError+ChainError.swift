import Chain
import GridProto
import Wire

extension RPCError {
    /// The trailer that says where a transaction already is (`TxLocation`, Docs/wire-protocol.md).
    static let txLocationKey = "gridledger-tx-location-bin"

    /// The RPC status a caller sees for a chain's refusal: the same code and message, and
    /// the transaction's location in the `gridledger-tx-location-bin` trailer when the chain
    /// names one. The one mapping from the ledger core's errors to the wire.
    init(_ chainError: ChainError) {
        self.init(
            chainError.code, chainError.message,
            metadata: chainError.location.map { [MetadataEntry(key: Self.txLocationKey, value: $0.serializedBytes())] } ?? [])
    }

    /// `error` as the caller sees it: a `ChainError` mapped (`init(_:)`), anything else as it is.
    static func answering(_ error: any Error) -> any Error {
        (error as? ChainError).map { RPCError($0) } ?? error
    }
}

/// Runs `body` (a call into the ledger core) and rethrows a `ChainError` as its `RPCError`:
/// how the services, the sync agent and the embedding API answer with the chain's statuses.
func answeringChainErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ChainError {
        throw RPCError(error)
    }
}
