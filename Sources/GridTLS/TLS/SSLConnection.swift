internal import COpenSSL
internal import CShims
import NIOCore
import Identity
import GridCrypto

/// One OpenSSL `SSL*` driven over a pair of memory BIOs: ciphertext from the network is fed
/// into the read BIO, ciphertext for the network is drained from the write BIO.
///
/// Thread safety: none. Owned by one `TLSHandler` and used only on its channel's event loop.
/// Invariants: `ssl` is valid until `deinit`, which frees it together with both BIOs (owned by
/// the `SSL` after `SSL_set_bio`); the `TLSContext` is retained for as long as `ssl` lives.
final class SSLConnection {
    let context: TLSContext
    private let ssl: OpaquePointer
    /// Borrowed from `ssl`: ciphertext in.
    private let readBIO: OpaquePointer
    /// Borrowed from `ssl`: ciphertext out.
    private let writeBIO: OpaquePointer
    /// The name or IP literal the client dialled, if it asked for a hostname check.
    let serverHostname: String?

    /// Creates the `SSL` in the context's mode. For clients, `serverHostname` (a DNS name or an
    /// IP literal) must then match the server certificate's subjectAltName, checked during
    /// certificate verification; DNS names are also sent as SNI.
    init(context: TLSContext, serverHostname: String?) throws {
        guard let ssl = SSL_new(context.pointer) else {
            throw TLSError.configuration(reason: "SSL_new: " + OpenSSLErrorQueue.drainDetailed().joined(separator: "; "))
        }
        guard let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError.configuration(reason: "BIO_new: " + OpenSSLErrorQueue.drainDetailed().joined(separator: "; "))
        }
        SSL_set_bio(ssl, readBIO, writeBIO)
        self.context = context
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        self.serverHostname = serverHostname

