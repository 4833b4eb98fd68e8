import Foundation
@testable import GridClient
import GridTLS
import Logging
import NIOCore
import NIOPosix
@testable import Node
import Wire
import XCTest

/// Issue 10, operators' surface: a `gridnode start` that fails (port in use, unreadable
/// certificate or key, bad flag or setting) writes nothing into the data directory: a
/// missing one is not created, an existing one is left as it was. And connection errors of
/// the `gridnode` CLI read as sentences, not raw NIO or OpenSSL error values.
final class StartFailureTests: XCTestCase {
    private var pki: TestPKI!
    private var nodeCert: (cert: String, key: String)!

    override func setUp() async throws {
        pki = try TestPKI()
        nodeCert = try pki.issue(.node, "node1", district: "d1")
    }

    override func tearDown() async throws {
        pki.remove()
    }

    /// Every path under `directory`, relative, sorted ([] when it does not exist).
    private func contents(_ directory: String) -> [String] {
        (FileManager.default.subpaths(atPath: directory) ?? []).sorted()
    }

    private func quiet() -> Logger {
        var logger = Logger(label: "start-test")
        logger.logLevel = .critical
        return logger
    }

    /// A listener on a loopback port, held by another socket.
    private func occupiedPort() async throws -> (Channel, Int) {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        return (channel, try XCTUnwrap(channel.localAddress?.port))
    }

    func testBusyPortCreatesNoDataDirectoryAndLeavesAnExistingOneAsItWas() async throws {
        let (holder, port) = try await occupiedPort()
        defer { holder.close(promise: nil) }
        // A data directory that does not exist is not created.
        var config = pki.loopbackNode(nodeCert, dataDir: pki.dir + "/missing")
        config.listen = "127.0.0.1:\(port)"
        let node = try GridNode(configuration: config, logger: quiet())
        do {
            try await node.start()
            XCTFail("started on a port another socket holds")
        } catch {
            XCTAssertTrue("\(error)".contains("cannot listen on 127.0.0.1:\(port): address already in use"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: config.dataDir), "a failed start created the data directory")
        await node.stop()

        // An existing data directory (here: a node's, with its chain) is left as it was.
        var existing = pki.loopbackNode(nodeCert, dataDir: pki.dir + "/existing")
        existing.rpc.threads = 1
        let first = try GridNode(configuration: existing, logger: quiet())
        try await first.start()
        await first.stop()
        let before = contents(existing.dataDir)
        XCTAssertTrue(before.contains("chains/d1"), "\(before)")
        try FileManager.default.removeItem(atPath: existing.dataDir + "/LOCK")
        let withoutLock = contents(existing.dataDir)
        existing.listen = "127.0.0.1:\(port)"
        let second = try GridNode(configuration: existing, logger: quiet())
        do {
            try await second.start()
            XCTFail("started on a port another socket holds")
        } catch {}
        XCTAssertEqual(contents(existing.dataDir), withoutLock, "a failed start changed the data directory")
        await second.stop()
    }

    /// The same through the `gridnode` executable: a busy port, an unreadable key, a
    /// missing CA, a bad setting and an unknown flag each exit non-zero with a sentence and
    /// leave no data directory behind.
    func testFailedGridnodeStartWritesNothing() async throws {
        try NodeProcess.requireExecutable()
        let (holder, busy) = try await occupiedPort()
        defer { holder.close(promise: nil) }
        let free = try await NodeProcess.freePorts(1)[0]
        let garbageKey = pki.dir + "/garbage.key"
        try Data("not a key".utf8).write(to: URL(fileURLWithPath: garbageKey))
        let dataDir = pki.dir + "/data"
        func start(_ listen: Int, key: String? = nil, ca: String? = nil, extra: [String] = []) -> [String] {
            ["start", "--listen", "127.0.0.1:\(listen)", "--data-dir", dataDir, "--cert", nodeCert.cert, "--key", key ?? nodeCert.key,
             "--ca", ca ?? pki.caCert, "--chain-id", "d1", "--log-level", "error"] + extra
        }
        let cases: [(String, [String], String)] = [
            ("busy port", start(busy), "address already in use"),
            ("unreadable key", start(free, key: garbageKey), "garbage.key"),
            ("missing key", start(free, key: pki.dir + "/nope.key"), "nope.key"),
            ("missing CA", start(free, ca: pki.dir + "/nope-ca.crt"), "nope-ca.crt"),
            ("bad setting", start(free, extra: ["--max-block-delay-ms", "0"]), "max_block_delay_ms"),
            ("unknown flag", start(free, extra: ["--no-such-flag"]), "no-such-flag"),
        ]
        for (name, arguments, expected) in cases {
            let (status, output) = try run(arguments)
            XCTAssertNotEqual(status, 0, "\(name): \(output)")
            XCTAssertTrue(output.contains(expected), "\(name): \(output)")
            XCTAssertFalse(output.contains("NIOCore.IOError") || output.contains("IOError(") , "\(name): a raw error value: \(output)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dataDir), "\(name): the failed start created \(contents(dataDir))")
        }
    }

    /// `gridnode status` against a port nobody listens on: one sentence, no NIO dump.
    func testStatusConnectionRefusedIsASentence() async throws {
        try NodeProcess.requireExecutable()
        let ops = try pki.issue(.ops, "ops1")
        let port = try await NodeProcess.freePorts(1)[0]
        let (status, output) = try run(["status", "--addr", "127.0.0.1:\(port)", "--cert", ops.cert, "--key", ops.key, "--ca", pki.caCert])
        XCTAssertEqual(status, 2, output)
        XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines),
                       "error: cannot connect to 127.0.0.1:\(port): connection refused (is the node running, and listening on that port?)")
    }

