internal import COpenSSL
public import Identity

/// A party's certificate and private key, loaded from PEM files, for signing application data
/// (transactions) with ECDSA P-256 / SHA-256.
///
/// Signature format: DER-encoded ECDSA-Sig-Value (`SEQUENCE { r INTEGER, s INTEGER }`) over
/// SHA-256 of the data, as produced by OpenSSL's `EVP_DigestSign`.
///
/// Thread safety: immutable after init; `sign` may be called from any number of threads at
/// once (each call uses its own OpenSSL digest context).
public final class CertificateKeyPair: @unchecked Sendable {
    /// The identity the certificate names.
    public let identity: PeerIdentity
    /// The certificate, DER.
    public let certificateDER: [UInt8]

    private let certificate: OpenSSLCertificate
    private let key: OpenSSLKey

    /// Loads the first certificate of `certificatePath` and the key of `privateKeyPath`.
    ///
    /// - Throws: `PKIError.unreadablePEM`, `.unsupportedKey` unless the key is EC P-256,
    ///   `.keyMismatch` unless the key belongs to the certificate, `.invalidIdentity` when the
    ///   subject names no GridLedger party.
    public init(certificatePath: String, privateKeyPath: String) throws {
        let certificate = try OpenSSLCertificate.load(path: certificatePath)
        let key = try OpenSSLKey.load(path: privateKeyPath)
        guard key.isP256 else { throw PKIError.unsupportedKey("\(privateKeyPath) is not an EC P-256 key") }
        guard X509_check_private_key(certificate.pointer, key.pointer) == 1 else {
            OpenSSLErrorQueue.clear()
            throw PKIError.keyMismatch(certificatePath: certificatePath, privateKeyPath: privateKeyPath)
        }
        self.identity = try PeerIdentity(x509: certificate.pointer)
        self.certificateDER = try certificate.der()
        self.certificate = certificate
        self.key = key
    }

    /// The certificate, PEM.
    public func certificatePEM() throws -> [UInt8] {
        try certificate.pem()
    }

    /// Signs `bytes`: ECDSA P-256 over SHA-256, DER signature (at most 72 bytes). Randomized:
    /// two signatures of the same data differ.
    public func sign(_ bytes: [UInt8]) throws -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw PKIError.fromQueue("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestSignInit(context, nil, EVP_sha256(), nil, key.pointer) == 1 else {
            throw PKIError.fromQueue("EVP_DigestSignInit")
        }
        var length = 0
        guard EVP_DigestSign(context, nil, &length, bytes, bytes.count) == 1 else {
            throw PKIError.fromQueue("EVP_DigestSign (size)")
        }
        var signature = [UInt8](repeating: 0, count: length)
        guard EVP_DigestSign(context, &signature, &length, bytes, bytes.count) == 1 else {
            throw PKIError.fromQueue("EVP_DigestSign")
        }
        signature.removeSubrange(length...)
        return signature
    }

    /// Whether `signature` is a valid ECDSA P-256 / SHA-256 signature of `data` by the key of
    /// the PEM certificate `certificatePEM`. Checks only the signature: the caller must verify
    /// the certificate itself (chain, validity, identity) separately.
    ///
    /// - Returns: false for a wrong or malformed signature.
    /// - Throws: `PKIError` when the certificate is unreadable or its key is not EC P-256.
    public static func verify(signature: [UInt8], data: [UInt8], certificatePEM: [UInt8]) throws -> Bool {
        let certificate = try OpenSSLCertificate.parse(pem: certificatePEM, source: "certificate")
        return try verify(signature: signature, data: data, certificate: certificate)
    }

    /// Like `verify(signature:data:certificatePEM:)` for a DER certificate.
    public static func verify(signature: [UInt8], data: [UInt8], certificateDER: [UInt8]) throws -> Bool {
        let certificate = try OpenSSLCertificate.parse(der: certificateDER)
        return try verify(signature: signature, data: data, certificate: certificate)
    }

    private static func verify(signature: [UInt8], data: [UInt8], certificate: OpenSSLCertificate) throws -> Bool {
        let publicKey = try certificate.publicKey()
        guard publicKey.isP256 else { throw PKIError.unsupportedKey("certificate key is not EC P-256") }
        guard let context = EVP_MD_CTX_new() else { throw PKIError.fromQueue("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, EVP_sha256(), nil, publicKey.pointer) == 1 else {
            throw PKIError.fromQueue("EVP_DigestVerifyInit")
        }
        let result = EVP_DigestVerify(context, signature, signature.count, data, data.count)
        // 0 = mismatch, < 0 = malformed signature: both leave errors queued that mean nothing later.
        OpenSSLErrorQueue.clear()
        return result == 1
    }
}
