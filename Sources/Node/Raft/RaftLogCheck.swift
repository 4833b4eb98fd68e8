import Chain
import ChainHashing
import Consensus
import Foundation
import GridProto
import GridCrypto
import Store

/// Whether a replica's Raft log can be applied to its chain (issue 11: "`verify` reports a
/// Raft log or hard state that the chain cannot apply").
///
/// The ledger halts on a committed entry it cannot apply (`Ledger.applyCommitted`); this
/// check walks the same rules over the stored log without applying anything, so an operator
/// sees the problem on a stopped node before it halts again: every committed entry
/// (`hard state commit`) of kind normal must be empty (a leader's no-op), a member record,
/// or a block of this chain that is either at or below the head it meets (a replay equal to
/// the stored block, or a stale proposal the ledger skips) or extends it by exactly one
/// height with the head's hash as previous hash, a timestamp not before the head's, and a
/// matching transaction root. Uncommitted entries are not judged: a new leader may still
/// replace them.
enum RaftLogCheck {
    /// nil when the log is applicable (or there is none: a solo chain); else what is wrong.
    static func problem(chainDirectory: String, store: ChainStore, chainID: String) -> String? {
        guard FileManager.default.fileExists(atPath: chainDirectory + "/raft.ldb") else { return nil }
        let state: PersistentState
        do {
            state = try LevelDBRaftStorage(directory: chainDirectory).load()
        } catch {
            return "raft log or hard state unreadable: \(error)"
        }
        guard let head = store.head else { return "store has no head record" }
        guard let genesis = try? store.block(at: 0)?.header, let hashing = ChainHashing.of(genesis) else {
            return "genesis block is missing or names an unknown hash suite"
        }
        var height = head.height
        var hash = head.hash
        var timestampMs = (try? store.block(at: head.height)?.header?.timestampMs) ?? 0
        let commit = state.hardState.commit
        for entry in state.entries where entry.index <= commit && entry.kind == .normal && !entry.data.isEmpty {
            let at = "committed raft entry \(entry.index) (term \(entry.term))"
            if MemberRegistry.isRecord(entry.data) {
                guard (try? MemberRecord(serializedBytes: Array(entry.data.dropFirst()))) != nil else {
                    return "\(at) is a member record that does not decode"
                }
                continue
            }
            guard let block = try? Block(serializedBytes: entry.data), let header = block.header else {
                return "\(at) is not a block: this replica cannot apply it"
            }
            guard header.chainId == chainID else { return "\(at) is a block of chain '\(header.chainId)', not \(chainID)" }
            let blockHash = hashing.headerHash(header)
            if header.height <= height || header.previousHash != hash {
                if header.height <= head.height, let stored = try? store.block(at: header.height)?.header,
                    hashing.headerHash(stored) == blockHash
                {
                    continue  // replayed after a restart
                }
                if header.height > height + 1 { return "\(at) is block \(header.height) after block \(height): a gap" }
                continue  // a stale proposal: every replica skips it
            }
            guard header.timestampMs >= timestampMs else {
                return "\(at): block \(header.height) is dated before block \(height)"
            }
            let ids = block.transactions.map { Digest.sha256($0.payload) }
            guard hashing.txRoot(ids) == header.txRoot, Int(header.txCount) == ids.count else {
                return "\(at): block \(header.height) has a transaction root that does not match its transactions"
            }
            height = header.height
            hash = blockHash
            timestampMs = header.timestampMs
        }
        return nil
    }
}

extension ChainVerifier {
    /// `gridnode verify`: the chain's own checks (`ChainVerifier.verify(dataDirectory:chainID:orderingLog:progress:)`),
    /// then its Raft log (`RaftLogCheck`).
    public static func verify(dataDirectory: String, chainID: String? = nil, progress: (UInt64, UInt64) -> Void = { _, _ in }) throws -> Report {
        try verify(dataDirectory: dataDirectory, chainID: chainID, orderingLog: RaftLogCheck.problem, progress: progress)
    }
}
