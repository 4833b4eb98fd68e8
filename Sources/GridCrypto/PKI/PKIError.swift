#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Failures of the deployment PKI: creating a CA, issuing certificates, reading identities,
/// loading key pairs, signing and verifying.
///
/// Cases that follow an OpenSSL call carry `openSSL`, the text of OpenSSL's error queue at
/// the time (oldest first); the queue is cleared when the error is made.
public enum PKIError: Error, CustomStringConvertible, Sendable {
    /// A name or district is empty, too long, or uses characters outside `[A-Za-z0-9._-]`.
    case invalidName(field: String, value: String, reason: String)
    /// A subjectAltName entry is neither `DNS:<name>`, `IP:<address>`, a bare DNS name nor a
    /// bare IP address.
    case invalidSubjectAltName(String)
    /// A validity period or backdate is out of range.
    case invalidValidity(String)
    /// Refused to overwrite an existing file (the CA key is never overwritten).
    case fileExists(path: String)
    /// A file exists with content that conflicts with what would be written (e.g. an output
    /// directory that holds another CA's `ca.crt`).
    case conflictingFile(path: String, reason: String)
    /// A file could not be read, created or written; `errno` is the POSIX error number.
    case fileSystem(operation: String, path: String, errno: Int32)
    /// A PEM file did not contain what was expected (a certificate or a private key).
    case unreadablePEM(path: String, what: String, openSSL: [String])
    /// The private key does not belong to the certificate.
    case keyMismatch(certificatePath: String, privateKeyPath: String)
    /// A certificate's subject does not describe a GridLedger party (missing CN, OU that is no
    /// `Role`, bad district, duplicated attribute).
    case invalidIdentity(String)
    /// The key is not the kind this operation needs (ECDSA P-256).
    case unsupportedKey(String)
    /// An OpenSSL call failed; `operation` names it.
    case openSSL(operation: String, openSSL: [String])

    public var description: String {
        switch self {
        case let .invalidName(field, value, reason):
            return "invalid \(field) \"\(value)\": \(reason)"
        case let .invalidSubjectAltName(value):
            return "invalid subjectAltName \"\(value)\": expected DNS:<name>, IP:<address>, a DNS name or an IP address"
        case let .invalidValidity(reason):
            return "invalid validity: \(reason)"
        case let .fileExists(path):
            return "refusing to overwrite existing \(path)"
        case let .conflictingFile(path, reason):
            return "\(path): \(reason)"
        case let .fileSystem(operation, path, code):
            return "\(operation) \(path) failed: \(String(cString: strerror(code)))"
        case let .unreadablePEM(path, what, openSSL):
            return "\(path) holds no readable PEM \(what)" + Self.suffix(openSSL)
        case let .keyMismatch(certificatePath, privateKeyPath):
            return "private key \(privateKeyPath) does not match certificate \(certificatePath)"
        case let .invalidIdentity(reason):
            return "certificate does not name a GridLedger party: \(reason)"
        case let .unsupportedKey(reason):
            return "unsupported key: \(reason)"
        case let .openSSL(operation, openSSL):
            return "\(operation) failed" + Self.suffix(openSSL)
        }
    }

    private static func suffix(_ queue: [String]) -> String {
        queue.isEmpty ? "" : " (OpenSSL: " + queue.joined(separator: "; ") + ")"
    }

    /// Builds `.openSSL` from the current thread's error queue, clearing it.
    static func fromQueue(_ operation: String) -> PKIError {
        .openSSL(operation: operation, openSSL: OpenSSLErrorQueue.drainDetailed())
    }
}
