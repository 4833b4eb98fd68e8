import GridBase
import GridProto
import Identity
import Logging
import NIOCore

/// The client end of one connection: opens streams, matches responses and trailers to
/// them, enforces deadlines locally and answers the server's PINGs.
///
/// Thread safety: confined to the channel's event loop; `RPCClient` hops onto it.
/// Invariant: every call in `calls` has a pending result (promise or stream continuation)
/// that is completed exactly once: by TRAILERS, a local deadline, a cancellation,
/// GOAWAY or the connection closing.
public final class RPCClientHandler: ChannelDuplexHandler {
    public typealias InboundIn = FrameEvent
    public typealias OutboundIn = Never
    public typealias OutboundOut = ByteBuffer

    final class Call {
        let streamID: UInt32
        let method: String
        /// For unary and client-streaming calls: the one response.
        var promise: EventLoopPromise<[UInt8]>?
        var response: [UInt8]?
        /// For server-streaming and bidirectional calls: every response.
        var continuation: AsyncThrowingStream<[UInt8], Error>.Continuation?
        /// Responses handed to the consumer so far, and what it has taken.
        var yielded = 0
        var flow: InboundFlow?
        /// Requests queued by the caller for streaming kinds.
        var outbox: MessageOutbox?
        var deadlineTimer: Scheduled<Void>?

        init(streamID: UInt32, method: String) {
            self.streamID = streamID
            self.method = method
        }

        func fail(_ error: Error) {
            deadlineTimer?.cancel()
            outbox?.fail(error)
            promise?.fail(error)
            continuation?.finish(throwing: error)
        }
    }

    private let limits: FrameLimits
    private let maxBufferedResponses: Int
    private var context: ChannelHandlerContext?
    private(set) var loopBound: NIOLoopBound<RPCClientHandler>?
    private var calls: [UInt32: Call] = [:]
    private var nextStreamID: UInt32 = 1
    private var unusable: RPCError?
    private var authenticated: EventLoopPromise<PeerIdentity>?
    private var readPaused = false
    private var readPending = false

    public init(limits: FrameLimits = FrameLimits(), maxBufferedResponses: Int = 256) {
        self.limits = limits
        self.maxBufferedResponses = maxBufferedResponses
    }

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        authenticated = context.eventLoop.makePromise(of: PeerIdentity.self)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        shutDown(RPCError(.unavailable, "connection closed"))
        self.context = nil
        // Break the handler → loopBound → handler cycle; hops already queued hold their own copy.
        loopBound = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        shutDown(RPCError(.unavailable, "connection closed"))
        context.fireChannelInactive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? PeerAuthenticatedEvent {
            authenticated?.succeed(event.peer)
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        let reason: RPCError
        if let protocolError = error as? WireProtocolError {
            reason = RPCError(.internal, "\(protocolError)")
        } else if let rpcError = error as? RPCError {
            reason = rpcError
        } else {
            reason = RPCError(.unavailable, "\(error)")
        }
        shutDown(reason)
        context.close(promise: nil)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        for call in calls.values { call.outbox?.setWritable(writable) }
        context.fireChannelWritabilityChanged()
    }

