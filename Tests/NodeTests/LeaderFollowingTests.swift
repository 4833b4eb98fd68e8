import Consensus
import GridProto
@testable import Node
import Synchronization
import Wire
import XCTest

/// `LeaderFollowing` on its own, with a scripted view of the leader: the rules of issue 11,
/// item 8 ("forwarding must notice the leader change and retry on the new leader").
final class LeaderFollowingTests: XCTestCase {
    private final class View: Sendable {
        let state = Mutex<(leader: NodeID, selfLeads: Bool)>((1, false))
        let calls = Mutex<[NodeID]>([])
        func set(_ leader: NodeID, selfLeads: Bool = false) { state.withLock { $0 = (leader, selfLeads) } }
    }

    private func following(_ view: View, forward: @escaping @Sendable (NodeID) async throws -> SubmitResponse) -> LeaderFollowing {
        LeaderFollowing(
            view: { view.state.withLock { $0 } },
            forward: { _, leader in
                view.calls.withLock { $0.append(leader) }
                return try await forward(leader)
            },
            leaderWait: .seconds(2), checkEvery: .milliseconds(5))
    }

    private let answer = SubmitResponse(location: TxLocation(height: 7))

    func testACallToAStuckLeaderIsCancelledAndSentToTheNewOne() async throws {
        let view = View()
        let answer = self.answer
        let f = following(view) { leader in
            if leader == 1 {
                try await Task.sleep(for: .seconds(60))  // the paused leader never answers
                throw RPCError(.deadlineExceeded, "late")
            }
            return answer
        }
        Task {
            try await Task.sleep(for: .milliseconds(50))
            view.set(2)  // an election elsewhere
        }
        let started = ContinuousClock.now
        let response = try await f.run(SignedTransaction(), leader: 1)
        XCTAssertEqual(response?.location?.height, 7)
        XCTAssertEqual(view.calls.withLock { $0 }, [1, 2])
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5), "the stuck call was cancelled, not waited for")
    }

    func testUnavailableWaitsForAnotherLeader() async throws {
        let view = View()
        let answer = self.answer
        let f = following(view) { leader in
            if leader == 1 { throw RPCError(.unavailable, "connection refused") }
            return answer
        }
        Task {
            try await Task.sleep(for: .milliseconds(50))
            view.set(0)  // election in progress
            try await Task.sleep(for: .milliseconds(50))
            view.set(3)
        }
        let response = try await f.run(SignedTransaction(), leader: 1)
        XCTAssertEqual(response?.location?.height, 7)
        XCTAssertEqual(view.calls.withLock { $0 }, [1, 3])
    }

    func testThisNodeBecomingLeaderHandsTheTransactionBack() async throws {
        let view = View()
        let f = following(view) { _ in
            try await Task.sleep(for: .seconds(60))
            throw RPCError(.deadlineExceeded, "late")
        }
        Task {
            try await Task.sleep(for: .milliseconds(50))
            view.set(9, selfLeads: true)
        }
        let response = try await f.run(SignedTransaction(), leader: 1)
        XCTAssertNil(response, "nil: the caller queues it locally")
    }

    func testOtherErrorsAndNoNewLeaderAreReported() async throws {
        let view = View()
        let denied = following(view) { _ in throw RPCError(.permissionDenied, "no") }
        do {
            _ = try await denied.run(SignedTransaction(), leader: 1)
            XCTFail("PERMISSION_DENIED is the answer, not a reason to retry")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .permissionDenied)
        }
        var stuck = following(view) { _ in throw RPCError(.unavailable, "connection refused") }
        stuck = LeaderFollowing(view: stuck.view, forward: stuck.forward, leaderWait: .milliseconds(100), checkEvery: .milliseconds(5))
        do {
            _ = try await stuck.run(SignedTransaction(), leader: 1)
            XCTFail("no other leader: the forward's error is reported")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .unavailable)
        }
    }
}
