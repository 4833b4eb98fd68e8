import GridClient
@testable import Node
import XCTest

/// Issue 12: one table of RPC method names (`GridMethod`), which the node's services register
/// under and every client dials.
final class MethodTableTests: XCTestCase {
    /// Invariant of `GridMethod`: its paths are distinct and of the form `/<service>/<method>`.
    func testTablePathsAreDistinctAndWellFormed() {
        XCTAssertEqual(Set(GridMethod.all).count, GridMethod.all.count)
        for path in GridMethod.all {
            XCTAssertNotNil(GridMethod.service(of: path), path)
            XCTAssertTrue(path.hasPrefix("/gridledger."), path)
        }
    }

    /// A running node serves exactly the table: no service registers a path of its own, and
    /// no table entry is left without a server.
    func testRunningNodeServesExactlyTheTable() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let node = try GridNode(configuration: pki.loopbackNode(try pki.issue(.node, "node1", district: "d1"), dataDir: pki.dir + "/data"))
        try await node.start()
        XCTAssertEqual(node.servedMethods, GridMethod.all.sorted())
        await node.stop()
    }

    /// The service names `Health.Check` answers for are derived from the table.
    func testHealthServiceNamesComeFromTheTable() {
        XCTAssertEqual(GridNode.serviceNames, [
            "", "gridledger.Health", "gridledger.Ops", "gridledger.Ingest", "gridledger.Query", "gridledger.Anchor",
            "gridledger.FeeControl", "gridledger.Control", "gridledger.Notices",
        ])
    }
}
