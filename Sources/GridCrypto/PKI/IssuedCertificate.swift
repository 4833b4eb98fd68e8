public import Identity

/// Where `CertificateAuthority` wrote a key pair, and whom the certificate names.
public struct IssuedCertificate: Sendable, Hashable {
    /// PEM certificate (`ca.crt` for a CA, `<name>.crt` otherwise), mode 0644.
    public var certificatePath: String
    /// PEM PKCS#8 private key (`ca.key` or `<name>.key`), mode 0600.
    public var privateKeyPath: String
    /// The deployment CA certificate next to it (equal to `certificatePath` for a CA).
    public var caCertificatePath: String
    /// What the certificate's subject says about its holder; nil for a CA certificate, whose
    /// subject names no role.
    public var identity: PeerIdentity?
    /// Serial number, lower-case hex (same form as `PeerIdentity.serial`).
    public var serial: String

    public init(certificatePath: String, privateKeyPath: String, caCertificatePath: String, identity: PeerIdentity?, serial: String) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.caCertificatePath = caCertificatePath
        self.identity = identity
        self.serial = serial
    }
}
