import GridBase
import GridProto
import Identity
import NIOCore
import XCTest
@testable import Wire

/// RPC semantics of Docs/wire-protocol.md ("Streams and calls", "Connection management"),
/// exercised over the in-memory pipeline pair.
final class RPCSemanticsTests: XCTestCase {
    static let echo = "/test.Echo/Unary"

    /// A router with one method of each kind over `MetadataEntry` messages.
    static func router(gate: Gate = Gate()) -> RPCRouter {
        var r = RPCRouter()
        r.unary(echo, roles: Set(Role.allCases)) { (req: MetadataEntry, ctx) in
            if req.key == "sleep" { try await Task.sleep(for: .seconds(30)) }
            if req.key == "gate" { await gate.wait() }
            if req.key == "fail" { throw RPCError(.failedPrecondition, "asked to fail") }
            return MetadataEntry(key: req.key + "!" + ctx.peer.name, value: req.value)
        }
        r.unary("/test.Echo/OpsOnly", roles: [.ops]) { (req: MetadataEntry, _) in req }
        r.serverStreaming("/test.Echo/Count", roles: Set(Role.allCases)) { (req: MetadataEntry, out: ResponseWriter<MetadataEntry>, _) in
            let n = Int(req.key) ?? 0
            for i in 0..<n { try await out.send(MetadataEntry(key: "\(i)", value: [])) }
            if req.value == [1] { try await Task.sleep(for: .seconds(30)) }
        }
        r.clientStreaming("/test.Echo/Sum", roles: Set(Role.allCases)) { (reqs: RequestStream<MetadataEntry>, _) in
            var total = 0
            for try await r in reqs { total += Int(r.key) ?? 0 }
            return MetadataEntry(key: "\(total)", value: [])
        }
        r.bidirectional("/test.Echo/Chat", roles: Set(Role.allCases)) { (reqs: RequestStream<MetadataEntry>, out: ResponseWriter<MetadataEntry>, _) in
            for try await r in reqs { try await out.send(MetadataEntry(key: r.key.uppercased(), value: [])) }
        }
        return r
    }

    func testUnaryRoundTripCarriesCallerIdentity() async throws {
        let rpc = try await InMemoryRPC(router: Self.router())
        let resp = try await rpc.client.unary(Self.echo, MetadataEntry(key: "hi", value: [1, 2]), as: MetadataEntry.self)
        XCTAssertEqual(resp, MetadataEntry(key: "hi!client-1", value: [1, 2]))
        await rpc.close()
    }

    func testHandlerErrorStatusReachesTheClient() async throws {
        let rpc = try await InMemoryRPC(router: Self.router())
        await assertStatus(.failedPrecondition) {
            _ = try await rpc.client.unary(Self.echo, MetadataEntry(key: "fail", value: []), as: MetadataEntry.self)
        }
        await rpc.close()
    }

    func testUnknownMethodIsUnimplemented() async throws {
        let rpc = try await InMemoryRPC(router: Self.router())
        await assertStatus(.unimplemented) {
            _ = try await rpc.client.unary("/test.Nope/Nothing", MetadataEntry(), as: MetadataEntry.self)
        }
        await rpc.close()
    }

    func testRoleNotAllowedIsPermissionDenied() async throws {
        let rpc = try await InMemoryRPC(router: Self.router(), clientRole: .collector)
        await assertStatus(.permissionDenied) {
            _ = try await rpc.client.unary("/test.Echo/OpsOnly", MetadataEntry(), as: MetadataEntry.self)
        }
        // The connection still serves other calls.
        let ok = try await rpc.client.unary(Self.echo, MetadataEntry(key: "a", value: []), as: MetadataEntry.self)
        XCTAssertEqual(ok.key, "a!client-1")
        await rpc.close()
    }

