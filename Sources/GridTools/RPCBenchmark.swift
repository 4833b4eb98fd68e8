import Node
import Foundation
import GridClient
import GridProto
import GridTLS
import Identity
import Logging
import NIOCore
import NIOPosix
import Wire

/// `gridnode bench rpc`: unary calls per second and latency percentiles over mutual TLS on
/// loopback, at several concurrency levels and connection counts, and server-streaming
/// throughput of 100-byte messages. Server and client share this process and this machine's
/// cores, as a co-located client would.
public struct RPCBenchmark: Sendable {
    public var seconds: Double
    public var concurrency: [Int]
    public var connections: [Int]
    public var streamMessages = 2_000_000

    static let echoMethod = "/gridledger.Bench/Echo"
    static let streamMethod = "/gridledger.Bench/Stream"

    public init(seconds: Double, concurrency: [Int], connections: [Int]) {
        self.seconds = seconds
        self.concurrency = concurrency
        self.connections = connections
    }

    public func run(report: (String) -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gridledger-bench-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PKI.initializeCA(outDirectory: dir + "/ca", commonName: "bench CA")
        let node = try PKI.issue(caDirectory: dir + "/ca", role: .node, name: "bench-node", outDirectory: dir + "/node")
        let client = try PKI.issue(caDirectory: dir + "/ca", role: .ops, name: "bench-client", outDirectory: dir + "/client")

        var router = RPCRouter()
        router.unary(Self.echoMethod, roles: Set(Role.allCases)) { (request: MetadataEntry, _) in request }
        router.serverStreaming(Self.streamMethod, roles: Set(Role.allCases)) {
            (request: MetadataEntry, out: ResponseWriter<MetadataEntry>, _) in
            let count = Int(request.key) ?? 0
            let message = MetadataEntry(key: "", value: Array(repeating: 0x5a, count: 98))
            let bytes = message.serializedBytes()
            for _ in 0..<count { try await out.send(serialized: bytes) }
        }
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let serverTLS = try TLSContext(
            configuration: TLSConfiguration(certificatePath: node.certificatePath, privateKeyPath: node.privateKeyPath, trustRootPath: node.caCertificatePath),
            mode: .server)
        let clientTLS = try TLSContext(
            configuration: TLSConfiguration(certificatePath: client.certificatePath, privateKeyPath: client.privateKeyPath, trustRootPath: client.caCertificatePath),
            mode: .client)
        var configuration = RPCServerConfiguration()
        configuration.maxConcurrentStreams = 1024
        let server = RPCServer(group: serverGroup, tls: serverTLS, router: router, configuration: configuration, logger: logger)
        let address = try await server.start(host: "127.0.0.1", port: 0)
        let port = address.port!

        report("GridLedger RPC benchmark: mutual TLS 1.3 on loopback, \(ProcessInfo.processInfo.activeProcessorCount) cores, \(seconds) s per row")
        report("server: 1 event loop thread; client: 1 event loop thread, same process")
        report("")
        report("unary echo, 100-byte payload")
        report("connections  in-flight     calls/s    p50 µs    p99 µs")
        for connectionCount in connections {
            var clients: [RPCClient] = []
            for _ in 0..<connectionCount {
                clients.append(try await GridConnection.connect(host: "127.0.0.1", port: port, tls: clientTLS, serverName: "127.0.0.1", group: clientGroup, logger: logger))
            }
            // Warm up connections, TLS sessions and allocator pools before measuring.
            _ = try await unary(clients: clients, inFlight: 4, duration: 0.3)
            for inFlight in concurrency {
                let result = try await unary(clients: clients, inFlight: inFlight)
                report(String(format: "%11d  %9d  %10.0f  %8.1f  %8.1f", connectionCount, inFlight, result.rate, result.p50, result.p99))
            }
            for c in clients { await c.close() }
        }

        report("")
        report("server streaming, 100-byte messages, one call")
        let streamClient = try await GridConnection.connect(host: "127.0.0.1", port: port, tls: clientTLS, serverName: "127.0.0.1", group: clientGroup, logger: logger)
        let start = ContinuousClock.now
        var received = 0
        var bytes = 0
        for try await message in streamClient.serverStreaming(Self.streamMethod, MetadataEntry(key: "\(streamMessages)", value: []), as: MetadataEntry.self) {
            received += 1
            bytes += message.value.count + 2
        }
        let elapsed = (ContinuousClock.now - start).seconds
        report(String(format: "messages %d  in %.2f s  =  %.0f messages/s,  %.1f MB/s", received, elapsed, Double(received) / elapsed, Double(bytes) / elapsed / 1e6))
        await streamClient.close()
        await server.shutdownGracefully()
        try await serverGroup.shutdownGracefully()
        try await clientGroup.shutdownGracefully()
    }

    private func unary(clients: [RPCClient], inFlight: Int, duration: Double? = nil) async throws -> (rate: Double, p50: Double, p99: Double) {
        let request = MetadataEntry(key: "", value: Array(repeating: 0xa5, count: 98))
        let end = ContinuousClock.now + .milliseconds(Int64((duration ?? seconds) * 1000))
        let start = ContinuousClock.now
        let latencies = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for worker in 0..<inFlight {
                let client = clients[worker % clients.count]
                group.addTask {
                    var samples: [Int64] = []
                    samples.reserveCapacity(100_000)
                    while ContinuousClock.now < end {
                        let t0 = ContinuousClock.now
                        _ = try await client.unary(Self.echoMethod, request, as: MetadataEntry.self)
                        let d = ContinuousClock.now - t0
                        samples.append(d.nanoseconds)
                    }
                    return samples
                }
            }
            var all: [Int64] = []
            for try await s in group { all += s }
            return all
        }
        let elapsed = (ContinuousClock.now - start).seconds
        let samples = LatencySamples(latencies)
        return (Double(samples.count) / elapsed, samples.quantile(0.50) / 1000, samples.quantile(0.99) / 1000)
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
