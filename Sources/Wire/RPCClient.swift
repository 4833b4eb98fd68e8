import GridProto
import Identity
import NIOCore

/// A client connection speaking the GridLedger RPC protocol.
///
/// Created over a channel whose pipeline already holds the security handler (which fires
/// `PeerAuthenticatedEvent`), a `ByteToMessageHandler(FrameDecoder)` and the
/// `RPCClientHandler`; see `RPCClient.connect(channel:handler:)`.
///
/// Thread safety: every method may be called from any task; all connection state lives
/// on the channel's event loop.
public final class RPCClient: Sendable {
    public let channel: Channel
    /// The server's identity from its verified certificate.
    public let serverIdentity: PeerIdentity
    private let handler: NIOLoopBound<RPCClientHandler>

    private init(channel: Channel, handler: NIOLoopBound<RPCClientHandler>, serverIdentity: PeerIdentity) {
        self.channel = channel
        self.handler = handler
        self.serverIdentity = serverIdentity
    }

    /// Waits for the peer to be authenticated on `channel`, whose pipeline ends in `handler`.
    public static func connect(channel: Channel, handler: NIOLoopBound<RPCClientHandler>) async throws -> RPCClient {
        let identity = try await channel.eventLoop.flatSubmit { handler.value.waitAuthenticated() }.get()
        return RPCClient(channel: channel, handler: handler, serverIdentity: identity)
    }

