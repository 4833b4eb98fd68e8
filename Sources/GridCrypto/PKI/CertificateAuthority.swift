internal import COpenSSL
public import Identity

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The deployment certificate authority: creates the CA key pair and issues party
/// certificates, with OpenSSL's C API only.
///
/// Files (see Docs/wire-protocol.md, "Transport"):
/// ```
/// <ca dir>/ca.key        EC P-256 private key, PEM PKCS#8, mode 0600, never overwritten
/// <ca dir>/ca.crt        self-signed CA certificate, PEM, mode 0644
/// <out dir>/<name>.key   party private key, PEM PKCS#8, mode 0600
/// <out dir>/<name>.crt   party certificate signed by the CA, PEM, mode 0644
/// <out dir>/ca.crt       copy of the CA certificate (trust root for the party)
/// subject = "CN=" name "/OU=" role [ "/L=" district ] "/O=GridLedger"    (party)
/// subject = "CN=" commonName "/O=GridLedger"                             (CA)
/// ```
/// Durability: every file is written with `FileIO.writeFile` (fsynced temporary file moved into
/// place, directory fsynced), so a crash leaves either the complete new file or the previous one.
/// Private keys are created with mode 0600 and never exist with wider permissions.
///
/// Thread safety: the functions share no state; concurrent calls must use different output
/// file names.
public enum CertificateAuthority {
    /// The organisation attribute of every GridLedger subject.
    public static let organization = "GridLedger"
    /// File names inside a CA directory.
    public static let keyFileName = "ca.key"
    public static let certificateFileName = "ca.crt"

    /// Creates a deployment CA in `outDirectory` (created if missing): `ca.key` and a
    /// self-signed X.509 v3 `ca.crt` with basicConstraints critical CA:TRUE, keyUsage critical
    /// keyCertSign+cRLSign, a subjectKeyIdentifier and a random 128-bit serial. Validity starts
    /// now and lasts `days` days.
    ///
    /// - Throws: `PKIError.fileExists` when `ca.key` already exists (nothing is written then);
    ///   `PKIError.invalidValidity` unless 1 ≤ days ≤ 36500; `PKIError.invalidName` when
    ///   `commonName` is empty or longer than 64 bytes; file system and OpenSSL failures.
    @discardableResult
    public static func initialize(outDirectory: String, commonName: String, days: Int = 3650) throws -> IssuedCertificate {
        guard !commonName.isEmpty, commonName.utf8.count <= 64, !commonName.utf8.contains(0) else {
            throw PKIError.invalidName(field: "CA common name", value: commonName, reason: "must be 1 to 64 bytes without NUL")
        }
        try validateDays(days, backdateDays: 0)
        let keyPath = FileIO.join(outDirectory, keyFileName)
        let certificatePath = FileIO.join(outDirectory, certificateFileName)
        if FileIO.exists(keyPath) { throw PKIError.fileExists(path: keyPath) }
        try FileIO.createDirectory(outDirectory)

        let key = try OpenSSLKey.generateP256()
        let now = Int(time(nil))
        let builder = CertificateBuilder(
            subject: [(NID_commonName, commonName), (NID_organizationName, organization)],
            notBefore: now,
            notAfter: now + days * secondsPerDay,
            extensions: [
                (NID_basic_constraints, "critical,CA:TRUE"),
                (NID_key_usage, "critical,keyCertSign,cRLSign"),
                (NID_subject_key_identifier, "hash"),
            ]
        )
        let certificate = try builder.build(publicKey: key, issuer: nil, signingKey: key)
        try FileIO.writeFile(try key.pkcs8PEM(), to: keyPath, mode: 0o600, replacing: false)
        try FileIO.writeFile(try certificate.pem(), to: certificatePath, mode: 0o644, replacing: true)
        return IssuedCertificate(
            certificatePath: certificatePath, privateKeyPath: keyPath, caCertificatePath: certificatePath,
            identity: nil, serial: try certificate.serialHex()
        )
    }

