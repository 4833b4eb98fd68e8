@testable import GridBase
import GridProto
import Identity
import NIOCore
import XCTest
@testable import Wire

/// Issue 11, items 4 and 7 at the Wire level: bounded error texts, and the node-wide memory
/// budget for buffered requests (Docs/security.md, "Error texts" and "Limits").
final class BoundsTests: XCTestCase {
    // MARK: Error texts

    func testQuoteKeepsShortTextAndBoundsLongText() {
        XCTAssertEqual(Bounded.quote("main"), "'main'")
        let long = String(repeating: "x", count: 20_000)
        let quoted = Bounded.quote(long)
        XCTAssertLessThanOrEqual(quoted.utf8.count, Bounded.quoteBytes + 24)
        XCTAssertTrue(quoted.hasSuffix("…'(20000 bytes)"), quoted)
        XCTAssertTrue(quoted.hasPrefix("'xxxx"))
    }

    func testQuoteNeverCutsACharacterAndEscapesControlCharacters() {
        // 2-byte characters and a 4-byte emoji at the cut: the prefix stays valid UTF-8.
        let text = String(repeating: "é", count: 100) + "😀" + String(repeating: "é", count: 100)
        let quoted = Bounded.quote(text, max: 201)
        XCTAssertTrue(quoted.hasPrefix("'" + String(repeating: "é", count: 100) + "…"), quoted)
        XCTAssertEqual(Bounded.prefix("ééé", maxBytes: 3), "é")
        XCTAssertEqual(Bounded.prefix("a😀", maxBytes: 4), "a")
        // A caller cannot forge a log line or a terminal escape.
        XCTAssertEqual(Bounded.quote("a\nb\u{1b}[31m"), "'a\\nb\\u{1b}[31m'")
    }

    func testStatusMessageIsCutWithAMarker() {
        XCTAssertEqual(Bounded.statusMessage("short"), "short")
        let message = "unknown service '" + String(repeating: "ü", count: 10_000) + "'"
        let bounded = Bounded.statusMessage(message)
        XCTAssertLessThanOrEqual(bounded.utf8.count, Bounded.statusMessageBytes + 24)
        XCTAssertTrue(bounded.hasSuffix("…(\(message.utf8.count) bytes)"), bounded)
    }

    /// The one place a status leaves the server: whatever the message and metadata, the
    /// TRAILERS body fits the receiver's 16 KiB limit and keeps its code.
    func testTrailersBodyNeverExceedsTheControlFrameLimit() throws {
        let limit = FrameLimits().maxHeadersBytes
        let huge = RPCError(
            .notFound, String(repeating: "s", count: 20_000),
            metadata: [MetadataEntry(key: "big-bin", value: [UInt8](repeating: 7, count: 20_000))])
        let body = RPCServerHandler.trailersBody(huge, limit: limit)
        XCTAssertLessThanOrEqual(body.count, limit)
        let status = try CallStatus(serializedBytes: body)
        XCTAssertEqual(status.code, StatusCode.notFound.rawValue)
        XCTAssertTrue(status.message.contains("metadata"), status.message)
        // Small metadata survives.
        let small = RPCError(.alreadyExists, "dup", metadata: [MetadataEntry(key: "loc-bin", value: [1, 2])])
        XCTAssertEqual(try CallStatus(serializedBytes: RPCServerHandler.trailersBody(small, limit: limit)).metadata.count, 1)
    }

