import GridBase
@testable import GridTLS
import NIOCore
import NIOEmbedded
import Identity
import XCTest

/// In-memory handshakes between client and server `TLSHandler`s on two `EmbeddedChannel`s.
/// Rules: Docs/wire-protocol.md "Transport" — TLS 1.3 only, ALPN `gridledger/1`, mutual
/// authentication against the deployment CA, server role `node` and host name check, handshake
/// timeout, no plaintext mode.
final class TLSHandshakeTests: XCTestCase {
    private var fixture: PKIFixture!
    private var serverContext: TLSContext!
    private var clientContext: TLSContext!

    override func setUpWithError() throws {
        fixture = try PKIFixture()
        serverContext = try TLSContext(configuration: try fixture.issue("node-1", role: .node, district: "east"), mode: .server)
        clientContext = try TLSContext(configuration: try fixture.issue("meter-9", role: .collector, district: "west"), mode: .client)
    }

    override func tearDown() {
        fixture.cleanUp()
    }

    private func assertRefused(_ end: EmbeddedEnd, containing text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(end.channel.isActive, "channel must be closed", file: file, line: line)
        XCTAssertTrue(end.recorder.authenticated.isEmpty, "no PeerAuthenticatedEvent", file: file, line: line)
        let descriptions = end.recorder.tlsErrors.map(\.description)
        XCTAssertEqual(descriptions.count, 1, "exactly one TLSError: \(end.recorder.errors)", file: file, line: line)
        XCTAssertTrue(descriptions.contains { $0.contains(text) }, "expected \"\(text)\" in \(descriptions)", file: file, line: line)
    }

    /// Rule: mutual authentication; both sides learn the other's role, name and district, and
    /// agree on ALPN gridledger/1.
    func testMutualHandshakeAuthenticatesBothSides() throws {
        let (client, server, _) = try TLSTestSupport.connect(client: clientContext, server: serverContext, serverHostname: "node-1")
        XCTAssertEqual(client.recorder.authenticated.count, 1)
        XCTAssertEqual(server.recorder.authenticated.count, 1)
        let seenByClient = try XCTUnwrap(client.recorder.authenticated.first)
        XCTAssertEqual(seenByClient.peer.role, .node)
        XCTAssertEqual(seenByClient.peer.name, "node-1")
        XCTAssertEqual(seenByClient.peer.district, "east")
        XCTAssertEqual(seenByClient.peer, serverContext.localIdentity)
        XCTAssertEqual(seenByClient.applicationProtocol, "gridledger/1")
        let seenByServer = try XCTUnwrap(server.recorder.authenticated.first)
        XCTAssertEqual(seenByServer.peer.role, .collector)
        XCTAssertEqual(seenByServer.peer.name, "meter-9")
        XCTAssertEqual(seenByServer.peer.district, "west")
        XCTAssertEqual(seenByServer.applicationProtocol, "gridledger/1")
        XCTAssertTrue(client.recorder.errors.isEmpty && server.recorder.errors.isEmpty)
    }

    /// Rule: the node certificate carries DNS:localhost and IP:127.0.0.1 and extra SANs.
    func testHostnameChecksAcceptSubjectAltNames() throws {
        let server = try TLSContext(
            configuration: try fixture.issue("node-2", role: .node, sans: ["DNS:node-2.grid.example", "10.1.2.3", "IP:::1"]),
            mode: .server
        )
        for host in ["localhost", "127.0.0.1", "node-2", "node-2.grid.example", "10.1.2.3", "::1"] {
            let (client, _, _) = try TLSTestSupport.connect(client: clientContext, server: server, serverHostname: host)
            XCTAssertEqual(client.recorder.authenticated.first?.peer.name, "node-2", "host \(host)")
        }
    }

