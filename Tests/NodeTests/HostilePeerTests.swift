import Foundation
import GridClient
import GridProto
@testable import GridTLS
import NIOCore
import NIOPosix
@testable import Node
import Wire
import XCTest

/// Issue 2, "Hostile peers against a running node": each is refused with a clear log line
/// and status, and the node keeps serving other clients.
final class HostilePeerTests: XCTestCase {
    var pki: TestPKI!
    var node: GridNode!
    var logs: CapturedLogs!
    var address = ""
    var ops: (cert: String, key: String)!

    override func setUp() async throws {
        pki = try TestPKI()
        let nodeCert = try pki.issue(.node, "node1")
        ops = try pki.issue(.ops, "ops1")
        var config = pki.loopbackNode(nodeCert, dataDir: pki.dir + "/data")
        config.tls.handshakeTimeoutMs = 1000
        config.rpc.threads = 1
        logs = CapturedLogs()
        node = try GridNode(configuration: config, logger: logs.logger())
        let bound = try await node.start()
        address = "127.0.0.1:\(bound.port!)"
    }

    override func tearDown() async throws {
        await node.stop()
        pki.remove()
    }

    private func assertNodeStillServes(file: StaticString = #filePath, line: UInt = #line) async throws {
        let status = try await ChainClient.status(address: address, certificate: ops.cert, key: ops.key, ca: pki.caCert)
        XCTAssertEqual(status.nodeId, "node1", file: file, line: line)
    }

    private func waitForLog(_ fragment: String, file: StaticString = #filePath, line: UInt = #line) async {
        let end = ContinuousClock.now + .seconds(5)
        while !logs.contains(fragment), ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(10)) }
        XCTAssertTrue(logs.contains(fragment), "no log line containing '\(fragment)'; got:\n\(logs.all.joined(separator: "\n"))", file: file, line: line)
    }

    func testPlaintextBytesOnTheTLSPortAreRefused() async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: Int(address.split(separator: ":")[1])!).get()
        try await channel.writeAndFlush(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        // The node closes the connection instead of answering.
        let closed = channel.closeFuture
        let result = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { try await closed.get(); return true }
            group.addTask { try await Task.sleep(for: .seconds(5)); return false }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
        XCTAssertTrue(result, "node must close a plaintext connection")
        await waitForLog("TLS")
        try await assertNodeStillServes()
    }

    /// A bare connect-and-close (a load balancer's port probe) is not logged as a failure.
    func testPortProbeIsNotAWarning() async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: Int(address.split(separator: ":")[1])!).get()
        try await channel.close()
        try await Task.sleep(for: .milliseconds(200))
        XCTAssertFalse(logs.all.contains { $0.hasPrefix("warning") }, logs.all.joined(separator: "\n"))
        try await assertNodeStillServes()
    }

    func testClientWithoutCertificateIsRefused() async throws {
        let context = try TLSContext(
            configuration: TLSConfiguration(certificatePath: ops.cert, privateKeyPath: ops.key, trustRootPath: pki.caCert),
            mode: .client, presentsCertificate: false, offersALPN: true)
        await assertConnectFails(context)
        await waitForLog("certificate")
        try await assertNodeStillServes()
    }

    func testCertificateFromAnotherCAIsRefused() async throws {
        let other = try TestPKI()
        defer { other.remove() }
        let stranger = try other.issue(.ops, "stranger")
        // The stranger trusts our CA (so its side of the handshake would pass) but its own
        // certificate chains to another CA.
        let context = try TLSContext(
            configuration: TLSConfiguration(certificatePath: stranger.cert, privateKeyPath: stranger.key, trustRootPath: pki.caCert),
            mode: .client)
        await assertConnectFails(context)
        await waitForLog("verify")
        try await assertNodeStillServes()
    }

    func testExpiredCertificateIsRefused() async throws {
        let expired = try pki.issue(.ops, "expired-ops", days: 1, backdateDays: 10)
        let context = try TLSContext(
            configuration: TLSConfiguration(certificatePath: expired.cert, privateKeyPath: expired.key, trustRootPath: pki.caCert),
            mode: .client)
        await assertConnectFails(context)
        await waitForLog("expired")
        try await assertNodeStillServes()
    }

    func testRoleNotAllowedForTheMethodIsPermissionDenied() async throws {
        let collector = try pki.issue(.collector, "col1", district: "d1")
        do {
            _ = try await ChainClient.status(address: address, certificate: collector.cert, key: collector.key, ca: pki.caCert)
            XCTFail("a collector must not read node status")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .permissionDenied)
            XCTAssertTrue(error.message.contains("collector"), error.message)
        }
        await waitForLog("role not allowed")
        try await assertNodeStillServes()
    }

    func testMalformedFrameAfterHandshakeGetsGoAwayAndNodeSurvives() async throws {
        let client = try await GridConnection.connect(to: address, certificate: ops.cert, key: ops.key, ca: pki.caCert)
        // A frame of unknown type 0x42, written below the RPC layer but inside TLS.
        var garbage = ByteBuffer()
        garbage.writeBytes([0, 0, 0, 1, 0x42, 0, 0, 0, 0, 1, 0xff])
        try await client.channel.writeAndFlush(garbage)
        try await client.channel.closeFuture.get()
        await waitForLog("protocol error")
        try await assertNodeStillServes()
    }

    private func assertConnectFails(_ context: TLSContext, file: StaticString = #filePath, line: UInt = #line) async {
        do {
            let client = try await GridConnection.connect(host: "127.0.0.1", port: Int(address.split(separator: ":")[1])!, tls: context, serverName: "127.0.0.1")
            // TLS 1.3: the client may finish its side before the server's verdict arrives; the
            // first call must then fail.
            _ = try await client.unary(GridMethod.Ops.getStatus, GetStatusRequest(), as: GetStatusResponse.self, timeout: .seconds(5))
            XCTFail("connection must be refused", file: file, line: line)
        } catch {
            // Refused: any transport error is the expected outcome.
        }
    }
}
