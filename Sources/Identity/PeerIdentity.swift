/// An authenticated party: what a verified certificate says about its holder.
///
/// Invariant: only the TLS layer creates identities for remote peers, after the peer's
/// certificate chain verified against the deployment CA.
public struct PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    /// Subject CN.
    public var name: String
    public var role: Role
    /// Subject L; nil when the certificate names no district.
    public var district: String?
    /// Certificate serial number, lower-case hex.
    public var serial: String
    /// SHA-256 of the certificate's SubjectPublicKeyInfo (DER), 64 lower-case hex digits: what
    /// pins a party to its key pair (Raft members, Docs/security.md "Raft membership"); empty
    /// for identities not read from a certificate.
    public var publicKeySHA256: String

    public init(name: String, role: Role, district: String? = nil, serial: String, publicKeySHA256: String = "") {
        self.name = name
        self.role = role
        self.district = district
        self.serial = serial
        self.publicKeySHA256 = publicKeySHA256
    }

    public var description: String {
        "\(role.rawValue):\(name)" + (district.map { "@\($0)" } ?? "") + "#\(serial)"
    }
}
