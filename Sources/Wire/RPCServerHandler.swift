import GridBase
import GridProto
import Identity
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
/// - no frame is processed before the peer is authenticated;
/// - every byte reserved in the `MemoryBudget` for a call (its requests, its responses in
///   the socket's queue) is released exactly once: when the call ends, when the method takes
///   a streamed request, when the socket has taken the flush that carried a response, or
///   when the connection dies;
/// - response bytes are reserved when the response is written and released per flush, not
///   per response: everything written between two flushes is one batch
///   (`batchResponseBytes`), and the last write of the batch carries the one promise whose
///   completion releases it. A socket completes writes in order, so when that promise
///   completes every response of the batch has been taken (or the connection is gone);
/// - `batchResponseBytes > 0` implies `heldWrite != nil`.
///
/// Backpressure: the connection stops reading from the socket while its responses are not
/// being taken (the channel is not writable), while a streaming call's consumer lags, and
/// while the node's budget is under pressure and this connection has buffered requests.
public final class RPCServerHandler: ChannelDuplexHandler {
    public typealias InboundIn = FrameEvent
    public typealias OutboundIn = Never
    public typealias OutboundOut = ByteBuffer

    private final class Call {
        let streamID: UInt32
        let method: RPCMethod
        let context: RPCCallContext
        var request: [UInt8]?
        /// Bytes of `request` reserved in the budget.
        var reservedRequestBytes = 0
        /// Bytes of this call's responses written to the channel and not yet taken by the
        /// socket. Counted for the kinds that stream responses only: a single-response call
        /// writes once, so its bound check never applies.
        var unflushedResponseBytes = 0
        var continuation: AsyncThrowingStream<[UInt8], Error>.Continuation?
        /// Requests handed to the method body so far (streaming kinds).
        var yielded = 0
        let flow: InboundFlow
        /// Responses of streaming kinds, written in batches.
        let outbox = MessageOutbox()
        var halfClosed = false
        var task: Task<Void, Never>?
        var deadlineTimer: Scheduled<Void>?
        /// When the call's HEADERS arrived (its duration for `RPCServerObserver`).
        let startedAt = ContinuousClock.now

        init(streamID: UInt32, method: RPCMethod, context: RPCCallContext, budget: MemoryBudget?) {
            self.streamID = streamID
            self.method = method
            self.context = context
            self.flow = InboundFlow(budget: budget)
        }
    }

    private let router: RPCRouter
    private let configuration: RPCServerConfiguration
    private let stats: RPCServerStats
    private var logger: Logger
    private let onClose: (@Sendable () -> Void)?
    private let admission: ConnectionAdmission?
    private let budget: MemoryBudget?
    private let refusalLog: LogRateLimiter

    private var context: ChannelHandlerContext?
    private var loopBound: NIOLoopBound<RPCServerHandler>?
    private var peer: PeerIdentity?
    private var remoteAddress = "?"
    private var streams: [UInt32: Call] = [:]
    private var lastStreamID: UInt32 = 0
    private var goAwaySent = false
    private var closing = false
    private var flushPending = false
    /// The newest frame written since the last flush, not yet handed to the channel: the
    /// flush hands it on with the batch's promise (see the invariants), so that one promise
    /// per flush, not one per response, accounts the responses in the socket's queue.
    private var heldWrite: ByteBuffer?
    /// Response bytes written since the last flush, reserved in the budget; released when
    /// the flush's promise completes.
    private var batchResponseBytes = 0
    /// The response-streaming calls with bytes in the current batch, and how many each.
    private var batchStreamingCalls: [(Call, Int)] = []
    /// A streaming call's consumer lags (or the budget is under pressure): reads wait.
    private var flowPaused = false
    /// The channel is not writable (the client does not take our responses): reads wait.
    private var writePaused = false
    private var readPending = false
    /// Set when a connection limit refused this connection: every call gets this status
    /// until the connection closes.
    private var refusal: RPCError?
    private var lastActivity = NIODeadline.now()
    private var pingSentAt: NIODeadline?
    private var idleSince = NIODeadline.now()
    private var housekeeping: RepeatedTask?
    private var graceTimer: Scheduled<Void>?

