import Foundation
import GridTools
import XCTest

/// The benchmarks' building blocks run and report what they measured (tiny sizes: smoke
/// tests; the figures themselves are printed by `gridnode bench`, never asserted).
final class BenchmarkSmokeTests: XCTestCase {
    /// The contracts benchmark bills through the engine and reports what it applied.
    func testContractsBenchmarkRuns() {
        let result = ContractsBenchmark.run(accounts: 20, readingsPerAccount: 10)
        XCTAssertEqual(result.readings, 200)
        XCTAssertGreaterThan(result.seconds, 0)
    }

    /// The LevelDB baseline runs, reports positive rates, and leaves nothing behind.
    func testRawWriteRateSmoke() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gridtools-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rate = try LevelDBBenchmark.rawWriteRate(directory: directory + "/bench", batches: 5, batchSize: 100, valueBytes: 150, sync: true)
        XCTAssertGreaterThan(rate.putsPerSecond, 0)
        XCTAssertEqual(rate.bytesPerSecond / rate.putsPerSecond, 158, accuracy: 0.001)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/bench/rawwrite.ldb"))
    }
}