    /// Adds the frame decoder and a client handler to `pipeline` (on its event loop) and
    /// returns the handler for `connect(channel:handler:)`.
    public static func addHandlers(
        to pipeline: ChannelPipeline, limits: FrameLimits = FrameLimits()
    ) throws -> NIOLoopBound<RPCClientHandler> {
        pipeline.eventLoop.preconditionInEventLoop()
        let handler = RPCClientHandler(limits: limits)
        try pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(limits: limits)))
        try pipeline.syncOperations.addHandler(handler)
        return NIOLoopBound(handler, eventLoop: pipeline.eventLoop)
    }

    /// Closes the connection (a TLS close_notify is sent by the security handler).
    public func close() async {
        try? await channel.close()
    }

    // MARK: Calls

    /// A unary call. Throws `RPCError` with the server's status, or a local
    /// `DEADLINE_EXCEEDED` / `UNAVAILABLE` / `RESOURCE_EXHAUSTED`.
    public func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: String, _ request: Request, as: Response.Type = Response.self,
        timeout: TimeAmount? = nil, metadata: [MetadataEntry] = []
    ) async throws -> Response {
        let bytes = try await unaryBytes(method, request.serializedBytes(), timeout: timeout, metadata: metadata)
        return try Self.decode(bytes)
    }

    /// A unary call on serialized messages.
    public func unaryBytes(
        _ method: String, _ request: [UInt8], timeout: TimeAmount? = nil, metadata: [MetadataEntry] = []
    ) async throws -> [UInt8] {
        let handler = self.handler
        let eventLoop = channel.eventLoop
        let promise = eventLoop.makePromise(of: [UInt8].self)
        let opened: EventLoopFuture<UInt32?> = eventLoop.submit {
            handler.value.open(
                method: method, metadata: metadata, timeout: timeout, requests: [request], halfClose: true,
                promise: promise, continuation: nil)
        }
        // Cancelling the calling task cancels the call (a CANCEL frame to the server) and
        // fails it with CANCELLED, instead of waiting for an answer nobody wants.
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            opened.whenSuccess { id in
                guard let id else { return }
                handler.value.cancel(id, RPCError(.cancelled, "cancelled by the caller"))
            }
        }
    }

    /// A server-streaming call: the responses as they arrive. The sequence throws
    /// `RPCError` when the call ends with another status than OK. Abandoning the iteration
    /// cancels the call on the server.
    public func serverStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: String, _ request: Request, as: Response.Type = Response.self,
        timeout: TimeAmount? = nil, metadata: [MetadataEntry] = []
    ) -> ResponseStream<Response> {
        let (raw, _) = openStream(method, requests: [request.serializedBytes()], halfClose: true, timeout: timeout, metadata: metadata)
        return ResponseStream(raw: raw)
    }

    /// A client-streaming call: send requests, then `finish()` for the response.
    public func clientStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: String, requestType: Request.Type = Request.self, responseType: Response.Type = Response.self,
        timeout: TimeAmount? = nil, metadata: [MetadataEntry] = []
    ) async throws -> ClientStreamingCall<Request, Response> {
        let handler = self.handler
        let eventLoop = channel.eventLoop
        let promise = eventLoop.makePromise(of: [UInt8].self)
        let outbox = MessageOutbox()
        let streamID = try await eventLoop.submit {
            handler.value.open(
                method: method, metadata: metadata, timeout: timeout, requests: [], halfClose: false,
                promise: promise, continuation: nil, outbox: outbox)
        }.get()
        guard let streamID else {
            return ClientStreamingCall(sender: nil, response: promise.futureResult)
        }
        return ClientStreamingCall(
            sender: RequestSender(handler: handler, eventLoop: eventLoop, streamID: streamID, outbox: outbox),
            response: promise.futureResult)
    }

    /// A bidirectional call: send requests through `call.send`, end them with
    /// `call.closeSend()`, read `call.responses`.
    public func bidirectional<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: String, requestType: Request.Type = Request.self, responseType: Response.Type = Response.self,
        timeout: TimeAmount? = nil, metadata: [MetadataEntry] = []
    ) async throws -> BidirectionalCall<Request, Response> {
        let outbox = MessageOutbox()
        let (raw, streamID) = openStream(method, requests: [], halfClose: false, timeout: timeout, metadata: metadata, outbox: outbox)
        let id = try await streamID.get()
        let sender = id.map { RequestSender(handler: handler, eventLoop: channel.eventLoop, streamID: $0, outbox: outbox) }
        return BidirectionalCall(sender: sender, responses: ResponseStream(raw: raw))
    }

    private func openStream(
        _ method: String, requests: [[UInt8]], halfClose: Bool, timeout: TimeAmount?, metadata: [MetadataEntry],
        outbox: MessageOutbox? = nil
    ) -> (RawResponseStream, EventLoopFuture<UInt32?>) {
        let handler = self.handler
        let eventLoop = channel.eventLoop
        let (stream, continuation) = AsyncThrowingStream<[UInt8], Error>.makeStream()
        let flow = InboundFlow()
        let opened = eventLoop.submit {
            handler.value.open(
                method: method, metadata: metadata, timeout: timeout, requests: requests, halfClose: halfClose,
                promise: nil, continuation: continuation, flow: flow, outbox: outbox)
        }
        let streamIDBox = opened
        continuation.onTermination = { termination in
            guard case .cancelled = termination else { return }
            streamIDBox.whenSuccess { id in
                guard let id else { return }
                handler.value.cancel(id, RPCError(.cancelled, "cancelled by the caller"))
            }
        }
        let consumed: @Sendable () -> Void = {
            if flow.didConsume() {
                eventLoop.execute { handler.value.resumeReadingIfDrained() }
            }
        }
        let cancel: @Sendable () -> Void = {
            streamIDBox.whenSuccess { id in
                guard let id else { return }
                handler.value.cancel(id, RPCError(.cancelled, "cancelled by the caller"))
            }
        }
        return (RawResponseStream(stream: stream, onConsumed: consumed, cancel: cancel), opened)
    }

    static func decode<M: ProtoMessage>(_ bytes: [UInt8]) throws -> M {
        do {
            return try M(serializedBytes: bytes)
        } catch {
            throw RPCError(.internal, "response does not decode: \(error)")
        }
    }
}

/// Sends requests on one open call.
struct RequestSender: Sendable {
    let handler: NIOLoopBound<RPCClientHandler>
    let eventLoop: EventLoop
    let streamID: UInt32
    let outbox: MessageOutbox

