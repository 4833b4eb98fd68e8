import Foundation
import Logging
@testable import Node
import XCTest

/// `log_format: json`: one JSON object per line with level, message, label, and the
/// metadata flattened beside them (Docs/operations.md).
final class JSONLogHandlerTests: XCTestCase {
    func testOneObjectPerLineWithMetadata() throws {
        let lines = LinesBox()
        var logger = Logger(label: "gridledger") { label in JSONLogHandler(label: label) { lines.append($0) } }
        logger[metadataKey: "node"] = "node1"
        logger.notice("chain \"serving\"\nagain", metadata: [
            "chain": "d1", "term": "7", "height": "\(42)", "method": "/gridledger.Ingest/Submit", "level": "clash",
            "peers": .array(["1", "2"]), "limits": .dictionary(["max": "3"]),
        ])
        let all = lines.all
        XCTAssertEqual(all.count, 1)
        let line = try XCTUnwrap(all.first)
        XCTAssertTrue(line.hasSuffix("}\n"))
        XCTAssertEqual(line.filter { $0 == "\n" }.count, 1, "one line: the newline in the message is escaped")
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(object["level"] as? String, "notice")
        XCTAssertEqual(object["label"] as? String, "gridledger")
        XCTAssertEqual(object["message"] as? String, "chain \"serving\"\nagain")
        XCTAssertEqual(object["node"] as? String, "node1")
        XCTAssertEqual(object["chain"] as? String, "d1")
        XCTAssertEqual(object["term"] as? String, "7")
        XCTAssertEqual(object["height"] as? String, "42")
        XCTAssertEqual(object["method"] as? String, "/gridledger.Ingest/Submit")
        XCTAssertEqual(object["meta_level"] as? String, "clash", "a metadata key named like a fixed field keeps its value")
        XCTAssertEqual(object["peers"] as? [String], ["1", "2"])
        XCTAssertEqual((object["limits"] as? [String: String])?["max"], "3")
        let ts = try XCTUnwrap(object["ts"] as? String)
        XCTAssertNotNil(ISO8601DateFormatter.withFractionalSeconds.date(from: ts), ts)
    }

    func testControlCharactersAreEscaped() throws {
        var out = ""
        JSONLogHandler.appendString("a\u{01}b\u{7F}é", to: &out)
        XCTAssertEqual(out, "\"a\\u0001b\\u007fé\"")
    }
}

private final class LinesBox: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}

extension ISO8601DateFormatter {
    fileprivate static var withFractionalSeconds: ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }
}
