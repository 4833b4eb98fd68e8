import Foundation
import Wire

/// File descriptors: how many connections a node can hold without running out of them.
///
/// Every connection (and every connection still in its handshake) is a descriptor; so are
/// the chain stores (LevelDB keeps its log, manifest and lock open and opens table files),
/// the listening socket, the node's own outgoing connections (Raft peers, the main chain)
/// and the log. A node whose connections take every descriptor cannot accept anyone, nor
/// open a table file, so the connection limits are derived to stay below the process's
/// limit with headroom for the rest (Docs/security.md, "Limits").
enum DescriptorBudget {
    /// Descriptors kept for everything but accepted connections: a base for the process
    /// (listener, log, standard streams, event loops' epoll and eventfd descriptors), per
    /// chain for its stores, and per Raft member and main-chain endpoint for outgoing
    /// connections.
    static func headroom(chains: [NodeConfiguration.Chain]) -> Int {
        48 + chains.reduce(0) { total, chain in
            total + 16 + 2 * chain.members.count + 2 * (chain.mainChain?.endpoints.count ?? 0)
        }
    }

    /// Raises the soft RLIMIT_NOFILE to the hard limit (what the administrator allows) and
    /// returns the limit in force afterwards.
    static func raiseSoftLimit() -> (soft: Int, hard: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (1024, 1024) }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return (Self.clamp(limit.rlim_cur), Self.clamp(limit.rlim_max))
    }

    private static func clamp(_ value: rlim_t) -> Int {
        value > rlim_t(Int32.max) ? Int(Int32.max) : Int(value)
    }

    /// `configured`, lowered so that connections and handshakes together fit in
    /// `descriptors - headroom` (never below a handful, so that a node under a tiny limit
    /// still answers its operators). The reserve for node, ops and admin keeps its share.
    static func derive(_ configured: ConnectionLimits, descriptors: Int, headroom: Int) -> ConnectionLimits {
        let available = max(8, descriptors - headroom)
        guard configured.maxConnections + configured.maxHandshakes > available else { return configured }
        var limits = configured
        limits.maxHandshakes = max(2, min(configured.maxHandshakes, available / 4))
        limits.maxConnections = max(4, min(configured.maxConnections, available - limits.maxHandshakes))
        let share = Double(configured.reservedForPrivileged) / Double(configured.maxConnections)
        limits.reservedForPrivileged = min(
            limits.maxConnections - 1,
            max(configured.reservedForPrivileged > 0 ? 2 : 0, Int((Double(limits.maxConnections) * share).rounded(.up))))
        limits.maxPerIdentity = min(configured.maxPerIdentity, limits.maxConnections)
        return limits
    }
}
