internal import COpenSSL
import Foundation
import Synchronization
import Identity

/// Checks who signed a transaction: the signer certificate must chain to the deployment CA
/// and be valid now, and the signature must verify with its key.
///
/// Verified certificates are cached by the SHA-256 of their DER (at most `cacheLimit`
/// entries; the cache is emptied when full), so a collector's certificate is parsed and
/// chain-checked once, and each later transaction costs one ECDSA verification. Validity
/// dates are re-checked on every use.
///
/// Thread safety: safe from any thread; the cache is behind a mutex, the `X509_STORE` is
/// read-only after init.
public final class SignerVerifier: @unchecked Sendable {
    /// Why a signer was refused.
    public enum Failure: Error, CustomStringConvertible, Equatable, Sendable {
        /// The certificate bytes do not parse or name no GridLedger party.
        case malformedCertificate(String)
        /// The certificate does not chain to the CA, or is expired / not yet valid.
        case untrustedCertificate(String)
        /// The signature does not verify with the certificate's key.
        case badSignature

        public var description: String {
            switch self {
            case .malformedCertificate(let r): return "malformed signer certificate: \(r)"
            case .untrustedCertificate(let r): return "untrusted signer certificate: \(r)"
            case .badSignature: return "signature does not verify with the signer certificate"
            }
        }
    }

    private struct Entry {
        let identity: PeerIdentity
        let key: OpenSSLKey
        let notBefore: time_t
        let notAfter: time_t
    }

    private let store: OpaquePointer
    /// The CA's expiry (OpenSSL's chain check runs without a clock; see `load`). Its start
    /// is not checked: a party certificate's own validity window bounds the time anyway.
    private let caNotAfter: time_t
    private let cache = Mutex<[[UInt8]: Entry]>([:])
    private let cacheLimit: Int

    /// - Parameter caPath: PEM file of the deployment CA certificate.
    public init(caPath: String, cacheLimit: Int = 10_000) throws {
        let ca = try OpenSSLCertificate.load(path: caPath)
        guard let store = X509_STORE_new() else { throw PKIError.fromQueue("X509_STORE_new") }
        guard X509_STORE_add_cert(store, ca.pointer) == 1 else {
            X509_STORE_free(store)
            throw PKIError.fromQueue("X509_STORE_add_cert")
        }
        self.store = store
        self.cacheLimit = cacheLimit
        caNotAfter = Self.time(X509_getm_notAfter(ca.pointer))
    }

    deinit {
        X509_STORE_free(store)
    }

    /// Verifies `signature` over `data` by the holder of `certificateDER`; returns the
    /// signer's identity. `now` is seconds since the epoch (injected for tests).
    public func verify(certificateDER: [UInt8], signature: [UInt8], data: [UInt8], now: Int64 = Int64(Date().timeIntervalSince1970)) throws(Failure) -> PeerIdentity {
        let entry = try validEntry(certificateDER, now: now)
        guard let context = EVP_MD_CTX_new() else { throw .badSignature }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, EVP_sha256(), nil, entry.key.pointer) == 1 else {
            OpenSSLErrorQueue.clear()
            throw .badSignature
        }
        let result = EVP_DigestVerify(context, signature, signature.count, data, data.count)
        OpenSSLErrorQueue.clear()
        guard result == 1 else { throw .badSignature }
        return entry.identity
    }

    /// Checks that `certificateDER` chains to the CA and is valid at `now`; returns its
    /// identity (for certificates listed in transactions, such as a district's members).
    public func identify(certificateDER: [UInt8], now: Int64 = Int64(Date().timeIntervalSince1970)) throws(Failure) -> PeerIdentity {
        try validEntry(certificateDER, now: now).identity
    }

    /// The parsed, CA-verified certificate (cached by fingerprint), checked for validity at `now`.
    private func validEntry(_ certificateDER: [UInt8], now: Int64) throws(Failure) -> Entry {
        let fingerprint = Digest.sha256(certificateDER)
        let entry: Entry
        if let cached = cache.withLock({ $0[fingerprint] }) {
            entry = cached
        } else {
            entry = try load(certificateDER)
            cache.withLock { c in
                if c.count >= cacheLimit { c.removeAll() }
                c[fingerprint] = entry
            }
        }
        guard now >= Int64(entry.notBefore), now <= Int64(entry.notAfter) else {
            throw .untrustedCertificate(now > Int64(entry.notAfter) ? "certificate has expired" : "certificate is not yet valid")
        }
        guard now <= Int64(caNotAfter) else {
            throw .untrustedCertificate("the CA certificate had expired at that time")
        }
        return entry
    }

    private func load(_ der: [UInt8]) throws(Failure) -> Entry {
        let certificate: OpenSSLCertificate
        let identity: PeerIdentity
        let key: OpenSSLKey
        do {
            certificate = try OpenSSLCertificate.parse(der: der)
            identity = try PeerIdentity(x509: certificate.pointer)
            key = try certificate.publicKey()
        } catch {
            OpenSSLErrorQueue.clear()
            throw .malformedCertificate("\(error)")
        }
        guard key.isP256 else { throw .malformedCertificate("key is not EC P-256") }
        guard let context = X509_STORE_CTX_new() else { throw .untrustedCertificate("out of memory") }
        defer { X509_STORE_CTX_free(context) }
        guard X509_STORE_CTX_init(context, store, certificate.pointer, nil) == 1 else {
            OpenSSLErrorQueue.clear()
            throw .untrustedCertificate("cannot set up verification")
        }
        // The chain is checked here once per certificate and cached; validity in time is
        // checked per use against the caller's `now` (a block's time when re-verifying a
        // committed block), so OpenSSL must not check it against today's clock.
        X509_STORE_CTX_set_flags(context, UInt(X509_V_FLAG_NO_CHECK_TIME))
        if X509_verify_cert(context) != 1 {
            let code = X509_STORE_CTX_get_error(context)
            let reason = String(cString: X509_verify_cert_error_string(Int(code)))
            OpenSSLErrorQueue.clear()
            throw .untrustedCertificate(reason)
        }
        let notBefore = Self.time(X509_getm_notBefore(certificate.pointer))
        let notAfter = Self.time(X509_getm_notAfter(certificate.pointer))
        return Entry(identity: identity, key: key, notBefore: notBefore, notAfter: notAfter)
    }

    /// An `ASN1_TIME` as seconds since the epoch.
    private static func time(_ asn1: UnsafePointer<ASN1_TIME>?) -> time_t {
        var tm = tm()
        guard let asn1, ASN1_TIME_to_tm(asn1, &tm) == 1 else { return 0 }
        return timegm(&tm)
    }
}
