#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One subjectAltName entry of an issued certificate.
///
/// Grammar of the accepted text forms:
/// ```
/// san  = "DNS:" dns / "IP:" ip / ip / dns      ; a bare IP literal is IP, anything else DNS
/// dns  = 1*253( ALPHA / DIGIT / "." / "-" / "_" )
/// ip   = IPv4 dotted quad / IPv6 text form (inet_pton)
/// ```
package enum SubjectAltName: Hashable, Sendable {
    case dns(String)
    case ip(String)

    /// Parses one entry; throws `PKIError.invalidSubjectAltName` when it fits no form.
    init(parsing text: String) throws {
        if text.hasPrefix("DNS:") {
            let name = String(text.dropFirst(4))
            guard Self.isValidDNS(name) else { throw PKIError.invalidSubjectAltName(text) }
            self = .dns(name)
        } else if text.hasPrefix("IP:") {
            let address = String(text.dropFirst(3))
            guard Self.isIPAddress(address) else { throw PKIError.invalidSubjectAltName(text) }
            self = .ip(address)
        } else if Self.isIPAddress(text) {
            self = .ip(text)
        } else if Self.isValidDNS(text) {
            self = .dns(text)
        } else {
            throw PKIError.invalidSubjectAltName(text)
        }
    }

    /// The entry in OpenSSL's extension configuration syntax (`DNS:name`, `IP:address`).
    var configurationText: String {
        switch self {
        case let .dns(name): return "DNS:" + name
        case let .ip(address): return "IP:" + address
        }
    }

    static func isValidDNS(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 253 else { return false }
        return bytes.allSatisfy { PartyNameRules.isAllowed($0) }
    }

    /// Whether `text` is an IPv4 or IPv6 literal.
    package static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
