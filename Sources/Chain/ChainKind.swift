import Identity

/// Which transactions a chain takes: a district side chain or the cloud main chain.
package enum ChainKind: String, Sendable {
    case district
    case main

    /// The district a node certificate of chain `chainID` names: the chain's id on a
    /// district chain, none on the main chain (cloud nodes).
    package func nodeDistrict(chainID: String) -> String? {
        self == .main ? nil : chainID
    }

    /// nil when `peer` is a node of chain `chainID` (Docs/security.md, "Raft membership",
    /// rules 1 and 2: role `node`, and the chain's district in its certificate), else why not.
    package func nodeMismatch(_ peer: PeerIdentity, chainID: String) -> String? {
        Self.nodeMismatch(peer, district: nodeDistrict(chainID: chainID))
    }

    /// The same rule for the district a chain's node certificates name (nil: the main chain).
    package static func nodeMismatch(_ peer: PeerIdentity, district: String?) -> String? {
        guard peer.role == .node else { return "role \(peer.role.rawValue) is not node" }
        guard peer.district == district else {
            return "certificate names district \(peer.district ?? "(none)"), the chain's nodes \(district.map { "name \($0)" } ?? "name none (main chain)")"
        }
        return nil
    }
}
