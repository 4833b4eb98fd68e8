import Chain
import Identity

/// What binds a chain's Raft member to a TLS peer (Docs/security.md, "Raft membership"): never
/// a name alone. A peer is member M of chain C when its verified certificate
///   1. has role `node`,
///   2. names C's district: L = C on a district chain, no L on the main chain (cloud nodes),
///   3. has M's CN, and
///   4. when M is pinned, has M's public key (SHA-256 of its SubjectPublicKeyInfo).
/// The same binding holds both ways: for peers calling this node (`Raft.Send`, `Anchor.Sign`)
/// and for the server this node calls as M (Raft transport, leader forwarding, block transfer,
/// anchor signatures).
struct MemberBinding: Sendable, Hashable {
    typealias Member = NodeConfiguration.Chain.Member

    /// The district a node certificate of the chain names; nil on the main chain.
    let district: String?

    init(chainID: String, kind: ChainKind) {
        district = kind.nodeDistrict(chainID: chainID)
    }

    /// nil when `peer` is a node of this chain (rules 1 and 2, `ChainKind.nodeMismatch`),
    /// else why not.
    func nodeMismatch(_ peer: PeerIdentity) -> String? {
        ChainKind.nodeMismatch(peer, district: district)
    }

    /// nil when `peer` is `member` (rules 1 to 4), else why not.
    func mismatch(_ peer: PeerIdentity, _ member: Member) -> String? {
        if let refusal = nodeMismatch(peer) { return refusal }
        guard peer.name == member.name else { return "certificate CN \(peer.name) is not member \(member.id)'s (\(member.name))" }
        guard member.publicKeySHA256.isEmpty || peer.publicKeySHA256 == member.publicKeySHA256 else {
            return "public key sha256:\(Self.prefix(peer.publicKeySHA256)) is not member \(member.id)'s pinned key sha256:\(Self.prefix(member.publicKeySHA256))"
        }
        return nil
    }

    /// The first 16 hex digits of a key fingerprint, for log lines and messages.
    static func prefix(_ fingerprint: String) -> String {
        fingerprint.isEmpty ? "(none)" : String(fingerprint.prefix(16))
    }
}
