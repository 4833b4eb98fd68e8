@testable import Chain
import XCTest

@testable import Node

/// Rule (issue 12: "waiting for an index to be applied resumes waiters by applied index
/// instead of polling"): a waiter is resumed by the advance that reaches its index, not
/// before and without a polling interval; one that is never reached gets `false` after its
/// timeout; an index already reached returns at once.
final class IndexWaitersTests: XCTestCase {
    private func waitUntil(_ condition: @autoclosure () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while !condition(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        XCTAssertTrue(condition())
    }

    func testWaitersAreResumedByTheAdvanceThatReachesThem() async throws {
        let waiters = IndexWaiters(current: 3)
        let atThree = await waiters.wait(for: 3, timeout: .seconds(60))
        XCTAssertTrue(atThree, "an index already reached returns at once")

        let five = Task { await waiters.wait(for: 5, timeout: .seconds(60)) }
        let seven = Task { await waiters.wait(for: 7, timeout: .seconds(60)) }
        try await waitUntil(waiters.waiting == 2)
        waiters.advance(to: 4)
        waiters.advance(to: 2)  // backwards: changes nothing
        XCTAssertEqual(waiters.current, 4)
        XCTAssertEqual(waiters.waiting, 2, "no waiter is resumed below its index")
        waiters.advance(to: 6)
        let fiveReached = await five.value
        XCTAssertTrue(fiveReached)
        XCTAssertEqual(waiters.waiting, 1)
        waiters.advance(to: 9)
        let sevenReached = await seven.value
        XCTAssertTrue(sevenReached)
        XCTAssertEqual(waiters.waiting, 0)
    }

    func testAWaiterNeverReachedTimesOut() async throws {
        let waiters = IndexWaiters()
        let start = ContinuousClock.now
        let reached = await waiters.wait(for: 1, timeout: .milliseconds(50))
        XCTAssertFalse(reached)
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - start, .milliseconds(50))
        XCTAssertEqual(waiters.waiting, 0)
        waiters.advance(to: 1)  // a late advance finds no one to resume twice
    }
}