    /// TLS failures name what is wrong: the node's certificate not trusted by the client's
    /// CA, the client's certificate refused by the node, an unusable client key.
    func testTLSFailuresAreSentences() async throws {
        var config = pki.loopbackNode(nodeCert, dataDir: pki.dir + "/data")
        config.rpc.threads = 1
        let node = try GridNode(configuration: config, logger: quiet())
        let address = "127.0.0.1:\(try await node.start().port!)"
        let ops = try pki.issue(.ops, "ops1")
        let other = try TestPKI()
        defer { other.remove() }
        let stranger = try other.issue(.ops, "stranger")

        func failure(_ cert: String, _ key: String, _ ca: String) async -> String {
            do {
                _ = try await ChainClient.status(address: address, certificate: cert, key: key, ca: ca, timeoutMs: 5000)
                return "succeeded"
            } catch {
                return ConnectionErrorText.describe(error, address: address, ca: ca)
            }
        }
        let untrusted = await failure(ops.cert, ops.key, other.caCert)
        XCTAssertTrue(untrusted.hasPrefix("TLS handshake with \(address) failed: the node's certificate is not trusted by the CA \(other.caCert)"), untrusted)
        let refused = await failure(stranger.cert, stranger.key, pki.caCert)
        XCTAssertTrue(refused.contains("the node refused this client's certificate"), refused)
        let badKey = await failure(ops.cert, pki.dir + "/missing.key", pki.caCert)
        XCTAssertTrue(badKey.hasPrefix("cannot use the client certificate, key or CA:"), badKey)
        for text in [untrusted, refused, badKey] {
            XCTAssertFalse(text.contains("RPCError") || text.contains("UNAVAILABLE"), text)
        }
        await node.stop()
    }

    /// The client's connection handler reports a TLS failure as UNAVAILABLE with the
    /// TLSError's text: every TLSError comes back from that text.
    func testEveryTLSErrorIsRecognisedFromItsText() {
        let all: [TLSError] = [
            .configuration(reason: "r"), .invalidArgument(reason: "r"), .handshakeFailed(reason: "r"), .peerRejected(reason: "r"),
            .handshakeTimeout, .closedDuringHandshake, .connectionFailed(reason: "r"),
        ]
        for error in all {
            XCTAssertEqual(ConnectionErrorText.tlsError(fromText: error.description), error)
        }
        XCTAssertNil(ConnectionErrorText.tlsError(fromText: "deadline exceeded"))
    }

    /// Runs `gridnode` with `arguments`; its exit status and its stdout and stderr.
    private func run(_ arguments: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: NodeProcess.executable)
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
