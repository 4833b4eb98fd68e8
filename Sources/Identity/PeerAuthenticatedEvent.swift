/// Fired down a pipeline's inbound path by the security layer once the peer is
/// authenticated. The RPC handlers above it refuse every frame until they have seen it.
public struct PeerAuthenticatedEvent: Sendable {
    public var peer: PeerIdentity
    /// The ALPN protocol both sides agreed on.
    public var applicationProtocol: String?

    public init(peer: PeerIdentity, applicationProtocol: String?) {
        self.peer = peer
        self.applicationProtocol = applicationProtocol
    }
}
