/// Why a TLS connection failed. Fired through `errorCaught` by `TLSHandler` (the channel is
/// closed right after), or thrown by `TLSContext.init`.
public enum TLSError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The context could not be built (unreadable files, key not matching certificate, …);
    /// `reason` includes OpenSSL's error text.
    case configuration(reason: String)
    /// The handler was given a context of the other mode, or bad constructor arguments.
    case invalidArgument(reason: String)
    /// The handshake failed; `reason` is OpenSSL's, e.g.
    /// "certificate verify failed: certificate has expired".
    case handshakeFailed(reason: String)
    /// The handshake completed but the peer is not acceptable (wrong role, unreadable identity,
    /// no agreed ALPN protocol).
    case peerRejected(reason: String)
    /// The handshake did not complete within the configured timeout.
    case handshakeTimeout
    /// The connection closed before the handshake completed.
    case closedDuringHandshake
    /// Decrypting or encrypting application data failed, or the peer sent a fatal alert.
    case connectionFailed(reason: String)

    public var description: String {
        switch self {
        case let .configuration(reason): return "TLS configuration error: \(reason)"
        case let .invalidArgument(reason): return "TLS invalid argument: \(reason)"
        case let .handshakeFailed(reason): return "TLS handshake failed: \(reason)"
        case let .peerRejected(reason): return "TLS peer rejected: \(reason)"
        case .handshakeTimeout: return "TLS handshake timed out"
        case .closedDuringHandshake: return "connection closed during TLS handshake"
        case let .connectionFailed(reason): return "TLS connection failed: \(reason)"
        }
    }
}