    /// - Parameters:
    ///   - onClose: called once when the connection is gone (for server bookkeeping).
    ///   - admission: the connection's slot in the server's `ConnectionLimiter`; the peer is
    ///     admitted against it once authenticated, and it is released when the connection goes.
    ///   - budget: the node-wide memory budget; the frame decoder below must share it.
    ///   - refusalLog: rate limit of the log lines about refusals (shared by a server's connections).
    public init(
        router: RPCRouter, configuration: RPCServerConfiguration, stats: RPCServerStats,
        logger: Logger, onClose: (@Sendable () -> Void)? = nil,
        admission: ConnectionAdmission? = nil, budget: MemoryBudget? = nil,
        refusalLog: LogRateLimiter = LogRateLimiter()
    ) {
        self.router = router
        self.configuration = configuration
        self.stats = stats
        self.logger = logger
        self.onClose = onClose
        self.admission = admission
        self.budget = budget
        self.refusalLog = refusalLog
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
        dropBatch()
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
            if let reason = admission?.authenticate(authenticated.peer) {
                refuseConnection(reason, peer: authenticated.peer)
            }
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
            stats.observer?.connectionFailed(error)
            context.close(promise: nil)
        }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        for call in streams.values { call.outbox.setWritable(writable) }
        // A client that does not take its responses gets no more requests read.
        writePaused = !writable
        resumeReadingIfAllowed()
        context.fireChannelWritabilityChanged()
    }

    public func read(context: ChannelHandlerContext) {
        if flowPaused || writePaused {
            readPending = true
        } else {
            context.read()
        }
    }

    private func resumeReadingIfAllowed() {
        guard !flowPaused, !writePaused, readPending, let context else { return }
        readPending = false
        context.read()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        guard let peer else {
            connectionError("frame before the peer was authenticated")
            return
        }
        lastActivity = context.eventLoop.now
        pingSentAt = nil
        let event = unwrapInboundIn(data)
        if let refusal {
            answerRefused(event, refusal)
            return
        }
        switch event {
        case .refusedMessage(let streamID, let length):
            if let call = streams[streamID] {
                logRefusal("memory budget exhausted", metadata: [
                    "method": "\(call.context.method)", "bytes": "\(length)", "budget_used": "\(budget?.usedBytes ?? 0)",
                ])
                stats.callsOverBudgetAtomic.add(1, ordering: .relaxed)
                fail(call, RPCError(.resourceExhausted, "request of \(length) bytes does not fit the node's buffer budget (\(budget?.usedBytes ?? 0) of \(budget?.ceiling ?? 0) bytes in use); retry later"))
            } else if streamID > lastStreamID {
                connectionError("MESSAGE on stream \(streamID) that was never opened")
            }
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
            writeTrailers(streamID, RPCError(.invalidArgument, "invalid metadata key \(Bounded.quote(bad.key))"))
            return
        }
        guard let method = router.method(headers.method) else {
            logRefusal("unknown method", metadata: ["method": "\(Bounded.quote(headers.method))"], level: .info)
            writeTrailers(streamID, RPCError(.unimplemented, "unknown method \(Bounded.quote(headers.method))"))
            stats.observer?.callFinished(method: nil, code: .unimplemented, duration: .zero)
            return
        }
        guard method.allowedRoles.contains(peer.role) else {
            stats.callsRoleRefusedAtomic.add(1, ordering: .relaxed)
            logRefusal("call refused: role not allowed", metadata: [
                "method": "\(headers.method)", "role": "\(peer.role.rawValue)", "peer": "\(Bounded.quote(peer.name))",
                "district": "\(peer.district.map { Bounded.quote($0) } ?? "(none)")",
            ], key: "role:\(peer.role.rawValue):\(peer.name):\(peer.serial)")
            writeTrailers(streamID, RPCError(.permissionDenied, "role \(peer.role.rawValue) may not call \(headers.method)"))
            stats.observer?.callFinished(method: headers.method, code: .permissionDenied, duration: .zero)
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
        let call = Call(streamID: streamID, method: method, context: callContext, budget: budget)
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
            let raw = RawRequestStream(stream: stream) { bytes in
                if flow.didConsume(bytes: bytes) {
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
        // The decoder reserved the body in the budget: from here it is this call's to release.
        let reserved = budget == nil ? 0 : frame.body.readableBytes
        guard let call = streams[frame.streamID] else {
            budget?.release(reserved)
            if frame.streamID > lastStreamID {
                connectionError("MESSAGE on stream \(frame.streamID) that was never opened")
            }
            return
        }
        guard !call.halfClosed else {
            budget?.release(reserved)
            fail(call, RPCError(.invalidArgument, "MESSAGE after END_STREAM"))
            return
        }
        let bytes = Array(frame.body.readableBytesView)
        if call.method.kind.singleRequest {
            guard call.request == nil else {
                budget?.release(reserved)
                fail(call, RPCError(.invalidArgument, "more than one request for \(call.method.kind) method \(call.method.path)"))
                return
            }
            call.request = bytes
            call.reservedRequestBytes = reserved
        } else {
            call.yielded += 1
            call.flow.didBuffer(reserved)
            call.continuation?.yield(bytes)
            if mustPause(call) {
                // Every stream's consumer asks to resume while reads are paused, so whichever
                // drains last (not only this one) resumes them.
                for other in streams.values { other.flow.paused.store(true, ordering: .sequentiallyConsistent) }
                flowPaused = true
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
                logger.error("method failed", metadata: ["method": "\(method.path)", "error": "\(Bounded.truncate("\(error)"))"])
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
            let buffer = MessageOutbox.encode(batch, streamID: streamID, allocator: context.channel.allocator)
            guard writeResponse(call, buffer) else { return }
            flushNow()
        }
        call.outbox.setWritable(context.channel.isWritable)
    }

    /// Writes response bytes of `call`, counted against the budget and the call's unflushed
    /// bound until the socket has taken them (released with the batch of the next flush).
    /// False when they do not fit: the call is then ended with `RESOURCE_EXHAUSTED` (nothing
    /// written). The caller schedules the flush.
    private func writeResponse(_ call: Call, _ buffer: ByteBuffer) -> Bool {
        guard let context else { return false }
        let bytes = buffer.readableBytes
        if call.unflushedResponseBytes + bytes > configuration.maxUnflushedResponseBytes, call.unflushedResponseBytes > 0 {
            stats.callsOverBudgetAtomic.add(1, ordering: .relaxed)
            logRefusal("client does not read its responses", metadata: ["method": "\(call.context.method)", "unflushed": "\(call.unflushedResponseBytes)"])
            fail(call, RPCError(.resourceExhausted, "the client has not read \(call.unflushedResponseBytes) bytes of responses (limit \(configuration.maxUnflushedResponseBytes))"))
            return false
        }
        if let budget, !budget.tryReserve(bytes) {
            stats.callsOverBudgetAtomic.add(1, ordering: .relaxed)
            logRefusal("memory budget exhausted", metadata: ["method": "\(call.context.method)", "bytes": "\(bytes)", "budget_used": "\(budget.usedBytes)"])
            fail(call, RPCError(.resourceExhausted, "response of \(bytes) bytes does not fit the node's buffer budget (\(budget.usedBytes) of \(budget.ceiling) bytes in use); retry later"))
            return false
        }
        batchResponseBytes += bytes
        if !call.method.kind.singleResponse {
            call.unflushedResponseBytes += bytes
            batchStreamingCalls.append((call, bytes))
        }
        hold(buffer, context: context)
        return true
    }

    private func complete(_ streamID: UInt32, _ outcome: Result<[UInt8]?, RPCError>) {
        guard let call = streams[streamID] else { return }
        drain(streamID)
        switch outcome {
        case .success(let response):
            if call.method.kind.singleResponse {
                guard let response else {
                    finish(call, RPCError(.internal, "method returned no response"))
                    return
                }
                guard writeMessage(call, response) else { return }
            }
            finish(call, nil)
        case .failure(let error):
            finish(call, error)
        }
    }

    /// Whether a streaming call's buffered requests must stop the connection's reads: its
    /// consumer lags `maxBufferedRequests` messages or `maxBufferedRequestBytes` bytes, or the
    /// node's budget is under pressure and the call holds some of it.
    private func mustPause(_ call: Call) -> Bool {
        let lagging = call.yielded - call.flow.consumed.load(ordering: .sequentiallyConsistent)
        let bytes = call.flow.bufferedBytes
        return lagging >= configuration.maxBufferedRequests || bytes > configuration.maxBufferedRequestBytes
            || (bytes > 0 && budget?.isUnderPressure == true)
    }

    private func resumeReadingIfDrained() {
        guard flowPaused else { return }
        let low = configuration.maxBufferedRequests / 2
        let lowBytes = configuration.maxBufferedRequestBytes / 2
        let pressure = budget?.isUnderPressure == true
        guard !streams.values.contains(where: {
            let bytes = $0.flow.bufferedBytes
            return $0.yielded - $0.flow.consumed.load(ordering: .sequentiallyConsistent) > low || bytes > lowBytes || (pressure && bytes > 0)
        }) else { return }
        flowPaused = false
        for call in streams.values { call.flow.paused.store(false, ordering: .sequentiallyConsistent) }
        resumeReadingIfAllowed()
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
        releaseRequests(call)
        writeTrailers(call.streamID, error)
        stats.observer?.callFinished(method: call.context.method, code: error?.code ?? .ok, duration: ContinuousClock.now - call.startedAt)
        if let error {
            stats.callsFailedAtomic.add(1, ordering: .relaxed)
            logger.debug("call failed", metadata: ["method": "\(call.context.method)", "status": "\(error.code): \(Bounded.statusMessage(error.message))"])
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
            releaseRequests(call)
        }
        streams.removeAll()
        closeConnection()
    }

    private func sendGoAway(_ code: StatusCode, _ message: String) {
        goAwaySent = true
        let goAway = GoAway(lastStreamId: lastStreamID, code: code.rawValue, message: Bounded.statusMessage(message))
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
            releaseRequests(call)
        }
        streams.removeAll()
        dropBatch()
        admission?.release()
        stats.openConnectionsAtomic.subtract(1, ordering: .relaxed)
        onClose?()
    }

    // MARK: Writing

    /// Writes the single response of `call`; false when it did not fit (the call was ended).
    private func writeMessage(_ call: Call, _ bytes: [UInt8]) -> Bool {
        guard let context else { return false }
        var buffer = context.channel.allocator.buffer(capacity: Frame.headerLength + bytes.count)
        buffer.writeInteger(UInt32(bytes.count))
        buffer.writeInteger(FrameType.message.rawValue)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(call.streamID)
        buffer.writeBytes(bytes)
        guard writeResponse(call, buffer) else { return false }
        scheduleFlush()
        return true
    }

    /// The one place a status leaves the server: its message is bounded
    /// (`Bounded.statusMessage`) and the frame never exceeds the receiver's TRAILERS limit
    /// (metadata that would push it over is dropped, and the message says so).
    private func writeTrailers(_ streamID: UInt32, _ error: RPCError?) {
        write(Frame(type: .trailers, streamID: streamID, body: ByteBuffer(bytes: Self.trailersBody(error, limit: configuration.limits.maxHeadersBytes))))
    }

    static func trailersBody(_ error: RPCError?, limit: Int) -> [UInt8] {
        let message = Bounded.statusMessage(error?.message ?? "")
        let status = CallStatus(code: error?.code.rawValue ?? 0, message: message, metadata: error?.metadata ?? [])
        let body = status.serializedBytes()
        if body.count <= limit { return body }
        let bare = CallStatus(code: status.code, message: message + " (trailer metadata of \(body.count) bytes dropped)", metadata: [])
        return bare.serializedBytes()
    }

    // MARK: Limits

    /// Releases the request bytes `call` holds in the budget.
    private func releaseRequests(_ call: Call) {
        budget?.release(call.reservedRequestBytes)
        call.reservedRequestBytes = 0
        call.flow.close()
    }

    /// A connection limit refused the authenticated peer: GOAWAY(RESOURCE_EXHAUSTED) with
    /// the reason, calls that still arrive get the same status, and the connection closes
    /// after `refusalLinger` (so the client reads the reason rather than a reset).
    private func refuseConnection(_ reason: String, peer: PeerIdentity) {
        guard let context else { return }
        refusal = RPCError(.resourceExhausted, "connection refused: \(reason); retry later")
        stats.recordConnectionOverLimit()
        logRefusal("connection refused", metadata: ["reason": "\(reason)"], key: "connection refused \(peer.role.rawValue)")
        sendGoAway(.resourceExhausted, refusal!.message)
        flushNow()
        let loopBound = self.loopBound!
        context.eventLoop.scheduleTask(in: configuration.refusalLinger) {
            loopBound.value.closeConnection()
        }
    }

    /// Frames of a refused connection: each new call gets the refusal; nothing is started.
    private func answerRefused(_ event: FrameEvent, _ refusal: RPCError) {
        guard case .frame(let frame) = event, frame.type == .headers else { return }
        guard frame.streamID % 2 == 1, frame.streamID > lastStreamID else {
            closeConnection()
            return
        }
        lastStreamID = frame.streamID
        writeTrailers(frame.streamID, refusal)
    }

    /// Logs a refusal at most once per kind every few seconds (with how many were not logged).
    private func logRefusal(_ what: String, metadata: Logger.Metadata, level: Logger.Level = .warning, key: String? = nil) {
        let (log, suppressed) = refusalLog.shouldLog(key ?? what)
        guard log else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed_since_last"] = "\(suppressed)" }
        logger.log(level: level, "\(what)", metadata: metadata)
    }

    private func write(_ frame: Frame) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: Frame.headerLength + frame.body.readableBytes)
        frame.write(to: &buffer)
        hold(buffer, context: context)
        scheduleFlush()
    }

    /// Every frame leaves through here: the frame held so far goes to the channel (no
    /// promise: the flush's promise on a later write covers it) and `buffer` is held in its
    /// place until the next write or flush. Order on the wire is the order of calls.
    private func hold(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        if let previous = heldWrite {
            context.write(wrapOutboundOut(previous), promise: nil)
        }
        heldWrite = buffer
    }

    /// The connection is gone: the held frame will never be written, so the batch's bytes
    /// are released here (exactly once: the batch is emptied).
    private func dropBatch() {
        heldWrite = nil
        budget?.release(batchResponseBytes)
        batchResponseBytes = 0
        for (call, bytes) in batchStreamingCalls { call.unflushedResponseBytes -= bytes }
        batchStreamingCalls = []
    }

    /// Coalesces the flushes of everything written during one turn of the event loop.
    private func scheduleFlush() {
        guard !flushPending, let context else { return }
        flushPending = true
        let loopBound = self.loopBound!
        context.eventLoop.execute { loopBound.value.flushNow() }
    }

    /// Hands the held frame to the channel, with the batch's promise when the batch holds
    /// response bytes, and flushes. One promise and one callback per flush, whatever the
    /// number of responses in it.
    private func flushNow() {
        flushPending = false
        guard let context else {
            dropBatch()
            return
        }
        if let last = heldWrite {
            heldWrite = nil
            if batchResponseBytes > 0 {
                let bytes = batchResponseBytes
                let calls = batchStreamingCalls
                batchResponseBytes = 0
                batchStreamingCalls = []
                let budget = self.budget
                let promise = context.eventLoop.makePromise(of: Void.self)
                promise.futureResult.assumeIsolated().whenComplete { _ in
                    budget?.release(bytes)
                    for (call, sent) in calls { call.unflushedResponseBytes -= sent }
                }
                context.write(wrapOutboundOut(last), promise: promise)
            } else {
                context.write(wrapOutboundOut(last), promise: nil)
            }
        }
        context.flush()
    }

    static func isValidMetadataKey(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2e || c == 0x5f || c == 0x2d
        }
    }
}
