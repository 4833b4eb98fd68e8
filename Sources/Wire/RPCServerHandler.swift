import GridProto
import Logging
import NIOCore

/// The server end of one connection: turns frames into calls, runs each call's method in
/// its own task, and writes responses and trailers back.
///
/// Pipeline position: above the security handler (which fires `PeerAuthenticatedEvent`)
/// and a `ByteToMessageHandler(FrameDecoder)`; writes encoded frames as `ByteBuffer`s.
///
/// Thread safety: all state is confined to the channel's event loop. Method bodies run in
/// Swift tasks and reach the handler only through `NIOLoopBound` hops.
/// Invariants:
/// - every stream that received HEADERS gets exactly one TRAILERS frame, unless the
///   connection dies first;
/// - `streams` holds exactly the calls that have not sent TRAILERS;
/// - no frame is processed before the peer is authenticated.
public final class RPCServerHandler: ChannelDuplexHandler {
    public typealias InboundIn = FrameEvent
    public typealias OutboundIn = Never
    public typealias OutboundOut = ByteBuffer

    private final class Call {
        let streamID: UInt32
        let method: RPCMethod
        let context: RPCCallContext
        var request: [UInt8]?
        var continuation: AsyncThrowingStream<[UInt8], Error>.Continuation?
        /// Requests handed to the method body so far (streaming kinds).
        var yielded = 0
        let flow = InboundFlow()
        /// Responses of streaming kinds, written in batches.
        let outbox = MessageOutbox()
        var halfClosed = false
        var task: Task<Void, Never>?
        var deadlineTimer: Scheduled<Void>?

        init(streamID: UInt32, method: RPCMethod, context: RPCCallContext) {
            self.streamID = streamID
            self.method = method
            self.context = context
        }
    }

    private let router: RPCRouter
    private let configuration: RPCServerConfiguration
    private let stats: RPCServerStats
    private var logger: Logger
    private let onClose: (@Sendable () -> Void)?

    private var context: ChannelHandlerContext?
    private var loopBound: NIOLoopBound<RPCServerHandler>?
    private var peer: PeerIdentity?
    private var remoteAddress = "?"
    private var streams: [UInt32: Call] = [:]
    private var lastStreamID: UInt32 = 0
    private var goAwaySent = false
    private var closing = false
    private var flushPending = false
    private var readPaused = false
    private var readPending = false
    private var lastActivity = NIODeadline.now()
    private var pingSentAt: NIODeadline?
    private var idleSince = NIODeadline.now()
    private var housekeeping: RepeatedTask?
    private var graceTimer: Scheduled<Void>?

