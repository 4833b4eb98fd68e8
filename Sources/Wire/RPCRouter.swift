import GridProto
import Identity
import NIOCore

/// What a handler knows about the call it serves.
public struct RPCCallContext: Sendable {
    /// The authenticated caller.
    public var peer: PeerIdentity
    /// Full method path, e.g. `/gridledger.Ops/GetStatus`.
    public var method: String
    public var metadata: [MetadataEntry]
    /// When the caller stops waiting; nil when the call has no deadline.
    public var deadline: NIODeadline?
    public var remoteAddress: String

    public init(peer: PeerIdentity, method: String, metadata: [MetadataEntry] = [], deadline: NIODeadline? = nil, remoteAddress: String = "") {
        self.peer = peer
        self.method = method
        self.metadata = metadata
        self.deadline = deadline
        self.remoteAddress = remoteAddress
    }

    /// The value of the first metadata entry named `key`.
    public func metadataValue(_ key: String) -> [UInt8]? {
        metadata.first { $0.key == key }?.value
    }
}

/// The four call kinds (Docs/wire-protocol.md, "Streams and calls").
public enum RPCKind: Sendable {
    case unary, serverStreaming, clientStreaming, bidirectional

    /// Whether the client sends exactly one request.
    var singleRequest: Bool { self == .unary || self == .serverStreaming }
    /// Whether the server sends exactly one response.
    var singleResponse: Bool { self == .unary || self == .clientStreaming }
}

/// Sends responses of a streaming call. Each `send` waits while the connection cannot
/// take more bytes (TCP backpressure), so a slow reader bounds the server's memory.
public struct ResponseWriter<Response: ProtoMessage>: Sendable {
    let raw: RawResponseWriter

    public func send(_ response: Response) async throws {
        try await raw.send(response.serializedBytes())
    }

    /// Sends a response already encoded (e.g. the same bytes to many subscribers).
    public func send(serialized bytes: [UInt8]) async throws {
        try await raw.send(bytes)
    }
}

/// Type-erased response sink owned by the connection handler.
public struct RawResponseWriter: Sendable {
    let sendBytes: @Sendable ([UInt8]) async throws -> Void

    public init(_ sendBytes: @escaping @Sendable ([UInt8]) async throws -> Void) {
        self.sendBytes = sendBytes
    }

    public func send(_ bytes: [UInt8]) async throws {
        try await sendBytes(bytes)
    }
}

/// The requests of a client-streaming or bidirectional call, in order. Iteration ends when
/// the client half-closes; it throws if the call is cancelled or the connection fails.
/// A request that does not decode ends the call with `INVALID_ARGUMENT`.
public struct RequestStream<Request: ProtoMessage>: AsyncSequence, Sendable {
    public typealias Element = Request
    let raw: RawRequestStream

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: RawRequestStream.AsyncIterator
        public mutating func next() async throws -> Request? {
            guard let bytes = try await base.next() else { return nil }
            do {
                return try Request(serializedBytes: bytes)
            } catch {
                throw RPCError(.invalidArgument, "\(error)")
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: raw.makeAsyncIterator())
    }
}

/// Serialized requests as they arrive; `onConsumed` tells the connection a buffered request
/// of that many bytes was taken, so it can release its memory and resume reading.
public struct RawRequestStream: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    let stream: AsyncThrowingStream<[UInt8], Error>
    let onConsumed: @Sendable (Int) -> Void

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<[UInt8], Error>.AsyncIterator
        let onConsumed: @Sendable (Int) -> Void
        public mutating func next() async throws -> [UInt8]? {
            let value = try await base.next()
            if let value { onConsumed(value.count) }
            return value
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator(), onConsumed: onConsumed)
    }
}

/// One registered method: its kind, who may call it, and its type-erased body.
public struct RPCMethod: Sendable {
    public typealias Body = @Sendable (RPCCallInput, RawResponseWriter, RPCCallContext) async throws -> [UInt8]?

    public var path: String
    public var kind: RPCKind
    public var allowedRoles: Set<Role>
    let body: Body
}

/// The request side of a call as the connection hands it to a method body.
public enum RPCCallInput: Sendable {
    case single([UInt8])
    case stream(RawRequestStream)
}

/// Method table of a server. Built once at start-up, then read-only (and so `Sendable`).
public struct RPCRouter: Sendable {
    private(set) var methods: [String: RPCMethod] = [:]

    public init() {}

    public func method(_ path: String) -> RPCMethod? { methods[path] }

    public var paths: [String] { methods.keys.sorted() }

    /// Registers a unary method. The body's return value is the single response.
    public mutating func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ path: String, roles: Set<Role>,
        _ body: @escaping @Sendable (Request, RPCCallContext) async throws -> Response
    ) {
        add(path, .unary, roles) { input, _, ctx in
            guard case .single(let bytes) = input else { throw RPCError(.internal, "unary call without a request") }
            return try await body(Self.decode(bytes), ctx).serializedBytes()
        }
    }

    /// Registers a server-streaming method. The body sends responses through the writer.
    public mutating func serverStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ path: String, roles: Set<Role>,
        _ body: @escaping @Sendable (Request, ResponseWriter<Response>, RPCCallContext) async throws -> Void
    ) {
        add(path, .serverStreaming, roles) { input, writer, ctx in
            guard case .single(let bytes) = input else { throw RPCError(.internal, "streaming call without a request") }
            try await body(Self.decode(bytes), ResponseWriter(raw: writer), ctx)
            return nil
        }
    }

    /// Registers a client-streaming method. The body's return value is the single response.
    public mutating func clientStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ path: String, roles: Set<Role>,
        _ body: @escaping @Sendable (RequestStream<Request>, RPCCallContext) async throws -> Response
    ) {
        add(path, .clientStreaming, roles) { input, _, ctx in
            guard case .stream(let raw) = input else { throw RPCError(.internal, "client stream without a request stream") }
            return try await body(RequestStream(raw: raw), ctx).serializedBytes()
        }
    }

    /// Registers a bidirectional method.
    public mutating func bidirectional<Request: ProtoMessage, Response: ProtoMessage>(
        _ path: String, roles: Set<Role>,
        _ body: @escaping @Sendable (RequestStream<Request>, ResponseWriter<Response>, RPCCallContext) async throws -> Void
    ) {
        add(path, .bidirectional, roles) { input, writer, ctx in
            guard case .stream(let raw) = input else { throw RPCError(.internal, "bidirectional call without a request stream") }
            try await body(RequestStream(raw: raw), ResponseWriter(raw: writer), ctx)
            return nil
        }
    }

    private mutating func add(_ path: String, _ kind: RPCKind, _ roles: Set<Role>, _ body: @escaping RPCMethod.Body) {
        precondition(methods[path] == nil, "method \(path) registered twice")
        methods[path] = RPCMethod(path: path, kind: kind, allowedRoles: roles, body: body)
    }

    static func decode<M: ProtoMessage>(_ bytes: [UInt8]) throws -> M {
        do {
            return try M(serializedBytes: bytes)
        } catch {
            throw RPCError(.invalidArgument, "\(error)")
        }
    }
}
