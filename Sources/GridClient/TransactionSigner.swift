#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GridCrypto
import GridProto
import GridTLS
import Identity

/// Signs transaction payloads with a party's certificate key (ECDSA P-256 over SHA-256),
/// as the C and Python clients do (Docs/wire-protocol.md, "Submitting").
///
/// Thread safety: immutable after `init`; `sign` may be called from any task.
public struct TransactionSigner: Sendable {
    private let keyPair: CertificateKeyPair

    /// Loads the party's certificate and private key (PEM files).
    ///
    /// - Throws: `PKIError` when a file cannot be read, does not parse, or the key does not
    ///   belong to the certificate.
    public init(certificatePath: String, keyPath: String) throws {
        keyPair = try CertificateKeyPair(certificatePath: certificatePath, privateKeyPath: keyPath)
    }

    /// Who signs: the identity in the certificate.
    public var identity: PeerIdentity { keyPair.identity }

    /// `payload` serialized, signed, and carrying this signer's certificate (DER). The bytes
    /// signed are exactly the bytes sent, so the transaction id is `transactionID(_:)` of it.
    public func sign(_ payload: TxPayload) throws -> SignedTransaction {
        let bytes = payload.serializedBytes()
        return SignedTransaction(payload: bytes, signature: try keyPair.sign(bytes), signerCertificate: keyPair.certificateDER)
    }

    /// A reading-batch payload for `chainID`, from this signer's district.
    public func readingsPayload(chainID: String, batchID: String, readings: [Reading], createdMs: Int64? = nil) -> TxPayload {
        payload(chainID: chainID, body: .readings(ReadingBatch(district: identity.district ?? "", batchId: batchID, readings: readings)), createdMs: createdMs)
    }

    /// A payload of any kind for `chainID` (a registration, an anchor, a parameter ...), with
    /// a fresh random 8-byte nonce (hex) and `createdMs` (default: now, Unix milliseconds).
    public func payload(chainID: String, body: TxPayload.Body, createdMs: Int64? = nil) -> TxPayload {
        var nonce = [UInt8](repeating: 0, count: 8)
        for i in nonce.indices { nonce[i] = UInt8.random(in: 0...255) }
        return TxPayload(chainId: chainID, createdMs: createdMs ?? Self.nowMs(), nonce: Self.hex(nonce), body: body)
    }

    /// The transaction id of a signed transaction: SHA-256 of its payload.
    public static func transactionID(_ transaction: SignedTransaction) -> [UInt8] {
        Digest.sha256(transaction.payload)
    }

    /// The wall clock in Unix milliseconds.
    private static func nowMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0x0f)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
