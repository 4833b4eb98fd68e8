import ArgumentParser
import Foundation
import GridClient
import GridTools
import Node

struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulated meters: signed reading batches sent to district nodes through the real client path.")
    @Option(name: .customLong("node"), help: "DISTRICT=HOST:PORT of the node serving that district's chain (repeatable).")
    var nodes: [String]
    @Option(help: "CA directory (ca.crt, ca.key): collector certificates are issued from it.")
    var caDir: String
    @Option(help: "Directory for the collector certificates.")
    var pki: String
    @Option(help: "Customer meters per district.")
    var meters = 200
    @Option(help: "Seed of the meter fleet.")
    var seed: UInt64 = 1
    @Option(help: "Wall-clock milliseconds between simulated 15-minute intervals.")
    var tickMs = 1000
    @Option(help: "Intervals to send (0 = until interrupted).")
    var intervals = 0
    @Option(help: "Readings per signed batch.")
    var batch = 500
    @Option(help: "HOST:PORT of a main-chain node: onboard the customers there, top up disconnected accounts, run the district terminals.")
    var main: String?
    @Option(help: "Id of the main chain.")
    var mainChain = "main"

    func run() async throws {
        var options = Simulator.Options()
        for spec in nodes {
            let parts = spec.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw ValidationError("--node takes DISTRICT=HOST:PORT, got '\(spec)'") }
            options.nodes.append((String(parts[0]), String(parts[1])))
        }
        options.caDirectory = caDir
        options.pkiDirectory = pki
        options.metersPerDistrict = meters
        options.seed = seed
        options.tick = .milliseconds(tickMs)
        options.intervals = intervals
        options.batchSize = batch
        options.mainAddress = main
        options.mainChain = mainChain
        // One line per interval, written at once (also when stdout is a log file).
        do {
            try await Simulator(options: options).run { line in
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            // A connection failure as a sentence (which node, and the likely cause), not an
            // NIO or TLS error dump.
            let address = options.mainAddress ?? options.nodes.first?.1 ?? "the node"
            let sentence = ConnectionErrorText.describe(error, address: address, ca: caDir + "/ca.crt")
            FileHandle.standardError.write(Data("error: \(sentence)\n".utf8))
            throw ExitCode(2)
        }
    }
}
