import ArgumentParser
import Foundation
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

        func validate() throws {
            try requirePositive(seconds, "--seconds")
            _ = try positiveList(concurrency, "--concurrency")
            _ = try positiveList(connections, "--connections")
        }

        func run() async throws {
            let levels = try positiveList(concurrency, "--concurrency")
            let conns = try positiveList(connections, "--connections")
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

        func validate() throws {
            try requirePositive(seconds, "--seconds")
            try requirePositive(batch, "--batch")
            try requirePositive(submitters, "--submitters")
            try requirePositive(connections, "--connections")
            try requirePositive(blockDelayMs, "--block-delay-ms")
        }

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

        func validate() throws {
            try requirePositive(seconds, "--seconds")
            try requirePositive(submitters, "--submitters")
        }

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

        func validate() throws {
            try requirePositive(seconds, "--seconds")
            try requirePositive(submitters, "--submitters")
            try requirePositive(batch, "--batch")
            try requirePositive(anchorEveryBlocks, "--anchor-every-blocks")
            try requirePositive(anchorEveryMs, "--anchor-every-ms")
        }

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

        func validate() throws {
            try requirePositive(seconds, "--seconds")
            try requirePositive(submitters, "--submitters")
            try requirePositive(batch, "--batch")
        }

        func run() async throws {
            var bench = ContractsChainBenchmark()
            bench.seconds = seconds
            bench.submitters = submitters
            bench.batchSize = batch
            try await bench.run { print($0) }
        }
    }
}

/// Bad benchmark options end the command with a sentence naming the option (ArgumentParser
/// prints a `ValidationError` with the usage) instead of a crash or a run that measures nothing.
private func requirePositive<Number: Numeric & Comparable>(_ value: Number, _ option: String) throws {
    guard value > 0 else { throw ValidationError("\(option) must be greater than 0 (got \(value)).") }
}

/// The values of a comma-separated option of positive integers (`--concurrency 1,16,128`);
/// an empty list, a value that is not a number or one below 1 is a `ValidationError`.
private func positiveList(_ text: String, _ option: String) throws -> [Int] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false)
    let values = try parts.map { part -> Int in
        let trimmed = part.trimmingCharacters(in: .whitespaces)
        guard let value = Int(trimmed), value > 0 else {
            throw ValidationError("\(option) takes positive whole numbers separated by commas, such as 1,16,128; '\(part)' is not one.")
        }
        return value
    }
    guard !values.isEmpty else { throw ValidationError("\(option) needs at least one value.") }
    return values
}
