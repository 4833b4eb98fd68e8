/// Limits of a chain's ingestion and block cutting.
public struct LedgerLimits: Sendable, Equatable {
    /// A block closes at this many transactions ...
    public var maxBlockTransactions = 1000
    /// ... or this many bytes of transactions ...
    public var maxBlockBytes = 2 << 20
    /// ... or this long after its first transaction arrived.
    public var maxBlockDelay: Duration = .milliseconds(100)
    /// Transactions accepted but not yet durable; more get RESOURCE_EXHAUSTED.
    public var maxPendingTransactions = 20_000
    /// Readings in one batch.
    public var maxBatchReadings = 10_000

    public init() {}
}
