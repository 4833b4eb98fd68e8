import Consensus
import Foundation
import XCTest

/// Seed sweeps of the deterministic cluster simulation (STYLE habit 13). Every run checks
/// election safety, log matching, leader completeness, state machine safety, ReadIndex
/// linearizability against leader-committed indexes, and liveness after healing.
///
/// A failing seed is printed as `SEED=<n>`; replay it with a trace:
///   RAFT_SEED=<n> [RAFT_SCENARIO=three|five|membership] swift test --filter SimulationTests/testReplaySeed
final class SimulationTests: XCTestCase {
    static var seedsPerSweep: Int {
        Int(ProcessInfo.processInfo.environment["RAFT_SEEDS"] ?? "") ?? 400
    }

    static func options(_ scenario: String) -> SimulatedCluster.Options {
        var o = SimulatedCluster.Options()
        switch scenario {
        case "five":
            o.voters = 5
        case "membership":
            o.voters = 3
            o.spares = 3
            o.membershipRate = 0.03
        case "harsh":
            o.voters = 3
            o.dropRate = 0.2
            o.duplicateRate = 0.1
            o.maxDelay = 5
            o.crashRate = 0.02
            o.partitionRate = 0.03
            o.compactAfter = 8
        case "figure8":
            // Raft Figure 8 pressure: one entry per append and a window of one, so followers
            // acknowledge old-term entries before the new leader's no-op; frequent leader
            // crashes and partitions.
            o.voters = 5
            o.maxSizePerMessage = 1
            o.maxInflightMessages = 8
            o.maxInflightBytes = 0
            o.commitTicks = 200
            o.crashRate = 0.03
            o.restartRate = 0.1
            o.partitionRate = 0.05
            o.healRate = 0.1
            o.dropRate = 0.1
            o.maxDelay = 4
            o.proposeRate = 0.5
            o.compactAfter = 0
        default:
            break
        }
        return o
    }

    /// Runs `count` seeds starting at `base`; returns the failing seeds.
    func sweep(_ scenario: String, base: UInt64, count: Int) -> [UInt64] {
        var failures: [UInt64] = []
        var proposed = 0, reads = 0, snapshots = 0, changes = 0, terms = 0
        let start = Date()
        for seed in base..<(base + UInt64(count)) {
            var sim = SimulatedCluster(seed: seed, options: Self.options(scenario))
            sim.run()
            proposed += sim.proposed
            reads += sim.confirmedReads
            snapshots += sim.snapshotsInstalled
            changes += sim.membershipChanges
            terms += sim.checker.leaders.count
            if !sim.checker.ok {
                failures.append(seed)
                print("SEED=\(seed) RAFT_SCENARIO=\(scenario) failed:\n  " + sim.checker.violations.joined(separator: "\n  "))
                if failures.count >= 5 { break }
            }
        }
        print("simulation \(scenario): \(count) seeds from \(base) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s; leaders elected \(terms), proposals accepted \(proposed), reads confirmed \(reads), snapshots installed \(snapshots), membership changes \(changes)")
        return failures
    }

    func testSweepThreeNodes() {
        XCTAssertEqual(sweep("three", base: 1, count: Self.seedsPerSweep), [])
    }

    func testSweepThreeNodesMore() {
        XCTAssertEqual(sweep("three", base: 100_001, count: Self.seedsPerSweep), [])
    }

    func testSweepFiveNodes() {
        XCTAssertEqual(sweep("five", base: 200_001, count: Self.seedsPerSweep), [])
    }

    func testSweepHarsh() {
        XCTAssertEqual(sweep("harsh", base: 300_001, count: Self.seedsPerSweep), [])
    }

    func testSweepFigure8() {
        XCTAssertEqual(sweep("figure8", base: 500_001, count: Self.seedsPerSweep), [])
    }

    func testSweepMembership() {
        XCTAssertEqual(sweep("membership", base: 400_001, count: Self.seedsPerSweep), [])
    }

    /// `RAFT_SEED=<n>` replays exactly one seed and prints its trace.
    func testReplaySeed() throws {
        guard let text = ProcessInfo.processInfo.environment["RAFT_SEED"], let seed = UInt64(text) else {
            throw XCTSkip("set RAFT_SEED=<n> (and RAFT_SCENARIO) to replay one seed")
        }
        let scenario = ProcessInfo.processInfo.environment["RAFT_SCENARIO"] ?? "three"
        var sim = SimulatedCluster(seed: seed, options: Self.options(scenario), tracing: true)
        sim.run()
        let lines = sim.trace ?? []
        let limit = Int(ProcessInfo.processInfo.environment["RAFT_TRACE_LINES"] ?? "") ?? 400
        print(lines.suffix(limit).joined(separator: "\n"))
        XCTAssert(sim.checker.ok, "SEED=\(seed): " + sim.checker.violations.joined(separator: "; "))
    }

    /// The same seed yields the same run (no hidden nondeterminism).
    func testRunsAreDeterministic() {
        var a = SimulatedCluster(seed: 42, options: Self.options("membership"), tracing: true)
        var b = SimulatedCluster(seed: 42, options: Self.options("membership"), tracing: true)
        a.run()
        b.run()
        XCTAssertEqual(a.trace, b.trace)
        XCTAssertGreaterThan(a.trace?.count ?? 0, 1000)
    }
}
