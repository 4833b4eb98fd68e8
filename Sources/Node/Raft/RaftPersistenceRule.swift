import Consensus

/// The `Ready` persistence rule (the contract on `Ready`: persist, then send; Raft Figure 2,
/// "Persistent state on all servers: updated on stable storage before responding to RPCs"):
/// before a `Ready`'s messages are sent, everything it marked must-sync is durable. Checked
/// against what the storage itself reports durable (`RaftStorage.durable`), not against the
/// core's in-memory log, which already holds the unsynced entries.
enum RaftPersistenceRule {
    /// A `Ready` about to be sent with part of its must-sync state not durable.
    struct Violation: Error, CustomStringConvertible, Equatable {
        let description: String
    }

    /// Throws `Violation` unless `durable` holds the `Ready`'s hard state, its snapshot, its
    /// last entry (index and term), and every entry an append response acknowledges.
    static func check(_ ready: Ready, durable: RaftDurableState) throws {
        func violation(_ what: String) -> Violation {
            Violation(description: "persistence rule broken: \(what) before the Ready's messages are sent")
        }
        if let hardState = ready.hardState, durable.hardState != hardState {
            throw violation("hard state \(hardState) is not durable (storage holds \(durable.hardState))")
        }
        if let snapshot = ready.snapshotToPersist,
            durable.snapshotIndex != snapshot.metadata.index || durable.snapshotTerm != snapshot.metadata.term
        {
            throw violation(
                "snapshot \(snapshot.metadata.index) (term \(snapshot.metadata.term)) is not durable (storage holds \(durable.snapshotIndex))")
        }
        if let last = ready.entriesToPersist.last, durable.lastIndex != last.index || durable.lastTerm != last.term {
            throw violation(
                "entry \(last.index) (term \(last.term)) is not durable (storage's last is \(durable.lastIndex), term \(durable.lastTerm))")
        }
        for message in ready.messages where message.kind == .appendResponse && !message.reject && message.index > durable.lastIndex {
            throw violation("a response to node \(message.to) acknowledges entry \(message.index), storage's last is \(durable.lastIndex)")
        }
    }
}
