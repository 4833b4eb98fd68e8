import ArgumentParser
import GridTools
import Node

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks that print figures.", subcommands: [RPC.self, Chain.self, Raft.self, AnchorCost.self, ContractsCost.self])

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

    struct Chain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Readings committed per second and submit-to-durable latency on one node, against raw LevelDB.")
        @Option(help: "Seconds to run.")
        var seconds = 10.0
        @Option(help: "Readings per batch.")
        var batch = 500
        @Option(help: "Concurrent submitters.")
        var submitters = 16
        @Option(help: "Client connections.")
        var connections = 4
        @Option(help: "Max block delay (ms) of the node.")
        var blockDelayMs = 100

        func run() async throws {
            var bench = ChainBenchmark(seconds: seconds, batchSize: batch, submitters: submitters, connections: connections)
            bench.blockDelayMs = blockDelayMs
            try await bench.run { print($0) }
        }
    }

    struct Raft: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "3-node district chain as real processes: readings/s, p50/p99 at full and half load, failover time.")
        @Option(help: "Seconds per load phase.")
        var seconds = 8.0
        @Option(help: "Concurrent submitters.")
        var submitters = 32

        func run() async throws {
            var bench = RaftBenchmark(executable: CommandLine.arguments[0])
            bench.seconds = seconds
            bench.submitters = submitters
            try await bench.run { print($0) }
        }
    }

    struct AnchorCost: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "anchor",
            abstract: "District ingestion with anchoring on vs off (same run), and commit-to-anchor latency.")
        @Option(help: "Seconds per district.")
        var seconds = 8.0
        @Option(help: "Concurrent submitters.")
        var submitters = 16
        @Option(help: "Readings per batch.")
        var batch = 500
        @Option(help: "Anchor every this many blocks.")
        var anchorEveryBlocks = 20
        @Option(help: "Anchor when the oldest unanchored block is this old (ms).")
        var anchorEveryMs = 1000

        func run() async throws {
            var bench = AnchorBenchmark(seconds: seconds)
            bench.submitters = submitters
            bench.batchSize = batch
            bench.anchorEveryBlocks = anchorEveryBlocks
            bench.anchorEveryMs = anchorEveryMs
            try await bench.run { print($0) }
        }
    }

    struct ContractsCost: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "contracts",
            abstract: "Readings billed/s: the contract engine alone, and a 3-node chain with vs without billing (same run).")
        @Option(help: "Seconds per phase.")
        var seconds = 8.0
        @Option(help: "Concurrent submitters.")
        var submitters = 8
        @Option(help: "Readings per batch (= meters per submitter).")
        var batch = 250

        func run() async throws {
            var bench = ContractsChainBenchmark()
            bench.seconds = seconds
            bench.submitters = submitters
            bench.batchSize = batch
            try await bench.run { print($0) }
        }
    }
}
