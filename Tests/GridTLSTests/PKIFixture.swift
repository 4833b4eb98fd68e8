import Foundation
import GridTLS
import GridCrypto
import Identity
import XCTest

/// A temporary deployment for tests: a CA in `<root>/ca` and issued parties in
/// `<root>/<party name>/`. Removed by `cleanUp()`.
final class PKIFixture {
    let root: String
    let caDirectory: String

    init(caName: String = "Test CA") throws {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("gridtls-\(UUID().uuidString)").path
        caDirectory = root + "/ca"
        try CertificateAuthority.initialize(outDirectory: caDirectory, commonName: caName, days: 30)
    }

    /// Issues `name` into its own directory and returns the TLS configuration that uses it.
    func issue(
        _ name: String,
        role: Role,
        district: String? = nil,
        sans: [String] = [],
        days: Int = 30,
        backdateDays: Int = 0,
        handshakeTimeout: TimeInterval = 10,
        alpn: String = TLSConfiguration.defaultALPN
    ) throws -> TLSConfiguration {
        let directory = root + "/" + name
        let issued = try CertificateAuthority.issue(
            caDirectory: caDirectory, role: role, name: name, district: district, subjectAltNames: sans,
            days: days, backdateDays: backdateDays, outDirectory: directory
        )
        return TLSConfiguration(
            certificatePath: issued.certificatePath,
            privateKeyPath: issued.privateKeyPath,
            trustRootPath: issued.caCertificatePath,
            alpn: alpn,
            handshakeTimeout: .milliseconds(Int64(handshakeTimeout * 1000))
        )
    }

    func cleanUp() {
        // GRIDTLS_KEEP_PKI=1 keeps the files for inspection (e.g. `openssl x509 -text`).
        if ProcessInfo.processInfo.environment["GRIDTLS_KEEP_PKI"] != nil {
            print("kept PKI fixture at \(root)")
            return
        }
        try? FileManager.default.removeItem(atPath: root)
    }
}
