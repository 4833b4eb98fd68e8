#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GridTLS
import NIOCore
import NIOPosix
import Wire

/// Errors of a client call to a node, as one sentence for a person at a terminal: what
/// failed, with which address, and the likely cause. `gridnode status` (and every other
/// `gridnode` client command) prints these instead of NIO's and OpenSSL's raw error values.
public enum ConnectionErrorText {
    /// - Parameters:
    ///   - address: the `host:port` dialled.
    ///   - ca: the CA certificate the client trusts (named when the node's certificate is
    ///     not trusted).
    public static func describe(_ error: Error, address: String, ca: String) -> String {
        switch error {
        case let error as NIOConnectionError:
            if let dns = error.dnsAError ?? error.dnsAAAAError {
                return "cannot connect to \(address): the host name does not resolve (\(dns))"
            }
            if let first = error.connectionErrors.first {
                return describe(first.error, address: address, ca: ca)
            }
            return "cannot connect to \(address): no address to connect to"
        case let error as IOError:
            return "cannot connect to \(address): \(errnoText(error.errnoCode))\(hint(error.errnoCode))"
        case let error as ChannelError:
            if case .connectTimeout(let t) = error {
                return "cannot connect to \(address): no answer within \(t.nanoseconds / 1_000_000) ms (is the node running, and is the address reachable?)"
            }
            return "connection to \(address) failed: \(error)"
        case let error as TLSError:
            return describe(error, address: address, ca: ca)
        case let error as RPCError:
            // The client's connection handler reports a TLS failure on the connection as
            // UNAVAILABLE with the TLSError's text (Wire knows nothing of TLS).
            if error.code == .unavailable, let tls = tlsError(fromText: error.message) {
                return describe(tls, address: address, ca: ca)
            }
            if error.code == .unavailable, error.message == "connection closed" {
                return "\(address) closed the connection (does the node trust this client's certificate, and is it a GridLedger node?)"
            }
            return "\(address) answered \(error.code): \(error.message)"
        default:
            return "\(error)"
        }
    }

    private static func describe(_ error: TLSError, address: String, ca: String) -> String {
        switch error {
        case .configuration(let reason):
            return "cannot use the client certificate, key or CA: \(reason)"
        case .invalidArgument(let reason):
            return "cannot set up TLS to \(address): \(reason)"
        case .handshakeFailed(let reason):
            let lower = reason.lowercased()
            if lower.contains("certificate verify failed") {
                let detail = lower.contains("hostname mismatch") || lower.contains("host name mismatch")
                    ? "the node's certificate does not name the host dialled (use --server-name)"
                    : "the node's certificate is not trusted by the CA \(ca)"
                return "TLS handshake with \(address) failed: \(detail) (\(reason))"
            }
            if lower.contains("alert") {
                return "TLS handshake with \(address) failed: the node refused this client's certificate (is it issued by the node's CA and still valid?) (\(reason))"
            }
            if lower.contains("wrong version number") || lower.contains("packet length too long") {
                return "TLS handshake with \(address) failed: the other side does not speak TLS (is that a GridLedger node?)"
            }
            return "TLS handshake with \(address) failed: \(reason)"
        case .peerRejected(let reason):
            return "\(address) is not an acceptable GridLedger node: \(reason)"
        case .handshakeTimeout:
            return "TLS handshake with \(address) timed out (is that a GridLedger node?)"
        case .closedDuringHandshake:
            return "\(address) closed the connection during the TLS handshake (does the node trust this client's certificate?)"
        case .connectionFailed(let reason):
            if reason.lowercased().contains("alert") {
                return "\(address) ended the TLS connection: the node refused this client's certificate (is it issued by the node's CA and still valid?) (\(reason))"
            }
            return "TLS connection to \(address) failed: \(reason)"
        }
    }

    /// The `TLSError` whose `description` is `text`, nil for any other text.
    static func tlsError(fromText text: String) -> TLSError? {
        let withReason: [(String, (String) -> TLSError)] = [
            ("TLS configuration error: ", { .configuration(reason: $0) }),
            ("TLS invalid argument: ", { .invalidArgument(reason: $0) }),
            ("TLS handshake failed: ", { .handshakeFailed(reason: $0) }),
            ("TLS peer rejected: ", { .peerRejected(reason: $0) }),
            ("TLS connection failed: ", { .connectionFailed(reason: $0) }),
        ]
        for (prefix, make) in withReason where text.hasPrefix(prefix) {
            return make(String(text.dropFirst(prefix.count)))
        }
        for plain in [TLSError.handshakeTimeout, .closedDuringHandshake] where text == plain.description {
            return plain
        }
        return nil
    }

    private static func errnoText(_ code: Int32) -> String {
        String(cString: strerror(code)).lowercased()
    }

    private static func hint(_ code: Int32) -> String {
        switch code {
        case ECONNREFUSED: return " (is the node running, and listening on that port?)"
        case ENETUNREACH, EHOSTUNREACH: return " (check the address and the network)"
        case ETIMEDOUT: return " (is the address reachable?)"
        default: return ""
        }
    }
}
