import XCTest
final class NodeTestsPlaceholder: XCTestCase { func testBuilds() {} }
