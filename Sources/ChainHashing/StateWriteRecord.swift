/// One state change made by a transaction of a block: what the ledger records and what
/// `ChainHashing.stateRoot` hashes into the write-set.
package struct StateWriteRecord: Sendable, Equatable {
    package var key: String
    /// nil deletes the key.
    package var value: [UInt8]?
    /// The index of the transaction in its block that made the change.
    package var txIndex: UInt32

    package init(key: String, value: [UInt8]?, txIndex: UInt32) {
        self.key = key
        self.value = value
        self.txIndex = txIndex
    }
}
