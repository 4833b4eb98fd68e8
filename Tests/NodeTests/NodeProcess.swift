import Foundation
@testable import Node
import XCTest

/// A real `gridnode` process for multi-process tests, with its output in a log file.
final class NodeProcess: @unchecked Sendable {
    static var executable: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/gridnode").path
    }

    let arguments: [String]
    let log: String
    private(set) var process: Process?

    init(arguments: [String], log: String) {
        self.arguments = arguments
        self.log = log
    }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.executable)
        p.arguments = arguments
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        p.standardError = handle
        p.standardOutput = handle
        try p.run()
        process = p
    }

    func kill9() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// SIGTERM and wait; returns the exit status.
    @discardableResult
    func terminate() -> Int32 {
        guard let p = process else { return 0 }
        p.terminate()
        p.waitUntilExit()
        process = nil
        return p.terminationStatus
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    static func requireExecutable() throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw XCTSkip("\(executable) is missing: run `swift build` before the tests")
        }
    }

    /// Polls `Ops.GetStatus` until the node answers.
    static func waitUntilServing(port: Int, pki: TestPKI, ops: (cert: String, key: String), timeout: Duration = .seconds(20)) async throws {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if (try? await Ops.getStatus(address: "127.0.0.1:\(port)", certificate: ops.cert, key: ops.key, ca: pki.caCert, timeoutMs: 1000)) != nil { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("node did not come up on port \(port)")
    }
}