    /// - Parameter onClose: called once when the connection is gone (for server bookkeeping).
    public init(
        router: RPCRouter, configuration: RPCServerConfiguration, stats: RPCServerStats,
        logger: Logger, onClose: (@Sendable () -> Void)? = nil
    ) {
        self.router = router
        self.configuration = configuration
        self.stats = stats
        self.logger = logger
        self.onClose = onClose
    }

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        lastActivity = context.eventLoop.now
        idleSince = context.eventLoop.now
        if let address = context.channel.remoteAddress {
            remoteAddress = "\(address)"
        }
        logger[metadataKey: "remote"] = "\(remoteAddress)"
        stats.openConnectionsAtomic.add(1, ordering: .relaxed)
        let loopBound = self.loopBound!
        housekeeping = context.eventLoop.scheduleRepeatedTask(
            initialDelay: configuration.tick, delay: configuration.tick
        ) { _ in
            loopBound.value.tick()
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        tearDown(reason: RPCError(.unavailable, "connection closed"))
        self.context = nil
        // Break the handler → loopBound → handler cycle; hops already queued hold their own copy.
        loopBound = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        tearDown(reason: RPCError(.unavailable, "connection closed"))
        context.fireChannelInactive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let authenticated = event as? PeerAuthenticatedEvent {
            peer = authenticated.peer
            logger[metadataKey: "peer"] = "\(authenticated.peer)"
            logger.debug("peer authenticated")
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let protocolError = error as? WireProtocolError {
            connectionError(protocolError.message)
        } else {
            // The security layer below has already logged its own failures with the reason.
            logger.debug("connection failed", metadata: ["error": "\(error)"])
            stats.recordRefusedConnection()
            context.close(promise: nil)
        }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        for call in streams.values { call.outbox.setWritable(writable) }
        context.fireChannelWritabilityChanged()
    }

    public func read(context: ChannelHandlerContext) {
        if readPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        guard let peer else {
            connectionError("frame before the peer was authenticated")
            return
        }
        lastActivity = context.eventLoop.now
        pingSentAt = nil
        switch unwrapInboundIn(data) {
        case .oversizedMessage(let streamID, let length):
            if let call = streams[streamID] {
                logger.warning("oversized message refused", metadata: ["stream": "\(streamID)", "bytes": "\(length)"])
                fail(call, RPCError(.resourceExhausted, "message of \(length) bytes exceeds the limit of \(configuration.limits.maxMessageBytes) bytes"))
            } else if streamID > lastStreamID {
                connectionError("MESSAGE on stream \(streamID) that was never opened")
            }
        case .frame(let frame):
            switch frame.type {
            case .headers: onHeaders(frame, peer: peer)
            case .message: onMessage(frame)
            case .cancel:
                if let call = streams[frame.streamID] {
                    fail(call, RPCError(.cancelled, "cancelled by the client"))
                } else if frame.streamID > lastStreamID {
                    connectionError("CANCEL on stream \(frame.streamID) that was never opened")
                }
            case .end:
                if let call = streams[frame.streamID] {
                    if call.halfClosed {
                        fail(call, RPCError(.invalidArgument, "END after END_STREAM"))
                    } else {
                        halfClose(call)
                    }
                } else if frame.streamID > lastStreamID {
                    connectionError("END on stream \(frame.streamID) that was never opened")
                }
            case .ping:
                if !frame.flags.contains(.ack) {
                    write(Frame(type: .ping, flags: .ack, streamID: 0, body: frame.body))
                }
            case .trailers, .goAway:
                connectionError("\(frame.type) frame from a client")
            }
        }
    }

    // MARK: Calls

    private func onHeaders(_ frame: Frame, peer: PeerIdentity) {
        let streamID = frame.streamID
        guard streamID % 2 == 1, streamID > lastStreamID else {
            connectionError("HEADERS on stream \(streamID): stream ids must be odd and increasing (last \(lastStreamID))")
            return
        }
        lastStreamID = streamID
        let headers: CallHeaders
        do {
            headers = try CallHeaders(serializedBytes: Array(frame.body.readableBytesView))
        } catch {
            connectionError("HEADERS on stream \(streamID) do not decode")
            return
        }
        if goAwaySent {
            writeTrailers(streamID, RPCError(.unavailable, "server is shutting down"))
            return
        }
        guard streams.count < configuration.maxConcurrentStreams else {
            writeTrailers(streamID, RPCError(.resourceExhausted, "more than \(configuration.maxConcurrentStreams) concurrent calls"))
            return
        }
        if let bad = headers.metadata.first(where: { !Self.isValidMetadataKey($0.key) }) {
            writeTrailers(streamID, RPCError(.invalidArgument, "invalid metadata key '\(bad.key)'"))
            return
        }
        guard let method = router.method(headers.method) else {
            logger.info("unknown method", metadata: ["method": "\(headers.method)"])
            writeTrailers(streamID, RPCError(.unimplemented, "unknown method \(headers.method)"))
            return
        }
        guard method.allowedRoles.contains(peer.role) else {
            logger.warning("call refused: role not allowed", metadata: ["method": "\(headers.method)", "role": "\(peer.role.rawValue)"])
            writeTrailers(streamID, RPCError(.permissionDenied, "role \(peer.role.rawValue) may not call \(headers.method)"))
            return
        }
        let eventLoop = context!.eventLoop
        var deadline: NIODeadline?
        if headers.timeoutMs > 0 {
            let clamped = min(headers.timeoutMs, UInt64(Int64.max / 1_000_000))
            deadline = eventLoop.now + .milliseconds(Int64(clamped))
        }
        let callContext = RPCCallContext(
            peer: peer, method: headers.method, metadata: headers.metadata,
            deadline: deadline, remoteAddress: remoteAddress
        )
        let call = Call(streamID: streamID, method: method, context: callContext)
        streams[streamID] = call
        if let deadline {
            let loopBound = self.loopBound!
            let timeout = headers.timeoutMs
            call.deadlineTimer = eventLoop.scheduleTask(deadline: deadline) {
                let handler = loopBound.value
                if let call = handler.streams[streamID] {
                    handler.fail(call, RPCError(.deadlineExceeded, "deadline of \(timeout) ms exceeded"))
                }
            }
        }
        if !method.kind.singleRequest {
            let (stream, continuation) = AsyncThrowingStream<[UInt8], Error>.makeStream()
            call.continuation = continuation
            let loopBound = self.loopBound!
            let flow = call.flow
            let raw = RawRequestStream(stream: stream) {
                if flow.didConsume() {
                    eventLoop.execute { loopBound.value.resumeReadingIfDrained() }
                }
            }
            start(call, input: .stream(raw))
        }
        if frame.flags.contains(.endStream) {
            halfClose(call)
        }
    }

    private func onMessage(_ frame: Frame) {
        guard let call = streams[frame.streamID] else {
            if frame.streamID > lastStreamID {
                connectionError("MESSAGE on stream \(frame.streamID) that was never opened")
            }
            return
        }
        guard !call.halfClosed else {
            fail(call, RPCError(.invalidArgument, "MESSAGE after END_STREAM"))
            return
        }
        let bytes = Array(frame.body.readableBytesView)
        if call.method.kind.singleRequest {
            guard call.request == nil else {
                fail(call, RPCError(.invalidArgument, "more than one request for \(call.method.kind) method \(call.method.path)"))
                return
            }
            call.request = bytes
        } else {
            call.yielded += 1
            call.continuation?.yield(bytes)
            if call.yielded - call.flow.consumed.load(ordering: .sequentiallyConsistent) >= configuration.maxBufferedRequests {
                // Every stream's consumer asks to resume while reads are paused, so whichever
                // drains last (not only this one) resumes them.
                for other in streams.values { other.flow.paused.store(true, ordering: .sequentiallyConsistent) }
                readPaused = true
                // The consumer may have caught up before it could see the flag.
                resumeReadingIfDrained()
            }
        }
        if frame.flags.contains(.endStream) {
            halfClose(call)
        }
    }

    private func halfClose(_ call: Call) {
        call.halfClosed = true
        if call.method.kind.singleRequest {
            guard let request = call.request else {
                fail(call, RPCError(.invalidArgument, "no request for \(call.method.kind) method \(call.method.path)"))
                return
            }
            call.request = nil
            start(call, input: .single(request))
        } else {
            call.continuation?.finish()
        }
    }

    private func start(_ call: Call, input: RPCCallInput) {
        let eventLoop = context!.eventLoop
        let loopBound = self.loopBound!
        let streamID = call.streamID
        let outbox = call.outbox
        let writer = RawResponseWriter { bytes in
            let (scheduleDrain, mustWait) = try outbox.enqueue(bytes)
            if scheduleDrain {
                eventLoop.execute { loopBound.value.drain(streamID) }
            }
            if mustWait { try await outbox.waitForRoom() }
        }
        let method = call.method
        let callContext = call.context
        let logger = self.logger
        call.task = Task {
            let outcome: Result<[UInt8]?, RPCError>
            do {
                outcome = .success(try await method.body(input, writer, callContext))
            } catch let error as RPCError {
                outcome = .failure(error)
            } catch is CancellationError {
                outcome = .failure(RPCError(.cancelled, "call cancelled"))
            } catch {
                logger.error("method failed", metadata: ["method": "\(method.path)", "error": "\(error)"])
                outcome = .failure(RPCError(.internal, "\(error)"))
            }
            eventLoop.execute { loopBound.value.complete(streamID, outcome) }
        }
    }

    /// Writes every response a streaming call has queued, as one buffer.
    private func drain(_ streamID: UInt32) {
        guard let call = streams[streamID], let context else { return }
        let batch = call.outbox.takeAll()
        if !batch.isEmpty {
            context.write(wrapOutboundOut(MessageOutbox.encode(batch, streamID: streamID, allocator: context.channel.allocator)), promise: nil)
            flushNow()
        }
        call.outbox.setWritable(context.channel.isWritable)
    }

    private func complete(_ streamID: UInt32, _ outcome: Result<[UInt8]?, RPCError>) {
        guard let call = streams[streamID] else { return }
        drain(streamID)
        switch outcome {
        case .success(let response):
            let returnsOne = call.method.kind == .unary || call.method.kind == .clientStreaming
            if returnsOne {
                guard let response else {
                    finish(call, RPCError(.internal, "method returned no response"))
                    return
                }
                writeMessage(streamID, response)
            }
            finish(call, nil)
        case .failure(let error):
            finish(call, error)
        }
    }

    private func resumeReadingIfDrained() {
        guard readPaused else { return }
        let low = configuration.maxBufferedRequests / 2
        guard !streams.values.contains(where: { $0.yielded - $0.flow.consumed.load(ordering: .sequentiallyConsistent) > low }) else { return }
        readPaused = false
        for call in streams.values { call.flow.paused.store(false, ordering: .sequentiallyConsistent) }
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    /// Ends a call early: stops its work and sends `error` as its status.
    private func fail(_ call: Call, _ error: RPCError) {
        call.task?.cancel()
        finish(call, error)
    }

    /// Sends the call's TRAILERS (OK when `error` is nil) and forgets the call.
    private func finish(_ call: Call, _ error: RPCError?) {
        guard streams.removeValue(forKey: call.streamID) != nil else { return }
        call.deadlineTimer?.cancel()
        call.continuation?.finish(throwing: error ?? RPCError(.cancelled, "call is over"))
        call.outbox.fail(error ?? RPCError(.cancelled, "the call is over"))
        writeTrailers(call.streamID, error)
        if let error {
            stats.callsFailedAtomic.add(1, ordering: .relaxed)
            logger.debug("call failed", metadata: ["method": "\(call.context.method)", "status": "\(error)"])
        } else {
            stats.callsServedAtomic.add(1, ordering: .relaxed)
        }
        resumeReadingIfDrained()
        if streams.isEmpty {
            // Nothing else in flight to coalesce with: send now rather than a loop turn later.
            flushNow()
            idleSince = context?.eventLoop.now ?? .now()
            if goAwaySent { closeConnection() }
        }
    }

    // MARK: Connection management

    /// Sends GOAWAY, refuses new calls, lets calls in flight finish within the grace period,
    /// then closes. Calls of `endingMethods` (long-lived streams that would otherwise hold
    /// the connection for the whole grace period) end at once with `UNAVAILABLE`.
    /// Must be called on the event loop.
    public func initiateGracefulShutdown(endingMethods: Set<String> = []) {
        guard !goAwaySent, !closing, context != nil else { return }
        sendGoAway(.ok, "server is shutting down")
        for call in Array(streams.values) where endingMethods.contains(call.method.path) {
            fail(call, RPCError(.unavailable, "server is shutting down"))
        }
        if streams.isEmpty {
            closeConnection()
            return
        }
        let loopBound = self.loopBound!
        graceTimer = context!.eventLoop.scheduleTask(in: configuration.shutdownGracePeriod) {
            let handler = loopBound.value
            for call in Array(handler.streams.values) {
                handler.fail(call, RPCError(.unavailable, "server shut down before the call finished"))
            }
            handler.closeConnection()
        }
    }

    private func tick() {
        guard !closing, context != nil else { return }
        let now = context!.eventLoop.now
        if let pingSentAt {
            if now - pingSentAt > configuration.keepaliveTimeout {
                logger.info("keepalive timeout: closing")
                closeConnection()
            }
        } else if now - lastActivity > configuration.keepaliveInterval {
            var body = ByteBuffer()
            body.writeInteger(UInt64(now.uptimeNanoseconds))
            write(Frame(type: .ping, streamID: 0, body: body))
            pingSentAt = now
        }
        if streams.isEmpty, !goAwaySent, now - idleSince > configuration.idleTimeout {
            logger.debug("idle timeout: closing")
            sendGoAway(.ok, "idle")
            closeConnection()
        }
    }

    private func connectionError(_ message: String) {
        guard !closing else { return }
        logger.warning("protocol error: closing connection", metadata: ["reason": "\(message)"])
        stats.recordRefusedConnection()
        sendGoAway(.invalidArgument, message)
        for call in Array(streams.values) {
            call.task?.cancel()
            call.continuation?.finish(throwing: RPCError(.unavailable, message))
            call.outbox.fail(RPCError(.unavailable, message))
            call.deadlineTimer?.cancel()
        }
        streams.removeAll()
        closeConnection()
    }

    private func sendGoAway(_ code: StatusCode, _ message: String) {
        goAwaySent = true
        let goAway = GoAway(lastStreamId: lastStreamID, code: code.rawValue, message: message)
        write(Frame(type: .goAway, streamID: 0, body: ByteBuffer(bytes: goAway.serializedBytes())))
    }

    private func closeConnection() {
        guard !closing, let context else { return }
        closing = true
        flushNow()
        context.close(promise: nil)
    }

    private func tearDown(reason: RPCError) {
        guard let housekeeping else { return }
        housekeeping.cancel()
        self.housekeeping = nil
        graceTimer?.cancel()
        for call in Array(streams.values) {
            call.task?.cancel()
            call.deadlineTimer?.cancel()
            call.continuation?.finish(throwing: reason)
            call.outbox.fail(reason)
        }
        streams.removeAll()
        stats.openConnectionsAtomic.subtract(1, ordering: .relaxed)
        onClose?()
    }

    // MARK: Writing

    private func writeMessage(_ streamID: UInt32, _ bytes: [UInt8]) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: Frame.headerLength + bytes.count)
        buffer.writeInteger(UInt32(bytes.count))
        buffer.writeInteger(FrameType.message.rawValue)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(streamID)
        buffer.writeBytes(bytes)
        context.write(wrapOutboundOut(buffer), promise: nil)
        scheduleFlush()
    }

    private func writeTrailers(_ streamID: UInt32, _ error: RPCError?) {
        let status = CallStatus(code: error?.code.rawValue ?? 0, message: error?.message ?? "", metadata: error?.metadata ?? [])
        write(Frame(type: .trailers, streamID: streamID, body: ByteBuffer(bytes: status.serializedBytes())))
    }

    private func write(_ frame: Frame) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: Frame.headerLength + frame.body.readableBytes)
        frame.write(to: &buffer)
        context.write(wrapOutboundOut(buffer), promise: nil)
        scheduleFlush()
    }

    /// Coalesces the flushes of everything written during one turn of the event loop.
    private func scheduleFlush() {
        guard !flushPending, let context else { return }
        flushPending = true
        let loopBound = self.loopBound!
        context.eventLoop.execute { loopBound.value.flushNow() }
    }

    private func flushNow() {
        flushPending = false
        context?.flush()
    }

    static func isValidMetadataKey(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2e || c == 0x5f || c == 0x2d
        }
    }
}