        switch context.mode {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let host = serverHostname {
                guard !host.isEmpty, !host.utf8.contains(0) else {
                    throw TLSError.invalidArgument(reason: "serverHostname must be a non-empty name or IP literal")
                }
                if SubjectAltName.isIPAddress(host) {
                    guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 else {
                        throw TLSError.invalidArgument(reason: "unusable IP address \(host): " + OpenSSLErrorQueue.drainReasons().joined(separator: ": "))
                    }
                } else {
                    // Match subjectAltName DNS entries only, never the subject CN.
                    SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT))
                    guard SSL_set1_host(ssl, host) == 1, gl_SSL_set_tlsext_host_name(ssl, host) == 1 else {
                        throw TLSError.invalidArgument(reason: "unusable hostname \(host): " + OpenSSLErrorQueue.drainReasons().joined(separator: ": "))
                    }
                }
            }
        }
    }

    deinit {
        SSL_free(ssl)
    }

    // MARK: Ciphertext

    /// Appends all readable bytes of `buffer` to the read BIO (memory BIOs grow as needed).
    func feedCiphertext(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let chunk = Int32(clamping: raw.count - offset)
                let written = BIO_write(readBIO, raw.baseAddress! + offset, chunk)
                guard written > 0 else { return }
                offset += Int(written)
            }
        }
    }

    /// Bytes of ciphertext waiting in the write BIO.
    var pendingCiphertextCount: Int {
        Int(BIO_ctrl_pending(writeBIO))
    }

    /// Moves everything in the write BIO into one new buffer from `allocator`; nil when empty.
    func drainCiphertext(allocator: ByteBufferAllocator) -> ByteBuffer? {
        let pending = pendingCiphertextCount
        guard pending > 0 else { return nil }
        var buffer = allocator.buffer(capacity: pending)
        while true {
            let available = pendingCiphertextCount
            if available == 0 { break }
            let read = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: available) { raw in
                max(0, Int(BIO_read(writeBIO, raw.baseAddress, Int32(clamping: raw.count))))
            }
            if read == 0 { break }
        }
        return buffer
    }

    // MARK: Handshake, data, shutdown

    /// Advances the handshake (`SSL_do_handshake`).
    func handshake() -> SSLCallResult {
        OpenSSLErrorQueue.clear()
        return classify(SSL_do_handshake(ssl))
    }

    /// Decrypts into `buffer`'s writable bytes (growing it), until OpenSSL has no more complete
    /// records, the peer closed, or an error. Returns the last call's result; bytes read before
    /// a `.closed` or `.failed` result are in `buffer`.
    func readPlaintext(into buffer: inout ByteBuffer) -> SSLCallResult {
        OpenSSLErrorQueue.clear()
        while true {
            if buffer.writableBytes == 0 {
                buffer.reserveCapacity(minimumWritableBytes: max(buffer.capacity, 4096))
            }
            var code: Int32 = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { raw in
                code = SSL_read(ssl, raw.baseAddress, Int32(clamping: raw.count))
                return max(0, Int(code))
            }
            let result = classify(code)
            guard case .complete = result else { return result }
        }
    }

    /// Encrypts all readable bytes of `buffer` into the write BIO (TLS records of at most
    /// 16 KiB; OpenSSL writes everything unless partial writes are enabled, which they are not).
    func writePlaintext(_ buffer: ByteBuffer) -> SSLCallResult {
        OpenSSLErrorQueue.clear()
        return buffer.withUnsafeReadableBytes { raw -> SSLCallResult in
            var offset = 0
            while offset < raw.count {
                let code = SSL_write(ssl, raw.baseAddress! + offset, Int32(clamping: raw.count - offset))
                let result = classify(code)
                guard case let .complete(count) = result else { return result }
                offset += count
            }
            return .complete(offset)
        }
    }

    /// Queues close_notify into the write BIO (`SSL_shutdown`; one direction, no waiting for
    /// the peer's). Idempotent.
    func shutdown() {
        OpenSSLErrorQueue.clear()
        if (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) == 0 {
            _ = SSL_shutdown(ssl)
        }
        OpenSSLErrorQueue.clear()
    }

    // MARK: Peer

    /// Checks the completed handshake: the peer sent a certificate, it verified against the
    /// trust root (`SSL_get_verify_result == X509_V_OK`), its subject names a GridLedger party,
    /// the configured ALPN protocol was agreed, and (client side) the server's role is `node`.
    ///
    /// - Returns: the event to fire, or the reason to refuse the peer.
    func authenticatePeer() -> Result<PeerAuthenticatedEvent, TLSError> {
        guard let certificate = SSL_get1_peer_certificate(ssl) else {
            return .failure(.peerRejected(reason: "peer presented no certificate"))
        }
        defer { X509_free(certificate) }
        let verification = SSL_get_verify_result(ssl)
        guard verification == Int(X509_V_OK) else {
            return .failure(.peerRejected(reason: "certificate verify failed: " + Self.verifyErrorText(verification)))
        }
        let identity: PeerIdentity
        do {
            identity = try PeerIdentity(x509: certificate)
        } catch {
            return .failure(.peerRejected(reason: String(describing: error)))
        }
        if context.mode == .client, identity.role != .node {
            return .failure(.peerRejected(reason: "server \(identity) has role \(identity.role.rawValue), expected node"))
        }
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        let agreed = data.map { String(decoding: UnsafeBufferPointer(start: $0, count: Int(length)), as: UTF8.self) }
        guard let agreed, agreed == context.configuration.alpn else {
            return .failure(.peerRejected(reason: "no ALPN protocol agreed (required \(context.configuration.alpn))"))
        }
        return .success(PeerAuthenticatedEvent(peer: identity, applicationProtocol: agreed))
    }

    // MARK: Errors

    /// Maps an OpenSSL return code to `SSLCallResult`, draining the error queue into the
    /// failure reason (with the certificate verification error and ALPN refusal, if any).
    private func classify(_ code: Int32) -> SSLCallResult {
        if code > 0 { return .complete(Int(code)) }
        let error = SSL_get_error(ssl, code)
        switch error {
        case SSL_ERROR_WANT_READ:
            return .incomplete(.read)
        case SSL_ERROR_WANT_WRITE:
            return .incomplete(.write)
        case SSL_ERROR_ZERO_RETURN:
            OpenSSLErrorQueue.clear()
            return .closed
        default:
            return .failed(reason: failureReason(sslError: error))
        }
    }

    private func failureReason(sslError: Int32) -> String {
        var reasons = OpenSSLErrorQueue.drainReasons()
        let verification = SSL_get_verify_result(ssl)
        if verification != Int(X509_V_OK) {
            let detail = Self.verifyErrorText(verification)
            if let index = reasons.firstIndex(of: "certificate verify failed") {
                reasons[index] += ": " + detail
            } else {
                reasons.append("certificate verify failed: " + detail)
            }
        }
        if let mark = SSL_get_ex_data(ssl, 0), let refusal = ALPNRefusal(rawValue: Int(bitPattern: mark)) {
            // Our own callbacks refused: their reason replaces OpenSSL's generic one.
            reasons.removeAll { $0 == "callback failed" || $0 == "no application protocol" }
            reasons.append(refusal.reason + " (required \(context.configuration.alpn))")
        }
        if reasons.isEmpty {
            reasons.append(sslError == SSL_ERROR_SYSCALL ? "unexpected end of stream" : "OpenSSL error \(sslError)")
        }
        return reasons.joined(separator: "; ")
    }

    private static func verifyErrorText(_ code: Int) -> String {
        guard let text = X509_verify_cert_error_string(code) else { return "error \(code)" }
        return String(cString: text)
    }
}
