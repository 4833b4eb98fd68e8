public import Logging
public import NIOCore
import Identity

/// TLS 1.3 over system OpenSSL as a NIO channel handler: ciphertext below, plaintext above.
///
/// Life of a connection:
/// 1. When the channel becomes active (or at `handlerAdded` on an active channel) the handshake
///    starts (the client sends its ClientHello) and the handshake timeout is scheduled.
/// 2. On handshake completion the peer is authenticated (`SSLConnection.authenticatePeer`);
///    on success `PeerAuthenticatedEvent` is fired as a user inbound event, then writes held
///    back during the handshake are sent, then any application data already received is
///    delivered. On failure of any kind (bad certificate, no certificate, wrong ALPN, wrong
///    role or host, garbage instead of TLS, timeout) one line is logged at warning level
///    with the remote address and OpenSSL's reason, `TLSError` is fired through
///    `errorCaught`, and the channel is closed (after sending OpenSSL's alert, if any).
/// 3. Application data: every `channelRead` of ciphertext yields at most one `channelRead` of
///    plaintext (all complete records decrypted into one buffer). Writes are held until
///    `flush`; a flush encrypts all flushed writes (small ones coalesced into one TLS record
///    run) and writes the ciphertext to the channel as one buffer.
/// 4. `close(mode: .all)` sends close_notify, then closes. `close(mode: .output)` sends
///    close_notify and half-closes; reading continues until the peer's close_notify. A
///    received close_notify is answered with close_notify (unless already sent) and the
///    channel is closed.
///
/// TLS 1.3 ordering: a client completes its handshake before the server has checked the
/// client certificate, so a client the server refuses first sees `PeerAuthenticatedEvent` and
/// then a `TLSError.connectionFailed` carrying the server's alert (e.g. "tlsv13 alert
/// certificate required") before the channel closes. Servers never fire the event for a peer
/// they refuse.
///
/// Reads: the handler relies on the channel reading (NIO's default `autoRead`); it issues no
/// `read()` of its own during the handshake.
///
/// Thread safety: like every channel handler, used only on its channel's event loop.
/// Invariants: after `state` becomes `.closed` no further bytes are given to OpenSSL and no
/// further events except `channelInactive` are fired; `pendingWrites` is empty in `.closed`.
public final class TLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        /// Handler added, channel not active yet.
        case idle
        case handshaking
        /// Authenticated: application data flows.
        case active
        /// Closed or closing; nothing more is processed.
        case closed
    }

    /// Writes smaller than this are coalesced into one buffer before `SSL_write`, so that many
    /// small messages flushed together become few TLS records.
    private static let coalescingLimit = 16 * 1024

    private let connection: SSLConnection
    private let logger: Logger
    private let handshakeTimeout: TimeAmount
    private var state: State = .idle
    /// close_notify was sent by `close(mode: .output)`: writes fail, reads continue.
    private var outputClosed = false
    private var timeoutTask: Scheduled<Void>?
    /// Outbound plaintext not yet encrypted; the mark is the last flushed write.
    private var pendingWrites = MarkedCircularBuffer<(buffer: ByteBuffer, promise: EventLoopPromise<Void>?)>(initialCapacity: 8)
    /// Reused buffer for coalescing small writes.
    private var coalescingBuffer: ByteBuffer?
    /// Whether the peer sent anything at all (a bare connect-and-close is logged quietly).
    private var receivedBytes = false

    /// A handler for the accepting side; `context` must be a `.server` context.
    ///
    /// - Throws: `TLSError.invalidArgument` for a client context, `TLSError.configuration` when
    ///   OpenSSL cannot create the connection.
    public static func serverHandler(context: TLSContext, logger: Logger) throws -> TLSHandler {
        guard context.mode == .server else {
            throw TLSError.invalidArgument(reason: "serverHandler needs a server-mode TLSContext")
        }
        return TLSHandler(connection: try SSLConnection(context: context, serverHostname: nil), logger: logger)
    }

    /// A handler for the dialling side; `context` must be a `.client` context. The server
    /// must present a certificate of role `node`; when `serverHostname` (a DNS name or IP
    /// literal) is given, the certificate's subjectAltName must also match it.
    ///
    /// - Throws: `TLSError.invalidArgument` for a server context or an unusable hostname,
    ///   `TLSError.configuration` when OpenSSL cannot create the connection.
    public static func clientHandler(context: TLSContext, serverHostname: String?, logger: Logger) throws -> TLSHandler {
        guard context.mode == .client else {
            throw TLSError.invalidArgument(reason: "clientHandler needs a client-mode TLSContext")
        }
        return TLSHandler(connection: try SSLConnection(context: context, serverHostname: serverHostname), logger: logger)
    }

    private init(connection: SSLConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
        self.handshakeTimeout = connection.context.configuration.handshakeTimeout
    }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            startHandshake(context: context)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimeout()
        failPendingWrites(ChannelError.ioOnClosedChannel)
        state = .closed
    }

    public func channelActive(context: ChannelHandlerContext) {
        startHandshake(context: context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        let wasHandshaking = state == .handshaking || state == .idle
        state = .closed
        cancelTimeout()
        failPendingWrites(ChannelError.ioOnClosedChannel)
        if wasHandshaking {
            let error = TLSError.closedDuringHandshake
            if receivedBytes {
                logFailure(context: context, error: error)
            } else {
                // Connect-and-close without a byte: a port probe, not an attack worth a warning.
                logger.debug("connection closed before any TLS byte", metadata: ["remote": "\(Self.remoteDescription(context))"])
            }
            context.fireErrorCaught(error)
        }
        context.fireChannelInactive()
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let ciphertext = unwrapInboundIn(data)
        receivedBytes = true
        switch state {
        case .closed:
            return
        case .idle:
            // Data before channelActive: start now so that nothing is lost.
            startHandshake(context: context)
            guard state == .handshaking else { return }
            fallthrough
        case .handshaking:
            connection.feedCiphertext(ciphertext)
            advanceHandshake(context: context)
        case .active:
            connection.feedCiphertext(ciphertext)
            deliverPlaintext(context: context, sizeHint: ciphertext.readableBytes)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    // MARK: Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard state != .closed else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        guard !outputClosed else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        pendingWrites.append((unwrapOutboundIn(data), promise))
    }

    public func flush(context: ChannelHandlerContext) {
        pendingWrites.mark()
        if state == .active {
            writeFlushedPlaintext(context: context)
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch (state, mode) {
        case (.active, .all):
            state = .closed
            failPendingWrites(ChannelError.ioOnClosedChannel)
            connection.shutdown()
            writeCiphertext(context: context)
            context.close(mode: mode, promise: promise)
        case (.active, .output):
            // Half close: our close_notify, then TCP FIN; the peer's data is still read.
            outputClosed = true
            failPendingWrites(ChannelError.outputClosed)
            connection.shutdown()
            writeCiphertext(context: context)
            context.close(mode: mode, promise: promise)
        case (.handshaking, .all), (.handshaking, .output), (.idle, .all), (.idle, .output):
            state = .closed
            cancelTimeout()
            failPendingWrites(ChannelError.ioOnClosedChannel)
            context.close(mode: mode, promise: promise)
        default:
            context.close(mode: mode, promise: promise)
        }
    }

    // MARK: Handshake

    private func startHandshake(context: ChannelHandlerContext) {
        guard state == .idle else { return }
        state = .handshaking
        timeoutTask = context.eventLoop.assumeIsolated().scheduleTask(in: handshakeTimeout) { [self] in
            guard state == .handshaking else { return }
            fail(context: context, error: .handshakeTimeout)
        }
        advanceHandshake(context: context)
    }

    private func advanceHandshake(context: ChannelHandlerContext) {
        switch connection.handshake() {
        case .incomplete:
            writeCiphertext(context: context)
        case .complete:
            writeCiphertext(context: context)
            completeHandshake(context: context)
        case .closed:
            fail(context: context, error: .handshakeFailed(reason: "peer sent close_notify during the handshake"))
        case let .failed(reason):
            fail(context: context, error: .handshakeFailed(reason: reason))
        }
    }

    private func completeHandshake(context: ChannelHandlerContext) {
        cancelTimeout()
        switch connection.authenticatePeer() {
        case let .failure(error):
            fail(context: context, error: error)
        case let .success(event):
            state = .active
            logger.debug(
                "TLS peer authenticated",
                metadata: ["remote": "\(Self.remoteDescription(context))", "peer": "\(event.peer)"]
            )
            context.fireUserInboundEventTriggered(event)
            guard state == .active else { return }
            writeFlushedPlaintext(context: context)
            guard state == .active else { return }
            deliverPlaintext(context: context, sizeHint: 0)
        }
    }

    // MARK: Data

    /// Decrypts everything available and fires it as one buffer; handles close_notify and
    /// fatal errors.
    private func deliverPlaintext(context: ChannelHandlerContext, sizeHint: Int) {
        var plaintext = context.channel.allocator.buffer(capacity: max(sizeHint, 256))
        let result = connection.readPlaintext(into: &plaintext)
        if plaintext.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(plaintext))
        }
        guard state == .active else { return }
        switch result {
        case .complete, .incomplete:
            // Reading can produce output (e.g. a KeyUpdate response).
            if connection.pendingCiphertextCount > 0 { writeCiphertext(context: context) }
        case .closed:
            // The peer will send nothing more: answer close_notify and close.
            state = .closed
            failPendingWrites(ChannelError.outputClosed)
            connection.shutdown()
            writeCiphertext(context: context)
            context.close(promise: nil)
        case let .failed(reason):
            fail(context: context, error: .connectionFailed(reason: reason))
        }
    }

    /// Encrypts all flushed writes and writes the ciphertext as one buffer, completing their
    /// promises when that write completes.
    private func writeFlushedPlaintext(context: ChannelHandlerContext) {
        guard pendingWrites.hasMark else { return }
        var promises: [EventLoopPromise<Void>] = []
        var batch: ByteBuffer?
        var batchIsCoalesced = false
        var failure: String?

        func encrypt(_ buffer: ByteBuffer) {
            guard failure == nil, buffer.readableBytes > 0 else { return }
            if case let .failed(reason) = connection.writePlaintext(buffer) { failure = reason }
        }
        func flushBatch() {
            guard let pending = batch else { return }
            encrypt(pending)
            batch = nil
            if batchIsCoalesced {
                var reusable = pending
                reusable.clear()
                coalescingBuffer = reusable
                batchIsCoalesced = false
            }
        }

        while pendingWrites.hasMark, let (buffer, promise) = pendingWrites.popFirst() {
            if let promise { promises.append(promise) }
            if buffer.readableBytes >= Self.coalescingLimit {
                flushBatch()
                encrypt(buffer)
            } else if var current = batch {
                if !batchIsCoalesced {
                    var coalesced = coalescingBuffer.take() ?? context.channel.allocator.buffer(capacity: Self.coalescingLimit)
                    coalesced.writeImmutableBuffer(current)
                    current = coalesced
                    batchIsCoalesced = true
                }
                batch = nil
                current.writeImmutableBuffer(buffer)
                batch = current
                if current.readableBytes >= Self.coalescingLimit { flushBatch() }
            } else {
                batch = buffer
            }
        }
        flushBatch()

        if let failure {
            let error = TLSError.connectionFailed(reason: failure)
            for promise in promises { promise.fail(error) }
            fail(context: context, error: error)
            return
        }
        writeCiphertext(context: context, promises: promises)
    }

    /// Writes and flushes whatever ciphertext OpenSSL produced, as one buffer.
    private func writeCiphertext(context: ChannelHandlerContext, promises: [EventLoopPromise<Void>] = []) {
        guard let ciphertext = connection.drainCiphertext(allocator: context.channel.allocator) else {
            for promise in promises { promise.succeed() }
            return
        }
        let writePromise: EventLoopPromise<Void>?
        switch promises.count {
        case 0:
            writePromise = nil
        case 1:
            writePromise = promises[0]
        default:
            let combined = context.eventLoop.makePromise(of: Void.self)
            for promise in promises { combined.futureResult.cascade(to: promise) }
            writePromise = combined
        }
        context.writeAndFlush(wrapOutboundOut(ciphertext), promise: writePromise)
    }

    // MARK: Failure

    /// Logs `error`, fires it, sends any pending alert and closes the channel. Only the first
    /// failure of a connection is reported.
    private func fail(context: ChannelHandlerContext, error: TLSError) {
        guard state != .closed else { return }
        state = .closed
        cancelTimeout()
        failPendingWrites(error)
        logFailure(context: context, error: error)
        writeCiphertext(context: context)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func logFailure(context: ChannelHandlerContext, error: TLSError) {
        let side = connection.context.mode == .server ? "server" : "client"
        logger.warning(
            "TLS \(side) connection with \(Self.remoteDescription(context)) failed: \(error)",
            metadata: ["remote": "\(Self.remoteDescription(context))", "tls.side": "\(side)"]
        )
    }

    private func failPendingWrites(_ error: any Error) {
        while let (_, promise) = pendingWrites.popFirst() {
            promise?.fail(error)
        }
    }

    private func cancelTimeout() {
        timeoutTask?.cancel()
        timeoutTask = nil
    }

    private static func remoteDescription(_ context: ChannelHandlerContext) -> String {
        context.channel.remoteAddress.map { "\($0)" } ?? "unknown peer"
    }
}

@available(*, unavailable)
extension TLSHandler: Sendable {}
