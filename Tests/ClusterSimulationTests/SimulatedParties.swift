import Foundation
import GridProto
import GridClient
import GridCrypto
import Identity

@testable import Chain
@testable import Node

/// The deployment every simulated cluster shares: a CA, the district's collector, its nodes'
/// certificate (which carries the downlink), the main chain's marketing and admin, and the
/// verifier replicas check signatures with. Made once per test process (key generation and
/// certificate issuance cost milliseconds, a seed should not pay them); certificates are
/// backdated 30 days, so the simulated clock (`SimulatedParties.epochMs`) lies inside them.
final class SimulatedParties: Sendable {
    static let district = "d1"
    static let mainChain = "main"
    /// Simulated time 0: 2026-11-20T00:00:00Z.
    static let epochMs: Int64 = 1_795_132_800_000

    let directory: String
    let caPath: String
    let collector: TransactionSigner
    let node: TransactionSigner
    let marketing: TransactionSigner
    let verifier: SignerVerifier

    static let shared: SimulatedParties = {
        do {
            return try SimulatedParties()
        } catch {
            fatalError("cannot set up the simulated deployment's PKI: \(error)")
        }
    }()

    private init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gridledger-sim-pki-\(UUID().uuidString)").path
        self.directory = directory
        _ = try PKI.initializeCA(outDirectory: directory + "/ca", commonName: "simulation CA")
        caPath = directory + "/ca/ca.crt"
        func issue(_ role: Role, _ name: String, district: String?) throws -> TransactionSigner {
            let issued = try PKI.issue(caDirectory: directory + "/ca", role: role, name: name, district: district,
                                       days: 3650, backdateDays: 30, outDirectory: directory + "/" + name)
            return try TransactionSigner(certificatePath: issued.certificatePath, keyPath: issued.privateKeyPath)
        }
        collector = try issue(.collector, "collector-d1", district: Self.district)
        node = try issue(.node, "node-d1", district: Self.district)
        marketing = try issue(.marketing, "marketing", district: nil)
        verifier = try SignerVerifier(caPath: caPath)
    }
}
