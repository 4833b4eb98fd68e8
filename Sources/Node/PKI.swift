import GridCrypto
import Identity
import Wire

/// The deployment PKI as the `gridnode ca` commands and embedding programs use it.
package enum PKI {
    package static var roleNames: [String] { Role.allCases.map(\.rawValue) }

    package static func role(named name: String) -> Role? { Role(rawValue: name) }

    /// Creates `ca.key` (0600) and `ca.crt` in `outDirectory`.
    @discardableResult
    package static func initializeCA(outDirectory: String, commonName: String, days: Int = 3650) throws -> IssuedCertificate {
        try CertificateAuthority.initialize(outDirectory: outDirectory, commonName: commonName, days: days)
    }

    /// Issues `<name>.key` (0600) and `<name>.crt` for a party, and copies `ca.crt` beside them.
    @discardableResult
    package static func issue(
        caDirectory: String, role: Role, name: String, district: String? = nil, subjectAltNames: [String] = [],
        days: Int = 365, backdateDays: Int = 0, outDirectory: String
    ) throws -> IssuedCertificate {
        try CertificateAuthority.issue(
            caDirectory: caDirectory, role: role, name: name, district: district, subjectAltNames: subjectAltNames,
            days: days, backdateDays: backdateDays, outDirectory: outDirectory)
    }
}
