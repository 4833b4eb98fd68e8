import GridTLS

/// Why a TLS handshake failed, as the `cause` label of `gridledger_tls_handshake_failures_total`:
/// a small fixed set, so a peer cannot grow the label's values (OpenSSL's reason text is
/// matched, never copied).
enum TLSFailureCause: String, CaseIterable, Sendable {
    /// The handshake did not finish within `tls.handshake_timeout_ms`.
    case timeout
    /// The peer closed the connection before the handshake finished.
    case closed
    /// The peer's certificate has expired (or is not yet valid).
    case certificateExpired = "certificate_expired"
    /// The peer's certificate does not chain to the deployment CA (or fails another check).
    case certificateUntrusted = "certificate_untrusted"
    /// The peer presented no certificate (mutual TLS requires one).
    case noCertificate = "no_certificate"
    /// The handshake completed but the peer is not acceptable (unreadable identity, no ALPN).
    case peerRejected = "peer_rejected"
    /// Any other handshake failure (protocol version, cipher, a malformed record, an alert).
    case protocolError = "protocol"

    /// The cause of `error`, or nil when it is not a handshake failure (a broken connection
    /// after the handshake, a configuration error, a protocol error above TLS).
    init?(_ error: any Error) {
        guard let tls = error as? TLSError else { return nil }
        switch tls {
        case .handshakeTimeout: self = .timeout
        case .closedDuringHandshake: self = .closed
        case .peerRejected: self = .peerRejected
        case let .handshakeFailed(reason):
            let text = reason.lowercased()
            if text.contains("expired") || text.contains("not yet valid") {
                self = .certificateExpired
            } else if text.contains("did not return a certificate") || text.contains("no certificate")
                || text.contains("certificate required") {
                self = .noCertificate
            } else if text.contains("verify failed") || text.contains("unknown ca") || text.contains("bad certificate")
                || text.contains("unsupported certificate") || text.contains("certificate unknown") {
                self = .certificateUntrusted
            } else {
                self = .protocolError
            }
        case .configuration, .invalidArgument, .connectionFailed: return nil
        }
    }
}
