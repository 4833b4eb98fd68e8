import NIOCore
import XCTest
@testable import Wire

/// Docs/wire-protocol.md, "Frames" and "Limits".
final class FrameDecoderTests: XCTestCase {
    private func encode(_ type: FrameType, flags: FrameFlags = [], stream: UInt32, body: [UInt8]) -> ByteBuffer {
        var out = ByteBuffer()
        Frame(type: type, flags: flags, streamID: stream, body: ByteBuffer(bytes: body)).write(to: &out)
        return out
    }

    private func decodeAll(_ machine: inout FrameDecoderStateMachine, _ buffer: inout ByteBuffer) throws -> [FrameEvent] {
        var events: [FrameEvent] = []
        while let e = try machine.next(&buffer) { events.append(e) }
        return events
    }

    func testHeaderLayoutIsBigEndian() {
        let b = encode(.message, flags: .endStream, stream: 0x0102_0304, body: [9, 9, 9])
        XCTAssertEqual(Array(b.readableBytesView), [0, 0, 0, 3, 2, 1, 1, 2, 3, 4, 9, 9, 9])
    }

    func testByteByByteFeeding() throws {
        var wire = encode(.headers, stream: 1, body: Array(repeating: 7, count: 40))
        var m2 = encode(.message, flags: .endStream, stream: 1, body: [1, 2, 3])
        wire.writeBuffer(&m2)
        var machine = FrameDecoderStateMachine(limits: FrameLimits())
        var events: [FrameEvent] = []
        var acc = ByteBuffer()
        for byte in wire.readableBytesView {
            acc.writeInteger(byte)
            events += try decodeAll(&machine, &acc)
        }
        XCTAssertEqual(events.count, 2)
        guard case .frame(let f1) = events[0], case .frame(let f2) = events[1] else { return XCTFail() }
        XCTAssertEqual(f1.type, .headers)
        XCTAssertEqual(f1.body.readableBytes, 40)
        XCTAssertEqual(f2.type, .message)
        XCTAssertTrue(f2.flags.contains(.endStream))
        XCTAssertEqual(Array(f2.body.readableBytesView), [1, 2, 3])
        XCTAssertEqual(acc.readableBytes, 0)
    }

    func testManyFramesInOneBuffer() throws {
        var wire = ByteBuffer()
        for i in 0..<1000 {
            var f = encode(.message, stream: UInt32(2 * i + 1), body: Array(repeating: UInt8(i & 0xff), count: i % 17))
            wire.writeBuffer(&f)
        }
        var machine = FrameDecoderStateMachine(limits: FrameLimits())
        let events = try decodeAll(&machine, &wire)
        XCTAssertEqual(events.count, 1000)
        for (i, e) in events.enumerated() {
            guard case .frame(let f) = e else { return XCTFail() }
            XCTAssertEqual(f.streamID, UInt32(2 * i + 1))
            XCTAssertEqual(f.body.readableBytes, i % 17)
        }
    }

    /// An oversized MESSAGE is reported at once and its body discarded as it arrives.
    func testOversizedMessageIsSkippedWithoutBuffering() throws {
        var machine = FrameDecoderStateMachine(limits: FrameLimits(maxMessageBytes: 100))
        var header = ByteBuffer()
        header.writeInteger(UInt32(10_000))
        header.writeInteger(FrameType.message.rawValue)
        header.writeInteger(UInt8(0))
        header.writeInteger(UInt32(5))
        XCTAssertEqual(try machine.next(&header), .oversizedMessage(streamID: 5, length: 10_000))
        var remaining = 10_000
        while remaining > 0 {
            var chunk = ByteBuffer(repeating: 0xee, count: min(999, remaining))
            remaining -= chunk.readableBytes
            XCTAssertNil(try machine.next(&chunk))
            XCTAssertEqual(chunk.readableBytes, 0, "skipped bytes must be consumed, not kept")
        }
        var next = encode(.message, stream: 7, body: [1])
        guard case .frame(let f)? = try machine.next(&next) else { return XCTFail("frame after the skipped body") }
        XCTAssertEqual(f.streamID, 7)
    }

    func testOversizedControlFrameIsAConnectionError() {
        var machine = FrameDecoderStateMachine(limits: FrameLimits(maxHeadersBytes: 16))
        var b = encode(.headers, stream: 1, body: Array(repeating: 0, count: 17))
        XCTAssertThrowsError(try machine.next(&b))
    }

    func testGarbageIsAConnectionError() {
        var machine = FrameDecoderStateMachine(limits: FrameLimits())
        // "GET / HTTP/1.1": length 0x47455420, type 0x2f is unknown.
        var b = ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")
        XCTAssertThrowsError(try machine.next(&b))
    }

    func testStreamFrameOnStreamZeroAndPingOnAStreamAreErrors() {
        var m1 = FrameDecoderStateMachine(limits: FrameLimits())
        var b1 = encode(.message, stream: 0, body: [])
        XCTAssertThrowsError(try m1.next(&b1))
        var m2 = FrameDecoderStateMachine(limits: FrameLimits())
        var b2 = encode(.ping, stream: 3, body: Array(repeating: 0, count: 8))
        XCTAssertThrowsError(try m2.next(&b2))
        var m3 = FrameDecoderStateMachine(limits: FrameLimits())
        var b3 = encode(.ping, stream: 0, body: [1, 2, 3])
        XCTAssertThrowsError(try m3.next(&b3))
    }

    func testTruncatedFrameWaitsForMoreBytes() throws {
        var machine = FrameDecoderStateMachine(limits: FrameLimits())
        var b = encode(.message, stream: 1, body: Array(repeating: 1, count: 50))
        b.moveWriterIndex(to: b.writerIndex - 1)
        XCTAssertNil(try machine.next(&b))
        XCTAssertEqual(b.readableBytes, 59, "nothing consumed from a partial frame")
    }
}
