internal import COpenSSL
internal import CShims
public import Identity
import GridCrypto

/// An OpenSSL `SSL_CTX` set up for GridLedger's transport (Docs/wire-protocol.md, "Transport"):
/// TLS 1.3 only, mutual authentication against the deployment CA as the only trust root, and
/// exactly one ALPN protocol.
///
/// Server contexts require a client certificate (`SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT`),
/// refuse a ClientHello without ALPN and one whose ALPN list lacks the configured protocol
/// (alert `no_application_protocol`), and issue no session tickets. Client contexts verify the
/// server certificate and offer the configured ALPN protocol; `TLSHandler` adds the hostname
/// and role checks per connection.
///
/// The context's own certificate is not checked for expiry or chain here (a party may hold an
/// expired certificate; its peers refuse it).
///
/// Thread safety: immutable after `init`, so one context may serve any number of connections
/// on any threads (OpenSSL allows concurrent `SSL_new` from one `SSL_CTX`).
/// Invariants: `pointer` is a valid `SSL_CTX*` freed exactly once in `deinit`; `alpnWire` lives
/// as long as the context, and every `SSLConnection` keeps its context alive, so the callback
/// argument never dangles.
public final class TLSContext: @unchecked Sendable {
    /// Which side of the handshake connections made from this context play.
    public enum Mode: Sendable, Hashable {
        case server, client
    }

    public let mode: Mode
    public let configuration: TLSConfiguration
    /// The identity this context's own certificate names.
    public let localIdentity: PeerIdentity

    /// `SSL_CTX*`, owned.
    let pointer: OpaquePointer
    /// The ALPN protocol in wire format (one length byte, then the id), owned.
    let alpnWire: UnsafeMutableBufferPointer<UInt8>

    /// Builds the context; throws `TLSError.configuration` with OpenSSL's reason when a file
    /// is unreadable, the key does not match the certificate, the certificate names no
    /// GridLedger party, or the ALPN id is not 1 to 255 bytes.
    public convenience init(configuration: TLSConfiguration, mode: Mode) throws {
        try self.init(configuration: configuration, mode: mode, presentsCertificate: true, offersALPN: true)
    }

    /// The full initializer. `presentsCertificate: false` and `offersALPN: false` build a
    /// deliberately non-conforming client (no certificate, no ALPN extension), which only tests
    /// use to check that servers refuse such clients.
    init(configuration: TLSConfiguration, mode: Mode, presentsCertificate: Bool, offersALPN: Bool) throws {
        let alpnBytes = Array(configuration.alpn.utf8)
        guard (1...255).contains(alpnBytes.count) else {
            throw TLSError.configuration(reason: "ALPN protocol id must be 1 to 255 bytes")
        }
        OpenSSLErrorQueue.clear()
        let identity: PeerIdentity
        do {
            let certificate = try OpenSSLCertificate.load(path: configuration.certificatePath)
            identity = try PeerIdentity(x509: certificate.pointer)
        } catch {
            throw TLSError.configuration(reason: String(describing: error))
        }
        guard let context = SSL_CTX_new(mode == .server ? TLS_server_method() : TLS_client_method()) else {
            throw Self.failure("SSL_CTX_new")
        }
        let wire = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: alpnBytes.count + 1)
        wire[0] = UInt8(alpnBytes.count)
        _ = UnsafeMutableBufferPointer(rebasing: wire[1...]).initialize(from: alpnBytes)
        self.pointer = context
        self.alpnWire = wire
        self.mode = mode
        self.configuration = configuration
        self.localIdentity = identity
        // From here on, deinit frees `context` and `wire` if a step below throws.

