import Foundation
import GridProto

extension GetStatusResponse {
    /// Pretty JSON with the proto field names; bytes as lower-case hex.
    var jsonString: String {
        var object: [String: Any] = [
            "node_id": nodeId, "version": version, "uptime_ms": uptimeMs, "listen_address": listenAddress,
            "open_connections": openConnections, "calls_served": callsServed, "calls_failed": callsFailed,
            "started_at_unix_ms": startedAtUnixMs,
            "chains": chains.map { c -> [String: Any] in
                [
                    "chain_id": c.chainId, "height": c.height, "head_hash": c.headHash.map { String(format: "%02x", $0) }.joined(),
                    "role": c.role, "pending_transactions": c.pendingTransactions,
                    "transactions_per_second": c.transactionsPerSecond, "readings_per_second": c.readingsPerSecond,
                    "store_bytes": c.storeBytes, "total_transactions": c.totalTransactions,
                    "raft_node_id": c.raftNodeId, "raft_term": c.raftTerm, "raft_leader": c.raftLeader,
                    "raft_commit": c.raftCommit, "raft_applied": c.raftApplied, "halted": c.halted,
                    "raft_peers": c.raftPeers.map { ["node_id": $0.nodeId, "match_index": $0.matchIndex, "lag": $0.lag] },
                    "anchored_height": c.anchoredHeight, "anchor_lag_blocks": c.anchorLagBlocks, "anchor_lag_ms": c.anchorLagMs,
                    "downlink_main_height": c.downlinkMainHeight, "sync_error": c.syncError,
                    "serving": c.serving, "not_serving_reason": c.notServingReason,
                ]
            },
        ]
        if let caller {
            object["caller"] = ["name": caller.name, "role": caller.role, "district": caller.district, "serial": caller.serial]
        }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
