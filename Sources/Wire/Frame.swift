import NIOCore

/// One protocol frame (Docs/wire-protocol.md, "Frames").
///
/// ```
/// frame      = header body
/// header     = length type flags stream-id      ; 10 bytes, integers big-endian
/// length     = uint32                           ; byte length of body
/// type       = uint8                            ; FrameType
/// flags      = uint8                            ; bit 0: END_STREAM or ACK
/// stream-id  = uint32                           ; 0 for PING and GOAWAY
/// ```
public struct Frame: Sendable, Equatable {
    public static let headerLength = 10

    public var type: FrameType
    public var flags: FrameFlags
    public var streamID: UInt32
    public var body: ByteBuffer

    public init(type: FrameType, flags: FrameFlags = [], streamID: UInt32, body: ByteBuffer) {
        self.type = type
        self.flags = flags
        self.streamID = streamID
        self.body = body
    }

    /// Appends the encoded frame to `buffer`.
    public func write(to buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: Frame.headerLength + body.readableBytes)
        buffer.writeInteger(UInt32(body.readableBytes))
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(flags.rawValue)
        buffer.writeInteger(streamID)
        var body = body
        buffer.writeBuffer(&body)
    }
}

public enum FrameType: UInt8, Sendable {
    case headers = 1
    case message = 2
    case trailers = 3
    case cancel = 4
    case ping = 5
    case goAway = 6
    /// Client half-close without a message (empty body).
    case end = 7

    /// Frames that belong to a stream (stream id ≠ 0).
    var isStreamFrame: Bool {
        switch self {
        case .headers, .message, .trailers, .cancel, .end: return true
        case .ping, .goAway: return false
        }
    }
}

public struct FrameFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// On HEADERS or MESSAGE: the sender sends nothing more on this stream.
    public static let endStream = FrameFlags(rawValue: 1)
    /// On PING: this is the answer.
    public static let ack = FrameFlags(rawValue: 1)
}

/// What the frame decoder hands up the pipeline.
public enum FrameEvent: Sendable, Equatable {
    case frame(Frame)
    /// A MESSAGE larger than the limit: its header was read and its body is being
    /// discarded as it arrives, never buffered.
    case oversizedMessage(streamID: UInt32, length: Int)
    /// A MESSAGE whose length did not fit the node's `MemoryBudget`: its body is discarded
    /// as it arrives, like an oversized one.
    case refusedMessage(streamID: UInt32, length: Int)
}

/// Receive limits (Docs/wire-protocol.md, "Limits").
public struct FrameLimits: Sendable, Hashable {
    public var maxMessageBytes: Int
    public var maxHeadersBytes: Int
    public var maxGoAwayBytes: Int

    public init(maxMessageBytes: Int = 4 << 20, maxHeadersBytes: Int = 16 << 10, maxGoAwayBytes: Int = 4 << 10) {
        self.maxMessageBytes = maxMessageBytes
        self.maxHeadersBytes = maxHeadersBytes
        self.maxGoAwayBytes = maxGoAwayBytes
    }

    func limit(for type: FrameType) -> Int {
        switch type {
        case .message: return maxMessageBytes
        case .headers, .trailers: return maxHeadersBytes
        case .goAway: return maxGoAwayBytes
        case .ping: return 8
        case .cancel, .end: return 0
        }
    }
}

/// A violation of the framing rules: the connection cannot continue.
public struct WireProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "protocol error: \(message)" }
}