    /// An unknown method of 16,370 bytes (the HEADERS fit the limit) used to be echoed into a
    /// 16,391-byte TRAILERS frame, a connection error for the client. It is UNIMPLEMENTED
    /// with a short message.
    func testUnknownHugeMethodIsUnimplementedWithABoundedMessage() async throws {
        let rpc = try await InMemoryRPC(router: RPCSemanticsTests.router())
        let method = "/" + String(repeating: "m", count: 16_369)
        do {
            _ = try await rpc.client.unary(method, MetadataEntry(), as: MetadataEntry.self)
            XCTFail("an unknown method must fail")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .unimplemented, "\(error)")
            XCTAssertLessThan(error.message.utf8.count, 256)
            XCTAssertTrue(error.message.contains("(16370 bytes)"), error.message)
        }
        // The connection is still usable.
        let echoed = try await rpc.client.unary(RPCSemanticsTests.echo, MetadataEntry(key: "after", value: []), as: MetadataEntry.self)
        XCTAssertEqual(echoed.key, "after!client-1")
        await rpc.close()
    }

    /// A handler that echoes 20,000 bytes of caller text into its error still reaches the
    /// client with its own status, not as a connection error.
    func testHandlerEchoingHugeTextKeepsItsStatus() async throws {
        var router = RPCRouter()
        router.unary("/test.Echo/Careless", roles: Set(Role.allCases)) { (req: MetadataEntry, _) -> MetadataEntry in
            throw RPCError(.notFound, "unknown service '\(req.key)'")
        }
        let rpc = try await InMemoryRPC(router: router)
        do {
            _ = try await rpc.client.unary("/test.Echo/Careless", MetadataEntry(key: String(repeating: "s", count: 20_000), value: []), as: MetadataEntry.self)
            XCTFail("must fail")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .notFound, "\(error)")
            XCTAssertLessThanOrEqual(error.message.utf8.count, Bounded.statusMessageBytes + 24)
        }
        await rpc.close()
    }

    // MARK: Memory budget

    func testBudgetRefusesWhatDoesNotFitAndKeepsAReserveForSmallMessages() {
        let budget = MemoryBudget(ceiling: 1 << 20, smallMessageBytes: 1024, smallMessageReserve: 4096)
        XCTAssertTrue(budget.tryReserve(1 << 20))
        XCTAssertFalse(budget.tryReserve(2048), "a large message beyond the ceiling is refused")
        XCTAssertTrue(budget.tryReserve(1024), "a small one may use the reserve")
        XCTAssertTrue(budget.tryReserve(1024))
        XCTAssertTrue(budget.tryReserve(2048) == false)
        XCTAssertTrue(budget.tryReserve(1024))
        XCTAssertTrue(budget.tryReserve(1024))
        XCTAssertFalse(budget.tryReserve(1024), "the reserve is bounded too")
        XCTAssertEqual(budget.peakBytes, (1 << 20) + 4096)
        budget.release((1 << 20) + 4096)
        XCTAssertEqual(budget.usedBytes, 0)
        XCTAssertEqual(budget.refusedReservations, 3)
    }

    /// The held-request flood: many streams each send a large request and never end it.
    /// Before the budget each one was buffered (128 × 4 MiB per connection). Now the node
    /// buffers at most the ceiling, refuses the rest with RESOURCE_EXHAUSTED, still answers
    /// another connection, and gets every byte back when the flood goes.
    func testHeldRequestFloodStaysUnderTheBudget() async throws {
        let ceiling = 16 << 20
        let budget = MemoryBudget(ceiling: ceiling)
        let router = RPCSemanticsTests.router()
        let flood = try await InMemoryRPC(router: router, clientRole: .collector, budget: budget)
        let other = try await InMemoryRPC(router: router, clientRole: .ops, budget: budget)

        let streams = 40
        let request = MetadataEntry(key: "held", value: [UInt8](repeating: 1, count: 1 << 20)).serializedBytes()
        let headers = CallHeaders(method: RPCSemanticsTests.echo, timeoutMs: 0, metadata: []).serializedBytes()
        for i in 0..<streams {
            let id = UInt32(2 * i + 1)
            var bytes = ByteBuffer()
            Frame(type: .headers, streamID: id, body: ByteBuffer(bytes: headers)).write(to: &bytes)
            // MESSAGE without END_STREAM: the request is held open.
            Frame(type: .message, streamID: id, body: ByteBuffer(bytes: request)).write(to: &bytes)
            try await flood.injectToServer(bytes)
        }
        let held = ceiling / request.count
        let refused = await poll(timeout: .seconds(10)) { flood.stats.callsFailed >= UInt64(streams - held) }
        XCTAssertTrue(refused, "expected \(streams - held) refusals, saw \(flood.stats.callsFailed)")
        XCTAssertEqual(flood.stats.callsFailed, UInt64(streams - held))
        XCTAssertLessThanOrEqual(budget.peakBytes, ceiling, "accounted bytes stayed under the ceiling")
        XCTAssertEqual(budget.usedBytes, held * request.count)

        // Another client still gets small calls through; a large request is refused with a status.
        let small = try await other.client.unary(RPCSemanticsTests.echo, MetadataEntry(key: "status", value: []), as: MetadataEntry.self)
        XCTAssertEqual(small.key, "status!client-1")
        do {
            _ = try await other.client.unary(RPCSemanticsTests.echo, MetadataEntry(key: "big", value: [UInt8](repeating: 2, count: 2 << 20)), as: MetadataEntry.self)
            XCTFail("a large request over the budget must be refused")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .resourceExhausted, "\(error)")
        }

        // The flood goes: every reserved byte comes back.
        await flood.close()
        let released = await poll(timeout: .seconds(10)) { budget.usedBytes == 0 }
        XCTAssertTrue(released, "budget still holds \(budget.usedBytes) bytes")
        let big = try await other.client.unary(RPCSemanticsTests.echo, MetadataEntry(key: "big", value: [UInt8](repeating: 2, count: 2 << 20)), as: MetadataEntry.self)
        XCTAssertEqual(big.value.count, 2 << 20)
        await other.close()
        let allBack = await poll(timeout: .seconds(10)) { budget.usedBytes == 0 }
        XCTAssertTrue(allBack, "response bytes not released: \(budget.usedBytes)")
    }

    /// Streamed requests whose consumer has not taken them are accounted in the budget, and
    /// every byte comes back as the consumer takes them and when the call ends. (Whether
    /// reads stop is a socket matter: `LoopbackRPCTests` and `NodeBoundsTests` cover it.)
    func testStreamedRequestsAreAccountedAndReleased() async throws {
        let budget = MemoryBudget(ceiling: 64 << 20)
        let gate = Gate()
        var router = RPCRouter()
        router.clientStreaming("/test.Echo/Stuck", roles: Set(Role.allCases)) { (reqs: RequestStream<MetadataEntry>, _) -> MetadataEntry in
            await gate.wait()
            var n = 0
            for try await _ in reqs { n += 1 }
            return MetadataEntry(key: "\(n)", value: [])
        }
        let rpc = try await InMemoryRPC(router: router, budget: budget)
        let call = try await rpc.client.clientStreaming("/test.Echo/Stuck", requestType: MetadataEntry.self, responseType: MetadataEntry.self)
        for _ in 0..<8 { try await call.send(MetadataEntry(key: "r", value: [UInt8](repeating: 3, count: 512 << 10))) }
        let accounted = await poll(timeout: .seconds(5)) { budget.usedBytes >= 8 * (512 << 10) }
        XCTAssertTrue(accounted, "buffered requests not accounted: \(budget.usedBytes)")
        await gate.open()
        let response = try await call.finish()
        XCTAssertEqual(response.key, "8")
        let released = await poll(timeout: .seconds(5)) { budget.usedBytes == 0 }
        XCTAssertTrue(released, "budget still holds \(budget.usedBytes) bytes")

        await rpc.close()
    }

    private func poll(timeout: Duration, _ condition: () async -> Bool) async -> Bool {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return await condition()
    }
}
