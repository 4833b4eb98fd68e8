import ArgumentParser
import Node

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks that print figures.", subcommands: [RPC.self])

    struct RPC: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Unary calls/s and p50/p99 latency over mTLS on loopback, and server-streaming throughput.")
        @Option(help: "Seconds per measurement.")
        var seconds = 3.0
        @Option(help: "Concurrent calls to measure (comma separated).")
        var concurrency = "1,16,128"
        @Option(help: "Connections to measure (comma separated).")
        var connections = "1,8"

        func run() async throws {
            let levels = concurrency.split(separator: ",").compactMap { Int($0) }
            let conns = connections.split(separator: ",").compactMap { Int($0) }
            try await RPCBenchmark(seconds: seconds, concurrency: levels, connections: conns).run { print($0) }
        }
    }
}
