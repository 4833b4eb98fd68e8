import Foundation
import GridBase
import GridClient
import GridProto
import GridTLS
import Identity
import Logging
import NIOCore
import NIOPosix
@testable import Node
import Synchronization
@testable import Wire
import XCTest

/// Issue 11, items 4, 6 and 7 against a node: an oversized echoed name, the connection
/// flood, and the held-request and slow-reader floods (Docs/security.md, "Limits").
final class NodeBoundsTests: XCTestCase {
    var pki: TestPKI!

    override func setUp() async throws {
        pki = try TestPKI()
    }

    override func tearDown() async throws {
        pki.remove()
    }

    private func clientTLS(_ party: (cert: String, key: String)) throws -> TLSContext {
        try TLSContext(configuration: TLSConfiguration(certificatePath: party.cert, privateKeyPath: party.key, trustRootPath: pki.caCert), mode: .client)
    }

    /// A client whose channel the test holds (to stop reading from it).
    private func connect(port: Int, tls: TLSContext) async throws -> (RPCClient, Channel) {
        let box = Mutex<NIOLoopBound<RPCClientHandler>?>(nil)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TLSHandler.clientHandler(context: tls, serverHostname: "127.0.0.1", logger: Logger(label: "t")))
                    let handler = try RPCClient.addHandlers(to: channel.pipeline)
                    box.withLock { $0 = handler }
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return (try await RPCClient.connect(channel: channel, handler: box.withLock { $0! }), channel)
    }

    private static func code(_ body: () async throws -> Void) async -> StatusCode? {
        do {
            try await body()
            return .ok
        } catch let error as RPCError {
            return error.code
        } catch {
            return nil
        }
    }

    private func health(_ client: RPCClient, _ service: String = "") async -> StatusCode? {
        await Self.code { _ = try await client.unary(GridMethod.Health.check, HealthCheckRequest(service: service), as: HealthCheckResponse.self, timeout: .seconds(10)) }
    }

    // MARK: Item 4

    /// Health/Check naming a 20,000-byte service used to produce a 20,024-byte TRAILERS frame
    /// (a connection error for the client, which reported INTERNAL). Now NOT_FOUND, short.
    func testHealthCheckWithAHugeServiceNameIsNotFoundWithAShortMessage() async throws {
        let nodeCert = try pki.issue(.node, "node1")
        let ops = try pki.issue(.ops, "ops1")
        let node = try GridNode(configuration: pki.loopbackNode(nodeCert, dataDir: pki.dir + "/data"))
        let port = try await node.start().port!
        let client = try await GridConnection.connect(host: "127.0.0.1", port: port, tls: clientTLS(ops), serverName: "127.0.0.1")
        do {
            _ = try await client.unary(GridMethod.Health.check, HealthCheckRequest(service: String(repeating: "s", count: 20_000)), as: HealthCheckResponse.self)
            XCTFail("an unknown service must be NOT_FOUND")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .notFound, "\(error)")
            XCTAssertLessThan(error.message.utf8.count, 256, error.message)
            XCTAssertTrue(error.message.contains("(20000 bytes)"), error.message)
        }
        let h1 = await health(client)
        XCTAssertEqual(h1, .ok, "the connection survives")
        await client.close()
        await node.stop()
    }

    // MARK: Item 6

    /// With a low cap, client-role connections beyond their share are refused with
    /// RESOURCE_EXHAUSTED (and logged), one certificate cannot take more than its own cap,
    /// an ops status call and a peer node still get through, and once the flood closes new
    /// clients are accepted again.
    func testConnectionCapRefusesTheExcessButKeepsRoomForOpsAndPeers() async throws {
        let nodeCert = try pki.issue(.node, "node1")
        let ops = try pki.issue(.ops, "ops1")
        let peer = try pki.issue(.node, "node2")
        var config = pki.loopbackNode(nodeCert, dataDir: pki.dir + "/data")
        config.rpc.maxConnections = 8
        config.rpc.reservedConnections = 2
        config.rpc.maxConnectionsPerIdentity = 3
        config.rpc.threads = 1
        let logs = CapturedLogs()
        let node = try GridNode(configuration: config, logger: logs.logger())
        let port = try await node.start().port!
        XCTAssertTrue(logs.contains("effective limits"), logs.all.joined(separator: "\n"))

        // One certificate: its fourth connection is refused.
        let c1 = try clientTLS(try pki.issue(.collector, "c1", district: "d1"))
        var flood: [RPCClient] = []
        for _ in 0..<3 {
            let (client, _) = try await connect(port: port, tls: c1)
            let h2 = await health(client)
            XCTAssertEqual(h2, .ok)
            flood.append(client)
        }
        let (fourth, _) = try await connect(port: port, tls: c1)
        let h3 = await health(fourth)
        XCTAssertEqual(h3, .resourceExhausted, "a fourth connection of one certificate")
        await fourth.close()

        // Other client certificates: 6 client-role connections in all (8 minus 2 kept).
        for i in 2...4 {
            let (client, _) = try await connect(port: port, tls: try clientTLS(try pki.issue(.collector, "c\(i)", district: "d1")))
            flood.append(client)
        }
        var admitted = 0
        for client in flood where await health(client) == .ok { admitted += 1 }
        XCTAssertEqual(admitted, 6)
        let (excess, _) = try await connect(port: port, tls: try clientTLS(try pki.issue(.collector, "c5", district: "d1")))
        do {
            _ = try await excess.unary(GridMethod.Health.check, HealthCheckRequest(), as: HealthCheckResponse.self)
            XCTFail("a client beyond the cap must be refused")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .resourceExhausted, "\(error)")
            XCTAssertTrue(error.message.contains("connection refused"), error.message)
        }
        await excess.close()

        // The reserve: an ops status call and a peer node still get through.
        let status = try await ChainClient.status(address: "127.0.0.1:\(port)", certificate: ops.cert, key: ops.key, ca: pki.caCert)
        XCTAssertEqual(status.nodeId, "node1")
        let (peerClient, _) = try await connect(port: port, tls: try clientTLS(peer))
        let h4 = await health(peerClient)
        XCTAssertEqual(h4, .ok, "a peer node uses the reserve")
        await peerClient.close()
        let logged = await NodeProcess.poll(timeout: .seconds(5)) { logs.contains("connection refused") }
        XCTAssertTrue(logged, logs.all.joined(separator: "\n"))

        // The flood goes: a new client is accepted again.
        for client in flood { await client.close() }
        let accepted = await NodeProcess.poll(timeout: .seconds(10)) {
            guard let (client, _) = try? await self.connect(port: port, tls: try! self.clientTLS(try! self.pki.issue(.collector, "c6-\(UUID().uuidString.prefix(8))", district: "d1"))) else { return false }
            defer { Task { await client.close() } }
            return await self.health(client) == .ok
        }
        XCTAssertTrue(accepted, "after the flood, clients are accepted again")
        await node.stop()
    }

    /// The same flood against a `gridnode start` process under a descriptor limit of 128:
    /// the node lowers its caps to fit (and logs them), refuses the excess, keeps answering
    /// ops, and accepts clients again once the flood is gone.
    func testConnectionFloodUnderADescriptorLimitOf128() async throws {
        try NodeProcess.requireExecutable()
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") else { throw XCTSkip("prlimit is missing") }
        let nodeCert = try pki.issue(.node, "node1")
        let ops = try pki.issue(.ops, "ops1")
        let port = try await NodeProcess.freePorts(1)[0]
        let process = NodeProcess(arguments: [
            "start", "--listen", "127.0.0.1:\(port)", "--data-dir", pki.dir + "/data",
            "--cert", nodeCert.cert, "--key", nodeCert.key, "--ca", pki.caCert, "--threads", "1",
        ], log: pki.dir + "/node.log", launcher: ["/usr/bin/prlimit", "--nofile=128", NodeProcess.executable])
        try process.start()
        defer { process.terminate() }
        try await NodeProcess.waitUntilServing(port: port, pki: pki, ops: ops)
        XCTAssertTrue(process.output.contains("lowered_to_fit_descriptors=true"), process.output)

        let collectors = try (0..<8).map { try clientTLS(try pki.issue(.collector, "c\($0)", district: "d1")) }
        var flood: [RPCClient] = []
        var refused = 0
        for i in 0..<150 {
            guard let (client, _) = try? await connect(port: port, tls: collectors[i % collectors.count]) else {
                refused += 1
                continue
            }
            flood.append(client)
            if await health(client) != .ok { refused += 1 }
        }
        XCTAssertGreaterThan(refused, 0, "150 connections under 128 descriptors: some must be refused")
        XCTAssertLessThan(refused, 150)
        // Ops still gets through while the flood holds its connections (refused connections
        // hold handshake slots for their linger, so an attempt may have to be repeated).
        let opsServed = await NodeProcess.poll(timeout: .seconds(5)) {
            (try? await ChainClient.status(address: "127.0.0.1:\(port)", certificate: ops.cert, key: ops.key, ca: self.pki.caCert, timeoutMs: 2000))?.nodeId == "node1"
        }
        XCTAssertTrue(opsServed, process.output.suffix(3000).description)
        let logged = await NodeProcess.poll(timeout: .seconds(5)) { process.output.contains("connection refused") }
        XCTAssertTrue(logged)
        for client in flood { await client.close() }
        let accepted = await NodeProcess.poll(timeout: .seconds(10)) {
            guard let (client, _) = try? await self.connect(port: port, tls: collectors[0]) else { return false }
            defer { Task { await client.close() } }
            return await self.health(client) == .ok
        }
        XCTAssertTrue(accepted, "after the flood, clients are accepted again")
        print("descriptor flood: \(150 - refused) of 150 admitted, \(refused) refused")
        print(process.output.split(separator: "\n").filter { $0.contains("limits") || $0.contains("refused") || $0.contains("accept") }.joined(separator: "\n"))
    }

    // MARK: Item 7

    static let bigUnary = "/test.Bounds/Big"
    static let endless = "/test.Bounds/Endless"

    private func boundsServer(budget: Int) async throws -> (RPCServer, Int, EventLoopGroup) {
        var router = RPCRouter()
        router.unary(Self.bigUnary, roles: Set(Role.allCases)) { (req: MetadataEntry, _) in
            MetadataEntry(key: "big", value: [UInt8](repeating: 9, count: Int(req.key) ?? 0))
        }
        router.serverStreaming(Self.endless, roles: Set(Role.allCases)) { (_: MetadataEntry, out: ResponseWriter<MetadataEntry>, _) in
            let chunk = MetadataEntry(key: "chunk", value: [UInt8](repeating: 8, count: 256 << 10)).serializedBytes()
            while true { try await out.send(serialized: chunk) }
        }
        health.register(in: &router)
        let node = try pki.issue(.node, "node1")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var logger = Logger(label: "bounds")
        logger.logLevel = .critical
        let tls = try TLSContext(configuration: TLSConfiguration(certificatePath: node.cert, privateKeyPath: node.key, trustRootPath: pki.caCert), mode: .server)
        var configuration = RPCServerConfiguration()
        configuration.shutdownGracePeriod = .seconds(1)
        let server = RPCServer(group: group, tls: tls, router: router, configuration: configuration, logger: logger, memoryBudgetBytes: budget)
        let port = try await server.start(host: "127.0.0.1", port: 0).port!
        return (server, port, group)
    }
    private let health = HealthService()

    private static func bigCall(_ client: RPCClient) -> Task<StatusCode?, Never> {
        Task {
            do {
                _ = try await client.unary(bigUnary, MetadataEntry(key: "\(512 << 10)", value: []), as: MetadataEntry.self)
                return .ok
            } catch let error as RPCError {
                return error.code
            } catch {
                return nil
            }
        }
    }

    /// The slow-reader flood: clients that never read their responses, with many unary
    /// calls of 512 KiB responses and endless server streams. The node's accounted buffers
    /// stay under the ceiling (calls beyond it get RESOURCE_EXHAUSTED), another client keeps
    /// being answered, and every byte comes back when the readers go.
    func testSlowReaderFloodStaysUnderTheBudget() async throws {
        let ceiling = 32 << 20
        let (server, port, group) = try await boundsServer(budget: ceiling)
        health.set("", .serving)
        let tls = try clientTLS(try pki.issue(.collector, "slow", district: "d1"))
        var channels: [Channel] = []
        var calls: [Task<StatusCode?, Never>] = []
        for _ in 0..<4 {
            let (client, channel) = try await connect(port: port, tls: tls)
            // From now on the client takes nothing from its socket.
            try await channel.setOption(.autoRead, value: false).get()
            channels.append(channel)
            for _ in 0..<8 {
                let stream = client.serverStreaming(Self.endless, MetadataEntry(), as: MetadataEntry.self)
                calls.append(Task { _ = stream; try? await Task.sleep(for: .seconds(60)); return nil })
            }
            for _ in 0..<96 {
                calls.append(Self.bigCall(client))
            }
        }
        // Let the node produce until every connection is stuck: the budget stops growing.
        var last = -1
        let settled = await NodeProcess.poll(timeout: .seconds(20)) {
            let now = server.budget.usedBytes
            defer { last = now }
            try? await Task.sleep(for: .milliseconds(300))
            return now == last && now > 0
        }
        XCTAssertTrue(settled, "budget use did not settle: \(server.budget.usedBytes)")
        let peak = server.budget.peakBytes
        print("slow-reader flood: budget peak \(peak) bytes of \(ceiling); refused \(server.budget.refusedReservations); calls over budget \(server.stats.callsOverBudget)")
        XCTAssertLessThanOrEqual(peak, ceiling + server.budget.smallMessageReserve)
        XCTAssertGreaterThan(server.budget.refusedReservations, 0, "4 × 96 responses of 512 KiB cannot all be buffered under 32 MiB")

        // Another client is still answered.
        let other = try await GridConnection.connect(host: "127.0.0.1", port: port, tls: try clientTLS(try pki.issue(.ops, "ops1")), serverName: "127.0.0.1", group: group)
        let h5 = await health(other)
        XCTAssertEqual(h5, .ok)
        await other.close()

        for channel in channels { try? await channel.close() }
        for call in calls { call.cancel() }
        let released = await NodeProcess.poll(timeout: .seconds(10)) { server.budget.usedBytes == 0 }
        XCTAssertTrue(released, "budget still holds \(server.budget.usedBytes) bytes after the readers left")
        await server.shutdownGracefully()
        try await group.shutdownGracefully()
    }

    /// The held-request flood against the real transport: 3 connections × 128 streams each
    /// sending a 1 MiB request without end of stream (each was buffered before: 384 MiB).
    /// The node holds at most the ceiling and refuses the rest; ops is still answered.
    func testHeldRequestFloodOverTLSStaysUnderTheBudget() async throws {
        let ceiling = 48 << 20
        let (server, port, group) = try await boundsServer(budget: ceiling)
        health.set("", .serving)
        let tls = try clientTLS(try pki.issue(.collector, "holder", district: "d1"))
        let request = MetadataEntry(key: "0", value: [UInt8](repeating: 7, count: 1 << 20))
        var calls: [ClientStreamingCall<MetadataEntry, MetadataEntry>] = []
        var clients: [RPCClient] = []
        var refusedEarly = 0
        for _ in 0..<3 {
            let (client, _) = try await connect(port: port, tls: tls)
            clients.append(client)
            for _ in 0..<128 {
                // A client-streaming call to a unary method: HEADERS and one MESSAGE without
                // END_STREAM, the request held open.
                let call = try await client.clientStreaming(Self.bigUnary, requestType: MetadataEntry.self, responseType: MetadataEntry.self)
                do { try await call.send(request) } catch { refusedEarly += 1 }
                calls.append(call)
            }
        }
        let refusals = await NodeProcess.poll(timeout: .seconds(30)) { server.stats.callsOverBudget >= UInt64(3 * 128 - ceiling / (1 << 20)) }
        print("held-request flood: budget peak \(server.budget.peakBytes) bytes of \(ceiling); refused calls \(server.stats.callsOverBudget) of \(3 * 128)")
        XCTAssertTrue(refusals, "refused \(server.stats.callsOverBudget)")
        XCTAssertLessThanOrEqual(server.budget.peakBytes, ceiling)
        let other = try await GridConnection.connect(host: "127.0.0.1", port: port, tls: try clientTLS(try pki.issue(.ops, "ops1")), serverName: "127.0.0.1", group: group)
        let h6 = await health(other)
        XCTAssertEqual(h6, .ok)
        await other.close()
        for client in clients { await client.close() }
        let released = await NodeProcess.poll(timeout: .seconds(10)) { server.budget.usedBytes == 0 }
        XCTAssertTrue(released, "budget still holds \(server.budget.usedBytes) bytes")
        _ = refusedEarly
        await server.shutdownGracefully()
        try await group.shutdownGracefully()
    }

    /// Item 7 in a real `gridnode` process, its resident memory measured: 3 connections ×
    /// 128 streams each holding a 1 MiB `Ingest.Submit` request open (without the budget the
    /// node buffered all of them: 384 MiB). With a 64 MiB budget the process stays within its
    /// resting size + the budget + a margin for TLS buffers and the allocator, and still
    /// answers ops.
    func testHeldRequestFloodKeepsTheProcessRSSUnderItsCeiling() async throws {
        try NodeProcess.requireExecutable()
        let node = try pki.issue(.node, "node1", district: "d1")
        let ops = try pki.issue(.ops, "ops1")
        let port = try await NodeProcess.freePorts(1)[0]
        let ceiling = 64 << 20
        let process = NodeProcess(arguments: [
            "start", "--listen", "127.0.0.1:\(port)", "--data-dir", pki.dir + "/data", "--cert", node.cert, "--key", node.key,
            "--ca", pki.caCert, "--chain-id", "d1", "--memory-budget-bytes", "\(ceiling)", "--log-level", "error",
        ], log: pki.dir + "/node.log")
        defer { process.terminate() }
        try process.start()
        try await NodeProcess.waitUntilServing(port: port, pki: pki, ops: ops)
        let pid = try XCTUnwrap(process.process?.processIdentifier)
        func rss() -> Int {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
                let kib = Int(line.split(separator: " ").dropFirst().first ?? "")
            else { return 0 }
            return kib << 10
        }
        let resting = rss()
        let peak = Mutex(resting)
        let sampler = Task {
            while !Task.isCancelled {
                let now = rss()
                peak.withLock { $0 = max($0, now) }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        let tls = try clientTLS(try pki.issue(.collector, "holder", district: "d1"))
        let request = SubmitRequest(transaction: SignedTransaction(payload: [UInt8](repeating: 7, count: 1 << 20)))
        var clients: [RPCClient] = []
        var calls: [ClientStreamingCall<SubmitRequest, SubmitResponse>] = []
        for _ in 0..<3 {
            let (client, _) = try await connect(port: port, tls: tls)
            clients.append(client)
            for _ in 0..<128 {
                let call = try await client.clientStreaming(GridMethod.Ingest.submit, requestType: SubmitRequest.self, responseType: SubmitResponse.self)
                try? await call.send(request)
                calls.append(call)
            }
        }
        try await Task.sleep(for: .seconds(2))
        let opsAnswered = (try? await ChainClient.status(address: "127.0.0.1:\(port)", certificate: ops.cert, key: ops.key, ca: pki.caCert, timeoutMs: 5000))?.nodeId
        sampler.cancel()
        let top = peak.withLock { $0 }
        print("RSS under a held-request flood: resting \(resting >> 20) MiB, peak \(top >> 20) MiB, budget \(ceiling >> 20) MiB (unbounded it held 384 MiB of requests)")
        XCTAssertNotNil(opsAnswered, "ops is answered during the flood")
        XCTAssertLessThan(top - resting, ceiling + (64 << 20), "peak RSS grew \((top - resting) >> 20) MiB over a \(ceiling >> 20) MiB budget")
        for client in clients { await client.close() }
        _ = calls
    }
}
