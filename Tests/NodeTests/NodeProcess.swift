import Foundation
import NIOCore
import NIOPosix
import GridClient
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
    /// A program (and its first arguments) that runs the node: `arguments` are appended to
    /// it and must then name the executable first. Empty: `arguments` go to `gridnode`.
    let launcher: [String]
    private(set) var process: Process?

    init(arguments: [String], log: String, launcher: [String] = []) {
        self.arguments = arguments
        self.log = log
        self.launcher = launcher
    }

    func start() throws {
        let p = Process()
        if let program = launcher.first {
            p.executableURL = URL(fileURLWithPath: program)
            p.arguments = Array(launcher.dropFirst()) + arguments
        } else {
            p.executableURL = URL(fileURLWithPath: Self.executable)
            p.arguments = arguments
        }
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

    /// Skips a process test when `gridnode` is not built, except in CI (`CI=true`), where a
    /// process test must run: there the missing binary fails the test (scripts/test).
    /// Three `gridnode` processes, not started yet, forming district d1's Raft group on free
    /// ports, each member pinned to its certificate's key; `ports` holds `extraPorts` more
    /// free ports after the members' three. `extra(i)` adds flags to node i (1...3).
    static func districtCluster(_ pki: TestPKI, extraPorts: Int = 0, extra: (Int) -> [String]) async throws -> (nodes: [NodeProcess], ports: [Int]) {
        let ports = try await freePorts(3 + extraPorts)
        let certs = try (1...3).map { try pki.issue(.node, "node\($0)", district: "d1") }
        let members = (1...3).flatMap { ["--member", "\($0)=node\($0)@127.0.0.1:\(ports[$0 - 1])#cert:\(certs[$0 - 1].cert)"] }
        var nodes: [NodeProcess] = []
        for i in 1...3 {
            let cert = certs[i - 1]
            nodes.append(NodeProcess(arguments: [
                "start", "--listen", "127.0.0.1:\(ports[i - 1])", "--data-dir", pki.dir + "/data\(i)", "--cert", cert.cert,
                "--key", cert.key, "--ca", pki.caCert, "--chain-id", "d1", "--raft-id", "\(i)",
            ] + extra(i) + members, log: pki.dir + "/node\(i).log"))
        }
        return (nodes, ports)
    }

    static func requireExecutable() throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            let message = "\(executable) is missing: run `swift build` before the tests"
            if ProcessInfo.processInfo.environment["CI"] == "true" { throw MustRunError(message: message + " (CI: process tests must run)") }
            throw XCTSkip(message)
        }
    }

    struct MustRunError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// Polls `Ops.GetStatus` until the node answers.
    static func waitUntilServing(port: Int, pki: TestPKI, ops: (cert: String, key: String), timeout: Duration = .seconds(20)) async throws {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if (try? await ChainClient.status(address: "127.0.0.1:\(port)", certificate: ops.cert, key: ops.key, ca: pki.caCert, timeoutMs: 1000)) != nil { return }
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
