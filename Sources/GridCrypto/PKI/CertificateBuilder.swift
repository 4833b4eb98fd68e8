internal import COpenSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Assembles and signs one X.509 v3 certificate with OpenSSL's C API.
///
/// Extensions are given in OpenSSL's extension configuration syntax (the `value` of an
/// `x509v3_config` line, e.g. `critical,CA:TRUE`) and added in order, after the public key,
/// so that `subjectKeyIdentifier = hash` and `authorityKeyIdentifier = keyid:always` resolve.
struct CertificateBuilder {
    /// Subject attributes in order, e.g. `(NID_commonName, "node-1")`.
    var subject: [(nid: Int32, value: String)]
    /// Validity, seconds since the epoch (UTC), inclusive bounds.
    var notBefore: Int
    var notAfter: Int
    /// Extensions as (NID, configuration value).
    var extensions: [(nid: Int32, value: String)]

    /// Builds the certificate for `publicKey`, signed with SHA-256 by `signingKey`.
    ///
    /// - Parameter issuer: the issuing CA certificate; nil makes the certificate self-signed
    ///   (issuer name = subject, and `signingKey` must be the key of `publicKey`).
    func build(publicKey: OpenSSLKey, issuer: OpenSSLCertificate?, signingKey: OpenSSLKey) throws -> OpenSSLCertificate {
        guard let x509 = X509_new() else { throw PKIError.fromQueue("X509_new") }
        let certificate = OpenSSLCertificate(taking: x509)

        guard X509_set_version(x509, 2) == 1 else { throw PKIError.fromQueue("X509_set_version") }
        try setRandomSerial(x509)

        guard let name = X509_NAME_new() else { throw PKIError.fromQueue("X509_NAME_new") }
        defer { X509_NAME_free(name) }
        for attribute in subject {
            let bytes = Array(attribute.value.utf8)
            let added = bytes.withUnsafeBufferPointer { buffer in
                X509_NAME_add_entry_by_NID(name, attribute.nid, MBSTRING_UTF8, buffer.baseAddress, Int32(buffer.count), -1, 0)
            }
            guard added == 1 else { throw PKIError.fromQueue("X509_NAME_add_entry_by_NID(\(attribute.nid))") }
        }
        guard X509_set_subject_name(x509, name) == 1 else { throw PKIError.fromQueue("X509_set_subject_name") }
        let issuerName = issuer.map { X509_get_subject_name($0.pointer) } ?? name
        guard X509_set_issuer_name(x509, issuerName) == 1 else { throw PKIError.fromQueue("X509_set_issuer_name") }

        guard ASN1_TIME_set(X509_getm_notBefore(x509), time_t(notBefore)) != nil,
              ASN1_TIME_set(X509_getm_notAfter(x509), time_t(notAfter)) != nil
        else { throw PKIError.fromQueue("ASN1_TIME_set") }

        guard X509_set_pubkey(x509, publicKey.pointer) == 1 else { throw PKIError.fromQueue("X509_set_pubkey") }

        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer?.pointer ?? x509, x509, nil, nil, 0)
        for item in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, item.nid, item.value) else {
                throw PKIError.fromQueue("X509V3_EXT_conf_nid(\(String(cString: OBJ_nid2sn(item.nid))) = \(item.value))")
            }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(x509, ext, -1) == 1 else { throw PKIError.fromQueue("X509_add_ext") }
        }

        guard X509_sign(x509, signingKey.pointer, EVP_sha256()) > 0 else { throw PKIError.fromQueue("X509_sign") }
        return certificate
    }

    /// Sets a uniformly random positive 128-bit serial number (RFC 5280 allows up to 20 octets).
    private func setRandomSerial(_ x509: OpaquePointer) throws {
        var random = [UInt8](repeating: 0, count: 16)
        repeat {
            guard RAND_bytes(&random, Int32(random.count)) == 1 else { throw PKIError.fromQueue("RAND_bytes") }
        } while random.allSatisfy { $0 == 0 }
        guard let bignum = BN_bin2bn(random, Int32(random.count), nil) else { throw PKIError.fromQueue("BN_bin2bn") }
        defer { BN_free(bignum) }
        guard let serial = X509_get_serialNumber(x509), BN_to_ASN1_INTEGER(bignum, serial) != nil else {
            throw PKIError.fromQueue("BN_to_ASN1_INTEGER")
        }
    }
}
