/// What a `Ledger` reports to its commit observer (the node's metrics), as it happens.
///
/// Contract: the observer is called synchronously on the task that committed (the cutter,
/// or the Raft apply path), after the block is durable; it must be cheap and must not call
/// back into the ledger.
package enum LedgerCommitEvent: Sendable {
    /// A block became durable in this replica's chain store (every replica, every block but
    /// genesis): its height, its transaction count, and how long the synced store write took.
    case stored(height: UInt64, transactions: Int, writeDuration: Duration)
    /// The block this node cut (solo, or as Raft leader) was acknowledged to its submitters:
    /// `duration` runs from taking the batch off the queue to the acknowledgement (building,
    /// ordering through Raft where there is a group, applying and the synced write).
    case acknowledged(transactions: Int, duration: Duration)
}
