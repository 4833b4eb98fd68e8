internal import COpenSSL

/// Owns one OpenSSL `EVP_PKEY*` (a private key, or a public key taken from a certificate).
///
/// Thread safety: immutable after init; OpenSSL 3 allows concurrent read-only use of a key
/// (signing creates its own per-call context), so instances may be shared between threads.
/// Invariant: `pointer` is non-null and freed exactly once, in `deinit`.
final class OpenSSLKey: @unchecked Sendable {
    let pointer: OpaquePointer

    /// Takes ownership of `pointer`.
    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        EVP_PKEY_free(pointer)
    }

    /// A fresh ECDSA key on NIST P-256 (prime256v1) from OpenSSL's default random generator.
    static func generateP256() throws -> OpenSSLKey {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else {
            throw PKIError.fromQueue("EVP_PKEY_CTX_new_from_name(EC)")
        }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) > 0 else { throw PKIError.fromQueue("EVP_PKEY_keygen_init") }
        guard EVP_PKEY_CTX_set_group_name(context, "P-256") > 0 else {
            throw PKIError.fromQueue("EVP_PKEY_CTX_set_group_name(P-256)")
        }
        var key: OpaquePointer?
        guard EVP_PKEY_generate(context, &key) > 0, let key else { throw PKIError.fromQueue("EVP_PKEY_generate") }
        return OpenSSLKey(taking: key)
    }

    /// Reads an unencrypted PEM private key (PKCS#8 or traditional) from `path`.
    static func load(path: String) throws -> OpenSSLKey {
        let pem = try FileIO.readFile(path)
        return try MemoryBIO.withReadable(pem) { (bio) throws -> OpenSSLKey in
            guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else {
                throw PKIError.unreadablePEM(path: path, what: "private key", openSSL: OpenSSLErrorQueue.drainDetailed())
            }
            return OpenSSLKey(taking: key)
        }
    }

    /// The key as unencrypted PEM PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
    func pkcs8PEM() throws -> [UInt8] {
        try MemoryBIO.collect("PEM_write_bio_PrivateKey") { bio in
            PEM_write_bio_PrivateKey(bio, pointer, nil, nil, 0, nil, nil) == 1
        }
    }

    /// Whether this is an EC key on P-256, the only curve GridLedger uses.
    var isP256: Bool {
        guard EVP_PKEY_get_base_id(pointer) == EVP_PKEY_EC else { return false }
        var name = [CChar](repeating: 0, count: 64)
        var length = 0
        guard EVP_PKEY_get_group_name(pointer, &name, name.count, &length) == 1 else {
            OpenSSLErrorQueue.clear()
            return false
        }
        let group = String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return group == "prime256v1" || group == "P-256"
    }
}
