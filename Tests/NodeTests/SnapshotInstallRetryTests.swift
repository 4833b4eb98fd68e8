import Consensus
import Logging
import Synchronization
import XCTest

@testable import Node

/// Rule (Raft §7, InstallSnapshot; Docs/simulation.md, "What it found"): a follower that
/// receives a snapshot and cannot reach a source for its blocks (the leader went down or
/// away during block transfer) keeps its replica: it retries the install later instead of
/// halting. Only a block that fails verification halts a replica.
final class SnapshotInstallRetryTests: XCTestCase {
    /// Install fails with `failure` the first `failures` times, then succeeds.
    final class FlakyInstall: RaftStateMachine {
        let attempts = Mutex(0)
        let failures: Int
        let failure: @Sendable () -> Error

        init(failures: Int, failure: @escaping @Sendable () -> Error) {
            self.failures = failures
            self.failure = failure
        }

        func apply(_ entry: Entry) throws {}
        func snapshotData() -> [UInt8] { [] }
        func install(_ snapshot: Snapshot, from leader: NodeID) async throws {
            let attempt = attempts.withLock { n in n += 1; return n }
            if attempt <= failures { throw failure() }
        }
    }

    private func follower(_ machine: FlakyInstall) throws -> (RaftShell, RaftPersistenceRuleTests.RecordingNetwork) {
        let network = RaftPersistenceRuleTests.RecordingNetwork()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let shell = try RaftShell(
            configuration: RaftConfiguration(id: 1), storage: MemoryRaftStorage(),
            network: network, stateMachine: machine, bootstrapVoters: [1, 2, 3], seed: 1, logger: logger)
        // Leader 2 of term 2 sends a snapshot at index 10.
        let snapshot = Snapshot(metadata: .init(index: 10, term: 2, confState: ConfState(voters: [1, 2, 3])), data: [1])
        shell.step([Message(kind: .snapshot, from: 2, to: 1, term: 2, snapshot: snapshot)])
        return (shell, network)
    }

    func testUnreachableSourceIsRetriedNotHalted() async throws {
        let machine = FlakyInstall(failures: 2) { SnapshotSourceUnavailable(reason: "leader 2 is down") }
        let (shell, _) = try follower(machine)
        _ = await shell.drain()
        XCTAssertNil(shell.halted, "an unreachable leader must not halt the replica")
        XCTAssertEqual(machine.attempts.withLock { $0 }, 1)
        // Backoff: nothing is retried before two ticks passed.
        _ = await shell.drain()
        XCTAssertEqual(machine.attempts.withLock { $0 }, 1)
        for _ in 0..<2 { shell.tick() }
        _ = await shell.drain()
        XCTAssertEqual(machine.attempts.withLock { $0 }, 2, "the reloaded core hands the durable snapshot out again")
        XCTAssertNil(shell.halted)
        // The second backoff is four ticks; then the install succeeds.
        for _ in 0..<4 { shell.tick() }
        _ = await shell.drain()
        XCTAssertEqual(machine.attempts.withLock { $0 }, 3)
        XCTAssertNil(shell.halted)
        XCTAssertEqual(shell.node.log.applied, 10)
    }

    func testBlockThatFailsVerificationHalts() async throws {
        struct Forged: Error {}
        let machine = FlakyInstall(failures: 1) { Forged() }
        let (shell, _) = try follower(machine)
        _ = await shell.drain()
        XCTAssertNotNil(shell.halted, "a failure other than an unreachable source must halt")
    }
}
