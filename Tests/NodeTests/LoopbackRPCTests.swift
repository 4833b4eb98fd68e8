import GridBase
import GridClient
import GridProto
import GridTLS
import Logging
import NIOCore
import NIOPosix
@testable import Node
import Wire
import XCTest

/// RPC semantics of Docs/wire-protocol.md once more, over real loopback sockets and TLS:
/// deadline, cancellation, unknown method, concurrent streams on one connection, GOAWAY.
final class LoopbackRPCTests: XCTestCase {
    static let slow = "/test.Loop/Slow"
    static let ticks = "/test.Loop/Ticks"
    static let flood = "/test.Loop/Flood"

    var pki: TestPKI!
    var server: RPCServer!
    var group: MultiThreadedEventLoopGroup!
    var port = 0
    var clientTLS: TLSContext!
    /// One element each time a `slow` handler starts running.
    var slowStarted: AsyncStream<Void>!
    var slowStartedIn: AsyncStream<Void>.Continuation!

    override func setUp() async throws {
        pki = try TestPKI()
        let node = try pki.issue(.node, "node1")
        let ops = try pki.issue(.ops, "ops1")
        var router = RPCRouter()
        let (started, startedIn) = AsyncStream.makeStream(of: Void.self)
        slowStarted = started
        slowStartedIn = startedIn
        router.unary(Self.slow, roles: [.ops]) { (req: HealthCheckRequest, _) in
            startedIn.yield()
            let ms = Int(req.service) ?? 0
            try await Task.sleep(for: .milliseconds(ms))
            return HealthCheckResponse(status: .serving)
        }
        router.serverStreaming(Self.flood, roles: [.ops]) { (req: HealthCheckRequest, out: ResponseWriter<HealthCheckResponse>, _) in
            for i in 0..<(Int(req.service) ?? 0) {
                try await out.send(HealthCheckResponse(status: ServingStatus(rawValue: Int32(i))))
            }
        }
        router.serverStreaming(Self.ticks, roles: [.ops]) { (req: HealthCheckRequest, out: ResponseWriter<HealthCheckResponse>, _) in
            for i in 0..<(Int(req.service) ?? 0) {
                try await out.send(HealthCheckResponse(status: ServingStatus(rawValue: Int32(i))))
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var logger = Logger(label: "loopback")
        logger.logLevel = .critical
        let tls = try TLSContext(configuration: TLSConfiguration(certificatePath: node.cert, privateKeyPath: node.key, trustRootPath: pki.caCert), mode: .server)
        var configuration = RPCServerConfiguration()
        configuration.shutdownGracePeriod = .seconds(5)
        server = RPCServer(group: group, tls: tls, router: router, configuration: configuration, logger: logger)
        port = try await server.start(host: "127.0.0.1", port: 0).port!
        clientTLS = try TLSContext(configuration: TLSConfiguration(certificatePath: ops.cert, privateKeyPath: ops.key, trustRootPath: pki.caCert), mode: .client)
    }

    override func tearDown() async throws {
        slowStartedIn.finish()
        await server.shutdownGracefully()
        try await group.shutdownGracefully()
        pki.remove()
    }

    private func connect() async throws -> RPCClient {
        try await GridConnection.connect(host: "127.0.0.1", port: port, tls: clientTLS, serverName: "127.0.0.1", group: group)
    }

    private func code(_ body: () async throws -> Void) async -> StatusCode? {
        do {
            try await body()
            return .ok
        } catch let error as RPCError {
            return error.code
        } catch {
            return nil
        }
    }

    func testDeadlineExceededOverLoopback() async throws {
        let client = try await connect()
        let start = ContinuousClock.now
        let result = await code { _ = try await client.unary(Self.slow, HealthCheckRequest(service: "20000"), as: HealthCheckResponse.self, timeout: .milliseconds(150)) }
        XCTAssertEqual(result, .deadlineExceeded)
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(3))
        // The server cancelled the work: its failure counter moves without waiting 20 s.
        let stats = server.stats
        let end = ContinuousClock.now + .seconds(3)
        while stats.callsFailed == 0, ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(10)) }
        XCTAssertEqual(stats.callsFailed, 1)
        await client.close()
    }

    func testUnknownMethodAndConcurrentStreamsOverLoopback() async throws {
        let client = try await connect()
        let unknown = await code { _ = try await client.unary("/test.Loop/Missing", HealthCheckRequest(), as: HealthCheckResponse.self) }
        XCTAssertEqual(unknown, .unimplemented)
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<64 {
                group.addTask { _ = try await client.unary(Self.slow, HealthCheckRequest(service: "200"), as: HealthCheckResponse.self) }
            }
            try await group.waitForAll()
        }
        // 64 calls of 200 ms each ran concurrently on one connection, not one after another.
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(3))
        await client.close()
    }

    func testClientCancellationOverLoopback() async throws {
        let client = try await connect()
        var seen = 0
        for try await _ in client.serverStreaming(Self.ticks, HealthCheckRequest(service: "100000"), as: HealthCheckResponse.self) {
            seen += 1
            if seen == 5 { break }
        }
        let stats = server.stats
        let end = ContinuousClock.now + .seconds(3)
        while stats.callsFailed == 0, ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(10)) }
        XCTAssertEqual(stats.callsFailed, 1, "the server call must end as CANCELLED")
        await client.close()
    }

    func testGoAwayLetsInFlightCallFinishOverLoopback() async throws {
        let client = try await connect()
        let method = Self.slow
        let inFlight = Task { try await client.unary(method, HealthCheckRequest(service: "500"), as: HealthCheckResponse.self) }
        // The call is in flight once its handler runs.
        let started = await firstElement(of: slowStarted)
        XCTAssertTrue(started, "the slow call never reached its handler")
        let server = self.server!
        let (goAwayQueued, goAwayQueuedIn) = AsyncStream.makeStream(of: Void.self)
        let shutdown = Task {
            await server.shutdownGracefully(afterGoAway: {
                goAwayQueuedIn.yield()
                goAwayQueuedIn.finish()
            })
        }
        // GOAWAY is queued on the connection's event loop; once a task queued after it ran
        // on every loop, the server has sent it and refuses new calls.
        let queued = await firstElement(of: goAwayQueued)
        XCTAssertTrue(queued, "shutdown never queued GOAWAY")
        for loop in group.makeIterator() { try await loop.submit {}.get() }
        let late = await code { _ = try await client.unary(Self.slow, HealthCheckRequest(service: "0"), as: HealthCheckResponse.self) }
        XCTAssertEqual(late, .unavailable)
        let response = try await inFlight.value
        XCTAssertEqual(response.status, .serving)
        await shutdown.value
        // The server closed its side; the client notices on its own event loop.
        let end = ContinuousClock.now + .seconds(10)
        while client.channel.isActive, ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(10)) }
        XCTAssertFalse(client.channel.isActive)
    }

    /// The first element of `stream`, waiting at most `timeout`; false if none came.
    private func firstElement(of stream: AsyncStream<Void>, timeout: Duration = .seconds(10)) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await _ in stream { return true }
                return false
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    /// Read-side flow control: with a slow and a fast stream on one connection, reading
    /// pauses while the slow consumer lags and resumes as it catches up; both streams get
    /// every message in order (no deadlock, nothing lost).
    func testSlowAndFastStreamsOnOneConnectionBothComplete() async throws {
        let client = try await connect()
        let method = Self.flood
        async let slow: Int = {
            var n = 0
            for try await m in client.serverStreaming(method, HealthCheckRequest(service: "3000"), as: HealthCheckResponse.self) {
                XCTAssertEqual(Int(m.status.rawValue), n)
                n += 1
                if n % 250 == 0 { try await Task.sleep(for: .milliseconds(20)) }
            }
            return n
        }()
        async let fast: Int = {
            var n = 0
            for try await m in client.serverStreaming(method, HealthCheckRequest(service: "20000"), as: HealthCheckResponse.self) {
                XCTAssertEqual(Int(m.status.rawValue), n)
                n += 1
            }
            return n
        }()
        let (s, f) = try await (slow, fast)
        XCTAssertEqual(s, 3000)
        XCTAssertEqual(f, 20000)
        await client.close()
    }
}
