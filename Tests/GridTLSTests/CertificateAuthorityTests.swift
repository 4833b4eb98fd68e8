import Foundation
@testable import GridCrypto
import Identity
import XCTest

/// Rules checked: Docs/wire-protocol.md "Transport" (subject grammar, node SANs, P-256/SHA-256
/// certificates issued by the deployment CA) and the PKI contract of `CertificateAuthority`.
final class CertificateAuthorityTests: XCTestCase {
    private var fixture: PKIFixture!

    override func setUpWithError() throws {
        fixture = try PKIFixture()
    }

    override func tearDown() {
        fixture.cleanUp()
    }

    private func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.posixPermissions] as! NSNumber).intValue & 0o777
    }

    /// Rule: private keys are readable by their owner only (mode 0600); certificates are 0644.
    func testKeyFilesHaveMode0600() throws {
        XCTAssertEqual(try mode(fixture.caDirectory + "/ca.key"), 0o600)
        XCTAssertEqual(try mode(fixture.caDirectory + "/ca.crt"), 0o644)
        let configuration = try fixture.issue("node-1", role: .node)
        XCTAssertEqual(try mode(configuration.privateKeyPath), 0o600)
        XCTAssertEqual(try mode(configuration.certificatePath), 0o644)
        let keyPEM = try String(contentsOfFile: configuration.privateKeyPath, encoding: .utf8)
        XCTAssertTrue(keyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM expected")
    }

    /// Rule: the CA key is never overwritten.
    func testInitializeRefusesExistingCAKey() throws {
        let before = try Data(contentsOf: URL(fileURLWithPath: fixture.caDirectory + "/ca.key"))
        XCTAssertThrowsError(try CertificateAuthority.initialize(outDirectory: fixture.caDirectory, commonName: "Other")) { error in
            guard case PKIError.fileExists = error else { return XCTFail("unexpected \(error)") }
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: fixture.caDirectory + "/ca.key")), before)
    }

    /// Rule: subject = CN=name / OU=role [/L=district] / O=GridLedger; serial is lower-case hex;
    /// ca.crt is copied next to the issued pair.
    func testIssuedIdentity() throws {
        let issued = try CertificateAuthority.issue(
            caDirectory: fixture.caDirectory, role: .collector, name: "meter_7.a", district: "north-3",
            outDirectory: fixture.root + "/out"
        )
        let identity = try XCTUnwrap(issued.identity)
        XCTAssertEqual(identity.name, "meter_7.a")
        XCTAssertEqual(identity.role, .collector)
        XCTAssertEqual(identity.district, "north-3")
        XCTAssertFalse(identity.serial.isEmpty)
        XCTAssertEqual(identity.serial, identity.serial.lowercased())
        XCTAssertTrue(identity.serial.allSatisfy(\.isHexDigit))
        XCTAssertLessThanOrEqual(identity.serial.count, 32, "128-bit serial")
        XCTAssertTrue(FileManager.default.fileExists(atPath: fixture.root + "/out/ca.crt"))
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: fixture.root + "/out/ca.crt")),
            try Data(contentsOf: URL(fileURLWithPath: fixture.caDirectory + "/ca.crt"))
        )
        let pem = Array(try Data(contentsOf: URL(fileURLWithPath: issued.certificatePath)))
        XCTAssertEqual(try PeerIdentity(certificatePEM: pem), identity)

        let withoutDistrict = try CertificateAuthority.issue(
            caDirectory: fixture.caDirectory, role: .bank, name: "bank-1", outDirectory: fixture.root + "/out"
        )
        XCTAssertNil(withoutDistrict.identity?.district)
        XCTAssertNotEqual(withoutDistrict.serial, identity.serial)
    }

    /// Rule: names and districts are 1…64 characters of [A-Za-z0-9._-].
    func testNameValidation() throws {
        let bad = ["", "has space", "slash/", "x" + String(repeating: "y", count: 64), "ü", "..", "comma,"]
        for name in bad {
            XCTAssertThrowsError(try CertificateAuthority.issue(
                caDirectory: fixture.caDirectory, role: .node, name: name, outDirectory: fixture.root + "/bad"
            ), "name \"\(name)\"") { error in
                guard case PKIError.invalidName = error else { return XCTFail("unexpected \(error)") }
                XCTAssertTrue(String(describing: error).contains("invalid name"))
            }
        }
        XCTAssertThrowsError(try CertificateAuthority.issue(
            caDirectory: fixture.caDirectory, role: .node, name: "ok", district: "no good", outDirectory: fixture.root + "/bad"
        ))
        XCTAssertThrowsError(try CertificateAuthority.issue(
            caDirectory: fixture.caDirectory, role: .node, name: "ok", subjectAltNames: ["DNS:a,IP:1.2.3.4"],
            outDirectory: fixture.root + "/bad"
        )) { error in
            guard case PKIError.invalidSubjectAltName = error else { return XCTFail("unexpected \(error)") }
        }
        XCTAssertThrowsError(try CertificateAuthority.issue(
            caDirectory: fixture.caDirectory, role: .node, name: "ok", days: 0, outDirectory: fixture.root + "/bad"
        ))
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.root + "/bad/ok.key"), "nothing written on invalid input")
    }

    /// Rule: a different CA's ca.crt in the output directory is a conflict, not silently kept.
    func testConflictingCACertificateInOutputDirectory() throws {
        let other = try PKIFixture(caName: "Other CA")
        defer { other.cleanUp() }
        let shared = fixture.root + "/shared"
        try CertificateAuthority.issue(caDirectory: fixture.caDirectory, role: .ops, name: "a", outDirectory: shared)
        XCTAssertThrowsError(try CertificateAuthority.issue(caDirectory: other.caDirectory, role: .ops, name: "b", outDirectory: shared)) { error in
            guard case PKIError.conflictingFile = error else { return XCTFail("unexpected \(error)") }
        }
    }

    /// Rule: an OU that is not a `Role` is not an identity (checked through the loader's error).
    func testCACertificateIsNotAPartyIdentity() throws {
        let pem = Array(try Data(contentsOf: URL(fileURLWithPath: fixture.caDirectory + "/ca.crt")))
        XCTAssertThrowsError(try PeerIdentity(certificatePEM: pem)) { error in
            guard case PKIError.invalidIdentity = error else { return XCTFail("unexpected \(error)") }
        }
        XCTAssertThrowsError(try PeerIdentity(certificatePEM: Array("not a certificate".utf8))) { error in
            XCTAssertTrue(String(describing: error).contains("no readable PEM certificate"), "\(error)")
        }
    }

    /// Rule: transactions are signed with ECDSA P-256 / SHA-256 (DER signatures); a tampered
    /// signature or message does not verify.
    func testSignVerifyRoundTripAndTampering() throws {
        let configuration = try fixture.issue("signer", role: .marketing, district: "d1")
        let pair = try CertificateKeyPair(certificatePath: configuration.certificatePath, privateKeyPath: configuration.privateKeyPath)
        XCTAssertEqual(pair.identity.name, "signer")
        let message = Array("transfer 12.5 kWh from meter-1 to meter-2".utf8)
        let signature = try pair.sign(message)
        XCTAssertEqual(signature.first, 0x30, "DER SEQUENCE")
        XCTAssertLessThanOrEqual(signature.count, 72)
        let pem = try pair.certificatePEM()
        XCTAssertTrue(try CertificateKeyPair.verify(signature: signature, data: message, certificatePEM: pem))
        XCTAssertTrue(try CertificateKeyPair.verify(signature: signature, data: message, certificateDER: pair.certificateDER))

        var tamperedSignature = signature
        tamperedSignature[tamperedSignature.count - 1] ^= 0x01
        XCTAssertFalse(try CertificateKeyPair.verify(signature: tamperedSignature, data: message, certificatePEM: pem))
        var tamperedMessage = message
        tamperedMessage[0] ^= 0x20
        XCTAssertFalse(try CertificateKeyPair.verify(signature: signature, data: tamperedMessage, certificatePEM: pem))
        XCTAssertFalse(try CertificateKeyPair.verify(signature: [], data: message, certificatePEM: pem))
        XCTAssertFalse(try CertificateKeyPair.verify(signature: Array(repeating: 0x30, count: 80), data: message, certificatePEM: pem))

        let other = try fixture.issue("other-signer", role: .marketing)
        let otherPair = try CertificateKeyPair(certificatePath: other.certificatePath, privateKeyPath: other.privateKeyPath)
        XCTAssertFalse(try CertificateKeyPair.verify(signature: signature, data: message, certificateDER: otherPair.certificateDER))

        XCTAssertThrowsError(try CertificateKeyPair(certificatePath: configuration.certificatePath, privateKeyPath: other.privateKeyPath)) { error in
            guard case PKIError.keyMismatch = error else { return XCTFail("unexpected \(error)") }
        }
    }
}
