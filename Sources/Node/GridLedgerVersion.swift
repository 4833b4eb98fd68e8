import Store

/// The version of this GridLedger build, reported by `Ops.GetStatus` and `gridnode --version`.
package enum GridLedgerVersion {
    package static let string = "0.1.0"
    /// The chain format it reads and writes (`ChainStore.format`).
    package static let chainFormat = ChainStore.format
}
