internal import COpenSSL
internal import CShims
import Foundation

/// Owns one OpenSSL `X509*`.
///
/// Thread safety: treated as immutable after init (no method modifies the certificate), so
/// instances may be shared between threads.
/// Invariant: `pointer` is non-null and freed exactly once, in `deinit`.
package final class OpenSSLCertificate: @unchecked Sendable {
    package let pointer: OpaquePointer

    /// Takes ownership of `pointer` (one reference).
    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        X509_free(pointer)
    }

    /// Parses the first PEM certificate in `pem`; `source` names it in errors.
    static func parse(pem: [UInt8], source: String) throws -> OpenSSLCertificate {
        try MemoryBIO.withReadable(pem) { (bio) throws -> OpenSSLCertificate in
            guard let x509 = PEM_read_bio_X509(bio, nil, nil, nil) else {
                throw PKIError.unreadablePEM(path: source, what: "certificate", openSSL: OpenSSLErrorQueue.drainDetailed())
            }
            return OpenSSLCertificate(taking: x509)
        }
    }

    /// Parses one DER certificate.
    static func parse(der: [UInt8]) throws -> OpenSSLCertificate {
        let result: Result<OpenSSLCertificate, any Error> = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            guard let x509 = d2i_X509(nil, &cursor, buffer.count) else {
                return .failure(PKIError.openSSL(operation: "d2i_X509", openSSL: OpenSSLErrorQueue.drainDetailed()))
            }
            return .success(OpenSSLCertificate(taking: x509))
        }
        return try result.get()
    }

    /// Reads the first PEM certificate in the file at `path`.
    package static func load(path: String) throws -> OpenSSLCertificate {
        try parse(pem: try FileIO.readFile(path), source: path)
    }

    /// The end of the validity period, Unix seconds (0 when OpenSSL cannot read it).
    package var notAfterUnixSeconds: Int64 {
        var tm = tm()
        guard let asn1 = X509_getm_notAfter(pointer), ASN1_TIME_to_tm(asn1, &tm) == 1 else { return 0 }
        return Int64(timegm(&tm))
    }

    /// The certificate as PEM (`-----BEGIN CERTIFICATE-----`).
    func pem() throws -> [UInt8] {
        try MemoryBIO.collect("PEM_write_bio_X509") { bio in PEM_write_bio_X509(bio, pointer) == 1 }
    }

    /// The certificate as DER.
    func der() throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509(pointer, &out)
        guard length > 0, let out else { throw PKIError.fromQueue("i2d_X509") }
        defer { gl_OPENSSL_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: Int(length)))
    }

    /// The subject public key, owned by the caller.
    func publicKey() throws -> OpenSSLKey {
        guard let key = X509_get_pubkey(pointer) else { throw PKIError.fromQueue("X509_get_pubkey") }
        return OpenSSLKey(taking: key)
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo of `x509` (borrowed), lower-case hex.
    static func publicKeySHA256(of x509: OpaquePointer) throws -> String {
        guard let key = X509_get0_pubkey(x509) else { throw PKIError.fromQueue("X509_get0_pubkey") }
        var out: UnsafeMutablePointer<UInt8>?
        let length = i2d_PUBKEY(key, &out)
        guard length > 0, let out else { throw PKIError.fromQueue("i2d_PUBKEY") }
        defer { gl_OPENSSL_free(out) }
        return HexEncoding.lowercase(Digest.sha256(Array(UnsafeBufferPointer(start: out, count: Int(length)))))
    }

    /// The serial number as lower-case hex; see `serialHex(of:)`.
    func serialHex() throws -> String {
        try Self.serialHex(of: pointer)
    }

    /// The serial number of `x509` (borrowed) as lower-case hex of its big-endian magnitude,
    /// two digits per byte, leading zero bytes removed ("00" for zero).
    static func serialHex(of x509: OpaquePointer) throws -> String {
        guard let serial = X509_get0_serialNumber(x509), let bignum = ASN1_INTEGER_to_BN(serial, nil) else {
            throw PKIError.fromQueue("ASN1_INTEGER_to_BN")
        }
        defer { BN_free(bignum) }
        let count = (Int(BN_num_bits(bignum)) + 7) / 8
        guard count > 0 else { return "00" }
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = Int(BN_bn2bin(bignum, buffer.baseAddress))
        }
        return HexEncoding.lowercase(bytes)
    }
}
