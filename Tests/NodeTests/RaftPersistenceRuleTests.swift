import Consensus
import Logging
import Synchronization
import XCTest

@testable import Node

/// Rule (the `Ready` persistence contract; Raft Figure 2, "Persistent state on all servers:
/// updated on stable storage before responding to RPCs"): before a `Ready`'s messages are
/// sent, everything it marked must-sync is durable, as the storage reports it. A storage
/// that acknowledges writes without syncing them must stop the driver before it answers,
/// not after (issue 12: the old assertion compared against the in-memory log and could not
/// fail).
final class RaftPersistenceRuleTests: XCTestCase {
    /// Stable storage in memory. `lies`: `persist` returns as if it had synced, but nothing
    /// becomes durable (a disk that drops flushes, a forgotten fsync).
    final class MemoryStorage: RaftStorage {
        private struct State {
            var durable = RaftDurableState()
            var entries: [Entry] = []
        }
        private let state = Mutex(State())
        let lies: Bool

        init(lies: Bool) { self.lies = lies }

        func load() throws -> PersistentState {
            state.withLock { s in
                PersistentState(hardState: s.durable.hardState, entries: s.entries)
            }
        }

        func persist(hardState: HardState?, entries: [Entry], snapshot: Snapshot?) throws {
            guard !lies else { return }
            state.withLock { s in
                if let snapshot {
                    s.durable.snapshotIndex = snapshot.metadata.index
                    s.durable.snapshotTerm = snapshot.metadata.term
                    s.entries.removeAll()
                    s.durable.lastIndex = snapshot.metadata.index
                    s.durable.lastTerm = snapshot.metadata.term
                }
                if let first = entries.first, let last = entries.last {
                    s.entries.removeAll { $0.index >= first.index }  // Raft §5.3
                    s.entries += entries
                    s.durable.lastIndex = last.index
                    s.durable.lastTerm = last.term
                }
                if let hardState { s.durable.hardState = hardState }
            }
        }

        func setApplied(_ index: UInt64, sync: Bool) throws {}
        func compact(upTo index: UInt64, snapshot: Snapshot) throws {}
        var durable: RaftDurableState { state.withLock { $0.durable } }
    }

    final class RecordingNetwork: RaftNetwork {
        let sent = Mutex<[Message]>([])
        func send(_ messages: [Message]) { sent.withLock { $0 += messages } }
    }

    final class NoStateMachine: RaftStateMachine {
        func apply(_ entry: Entry) throws {}
        func snapshotData() -> [UInt8] { [] }
        func install(_ snapshot: Snapshot, from leader: NodeID) async throws {}
    }

    /// Member 1 of a bootstrapped group {1, 2, 3} receives node 2's RequestVote for term 2
    /// (Raft §5.2): granting it needs the new term and the vote durable before the response
    /// leaves. Returns what the network saw and why the driver halted, if it did.
    private func voteRequestAnswered(lies: Bool) async throws -> (sent: [Message], halted: String?) {
        let network = RecordingNetwork()
        let driver = RaftDriver(
            configuration: RaftConfiguration(id: 1), storage: MemoryStorage(lies: lies), network: network,
            stateMachine: NoStateMachine(), tickInterval: .seconds(3600), seed: 1, logger: Logger(label: "test"))
        try driver.start(bootstrapVoters: [1, 2, 3])
        driver.deliver([Message(kind: .vote, from: 2, to: 1, term: 2, logTerm: 1, index: 1)])
        let deadline = ContinuousClock.now + .seconds(5)
        while network.sent.withLock({ $0.isEmpty }), driver.status.halted == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        let outcome = (network.sent.withLock { $0 }, driver.status.halted)
        await driver.stop()
        return outcome
    }

    /// With storage that syncs, the vote is granted and the response is sent.
    func testDurableVoteIsAnswered() async throws {
        let (sent, halted) = try await voteRequestAnswered(lies: false)
        XCTAssertNil(halted)
        XCTAssertEqual(sent.map(\.kind), [.voteResponse])
        XCTAssertEqual(sent.first?.reject, false)
    }

    /// With storage that does not sync, the check fires: the driver halts and the vote
    /// response never leaves (a vote not on disk could be cast twice after a crash, §5.2).
    func testVoteThatIsNotDurableIsNeverSent() async throws {
        let (sent, halted) = try await voteRequestAnswered(lies: true)
        XCTAssertEqual(sent, [], "a message left before its hard state was durable")
        let reason = try XCTUnwrap(halted, "the persistence check did not fire")
        XCTAssertTrue(reason.contains("persistence rule broken: hard state"), reason)
    }

    // MARK: The rule itself, part by part

    private func assertBroken(_ ready: Ready, _ durable: RaftDurableState, _ expected: String,
                              file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try RaftPersistenceRule.check(ready, durable: durable), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(error is RaftPersistenceRule.Violation && text.contains(expected), text, file: file, line: line)
        }
    }

    func testEachMustSyncPartIsChecked() throws {
        let durable = RaftDurableState(hardState: HardState(term: 2, vote: 1, commit: 3), lastIndex: 5, lastTerm: 2)
        XCTAssertNoThrow(try RaftPersistenceRule.check(Ready(), durable: durable))
        XCTAssertNoThrow(try RaftPersistenceRule.check(
            Ready(hardState: HardState(term: 2, vote: 1, commit: 3), entriesToPersist: [Entry(term: 2, index: 5)],
                  messages: [Message(kind: .appendResponse, from: 1, to: 2, term: 2, index: 5)]),
            durable: durable))
        // Figure 2: currentTerm and votedFor (and the commit kept with them).
        assertBroken(Ready(hardState: HardState(term: 3, vote: 1, commit: 3)), durable, "hard state")
        // §5.3: the entries; a stored entry at the same index but another term is not it.
        assertBroken(Ready(entriesToPersist: [Entry(term: 2, index: 6)]), durable, "entry 6")
        assertBroken(Ready(entriesToPersist: [Entry(term: 3, index: 5)]), durable, "entry 5 (term 3)")
        // §7: a snapshot received from the leader.
        let snapshot = Snapshot(metadata: .init(index: 4, term: 2, confState: ConfState(voters: [1])), data: [])
        assertBroken(Ready(snapshotToPersist: snapshot), durable, "snapshot 4")
        // An acknowledgement beyond the durable log (a rejection acknowledges nothing).
        assertBroken(Ready(messages: [Message(kind: .appendResponse, from: 1, to: 2, term: 2, index: 6)]), durable, "acknowledges entry 6")
        XCTAssertNoThrow(try RaftPersistenceRule.check(
            Ready(messages: [Message(kind: .appendResponse, from: 1, to: 2, term: 2, index: 6, reject: true)]), durable: durable))
    }
}
