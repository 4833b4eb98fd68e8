import Foundation
@testable import Node
import XCTest

/// `gridnode config default` prints a file that loads back to the defaults; typos are errors.
final class ConfigurationTests: XCTestCase {
    private func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gridledger-config-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testAnnotatedDefaultLoadsAsTheDefaults() throws {
        let path = try write(NodeConfiguration.annotatedDefault)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(try NodeConfiguration.load(path: path), NodeConfiguration())
    }

    func testPartialFileKeepsOtherDefaultsAndReadsMembers() throws {
        let path = try write("""
            listen: 0.0.0.0:9000
            chain:
              id: d7
              raft_id: 2
              members:
                - {id: 1, name: n1, address: "10.0.0.1:7443"}
                - {id: 2, name: n2, address: "10.0.0.2:7443"}
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let c = try NodeConfiguration.load(path: path)
        XCTAssertEqual(c.listen, "0.0.0.0:9000")
        XCTAssertEqual(c.chain.id, "d7")
        XCTAssertEqual(c.chain.members.map(\.name), ["n1", "n2"])
        XCTAssertEqual(c.rpc, NodeConfiguration.RPC())
    }

    func testUnknownKeyIsAnError() throws {
        let path = try write("rpc:\n  max_mesage_bytes: 10\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try NodeConfiguration.load(path: path)) { error in
            XCTAssertTrue("\(error)".contains("rpc.max_mesage_bytes"), "\(error)")
        }
    }

    func testValidationNamesTheBadSetting() throws {
        var c = NodeConfiguration()
        c.tls.cert = "a"; c.tls.key = "b"; c.tls.ca = "c"
        c.chain.members = [.init(id: 1, name: "n1", address: "127.0.0.1:1")]
        c.chain.raftID = 5
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("raft_id"), "\($0)") }
        c.chain.raftID = 1
        c.listen = "nohost"
        XCTAssertThrowsError(try c.validate())
        XCTAssertThrowsError(try NodeConfiguration.Chain.Member(parsing: "x=y"))
        XCTAssertEqual(try NodeConfiguration.Chain.Member(parsing: "3=node3@[::1]:7445").address, "[::1]:7445")
    }
}
