import Foundation
import XCTest

/// Seed sweeps of the deterministic simulated cluster (issue 12 §3; Docs/simulation.md):
/// full district-chain replicas under message loss, delay, reordering, duplication,
/// partitions, crashes that lose what was not synced, restarts, leadership transfers and
/// membership changes. Each run ends with the checks of `ClusterInvariants`.
///
/// A failing seed is printed with the one command that replays it with a trace:
///   GRIDLEDGER_SIM_SEED=<n> GRIDLEDGER_SIM_SCENARIO=<name> swift test --filter ClusterSimulationTests/testReplaySeed
/// `GRIDLEDGER_SIM_SEEDS=<n>` changes the sweep size; `GRIDLEDGER_SIM_SOAK=1` runs
/// `testSoak`, which sweeps seeds until one fails or the process is stopped.
final class ClusterSimulationTests: XCTestCase {
    static let environment = ProcessInfo.processInfo.environment

    /// Seeds per scenario sweep; the CI total over the scenarios is at least 10,000.
    static var seedsPerSweep: Int { Int(environment["GRIDLEDGER_SIM_SEEDS"] ?? "") ?? 2_500 }

    static let scenarios = ["three", "five", "membership", "harsh"]

    static func options(_ scenario: String) -> ClusterSimulation.Options {
        var o = ClusterSimulation.Options()
        switch scenario {
        case "five":
            o.voters = 5
        case "membership":
            o.voters = 3
            o.spares = 2
            o.membershipRate = 0.05
        case "harsh":
            o.dropRate = 0.2
            o.duplicateRate = 0.1
            o.maxDelay = 5
            o.crashRate = 0.03
            o.partitionRate = 0.04
            o.compactEvery = 2
        default:
            break
        }
        return o
    }

    struct SweepReport {
        var failures: [UInt64] = []
        var blocks = 0, acknowledged = 0, requests = 0, crashes = 0, snapshots = 0, membershipChanges = 0
    }

    /// Runs seeds `base..<base+count` of `scenario`, one simulation per core at a time (each
    /// is confined to its own task; they share nothing but the PKI); prints the replay
    /// command of each failure.
    static func sweep(_ scenario: String, base: UInt64, count: Int, options: ClusterSimulation.Options? = nil,
                      quiet: Bool = false) async throws -> SweepReport {
        let options = options ?? Self.options(scenario)
        _ = SimulatedParties.shared
        let width = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let start = Date()
        var report = SweepReport()
        try await withThrowingTaskGroup(of: (UInt64, ClusterSimulation).self) { group in
            var next = base
            let end = base + UInt64(count)
            func launch() {
                guard next < end else { return }
                let seed = next
                next += 1
                group.addTask {
                    let sim = try ClusterSimulation(seed: seed, options: options)
                    try await sim.run()
                    return (seed, sim)
                }
            }
            for _ in 0..<width { launch() }
            while let (seed, sim) = try await group.next() {
                report.blocks += sim.blocksProposed
                report.acknowledged += sim.invariants.acknowledged
                report.requests += sim.requestCounts.made
                report.crashes += sim.crashes
                report.snapshots += sim.snapshotsSent
                report.membershipChanges += sim.membershipChanges
                if !sim.invariants.ok {
                    report.failures.append(seed)
                    if !quiet {
                        print("simulated cluster failed: " + sim.invariants.violations.joined(separator: "; "))
                        print("replay: GRIDLEDGER_SIM_SEED=\(seed) GRIDLEDGER_SIM_SCENARIO=\(scenario) swift test --filter ClusterSimulationTests/testReplaySeed")
                    }
                }
                if report.failures.count < 3 { launch() }
            }
        }
        report.failures.sort()
        if !quiet {
            print("simulated cluster \(scenario): \(count) seeds from \(base) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s; " +
                  "blocks proposed \(report.blocks), requests \(report.requests), acknowledgements \(report.acknowledged), " +
                  "crashes \(report.crashes), snapshots sent \(report.snapshots), membership changes \(report.membershipChanges)")
        }
        return report
    }

    func testThreeReplicas() async throws {
        let report = try await Self.sweep("three", base: 1, count: Self.seedsPerSweep)
        XCTAssertEqual(report.failures, [])
        XCTAssertGreaterThan(report.acknowledged, Self.seedsPerSweep, "the workload was hardly acknowledged: the sweep proves little")
    }

    func testFiveReplicas() async throws {
        let report = try await Self.sweep("five", base: 1_000_001, count: Self.seedsPerSweep)
        XCTAssertEqual(report.failures, [])
    }

    func testMembershipChanges() async throws {
        let report = try await Self.sweep("membership", base: 2_000_001, count: Self.seedsPerSweep)
        XCTAssertEqual(report.failures, [])
        XCTAssertGreaterThan(report.membershipChanges, 0)
    }

    func testHarshNetworkAndCrashes() async throws {
        let report = try await Self.sweep("harsh", base: 3_000_001, count: Self.seedsPerSweep)
        XCTAssertEqual(report.failures, [])
        XCTAssertGreaterThan(report.snapshots, 0, "no snapshot was sent: block transfer went untested")
    }

    /// The suite can fail: with the commit rule broken (a leader commits, applies and
    /// acknowledges without a quorum; a debug-build-only switch in the Raft core), the sweep
    /// finds forks or lost acknowledgements.
    func testBrokenQuorumRuleIsCaught() async throws {
        #if DEBUG
        var options = Self.options("harsh")
        options.breakQuorumRule = true
        let report = try await Self.sweep("harsh-broken", base: 1, count: 200, options: options, quiet: true)
        XCTAssertFalse(report.failures.isEmpty, "200 seeds with the quorum rule broken found nothing: the checks are too weak")
        #else
        throw XCTSkip("the broken-rule switch exists in debug builds only")
        #endif
    }

    /// Replays one seed with a trace (`GRIDLEDGER_SIM_SEED`, `GRIDLEDGER_SIM_SCENARIO`).
    func testReplaySeed() async throws {
        guard let text = Self.environment["GRIDLEDGER_SIM_SEED"], let seed = UInt64(text) else {
            throw XCTSkip("set GRIDLEDGER_SIM_SEED (and GRIDLEDGER_SIM_SCENARIO) to replay a seed")
        }
        let scenario = Self.environment["GRIDLEDGER_SIM_SCENARIO"] ?? "three"
        var options = Self.options(scenario.replacingOccurrences(of: "-broken", with: ""))
        if scenario.hasSuffix("-broken") { options.breakQuorumRule = true }
        let sim = try ClusterSimulation(seed: seed, options: options, tracing: true)
        try await sim.run()
        for line in sim.trace ?? [] { print(line) }
        XCTAssertEqual(sim.invariants.violations, [])
    }

    /// Unbounded soak (`GRIDLEDGER_SIM_SOAK=1`): sweeps fresh seeds of every scenario until one fails.
    func testSoak() async throws {
        guard Self.environment["GRIDLEDGER_SIM_SOAK"] == "1" else {
            throw XCTSkip("set GRIDLEDGER_SIM_SOAK=1 to soak")
        }
        var base = UInt64(Date().timeIntervalSince1970) << 16
        while true {
            for scenario in Self.scenarios {
                let report = try await Self.sweep(scenario, base: base, count: 500)
                XCTAssertEqual(report.failures, [])
                if !report.failures.isEmpty { return }
            }
            base += 500
        }
    }
}
