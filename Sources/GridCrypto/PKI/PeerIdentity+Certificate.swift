internal import COpenSSL
internal import CShims
public import Identity

extension PeerIdentity {
    /// The identity a PEM certificate names. Does not verify the certificate's signature,
    /// chain or validity: callers that authenticate a party must verify first (the TLS layer
    /// does).
    ///
    /// - Throws: `PKIError.unreadablePEM` or `PKIError.invalidIdentity` (see `init(x509:)`).
    public init(certificatePEM: [UInt8]) throws {
        let certificate = try OpenSSLCertificate.parse(pem: certificatePEM, source: "certificate")
        try self.init(x509: certificate.pointer)
    }

    /// The identity a DER certificate names; the same contract as `init(certificatePEM:)`.
    public init(certificateDER: [UInt8]) throws {
        let certificate = try OpenSSLCertificate.parse(der: certificateDER)
        try self.init(x509: certificate.pointer)
    }

    /// `sha256:HEX`, the form operators pin a member's key with (`gridnode ca issue` prints
    /// it; `--member ID=NAME@HOST:PORT#sha256:HEX`).
    public var publicKeyPin: String { "sha256:" + publicKeySHA256 }

    /// Reads the party from an OpenSSL certificate (borrowed; not freed here).
    ///
    /// Rules: exactly one CN and one OU; CN obeys `PartyNameRules`; OU is the raw value of a
    /// `Role`; at most one L, obeying `PartyNameRules`; the serial is rendered as lower-case
    /// hex. Any break throws `PKIError.invalidIdentity`.
    package init(x509: OpaquePointer) throws {
        guard let subject = X509_get_subject_name(x509) else {
            throw PKIError.invalidIdentity("certificate has no subject")
        }
        guard let name = try Self.attribute(subject, nid: NID_commonName, label: "CN") else {
            throw PKIError.invalidIdentity("subject has no CN")
        }
        do { try PartyNameRules.validate(name, field: "CN") } catch { throw PKIError.invalidIdentity(String(describing: error)) }
        guard let unit = try Self.attribute(subject, nid: NID_organizationalUnitName, label: "OU") else {
            throw PKIError.invalidIdentity("subject has no OU (role)")
        }
        guard let role = Role(rawValue: unit) else {
            throw PKIError.invalidIdentity("OU \"\(unit)\" is not a role (expected one of \(Role.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let district = try Self.attribute(subject, nid: NID_localityName, label: "L")
        if let district {
            do { try PartyNameRules.validate(district, field: "L") } catch { throw PKIError.invalidIdentity(String(describing: error)) }
        }
        let serial = try OpenSSLCertificate.serialHex(of: x509)
        let key = try OpenSSLCertificate.publicKeySHA256(of: x509)
        self.init(name: name, role: role, district: district, serial: serial, publicKeySHA256: key)
    }

    /// The single value of attribute `nid` in `subject` as UTF-8, nil when absent.
    private static func attribute(_ subject: OpaquePointer, nid: Int32, label: String) throws -> String? {
        let index = X509_NAME_get_index_by_NID(subject, nid, -1)
        guard index >= 0 else { return nil }
        guard X509_NAME_get_index_by_NID(subject, nid, index) < 0 else {
            throw PKIError.invalidIdentity("subject has more than one \(label)")
        }
        guard let entry = X509_NAME_get_entry(subject, index), let data = X509_NAME_ENTRY_get_data(entry) else {
            throw PKIError.invalidIdentity("unreadable \(label)")
        }
        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, data)
        guard length >= 0, let utf8 else {
            OpenSSLErrorQueue.clear()
            throw PKIError.invalidIdentity("\(label) is not a valid string")
        }
        defer { gl_OPENSSL_free(utf8) }
        let bytes = UnsafeBufferPointer(start: utf8, count: Int(length))
        guard !bytes.contains(0) else { throw PKIError.invalidIdentity("\(label) contains a NUL byte") }
        return String(decoding: bytes, as: UTF8.self)
    }
}