        guard gl_SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION) == 1,
              gl_SSL_CTX_set_max_proto_version(context, TLS1_3_VERSION) == 1
        else { throw Self.failure("restricting to TLS 1.3") }
        if presentsCertificate {
            guard SSL_CTX_use_certificate_chain_file(context, configuration.certificatePath) == 1 else {
                throw Self.failure("loading certificate \(configuration.certificatePath)")
            }
            guard SSL_CTX_use_PrivateKey_file(context, configuration.privateKeyPath, SSL_FILETYPE_PEM) == 1 else {
                throw Self.failure("loading private key \(configuration.privateKeyPath)")
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw Self.failure("private key \(configuration.privateKeyPath) does not match certificate \(configuration.certificatePath)")
            }
        }
        // The CA file is the only trust root: the system's default paths are never loaded.
        guard SSL_CTX_load_verify_locations(context, configuration.trustRootPath, nil) == 1 else {
            throw Self.failure("loading trust root \(configuration.trustRootPath)")
        }
        SSL_CTX_set_verify_depth(context, 4)
        gl_SSL_CTX_set_read_ahead(context, 1)
        _ = gl_SSL_CTX_set_session_cache_mode(context, Int(SSL_SESS_CACHE_OFF))

        switch mode {
        case .server:
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
            // Advertise the CA in the CertificateRequest so clients pick the right certificate.
            if let names = SSL_load_client_CA_file(configuration.trustRootPath) {
                SSL_CTX_set_client_CA_list(context, names)
            } else {
                throw Self.failure("reading CA names from \(configuration.trustRootPath)")
            }
            guard SSL_CTX_set_num_tickets(context, 0) == 1 else { throw Self.failure("SSL_CTX_set_num_tickets") }
            SSL_CTX_set_client_hello_cb(context, requireALPNInClientHello, nil)
            SSL_CTX_set_alpn_select_cb(context, selectALPN, UnsafeMutableRawPointer(wire.baseAddress))
        case .client:
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            // SSL_CTX_set_alpn_protos returns 0 on success.
            if offersALPN {
                guard SSL_CTX_set_alpn_protos(context, wire.baseAddress, UInt32(wire.count)) == 0 else {
                    throw Self.failure("SSL_CTX_set_alpn_protos")
                }
            }
        }
        OpenSSLErrorQueue.clear()
    }

    deinit {
        SSL_CTX_free(pointer)
        alpnWire.deallocate()
    }

    /// The configured ALPN protocol id.
    public var applicationProtocol: String { configuration.alpn }

    private static func failure(_ step: String) -> TLSError {
        let queue = OpenSSLErrorQueue.drainDetailed()
        return .configuration(reason: step + (queue.isEmpty ? "" : ": " + queue.joined(separator: "; ")))
    }
}

/// Marks written into an `SSL`'s application data slot (ex_data index 0) by the server's
/// callbacks, so that `SSLConnection` can report why a handshake was refused.
enum ALPNRefusal: Int {
    /// The ClientHello carried no ALPN extension.
    case notOffered = 1
    /// The client's ALPN list lacked our protocol.
    case mismatch = 2

    var reason: String {
        switch self {
        case .notOffered: return "client offered no ALPN protocol"
        case .mismatch: return "client's ALPN offer does not include the required protocol"
        }
    }
}

/// ClientHello callback (server): refuses a ClientHello without the ALPN extension with alert
/// no_application_protocol (RFC 7301 §3.2).
private func requireALPNInClientHello(_ ssl: OpaquePointer?, _ alert: UnsafeMutablePointer<Int32>?, _ arg: UnsafeMutableRawPointer?) -> Int32 {
    var data: UnsafePointer<UInt8>?
    var length = 0
    if SSL_client_hello_get0_ext(ssl, UInt32(TLSEXT_TYPE_application_layer_protocol_negotiation), &data, &length) == 1 {
        return SSL_CLIENT_HELLO_SUCCESS
    }
    _ = SSL_set_ex_data(ssl, 0, UnsafeMutableRawPointer(bitPattern: ALPNRefusal.notOffered.rawValue))
    alert?.pointee = SSL_AD_NO_APPLICATION_PROTOCOL
    return SSL_CLIENT_HELLO_ERROR
}

/// ALPN selection callback (server): selects our protocol (wire format at `arg`) if the client's
/// list holds it, else fails the handshake with no_application_protocol.
private func selectALPN(
    _ ssl: OpaquePointer?,
    _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?,
    _ offered: UnsafePointer<UInt8>?,
    _ offeredLength: UInt32,
    _ arg: UnsafeMutableRawPointer?
) -> Int32 {
    guard let arg, let offered, let out, let outLength else { return SSL_TLSEXT_ERR_ALERT_FATAL }
    let ours = arg.assumingMemoryBound(to: UInt8.self)
    let ourLength = Int(ours[0])
    let list = UnsafeBufferPointer(start: offered, count: Int(offeredLength))
    var index = 0
    while index < list.count {
        let length = Int(list[index])
        let start = index + 1
        guard length > 0, start + length <= list.count else { break }
        if length == ourLength, memcmp(offered + start, ours + 1, length) == 0 {
            out.pointee = UnsafePointer(ours + 1)
            outLength.pointee = UInt8(ourLength)
            return SSL_TLSEXT_ERR_OK
        }
        index = start + length
    }
    _ = SSL_set_ex_data(ssl, 0, UnsafeMutableRawPointer(bitPattern: ALPNRefusal.mismatch.rawValue))
    return SSL_TLSEXT_ERR_ALERT_FATAL
}
