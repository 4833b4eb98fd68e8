@testable import Chain
import Contracts
import XCTest

/// `ContractState.scan(prefix:_:)` on `BlockState`: the block's pending writes merged over
/// the committed state, in key byte order, a pending deletion hiding a committed key.
final class BlockStateScanTests: XCTestCase {
    func testScanMergesPendingWritesOverCommittedStateInKeyOrder() throws {
        let committed = DownlinkDigestTests.Memory()
        committed.values = ["p/a": [1], "p/c": [3], "p/e": [5], "q/x": [9]]
        var state = BlockState(reader: committed)
        state.begin(0)
        state.set("p/b", [20])      // new, committed by transaction 0
        state.set("p/c", nil)       // deletes a committed key
        state.commitTransaction()
        state.begin(1)
        state.set("p/e", [50])      // the open transaction overwrites a committed key
        state.set("p/f", [60])
        var seen: [String: [UInt8]] = [:]
        var order: [String] = []
        try state.scan(prefix: "p/") { key, value in
            order.append(key)
            seen[key] = value
            return true
        }
        XCTAssertEqual(order, ["p/a", "p/b", "p/e", "p/f"])
        XCTAssertEqual(seen["p/e"], [50])
        XCTAssertEqual(seen["p/b"], [20])
        var first: [String] = []
        try state.scan(prefix: "p/") { key, _ in first.append(key); return first.count < 2 }
        XCTAssertEqual(first, ["p/a", "p/b"], "stops when the body returns false")
        state.rollbackTransaction()
        XCTAssertEqual(try state.entries(withPrefix: "p/").map(\.key), ["p/a", "p/b", "p/e"])
        XCTAssertEqual(try state.entries(withPrefix: "p/").last?.value, [5])
    }
}