    /// Queues one request (no hop to the event loop unless a drain must be scheduled);
    /// waits while the connection is congested.
    func send(_ bytes: [UInt8]) async throws {
        let (scheduleDrain, mustWait) = try outbox.enqueue(bytes)
        if scheduleDrain {
            let handler = self.handler
            let streamID = self.streamID
            eventLoop.execute { handler.value.drain(streamID) }
        }
        if mustWait { try await outbox.waitForRoom() }
    }

    /// Half-closes after every queued request.
    func closeSend() async throws {
        let handler = self.handler
        let streamID = self.streamID
        try await eventLoop.submit { handler.value.end(streamID) }.get()
    }

    func cancel() {
        let handler = self.handler
        let streamID = self.streamID
        eventLoop.execute { handler.value.cancel(streamID, RPCError(.cancelled, "cancelled by the caller")) }
    }
}

/// Serialized responses of a streaming call.
struct RawResponseStream: Sendable {
    let stream: AsyncThrowingStream<[UInt8], Error>
    let onConsumed: @Sendable () -> Void
    let cancel: @Sendable () -> Void
}

/// The responses of a server-streaming or bidirectional call, in order.
public struct ResponseStream<Response: ProtoMessage>: AsyncSequence, Sendable {
    public typealias Element = Response
    let raw: RawResponseStream

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<[UInt8], Error>.AsyncIterator
        let onConsumed: @Sendable () -> Void
        let guardian: CancelOnDeinit

        public mutating func next() async throws -> Response? {
            do {
                guard let bytes = try await base.next() else {
                    guardian.finished()
                    return nil
                }
                onConsumed()
                return try RPCClient.decode(bytes)
            } catch {
                guardian.finished()
                throw error
            }
        }
    }

    /// Each iterator cancels the call when it is dropped before the stream ended (a
    /// `break` out of a `for try await` loop).
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: raw.stream.makeAsyncIterator(), onConsumed: raw.onConsumed, guardian: CancelOnDeinit(raw.cancel))
    }
}

/// Runs `cancel` on deinit unless `finished()` was called first.
final class CancelOnDeinit: @unchecked Sendable {
    private let cancel: @Sendable () -> Void
    private var done = false

    init(_ cancel: @escaping @Sendable () -> Void) { self.cancel = cancel }

    func finished() { done = true }

    deinit {
        if !done { cancel() }
    }
}

/// An open client-streaming call.
public struct ClientStreamingCall<Request: ProtoMessage, Response: ProtoMessage>: Sendable {
    let sender: RequestSender?
    let response: EventLoopFuture<[UInt8]>

    /// Sends one request; waits while the connection is congested.
    public func send(_ request: Request) async throws {
        guard let sender else { throw try await failure() }
        try await sender.send(request.serializedBytes())
    }

    /// Half-closes and waits for the single response.
    public func finish() async throws -> Response {
        if let sender { try? await sender.closeSend() }
        return try RPCClient.decode(try await response.get())
    }

    /// Abandons the call.
    public func cancel() { sender?.cancel() }

    private func failure() async throws -> Error {
        do {
            _ = try await response.get()
            return RPCError(.internal, "call is over")
        } catch {
            return error
        }
    }
}

/// An open bidirectional call.
public struct BidirectionalCall<Request: ProtoMessage, Response: ProtoMessage>: Sendable {
    let sender: RequestSender?
    public let responses: ResponseStream<Response>

    public func send(_ request: Request) async throws {
        guard let sender else { throw RPCError(.unavailable, "call was not opened") }
        try await sender.send(request.serializedBytes())
    }

    /// Tells the server no more requests follow.
    public func closeSend() async throws {
        guard let sender else { throw RPCError(.unavailable, "call was not opened") }
        try await sender.closeSend()
    }

    public func cancel() { sender?.cancel() }
}