    /// Rule: application data round-trips both ways, small and 1 MiB, writes before the
    /// handshake completes are held and then delivered.
    func testApplicationDataRoundTripsBothWays() throws {
        let loop = EmbeddedEventLoop()
        let server = try EmbeddedEnd(handler: TLSHandler.serverHandler(context: serverContext, logger: TLSTestSupport.logger), loop: loop)
        let client = try EmbeddedEnd(
            handler: TLSHandler.clientHandler(context: clientContext, serverHostname: "localhost", logger: TLSTestSupport.logger), loop: loop
        )
        try server.activate(port: 1)
        try client.activate(port: 2)
        // Written before the handshake: must arrive after it, in order.
        client.channel.writeAndFlush(ByteBuffer(string: "early-1,"), promise: nil)
        client.channel.write(ByteBuffer(string: "early-2,"), promise: nil)
        let earlyPromise = loop.makePromise(of: Void.self)
        client.channel.writeAndFlush(ByteBuffer(string: "early-3"), promise: earlyPromise)
        try TLSTestSupport.pump(client, server)
        XCTAssertEqual(server.recorder.received.readableBytesView.map { $0 }, Array("early-1,early-2,early-3".utf8))
        try earlyPromise.futureResult.wait()
        server.recorder.received.clear()

        try server.channel.writeOutbound(ByteBuffer(string: "hello client"))
        try TLSTestSupport.pump(client, server)
        XCTAssertEqual(String(buffer: client.recorder.received), "hello client")
        client.recorder.received.clear()

        var big = ByteBuffer()
        var generator = SystemRandomNumberGenerator()
        let payload = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        big.writeBytes(payload)
        try client.channel.writeOutbound(big)
        try TLSTestSupport.pump(client, server)
        XCTAssertEqual(server.recorder.received.readableBytes, 1 << 20)
        XCTAssertTrue(server.recorder.received.readableBytesView.elementsEqual(payload))

        try server.channel.writeOutbound(big)
        try TLSTestSupport.pump(client, server)
        XCTAssertTrue(client.recorder.received.readableBytesView.elementsEqual(payload))

        // Many small writes flushed together are coalesced and arrive intact.
        server.recorder.received.clear()
        var expected = [UInt8]()
        for index in 0..<1000 {
            let message = Array("rpc-\(index);".utf8)
            expected += message
            client.channel.write(ByteBuffer(bytes: message), promise: nil)
        }
        client.channel.flush()
        let readsBefore = server.recorder.readCount
        try TLSTestSupport.pump(client, server)
        XCTAssertEqual(Array(server.recorder.received.readableBytesView), expected)
        XCTAssertEqual(server.recorder.readCount - readsBefore, 1, "one coalesced plaintext read")
        XCTAssertTrue(client.recorder.errors.isEmpty && server.recorder.errors.isEmpty)
    }

    /// Rule: the server requires a client certificate (SSL_VERIFY_FAIL_IF_NO_PEER_CERT).
    func testServerRefusesClientWithoutCertificate() throws {
        let anonymous = try TLSContext(
            configuration: try fixture.issue("anon", role: .device), mode: .client, presentsCertificate: false, offersALPN: true
        )
        let (client, server, _) = try TLSTestSupport.connect(client: anonymous, server: serverContext)
        assertRefused(server, containing: "peer did not return a certificate")
        XCTAssertFalse(client.channel.isActive, "client is closed by the server's alert")
        XCTAssertFalse(client.recorder.tlsErrors.isEmpty)
    }

    /// Rule: only certificates from the deployment CA are trusted.
    func testServerRefusesCertificateFromAnotherCA() throws {
        let otherCA = try PKIFixture(caName: "Rogue CA")
        defer { otherCA.cleanUp() }
        // The rogue client trusts our CA (so it accepts the server) but holds a foreign certificate.
        var rogueConfiguration = try otherCA.issue("meter-9", role: .collector)
        rogueConfiguration.trustRootPath = fixture.caDirectory + "/ca.crt"
        let rogue = try TLSContext(configuration: rogueConfiguration, mode: .client)
        let (_, server, _) = try TLSTestSupport.connect(client: rogue, server: serverContext)
        assertRefused(server, containing: "certificate verify failed: unable to get local issuer certificate")

        // And a client refuses a server from another CA.
        let rogueServer = try TLSContext(configuration: try otherCA.issue("node-1", role: .node), mode: .server)
        let (client, _, _) = try TLSTestSupport.connect(client: clientContext, server: rogueServer)
        assertRefused(client, containing: "certificate verify failed")
    }

    /// Rule: expired certificates are refused, on both sides.
    func testExpiredCertificatesAreRefused() throws {
        let expired = try TLSContext(configuration: try fixture.issue("old-meter", role: .collector, days: 30, backdateDays: 31), mode: .client)
        let (_, server, _) = try TLSTestSupport.connect(client: expired, server: serverContext)
        assertRefused(server, containing: "certificate verify failed: certificate has expired")

        let expiredServer = try TLSContext(configuration: try fixture.issue("old-node", role: .node, days: 10, backdateDays: 20), mode: .server)
        let (client, _, _) = try TLSTestSupport.connect(client: clientContext, server: expiredServer)
        assertRefused(client, containing: "certificate has expired")
    }

    /// Rule: a client only talks to a server whose certificate has role `node`.
    func testClientRefusesServerWithOtherRole() throws {
        let notANode = try TLSContext(configuration: try fixture.issue("bank-1", role: .bank), mode: .server)
        let (client, _, _) = try TLSTestSupport.connect(client: clientContext, server: notANode)
        assertRefused(client, containing: "has role bank, expected node")
    }

    /// Rule: the server certificate must name the host the client dialled.
    func testClientRefusesWrongHostname() throws {
        let (client, _, _) = try TLSTestSupport.connect(client: clientContext, server: serverContext, serverHostname: "node-7")
        assertRefused(client, containing: "hostname mismatch")
        let (byIP, _, _) = try TLSTestSupport.connect(client: clientContext, server: serverContext, serverHostname: "10.9.9.9")
        assertRefused(byIP, containing: "IP address mismatch")
    }

