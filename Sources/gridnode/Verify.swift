import ArgumentParser
import Foundation
import Chain
import Node

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recompute every hash and index of a stopped node's chain from genesis; report the first inconsistency.")
    @Option(help: "The node's data directory.")
    var data: String
    @Option(help: "Verify only this chain (default: every chain in the data directory).")
    var chain: String?

    func run() throws {
        let chains = chain.map { [$0] } ?? ChainVerifier.chains(in: data)
        guard !chains.isEmpty else { throw ValidationError("no chain store in \(data)/chains") }
        var failed = false
        for id in chains {
            failed = try verify(id) || failed
        }
        if failed { throw ExitCode(1) }
    }

    /// Returns whether the chain is inconsistent.
    private func verify(_ id: String) throws -> Bool {
        let terminal = isatty(STDERR_FILENO) == 1
        let report = try ChainVerifier.verify(dataDirectory: data, chainID: id) { done, total in
            guard terminal else { return }
            let fraction = total == 0 ? 1 : Double(done) / Double(total)
            let width = 40
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            FileHandle.standardError.write(Data(String(format: "\rverifying [%@] %3.0f%%  height %llu/%llu", bar, fraction * 100, done, total).utf8))
        }
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
        let summary = "chain \(report.chainID): \(report.blocks) blocks, \(report.transactions) transactions, \(report.stateKeys) state keys, \(report.historyEntries) history entries"
        if let problem = report.firstInconsistency {
            print("INCONSISTENT: \(problem)")
            print(summary)
            return true
        }
        print("OK: \(summary)")
        return false
    }
}