    /// Issues a party certificate signed by the CA in `caDirectory`, writing `<name>.key`,
    /// `<name>.crt` and (when absent) a copy of `ca.crt` into `outDirectory` (created if missing).
    /// Existing `<name>.key`/`<name>.crt` are replaced.
    ///
    /// The certificate: X.509 v3, ECDSA P-256 / SHA-256, subject
    /// `CN=name, OU=role, [L=district,] O=GridLedger`, basicConstraints CA:FALSE, keyUsage
    /// critical digitalSignature, extendedKeyUsage serverAuth+clientAuth, subject and
    /// authority key identifiers, random 128-bit serial, validity
    /// [now − backdateDays, now − backdateDays + days] (in days). For `.node` the
    /// subjectAltName holds `DNS:<name>, DNS:localhost, IP:127.0.0.1` followed by
    /// `subjectAltNames`; for other roles only `subjectAltNames` (no extension when empty).
    ///
    /// - Parameters:
    ///   - subjectAltNames: entries as `DNS:<name>`, `IP:<address>`, a bare IP literal (IP) or a
    ///     bare name (DNS); duplicates are dropped.
    ///   - backdateDays: moves the whole validity window into the past (tests make expired
    ///     certificates with it); 0 ≤ backdateDays ≤ 36500.
    /// - Throws: `PKIError.invalidName` (name or district breaks `[A-Za-z0-9._-]{1,64}`),
    ///   `.invalidSubjectAltName`, `.invalidValidity` (days outside 1…36500), `.unreadablePEM`
    ///   or `.keyMismatch` for the CA files, `.conflictingFile` when `outDirectory` holds a different
    ///   `ca.crt`, and OpenSSL failures. Nothing is written when validation fails.
    @discardableResult
    public static func issue(
        caDirectory: String,
        role: Role,
        name: String,
        district: String? = nil,
        subjectAltNames: [String] = [],
        days: Int = 365,
        backdateDays: Int = 0,
        outDirectory: String
    ) throws -> IssuedCertificate {
        try PartyNameRules.validate(name, field: "name")
        if let district { try PartyNameRules.validate(district, field: "district") }
        try validateDays(days, backdateDays: backdateDays)
        var sans: [SubjectAltName] = role == .node ? [.dns(name), .dns("localhost"), .ip("127.0.0.1")] : []
        for text in subjectAltNames {
            let entry = try SubjectAltName(parsing: text)
            if !sans.contains(entry) { sans.append(entry) }
        }

        let caCertificatePath = FileIO.join(caDirectory, certificateFileName)
        let caKeyPath = FileIO.join(caDirectory, keyFileName)
        let caPEM = try FileIO.readFile(caCertificatePath)
        let caCertificate = try OpenSSLCertificate.parse(pem: caPEM, source: caCertificatePath)
        let caKey = try OpenSSLKey.load(path: caKeyPath)
        guard X509_check_private_key(caCertificate.pointer, caKey.pointer) == 1 else {
            OpenSSLErrorQueue.clear()
            throw PKIError.keyMismatch(certificatePath: caCertificatePath, privateKeyPath: caKeyPath)
        }

        try FileIO.createDirectory(outDirectory)
        let copiedCAPath = FileIO.join(outDirectory, certificateFileName)
        let copyCA: Bool
        if FileIO.exists(copiedCAPath) {
            guard try FileIO.readFile(copiedCAPath) == caPEM else {
                throw PKIError.conflictingFile(path: copiedCAPath, reason: "holds a different CA certificate than \(caCertificatePath)")
            }
            copyCA = false
        } else {
            copyCA = true
        }

        var subject: [(nid: Int32, value: String)] = [(NID_commonName, name), (NID_organizationalUnitName, role.rawValue)]
        if let district { subject.append((NID_localityName, district)) }
        subject.append((NID_organizationName, organization))
        var extensions: [(nid: Int32, value: String)] = [
            (NID_basic_constraints, "critical,CA:FALSE"),
            (NID_key_usage, "critical,digitalSignature"),
            (NID_ext_key_usage, "serverAuth,clientAuth"),
            (NID_subject_key_identifier, "hash"),
            (NID_authority_key_identifier, "keyid:always"),
        ]
        if !sans.isEmpty {
            extensions.append((NID_subject_alt_name, sans.map(\.configurationText).joined(separator: ",")))
        }
        let notBefore = Int(time(nil)) - backdateDays * secondsPerDay
        let builder = CertificateBuilder(
            subject: subject, notBefore: notBefore, notAfter: notBefore + days * secondsPerDay, extensions: extensions
        )
        let key = try OpenSSLKey.generateP256()
        let certificate = try builder.build(publicKey: key, issuer: caCertificate, signingKey: caKey)
        let identity = try PeerIdentity(x509: certificate.pointer)

        let keyPath = FileIO.join(outDirectory, name + ".key")
        let certificatePath = FileIO.join(outDirectory, name + ".crt")
        try FileIO.writeFile(try key.pkcs8PEM(), to: keyPath, mode: 0o600, replacing: true)
        try FileIO.writeFile(try certificate.pem(), to: certificatePath, mode: 0o644, replacing: true)
        if copyCA {
            do {
                try FileIO.writeFile(caPEM, to: copiedCAPath, mode: 0o644, replacing: false)
            } catch PKIError.fileExists {
                // Written concurrently by another issue into the same directory: same CA, fine.
            }
        }
        return IssuedCertificate(
            certificatePath: certificatePath, privateKeyPath: keyPath, caCertificatePath: copiedCAPath,
            identity: identity, serial: identity.serial
        )
    }

    private static let secondsPerDay = 86_400

    private static func validateDays(_ days: Int, backdateDays: Int) throws {
        guard (1...36_500).contains(days) else { throw PKIError.invalidValidity("days must be in 1…36500, got \(days)") }
        guard (0...36_500).contains(backdateDays) else {
            throw PKIError.invalidValidity("backdateDays must be in 0…36500, got \(backdateDays)")
        }
    }
}