    /// Rule: a server refuses a client whose ALPN offer lacks gridledger/1, or that offers none.
    func testServerRequiresALPN() throws {
        var configuration = try fixture.issue("meter-alpn", role: .collector)
        configuration.alpn = "h2"
        let wrongALPN = try TLSContext(configuration: configuration, mode: .client)
        let (_, server, _) = try TLSTestSupport.connect(client: wrongALPN, server: serverContext)
        assertRefused(server, containing: "ALPN offer does not include the required protocol")

        let noALPN = try TLSContext(configuration: configuration, mode: .client, presentsCertificate: true, offersALPN: false)
        let (_, server2, _) = try TLSTestSupport.connect(client: noALPN, server: serverContext)
        assertRefused(server2, containing: "client offered no ALPN protocol")
    }

    /// Rule: there is no plaintext mode; garbage on the TLS port closes the connection with an
    /// error and never crashes.
    func testPlaintextAndGarbageAreRefused() throws {
        let loop = EmbeddedEventLoop()
        let server = try EmbeddedEnd(handler: TLSHandler.serverHandler(context: serverContext, logger: TLSTestSupport.logger), loop: loop)
        try server.activate(port: 3)
        try server.channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: node-1\r\n\r\n"))
        assertRefused(server, containing: "TLS handshake failed")

        var generator = SplitMix64(seed: 0x6c65_6467_6572)
        for _ in 0..<300 {
            let end = try EmbeddedEnd(handler: TLSHandler.serverHandler(context: serverContext, logger: TLSTestSupport.logger), loop: loop)
            try end.activate(port: 4)
            let length = Int.random(in: 1...600, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if Bool.random(using: &generator) { bytes[0] = 0x16 }  // looks like a handshake record
            if Bool.random(using: &generator), bytes.count > 2 { bytes[1] = 0x03; bytes[2] = 0x01 }
            for chunk in stride(from: 0, to: bytes.count, by: 97) where end.channel.isActive {
                try end.channel.writeInbound(ByteBuffer(bytes: bytes[chunk..<min(chunk + 97, bytes.count)]))
            }
            _ = try end.channel.finish(acceptAlreadyClosed: true)
        }
    }

    /// Rule: garbage after the handshake is a fatal connection error (bad record MAC).
    func testGarbageAfterHandshakeClosesConnection() throws {
        let (client, server, _) = try TLSTestSupport.connect(client: clientContext, server: serverContext)
        XCTAssertEqual(server.recorder.authenticated.count, 1)
        try server.channel.writeInbound(ByteBuffer(bytes: [0x17, 0x03, 0x03, 0x00, 0x20] + Array(repeating: 0x41, count: 32)))
        XCTAssertFalse(server.channel.isActive)
        XCTAssertTrue(server.recorder.tlsErrors.first.map { "\($0)".contains("TLS connection failed") } ?? false, "\(server.recorder.errors)")
        try TLSTestSupport.pump(client, server)
        XCTAssertFalse(client.channel.isActive, "client closed by the server's alert")
    }

    /// Rule: a handshake not completed within the handshake timeout (default 10 s) is closed.
    func testHandshakeTimeout() throws {
        let loop = EmbeddedEventLoop()
        let server = try EmbeddedEnd(handler: TLSHandler.serverHandler(context: serverContext, logger: TLSTestSupport.logger), loop: loop)
        try server.activate(port: 5)
        loop.advanceTime(by: .seconds(9))
        XCTAssertTrue(server.channel.isActive)
        loop.advanceTime(by: .seconds(2))
        assertRefused(server, containing: "timed out")
        XCTAssertEqual(server.recorder.tlsErrors, [.handshakeTimeout])
    }

    /// Rule: graceful close sends close_notify; the peer answers and closes, after delivering
    /// all data sent before it.
    func testGracefulCloseSendsCloseNotify() throws {
        let (client, server, _) = try TLSTestSupport.connect(client: clientContext, server: serverContext)
        client.channel.writeAndFlush(ByteBuffer(string: "last words"), promise: nil)
        let closed = client.channel.close()
        try closed.wait()
        try TLSTestSupport.pump(client, server)
        XCTAssertEqual(String(buffer: server.recorder.received), "last words")
        XCTAssertFalse(server.channel.isActive, "server closes on close_notify")
        XCTAssertTrue(server.recorder.inactive)
        XCTAssertTrue(server.recorder.errors.isEmpty, "a clean close is no error: \(server.recorder.errors)")
        XCTAssertTrue(client.recorder.errors.isEmpty)
        // Writes after close fail instead of disappearing.
        XCTAssertThrowsError(try client.channel.writeAndFlush(ByteBuffer(string: "late")).wait())
    }
}
