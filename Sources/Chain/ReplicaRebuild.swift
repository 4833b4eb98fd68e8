import Foundation

/// Setting a broken replica aside so that it can be rebuilt from its peers (issue 11:
/// "anything that halts a replica must be visible and recoverable").
///
/// A replica halts rather than diverge when its Raft log or store holds something the chain
/// cannot apply (`gridnode verify` names it). Its peers still hold every committed block,
/// so the replica is rebuilt from them, never repaired in place: its chain directory (store
/// and Raft log) is moved aside, kept for inspection, and the node rejoins empty. It must
/// rejoin as a *learner* (Admin.RemoveMember, then Admin.AddMember, start with `--join`,
/// Admin.PromoteMember once caught up): a voter that lost committed entries could vote a
/// leader that lacks them into office (Raft §5.4). Docs/chain.md, "Rebuilding a replica",
/// gives the whole procedure.
public enum ReplicaRebuild {
    /// Moves `<data dir>/chains/<chain>` to `<data dir>/chains/<chain>.broken-<UTC time>`
    /// while holding the data directory's lock (so never under a running node); returns the
    /// new path.
    /// - Throws: `ConfigurationError` when the node runs, the chain has no directory, or the
    ///   move fails.
    public static func moveAside(dataDirectory: String, chainID: String, now: Date = Date()) throws -> String {
        guard !chainID.isEmpty, !chainID.contains("/"), chainID != ".", chainID != ".." else {
            throw ConfigurationError("invalid chain id '\(chainID)'")
        }
        guard FileManager.default.fileExists(atPath: dataDirectory) else { throw ConfigurationError("no data directory \(dataDirectory)") }
        let lock = try DataDirectoryLock(directory: dataDirectory)
        defer { withExtendedLifetime(lock) {} }
        let directory = ChainDirectory.path(dataDirectory: dataDirectory, chainID: chainID)
        guard FileManager.default.fileExists(atPath: directory) else {
            throw ConfigurationError("no chain \(chainID) in \(dataDirectory)/chains")
        }
        let stamp = ISO8601DateFormatter().string(from: now).replacingOccurrences(of: ":", with: "")
        let aside = directory + ".broken-" + stamp
        do {
            try FileManager.default.moveItem(atPath: directory, toPath: aside)
        } catch {
            throw ConfigurationError("cannot move \(directory) aside: \(error.localizedDescription)")
        }
        return aside
    }
}
