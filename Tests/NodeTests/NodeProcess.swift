import Foundation
import NIOCore
import NIOPosix
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
    /// What runs: `gridnode` itself, or a wrapper (e.g. `prlimit`) given it in `arguments`.
    let program: String
    private(set) var process: Process?

    init(arguments: [String], log: String, executable: String = NodeProcess.executable) {
        self.arguments = arguments
        self.log = log
        self.program = executable
    }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
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

    /// Set when the last `terminate()` had to SIGKILL a node that did not exit in time.
    private(set) var killedAfterTimeout = false

    /// SIGTERM and wait; returns the exit status. A node still running `timeout` after
    /// SIGTERM is SIGKILLed (a test failure, not a hung run); the status is then SIGKILL's.
    @discardableResult
    func terminate(timeout: Duration = .seconds(20), file: StaticString = #filePath, line: UInt = #line) -> Int32 {
        guard let p = process else { return 0 }
        killedAfterTimeout = false
        p.terminate()
        let end = ContinuousClock.now + timeout
        while p.isRunning, ContinuousClock.now < end { Thread.sleep(forTimeInterval: 0.02) }
        if p.isRunning {
            killedAfterTimeout = true
            kill(p.processIdentifier, SIGKILL)
            XCTFail("\(log): still running \(timeout) after SIGTERM, killed: \(output.suffix(2000))", file: file, line: line)
        }
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

    /// Ports for nodes to listen on: below Linux's ephemeral range (32768–60999 by default),
    /// so no outgoing connection takes one before the node binds it.
    static let portRange = 20_000...32_000

    /// `count` distinct ports of `portRange`, each free to bind right now.
    static func freePorts(_ count: Int) async throws -> [Int] {
        var ports: [Int] = []
        var attempts = 0
        while ports.count < count {
            attempts += 1
            guard attempts < 1000 else { throw XCTSkip("no \(count) free loopback ports in \(portRange)") }
            let port = Int.random(in: portRange)
            if !ports.contains(port), await isBindable(port) { ports.append(port) }
        }
        return ports
    }

    /// Whether a listener can bind 127.0.0.1:`port` now (with SO_REUSEADDR, as the node).
    static func isBindable(_ port: Int) async -> Bool {
        guard let channel = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port).get()
        else { return false }
        try? await channel.close()
        return true
    }

    /// Waits (up to `timeout`) until `port` can be bound again, e.g. before restarting a node on it.
    static func waitUntilBindable(_ port: Int, timeout: Duration = .seconds(20)) async throws {
        let end = ContinuousClock.now + timeout
        while !(await isBindable(port)) {
            guard ContinuousClock.now < end else { return XCTFail("port \(port) is still taken") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Polls `condition` every 20 ms until it holds or `timeout` passes; returns its last value.
    @discardableResult
    static func poll(timeout: Duration, _ condition: () async -> Bool) async -> Bool {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await condition()
    }
}