    public func read(context: ChannelHandlerContext) {
        if readPaused { readPending = true } else { context.read() }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .oversizedMessage(let streamID, let length):
            if let call = calls.removeValue(forKey: streamID) {
                call.fail(RPCError(.resourceExhausted, "response of \(length) bytes exceeds the limit of \(limits.maxMessageBytes) bytes"))
                writeFrame(.cancel, streamID: streamID, body: [])
                flush()
            }
        case .refusedMessage(let streamID, let length):
            // Only a decoder given a memory budget refuses; a client's has none, but a
            // refusal is handled like an oversized response all the same.
            if let call = calls.removeValue(forKey: streamID) {
                call.fail(RPCError(.resourceExhausted, "response of \(length) bytes does not fit the memory budget"))
                writeFrame(.cancel, streamID: streamID, body: [])
                flush()
            }
        case .frame(let frame):
            switch frame.type {
            case .message:
                guard let call = calls[frame.streamID] else { return }
                let bytes = Array(frame.body.readableBytesView)
                if let continuation = call.continuation {
                    call.yielded += 1
                    continuation.yield(bytes)
                    if let flow = call.flow, call.yielded - flow.consumed.load(ordering: .sequentiallyConsistent) >= maxBufferedResponses {
                        // Every stream's consumer asks to resume while reads are paused, so
                        // whichever drains last (not only this one) resumes them.
                        for other in calls.values { other.flow?.paused.store(true, ordering: .sequentiallyConsistent) }
                        readPaused = true
                        resumeReadingIfDrained()
                    }
                } else if call.response == nil {
                    call.response = bytes
                } else {
                    calls.removeValue(forKey: frame.streamID)
                    call.fail(RPCError(.internal, "server sent more than one response to \(call.method)"))
                }
            case .trailers:
                guard let call = calls.removeValue(forKey: frame.streamID) else { return }
                call.deadlineTimer?.cancel()
                let status = (try? CallStatus(serializedBytes: Array(frame.body.readableBytesView)))
                    ?? CallStatus(code: StatusCode.internal.rawValue, message: "malformed TRAILERS", metadata: [])
                if status.code != StatusCode.ok.rawValue {
                    call.fail(RPCError(StatusCode(rawValue: status.code), status.message, metadata: status.metadata))
                } else if let continuation = call.continuation {
                    continuation.finish()
                } else if let response = call.response {
                    call.promise?.succeed(response)
                } else {
                    call.promise?.fail(RPCError(.internal, "server sent no response to \(call.method)"))
                }
            case .ping:
                if !frame.flags.contains(.ack) {
                    writeFrame(.ping, flags: .ack, streamID: 0, body: Array(frame.body.readableBytesView))
                    flush()
                }
            case .goAway:
                let goAway = try? GoAway(serializedBytes: Array(frame.body.readableBytesView))
                let message = goAway.map { "server sent GOAWAY: \($0.message)" } ?? "server sent GOAWAY"
                // A server refusing the connection for a limit says RESOURCE_EXHAUSTED (retry
                // later or elsewhere); any other GOAWAY makes the connection UNAVAILABLE.
                let code: StatusCode = goAway?.code == StatusCode.resourceExhausted.rawValue ? .resourceExhausted : .unavailable
                unusable = RPCError(code, message)
                // A GOAWAY with an error code abandons every call; a graceful one only those
                // the server never started.
                let last = goAway?.code == StatusCode.ok.rawValue ? goAway?.lastStreamId ?? 0 : 0
                for (id, call) in calls where id > last {
                    calls.removeValue(forKey: id)
                    call.fail(RPCError(code, message))
                }
            case .headers, .cancel, .end:
                shutDown(RPCError(.internal, "server sent a \(frame.type) frame"))
                context.close(promise: nil)
            }
        }
    }

    // MARK: Calls (event loop only)

    func waitAuthenticated() -> EventLoopFuture<PeerIdentity> {
        authenticated!.futureResult
    }

    /// Opens a call: HEADERS, then `requests`, with END_STREAM on the last frame when
    /// `halfClose` is set. Exactly one of `promise` / `continuation` receives the result.
    func open(
        method: String, metadata: [MetadataEntry], timeout: TimeAmount?, requests: [[UInt8]], halfClose: Bool,
        promise: EventLoopPromise<[UInt8]>?, continuation: AsyncThrowingStream<[UInt8], Error>.Continuation?,
        flow: InboundFlow? = nil, outbox: MessageOutbox? = nil
    ) -> UInt32? {
        let call = Call(streamID: nextStreamID, method: method)
        call.promise = promise
        call.continuation = continuation
        call.flow = flow
        call.outbox = outbox
        if let unusable {
            call.fail(unusable)
            return nil
        }
        guard let context else {
            call.fail(RPCError(.unavailable, "connection closed"))
            return nil
        }
        let streamID = nextStreamID
        nextStreamID += 2
        calls[streamID] = call
        var headers = CallHeaders(method: method, timeoutMs: 0, metadata: metadata)
        if let timeout {
            headers.timeoutMs = UInt64(max(1, timeout.nanoseconds / 1_000_000))
            let loopBound = self.loopBound!
            let timeoutMs = headers.timeoutMs
            call.deadlineTimer = context.eventLoop.scheduleTask(in: timeout) {
                loopBound.value.cancel(streamID, RPCError(.deadlineExceeded, "deadline of \(timeoutMs) ms exceeded"))
            }
        }
        writeFrame(.headers, flags: requests.isEmpty && halfClose ? .endStream : [], streamID: streamID, body: headers.serializedBytes())
        for (i, request) in requests.enumerated() {
            writeFrame(.message, flags: halfClose && i == requests.count - 1 ? .endStream : [], streamID: streamID, body: request)
        }
        flush()
        return streamID
    }

    /// Writes the requests the caller queued on `streamID`, as one buffer.
    func drain(_ streamID: UInt32) {
        guard let call = calls[streamID], let outbox = call.outbox, let context else { return }
        let batch = outbox.takeAll()
        if !batch.isEmpty {
            context.write(wrapOutboundOut(MessageOutbox.encode(batch, streamID: streamID, allocator: context.channel.allocator)), promise: nil)
            flush()
        }
        outbox.setWritable(context.channel.isWritable)
    }

    /// Half-closes `streamID` after its queued requests (an END frame).
    func end(_ streamID: UInt32) {
        guard calls[streamID] != nil else { return }
        drain(streamID)
        writeFrame(.end, streamID: streamID, body: nil)
        flush()
    }

    /// Abandons a call: fails it locally with `error` and tells the server with CANCEL.
    func cancel(_ streamID: UInt32, _ error: RPCError) {
        guard let call = calls.removeValue(forKey: streamID) else { return }
        call.fail(error)
        writeFrame(.cancel, streamID: streamID, body: [])
        flush()
    }

    func resumeReadingIfDrained() {
        guard readPaused else { return }
        let low = maxBufferedResponses / 2
        guard !calls.values.contains(where: { call in
            guard let flow = call.flow else { return false }
            return call.yielded - flow.consumed.load(ordering: .sequentiallyConsistent) > low
        }) else { return }
        readPaused = false
        for call in calls.values { call.flow?.paused.store(false, ordering: .sequentiallyConsistent) }
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    private func shutDown(_ reason: RPCError) {
        if unusable == nil { unusable = reason }
        authenticated?.fail(reason)
        let pending = calls
        calls.removeAll()
        for call in pending.values { call.fail(reason) }
    }

    private func writeFrame(_ type: FrameType, flags: FrameFlags = [], streamID: UInt32, body: [UInt8]?) {
        guard let context else { return }
        let count = body?.count ?? 0
        var buffer = context.channel.allocator.buffer(capacity: Frame.headerLength + count)
        buffer.writeInteger(UInt32(count))
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(flags.rawValue)
        buffer.writeInteger(streamID)
        if let body { buffer.writeBytes(body) }
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    private func flush() {
        context?.flush()
    }
}
