import NIOCore

/// Splits a byte stream into frames, discarding oversized MESSAGE bodies without
/// buffering them.
///
/// Invariant: the bytes held by the surrounding `ByteToMessageHandler` never exceed
/// `headerLength + max(limits)`; an oversized message body is skipped as it streams past.
/// With a `MemoryBudget`, a MESSAGE body is buffered only after its length was reserved in
/// the budget (when its header is read); the reservation goes with the `.frame` event to the
/// handler above, which releases it. A body that does not fit is skipped like an oversized
/// one and reported as `.refusedMessage`.
public struct FrameDecoderStateMachine: Sendable {
    enum State: Sendable, Equatable {
        case header
        case skipping(remaining: Int)
    }

    public let limits: FrameLimits
    public let budget: MemoryBudget?
    private(set) var state: State = .header
    /// Bytes reserved in `budget` for the MESSAGE at the front of the buffer, not handed on yet.
    private(set) var reservedForPending = 0

    public init(limits: FrameLimits, budget: MemoryBudget? = nil) {
        self.limits = limits
        self.budget = budget
    }

    /// Gives back a reservation still held for a frame that will never be complete.
    public mutating func releaseReservation() {
        budget?.release(reservedForPending)
        reservedForPending = 0
    }

    /// Decodes at most one event from the front of `buffer`.
    /// Returns nil when more bytes are needed. Throws `WireProtocolError` on bytes that are
    /// not a valid frame (unknown type, oversized control frame, bad PING or CANCEL length).
    public mutating func next(_ buffer: inout ByteBuffer) throws -> FrameEvent? {
        while true {
            switch state {
            case .skipping(let remaining):
                let n = min(remaining, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: n)
                if n == remaining {
                    state = .header
                    continue
                }
                state = .skipping(remaining: remaining - n)
                return nil
            case .header:
                guard buffer.readableBytes >= Frame.headerLength,
                      let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
                      let rawType = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self),
                      let rawFlags = buffer.getInteger(at: buffer.readerIndex + 5, as: UInt8.self),
                      let streamID = buffer.getInteger(at: buffer.readerIndex + 6, as: UInt32.self)
                else { return nil }
                guard let type = FrameType(rawValue: rawType) else {
                    throw WireProtocolError("unknown frame type \(rawType)")
                }
                if type.isStreamFrame != (streamID != 0) {
                    throw WireProtocolError("frame type \(type) on stream \(streamID)")
                }
                let bodyLength = Int(length)
                if bodyLength > limits.limit(for: type) {
                    guard type == .message else {
                        throw WireProtocolError("\(type) frame of \(bodyLength) bytes exceeds \(limits.limit(for: type))")
                    }
                    buffer.moveReaderIndex(forwardBy: Frame.headerLength)
                    state = bodyLength == 0 ? .header : .skipping(remaining: bodyLength)
                    return .oversizedMessage(streamID: streamID, length: bodyLength)
                }
                if type == .message, let budget, reservedForPending == 0, bodyLength > 0 {
                    guard budget.tryReserve(bodyLength) else {
                        buffer.moveReaderIndex(forwardBy: Frame.headerLength)
                        state = .skipping(remaining: bodyLength)
                        return .refusedMessage(streamID: streamID, length: bodyLength)
                    }
                    reservedForPending = bodyLength
                }
                if type == .ping && bodyLength != 8 {
                    throw WireProtocolError("PING body of \(bodyLength) bytes, expected 8")
                }
                guard buffer.readableBytes >= Frame.headerLength + bodyLength else { return nil }
                buffer.moveReaderIndex(forwardBy: Frame.headerLength)
                let body = buffer.readSlice(length: bodyLength)!
                reservedForPending = 0
                return .frame(Frame(type: type, flags: FrameFlags(rawValue: rawFlags), streamID: streamID, body: body))
            }
        }
    }
}

/// `ByteToMessageDecoder` around `FrameDecoderStateMachine`.
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = FrameEvent
    private var machine: FrameDecoderStateMachine

    public init(limits: FrameLimits = FrameLimits(), budget: MemoryBudget? = nil) {
        machine = FrameDecoderStateMachine(limits: limits, budget: budget)
    }

    public mutating func decoderRemoved(context: ChannelHandlerContext) {
        machine.releaseReservation()
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let event = try machine.next(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(event))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while let event = try machine.next(&buffer) {
            context.fireChannelRead(wrapInboundOut(event))
        }
        return .needMoreData
    }
}
