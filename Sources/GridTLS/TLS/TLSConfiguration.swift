public import NIOCore

/// What a `TLSContext` is built from: the party's own key pair, the deployment CA and the
/// ALPN protocol.
public struct TLSConfiguration: Sendable, Hashable {
    /// The ALPN protocol id of GridLedger's RPC protocol, version 1.
    public static let defaultALPN = "gridledger/1"

    /// PEM certificate (chain) presented to the peer: `<name>.crt` from `CertificateAuthority`.
    public var certificatePath: String
    /// PEM private key of that certificate: `<name>.key`.
    public var privateKeyPath: String
    /// PEM CA certificate, the only trust root: peers must chain to it (`ca.crt`).
    public var trustRootPath: String
    /// The one ALPN protocol offered (client) or accepted (server); 1 to 255 bytes.
    public var alpn: String
    /// How long a handshake may take from channel activation before the channel is closed.
    public var handshakeTimeout: TimeAmount

    public init(
        certificatePath: String,
        privateKeyPath: String,
        trustRootPath: String,
        alpn: String = TLSConfiguration.defaultALPN,
        handshakeTimeout: TimeAmount = .seconds(10)
    ) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.trustRootPath = trustRootPath
        self.alpn = alpn
        self.handshakeTimeout = handshakeTimeout
    }
}
