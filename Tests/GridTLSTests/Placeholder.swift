import XCTest
final class GridTLSTestsPlaceholder: XCTestCase { func testBuilds() {} }