    /// The server enforces the deadline: the handler's task is cancelled and the status
    /// is DEADLINE_EXCEEDED, well before the handler's 30 s sleep.
    func testDeadlineIsEnforced() async throws {
        let rpc = try await InMemoryRPC(router: Self.router())
        let start = ContinuousClock.now
        await assertStatus(.deadlineExceeded) {
            _ = try await rpc.client.unary(Self.echo, MetadataEntry(key: "sleep", value: []), as: MetadataEntry.self, timeout: .milliseconds(100))
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5))
        await waitUntil { rpc.stats.callsFailed == 1 }
        await rpc.close()
    }

    func testClientCancellationStopsTheServerCall() async throws {
        let rpc = try await InMemoryRPC(router: Self.router())
        let stream = rpc.client.serverStreaming("/test.Echo/Count", MetadataEntry(key: "3", value: [1]), as: MetadataEntry.self)
        var seen = 0
        for try await _ in stream {
            seen += 1
            if seen == 3 { break }
        }
        // Leaving the loop cancels the call; the server must end it (CANCELLED) rather than sleep.
        await waitUntil { rpc.stats.callsFailed == 1 }
        XCTAssertEqual(rpc.stats.callsFailed, 1)
        await rpc.close()
    }

    func testConcurrentStreamsOnOneConnection() async throws {
        let rpc = try await InMemoryRPC(router: Self.router())
        let results = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<100 {
                group.addTask { try await rpc.client.unary(Self.echo, MetadataEntry(key: "\(i)", value: []), as: MetadataEntry.self).key }
            }
            var all: [String] = []
            for try await r in group { all.append(r) }
            return all
        }
        XCTAssertEqual(Set(results), Set((0..<100).map { "\($0)!client-1" }))
        await rpc.close()
    }

    func testServerStreamingClientStreamingAndBidirectional() async throws {
        let rpc = try await InMemoryRPC(router: Self.router())
        var keys: [String] = []
        for try await m in rpc.client.serverStreaming("/test.Echo/Count", MetadataEntry(key: "500", value: []), as: MetadataEntry.self) {
            keys.append(m.key)
        }
        XCTAssertEqual(keys, (0..<500).map(String.init))

        let sum = try await rpc.client.clientStreaming("/test.Echo/Sum", requestType: MetadataEntry.self, responseType: MetadataEntry.self)
        for i in 1...100 { try await sum.send(MetadataEntry(key: "\(i)", value: [])) }
        let total = try await sum.finish()
        XCTAssertEqual(total.key, "5050")

        let empty = try await rpc.client.clientStreaming("/test.Echo/Sum", requestType: MetadataEntry.self, responseType: MetadataEntry.self)
        let zero = try await empty.finish()
        XCTAssertEqual(zero.key, "0")

        let chat = try await rpc.client.bidirectional("/test.Echo/Chat", requestType: MetadataEntry.self, responseType: MetadataEntry.self)
        var it = chat.responses.makeAsyncIterator()
        try await chat.send(MetadataEntry(key: "a", value: []))
        let a = try await it.next()
        XCTAssertEqual(a?.key, "A")
        try await chat.send(MetadataEntry(key: "b", value: []))
        let b = try await it.next()
        XCTAssertEqual(b?.key, "B")
        try await chat.closeSend()
        let end = try await it.next()
        XCTAssertNil(end)
        await rpc.close()
    }

    func testUnaryWithTwoRequestsIsInvalidArgument() async throws {
        let rpc = try await InMemoryRPC(router: Self.router())
        let call = try await rpc.client.clientStreaming(Self.echo, requestType: MetadataEntry.self, responseType: MetadataEntry.self)
        try await call.send(MetadataEntry(key: "1", value: []))
        try await call.send(MetadataEntry(key: "2", value: []))
        await assertStatus(.invalidArgument) { _ = try await call.finish() }
        await rpc.close()
    }

    func testOversizedRequestIsResourceExhaustedAndConnectionSurvives() async throws {
        var config = RPCServerConfiguration()
        config.limits.maxMessageBytes = 1024
        let rpc = try await InMemoryRPC(router: Self.router(), configuration: config)
        await assertStatus(.resourceExhausted) {
            _ = try await rpc.client.unary(Self.echo, MetadataEntry(key: "big", value: Array(repeating: 1, count: 5000)), as: MetadataEntry.self)
        }
        let ok = try await rpc.client.unary(Self.echo, MetadataEntry(key: "small", value: [1]), as: MetadataEntry.self)
        XCTAssertEqual(ok.key, "small!client-1")
        await rpc.close()
    }

    func testOversizedResponseIsResourceExhaustedOnTheClient() async throws {
        let rpc = try await InMemoryRPC(router: Self.router(), clientLimits: FrameLimits(maxMessageBytes: 100))
        await assertStatus(.resourceExhausted) {
            _ = try await rpc.client.unary(Self.echo, MetadataEntry(key: "x", value: Array(repeating: 1, count: 500)), as: MetadataEntry.self)
        }
        let ok = try await rpc.client.unary(Self.echo, MetadataEntry(key: "y", value: []), as: MetadataEntry.self)
        XCTAssertEqual(ok.key, "y!client-1")
        await rpc.close()
    }

    /// GOAWAY: the call in flight finishes; a call opened afterwards gets UNAVAILABLE.
    func testGracefulShutdownLetsInFlightCallsFinish() async throws {
        let gate = Gate()
        let rpc = try await InMemoryRPC(router: Self.router(gate: gate))
        let client = rpc.client
        let method = Self.echo
        let inFlight = Task { try await client.unary(method, MetadataEntry(key: "gate", value: []), as: MetadataEntry.self) }
        await gate.waitForWaiter()
        let handler = rpc.serverHandler
        try await rpc.serverChannel.eventLoop.submit { handler.value.initiateGracefulShutdown() }.get()
        await assertStatus(.unavailable) {
            _ = try await rpc.client.unary(Self.echo, MetadataEntry(key: "late", value: []), as: MetadataEntry.self)
        }
        await gate.open()
        let done = try await inFlight.value
        XCTAssertEqual(done.key, "gate!client-1")
        await rpc.close()
    }

    /// A frame that breaks the protocol gets GOAWAY(INVALID_ARGUMENT) and the connection
    /// closes; pending calls fail with UNAVAILABLE instead of hanging.
    func testProtocolViolationClosesTheConnectionWithGoAway() async throws {
        let gate = Gate()
        let rpc = try await InMemoryRPC(router: Self.router(gate: gate))
        let client = rpc.client
        let method = Self.echo
        let pending = Task { try await client.unary(method, MetadataEntry(key: "gate", value: []), as: MetadataEntry.self) }
        await gate.waitForWaiter()
        var garbage = ByteBuffer()
        garbage.writeBytes([0, 0, 0, 0, 0x63, 0, 0, 0, 0, 1])  // unknown frame type 0x63
        try await rpc.injectToServer(garbage)
        await assertStatus(.unavailable) { _ = try await pending.value }
        XCTAssertEqual(rpc.stats.connectionsRefused, 1)
        await gate.open()
        await rpc.close()
    }

    // MARK: helpers

    private func assertStatus(_ code: StatusCode, file: StaticString = #filePath, line: UInt = #line, _ body: () async throws -> Void) async {
        do {
            try await body()
            XCTFail("expected \(code)", file: file, line: line)
        } catch let error as RPCError {
            XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }
}

func waitUntil(timeout: Duration = .seconds(5), _ condition: () -> Bool) async {
    let end = ContinuousClock.now + timeout
    while !condition() && ContinuousClock.now < end {
        try? await Task.sleep(for: .milliseconds(5))
    }
}

/// A one-shot barrier: handlers wait on it, the test opens it.
actor Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var arrivals = 0

    func wait() async {
        arrivals += 1
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open() {
        isOpen = true
        for w in waiters { w.resume() }
        waiters.removeAll()
    }

    func waitForWaiter() async {
        while arrivals == 0 { try? await Task.sleep(for: .milliseconds(2)) }
    }
}
