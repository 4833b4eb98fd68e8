import Consensus
@testable import Chain
import Foundation
import GridBase
import GridClient
import Logging
import GridProto
import GridCrypto
@testable import Node
import Store
import Synchronization
import Wire
import XCTest

/// Issue 3 rules: signed submissions, their statuses (Docs/wire-protocol.md, "Chain
/// services"), durability before acknowledgement, queries and subscriptions, verify.
final class ChainTests: XCTestCase {
    var pki: TestPKI!
    var node: GridNode!
    var config = NodeConfiguration()
    var address = ""
    var collector: TransactionSigner!
    var client: ChainClient!
    /// Reads blocks and state: marketing (a collector reads only its own submissions'
    /// outcomes, Docs/permissions.md).
    var readerCert: (cert: String, key: String)!

    override func setUp() async throws {
        pki = try TestPKI()
        let nodeCert = try pki.issue(.node, "node1", district: "d1")
        let col = try pki.issue(.collector, "col1", district: "d1")
        config = pki.loopbackNode(nodeCert, dataDir: pki.dir + "/data")
        config.rpc.threads = 1
        config.chain.maxBlockDelayMs = 20
        try await startNode()
        collector = try TransactionSigner(certificatePath: col.cert, keyPath: col.key)
        client = try await connect(col)
        readerCert = try pki.issue(.marketing, "reader")
    }

    override func tearDown() async throws {
        await client?.rpc.close()
        await node?.stop()
        pki.remove()
    }

    private func startNode() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        node = try GridNode(configuration: config, logger: logger)
        address = "127.0.0.1:\(try await node.start().port!)"
    }

    private func connect(_ party: (cert: String, key: String)) async throws -> ChainClient {
        ChainClient(try await GridConnection.connect(to: address, certificate: party.cert, key: party.key, ca: pki.caCert))
    }

    private func readings(_ meter: String, from: Int64, count: Int) -> [Reading] {
        var out: [Reading] = []
        for i in 0..<count {
            var r = Reading()
            r.meterId = meter
            r.timestampMs = from + Int64(i) * 900_000
            let energy = UInt64(1000 + i * 10)
            r.energyTotal = energy
            r.energyFlat = energy
            r.voltageDv = [2200]
            r.currentMa = [5000]
            r.activePowerW = 1100
            r.reactivePowerVar = 100
            out.append(r)
        }
        return out
    }

    private func status(_ body: () async throws -> Void) async -> RPCError? {
        do {
            try await body()
            return nil
        } catch let error as RPCError {
            return error
        } catch {
            XCTFail("unexpected error \(error)")
            return nil
        }
    }

    // MARK: Submissions

    func testSubmittedBatchIsDurableAndQueryable() async throws {
        let tx = try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "b1", readings: readings("m1", from: 1_700_000_000_000, count: 10)))
        let response = try await client.submitReadings(tx)
        XCTAssertEqual(response.outcome?.readingsAccepted, 10)
        let location = try XCTUnwrap(response.location)
        XCTAssertGreaterThanOrEqual(location.height, 1)
        XCTAssertEqual(location.txId, TransactionSigner.transactionID(tx))
        // Acknowledged means durable: the store already holds it.
        let fetched = try await client.transaction(location.txId)
        XCTAssertEqual(fetched.transaction, tx)
        XCTAssertEqual(fetched.location?.height, location.height)
        let reader = try await connect(readerCert)
        let block = try await reader.block(at: location.height)
        XCTAssertEqual(block.hash, location.blockHash)
        let state = try await reader.state(BlockExecutor.readingKey(meter: "m1", timestampMs: 1_700_000_000_000))
        XCTAssertTrue(state.found)
        XCTAssertEqual(state.version?.height, location.height)
        let latest = try await reader.history(BlockExecutor.meterKey("m1"))
        XCTAssertEqual(latest.entries.count, 1)
        await reader.rpc.close()
    }

    /// A resubmitted transaction is answered ALREADY_EXISTS with its original location and
    /// is never stored twice.
    /// The embedding API's subscription (issue 12: "an in-process block/event subscription"):
    /// every stored block from the height asked, then each new one as it becomes durable, in
    /// order; the host's error ends it; a stopped node ends it normally.
    func testEmbedderFollowsBlocksInProcess() async throws {
        _ = try await node.submit(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "e0", readings: readings("e", from: 1_700_000_000_000, count: 2))))
        struct Enough: Error {}
        let seen = Mutex<[UInt64]>([])
        let follower = Task { [node] in
            try await node!.follow(from: 0) { block, hash in
                XCTAssertEqual(hash.count, 32)
                let count = seen.withLock { s -> Int in
                    s.append(block.header?.height ?? .max)
                    return s.count
                }
                if count == 4 { throw Enough() }
            }
        }
        for i in 1...2 {
            _ = try await node.submit(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "e\(i)", readings: readings("e\(i)", from: 1_700_000_000_000, count: 2))))
        }
        do {
            try await follower.value
            XCTFail("the host's error ends the subscription and is rethrown")
        } catch is Enough {}
        XCTAssertEqual(seen.withLock { $0 }, [0, 1, 2, 3], "genesis, the stored block, then the two new ones, in order")
        // A subscription open when the node stops ends normally.
        let open = Task { [node] in try await node!.follow(from: 4) { _, _ in } }
        try await Task.sleep(for: .milliseconds(50))
        await node.stop()
        node = nil
        try await open.value
    }

    func testDuplicateTransactionIsAlreadyExistsWithOriginalLocation() async throws {
        let tx = try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "b1", readings: readings("m1", from: 1_700_000_000_000, count: 3)))
        let first = try await client.submitReadings(tx)
        let error = await status { _ = try await self.client.submitReadings(tx) }
        XCTAssertEqual(error?.code, .alreadyExists)
        let raw = try XCTUnwrap(error?.metadataValue("gridledger-tx-location-bin"))
        XCTAssertEqual(try TxLocation(serializedBytes: raw), first.location)
        // Re-signed (new signature, same payload) is the same transaction id.
        let resigned = SignedTransaction(payload: tx.payload, signature: try collector.sign(try TxPayload(serializedBytes: tx.payload)).signature, signerCertificate: tx.signerCertificate)
        let again = await status { _ = try await self.client.submitReadings(resigned) }
        XCTAssertEqual(again?.code, .alreadyExists)
    }

    /// DOMAIN.md, Readings: a resubmitted batch is recognised and never counted twice.
    func testSameReadingsInANewTransactionAreCountedOnce() async throws {
        let rs = readings("m1", from: 1_700_000_000_000, count: 5)
        _ = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "b1", readings: rs)))
        let second = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "b1-retry", readings: rs)))
        XCTAssertEqual(second.outcome?.readingsAccepted, 0)
        XCTAssertEqual(second.outcome?.readingsDuplicate, 5)
        // An older reading that is not yet stored is accepted (out of order is stored).
        let late = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "late", readings: readings("m1", from: 1_699_000_000_000, count: 1))))
        XCTAssertEqual(late.outcome?.readingsAccepted, 1)
    }

    func testForgedSignatureIsUnauthenticated() async throws {
        var tx = try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "b", readings: readings("m1", from: 1_700_000_000_000, count: 1)))
        tx.signature[tx.signature.count / 2] ^= 0x01
        let error = await status { _ = try await self.client.submitReadings(tx) }
        XCTAssertEqual(error?.code, .unauthenticated)
        // A payload altered after signing is caught the same way.
        var altered = try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "b", readings: readings("m1", from: 1_700_000_000_000, count: 1)))
        altered.payload[altered.payload.count - 1] ^= 0x01
        let error2 = await status { _ = try await self.client.submitReadings(altered) }
        XCTAssertEqual(error2?.code, .unauthenticated)
    }

    func testSignerFromAnotherCAIsUnauthenticated() async throws {
        let other = try TestPKI()
        defer { other.remove() }
        let stranger = try other.issue(.collector, "col1", district: "d1")
        let signer = try TransactionSigner(certificatePath: stranger.cert, keyPath: stranger.key)
        let tx = try signer.sign(signer.readingsPayload(chainID: "d1", batchID: "b", readings: readings("m1", from: 1_700_000_000_000, count: 1)))
        let error = await status { _ = try await self.client.submitReadings(tx) }
        XCTAssertEqual(error?.code, .unauthenticated)
    }

    func testWrongRoleAndWrongDistrictArePermissionDenied() async throws {
        let ops = try pki.issue(.ops, "ops1")
        let opsSigner = try TransactionSigner(certificatePath: ops.cert, keyPath: ops.key)
        var payload = opsSigner.readingsPayload(chainID: "d1", batchID: "b", readings: readings("m1", from: 1_700_000_000_000, count: 1))
        if case .readings(var batch)? = payload.body { batch.district = "d1"; payload.body = .readings(batch) }
        let byOps = await status { _ = try await self.client.submitReadings(try opsSigner.sign(payload)) }
        XCTAssertEqual(byOps?.code, .permissionDenied)

        let d2 = try pki.issue(.collector, "col2", district: "d2")
        let d2Signer = try TransactionSigner(certificatePath: d2.cert, keyPath: d2.key)
        let fromD2 = await status {
            _ = try await self.client.submitReadings(try d2Signer.sign(d2Signer.readingsPayload(chainID: "d1", batchID: "b", readings: self.readings("m9", from: 1_700_000_000_000, count: 1))))
        }
        XCTAssertEqual(fromD2?.code, .permissionDenied)
        // A d1 collector claiming another district in the batch.
        var claim = collector.readingsPayload(chainID: "d1", batchID: "b", readings: readings("m1", from: 1_700_000_000_000, count: 1))
        if case .readings(var batch)? = claim.body { batch.district = "d2"; claim.body = .readings(batch) }
        let claimed = await status { _ = try await self.client.submitReadings(try self.collector.sign(claim)) }
        XCTAssertEqual(claimed?.code, .permissionDenied)
    }

    func testMalformedPayloadsAreInvalidArgument() async throws {
        let keyPair = try CertificateKeyPair(certificatePath: pki.dir + "/col1/col1.crt", privateKeyPath: pki.dir + "/col1/col1.key")
        let garbage: [UInt8] = [0x0a, 0x7f, 0x01]
        let signedGarbage = SignedTransaction(payload: garbage, signature: try keyPair.sign(garbage), signerCertificate: keyPair.certificateDER)
        let e1 = await status { _ = try await self.client.submitReadings(signedGarbage) }
        XCTAssertEqual(e1?.code, .invalidArgument)
        let wrongChain = try collector.sign(collector.readingsPayload(chainID: "d7", batchID: "b", readings: readings("m1", from: 1_700_000_000_000, count: 1)))
        let e2 = await status { _ = try await self.client.submitReadings(wrongChain) }
        XCTAssertEqual(e2?.code, .invalidArgument)
        let badMeter = try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "b", readings: readings("bad meter/id", from: 1_700_000_000_000, count: 1)))
        let e3 = await status { _ = try await self.client.submitReadings(badMeter) }
        XCTAssertEqual(e3?.code, .invalidArgument)
        let e4 = await status { _ = try await self.client.submitReadings(SignedTransaction()) }
        XCTAssertEqual(e4?.code, .invalidArgument)
    }

    func testOversizedBatchIsResourceExhausted() async throws {
        let tx = try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "big", readings: readings("m1", from: 1_700_000_000_000, count: 10_001)))
        let error = await status { _ = try await self.client.submitReadings(tx) }
        XCTAssertEqual(error?.code, .resourceExhausted)
        // The node is fine afterwards.
        let ok = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "small", readings: readings("m1", from: 1_700_000_000_000, count: 1))))
        XCTAssertEqual(ok.outcome?.readingsAccepted, 1)
    }

    /// SubscribeBlocks from the past catches up, then follows new blocks live.
    func testSubscriptionCatchesUpThenFollows() async throws {
        for i in 0..<3 {
            _ = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "b\(i)", readings: readings("m\(i)", from: 1_700_000_000_000, count: 2))))
        }
        let head = try XCTUnwrap(try node.head()).height
        let reader = try await connect(readerCert)
        defer { Task { await reader.rpc.close() } }
        var iterator = reader.subscribeBlocks(from: 0).makeAsyncIterator()
        for h in 0...head {
            let block = try await iterator.next()
            XCTAssertEqual(block?.block?.header?.height, h)
        }
        let submitted = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "live", readings: readings("m9", from: 1_700_000_000_000, count: 1))))
        let live = try await iterator.next()
        XCTAssertEqual(live?.block?.header?.height, submitted.location?.height)
        XCTAssertEqual(live?.hash, submitted.location?.blockHash)
    }

    func testStreamReadingsAcknowledgesEachBatchInOrder() async throws {
        let call = try await client.streamReadings()
        for i in 0..<20 {
            try await call.send(SubmitRequest(transaction: try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "s\(i)", readings: readings("s\(i)", from: 1_700_000_000_000, count: 5)))))
        }
        try await call.closeSend()
        var sequences: [UInt64] = []
        for try await ack in call.responses {
            XCTAssertEqual(ack.code, 0, ack.message)
            sequences.append(ack.sequence)
        }
        XCTAssertEqual(sequences, Array(0..<20))
    }

    /// Stops the node (closing the client first) and verifies its store, which must be clean.
    private func stopAndVerify() async throws -> ChainVerifier.Report {
        await client.rpc.close()
        client = nil
        await node.stop()
        node = nil
        let report = try ChainVerifier.verify(dataDirectory: config.dataDir)
        XCTAssertNil(report.firstInconsistency)
        return report
    }

    /// A value edited directly in LevelDB is detected by verify; an untouched chain verifies.
    func testVerifyDetectsTampering() async throws {
        for i in 0..<4 {
            _ = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "v\(i)", readings: readings("m\(i % 2)", from: 1_700_000_000_000 + Int64(i) * 10_000_000, count: 3))))
        }
        let clean = try await stopAndVerify()
        XCTAssertEqual(clean.blocks, 5)

        do {
            let store = try ChainStore(directory: config.dataDir + "/chains/d1", chainID: "d1")
            // Rewrite the world-state value of one reading (flag byte kept, value changed).
            let key = BlockExecutor.readingKey(meter: "m0", timestampMs: 1_700_000_000_000)
            let raw = Array("s".utf8) + Array(key.utf8)
            var value = try XCTUnwrap(try store.database.get(raw))
            value[value.count - 1] ^= 0xff
            try store.database.put(raw, value, sync: true)
        }
        let tampered = try ChainVerifier.verify(dataDirectory: config.dataDir)
        XCTAssertNotNil(tampered.firstInconsistency)
        XCTAssertTrue(tampered.firstInconsistency!.contains("m0"), tampered.firstInconsistency!)
        // The replay's scratch store is gone afterwards.
        XCTAssertFalse(FileManager.default.fileExists(atPath: config.dataDir + "/verify-scratch"))
    }

    /// Each stored index is checked entry by entry against the replay: a missing
    /// transaction-index entry, and a history entry that was never written, are found.
    func testVerifyChecksTheIndexesAndHistory() async throws {
        var last: SubmitResponse?
        for i in 0..<3 {
            last = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "x\(i)", readings: readings("x\(i)", from: 1_700_000_000_000, count: 2))))
        }
        let id = try XCTUnwrap(last?.location?.txId)
        let clean = try await stopAndVerify()
        XCTAssertEqual(clean.transactions, 3)
        XCTAssertEqual(clean.historyEntries, clean.stateKeys, "each key written once")
        do {
            let store = try ChainStore(directory: config.dataDir + "/chains/d1", chainID: "d1")
            try store.database.delete(Array("t".utf8) + id, sync: true)
        }
        let missing = try ChainVerifier.verify(dataDirectory: config.dataDir)
        XCTAssertEqual(missing.firstInconsistency, "transaction index has 2 entries, expected 3")
        do {
            let store = try ChainStore(directory: config.dataDir + "/chains/d1", chainID: "d1")
            try store.database.put(Array("t".utf8) + id, [0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0], sync: true)
            // A version of a reading key at a height that never wrote it.
            let key = BlockExecutor.readingKey(meter: "x0", timestampMs: 1_700_000_000_000)
            let version: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0]
            try store.database.put(Array("h".utf8) + Array(key.utf8) + [0] + version, [1, 7], sync: true)
        }
        let forged = try ChainVerifier.verify(dataDirectory: config.dataDir)
        XCTAssertEqual(forged.firstInconsistency?.hasPrefix("history of '\(BlockExecutor.readingKey(meter: "x0", timestampMs: 1_700_000_000_000))' at (9, 0)"), true,
                       forged.firstInconsistency ?? "nil")
    }

    /// Issue 11, item 2: "`verify` reports a Raft log or hard state that the chain cannot
    /// apply". A forged committed entry (the garbage an impostor once appended) is reported;
    /// replayed blocks and an uncommitted entry are not.
    func testVerifyReportsARaftLogTheChainCannotApply() async throws {
        for i in 0..<2 {
            _ = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "r\(i)", readings: readings("r\(i)", from: 1_700_000_000_000, count: 2))))
        }
        _ = try await stopAndVerify()
        let directory = config.dataDir + "/chains/d1"
        let blocks = try {
            let store = try ChainStore(directory: directory, chainID: "d1")
            return try (1...2).map { try XCTUnwrap(try store.blockBytes(at: $0)) }
        }()
        do {
            // Replayed blocks (equal to the stored ones) and an uncommitted garbage entry.
            let log = try LevelDBRaftStorage(directory: directory)
            try log.persist(hardState: HardState(term: 2, vote: 1, commit: 3), entries: [
                Entry(term: 1, index: 1), Entry(term: 2, index: 2, data: blocks[0]), Entry(term: 2, index: 3, data: blocks[1]),
                Entry(term: 2, index: 4, data: [0xde, 0xad]),
            ], snapshot: nil)
        }
        XCTAssertNil(try ChainVerifier.verify(dataDirectory: config.dataDir).firstInconsistency)
        do {
            // The same garbage, committed at a high term.
            let log = try LevelDBRaftStorage(directory: directory)
            try log.persist(hardState: HardState(term: 103, vote: 0, commit: 4), entries: [Entry(term: 103, index: 4, data: [0xde, 0xad])], snapshot: nil)
        }
        let report = try ChainVerifier.verify(dataDirectory: config.dataDir)
        XCTAssertEqual(report.firstInconsistency, "raft log: committed raft entry 4 (term 103) is not a block: this replica cannot apply it")
    }

    func testBlockTamperingBreaksTheHashChain() async throws {
        for i in 0..<3 {
            _ = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "t\(i)", readings: readings("m\(i)", from: 1_700_000_000_000, count: 2))))
        }
        await client.rpc.close()
        client = nil
        await node.stop()
        node = nil
        do {
            let store = try ChainStore(directory: config.dataDir + "/chains/d1", chainID: "d1")
            var block = try XCTUnwrap(try store.block(at: 2))
            block.outcomes[0].readingsAccepted += 1
            try store.database.put([UInt8(ascii: "b")] + BigEndianWriter.bytes(of: UInt64(2)), block.serializedBytes(), sync: true)
        }
        let report = try ChainVerifier.verify(dataDirectory: config.dataDir)
        XCTAssertEqual(report.firstInconsistency?.contains("block 2"), true, report.firstInconsistency ?? "nil")
    }

    func testStatusReportsTheChain() async throws {
        _ = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "x", readings: readings("m1", from: 1_700_000_000_000, count: 2))))
        let status = node.status()
        let chain = try XCTUnwrap(status.chains.first)
        XCTAssertEqual(chain.chainId, "d1")
        XCTAssertGreaterThanOrEqual(chain.height, 1)
        XCTAssertEqual(chain.headHash.count, 32)
        XCTAssertGreaterThan(chain.storeBytes, 0)
        XCTAssertEqual(chain.totalTransactions, 1)
    }

    /// Ingestion is bounded: with the queue full, a submission is answered
    /// RESOURCE_EXHAUSTED at once instead of growing memory.
    func testFullQueueIsResourceExhausted() async throws {
        await client.rpc.close()
        await node.stop()
        config.chain.maxPendingTransactions = 2
        config.chain.maxBlockDelayMs = 1500
        try await startNode()
        client = try await connect((pki.dir + "/col1/col1.crt", pki.dir + "/col1/col1.key"))
        let signer = collector!
        let c = client!
        let txs = try (0..<6).map { i in
            try signer.sign(signer.readingsPayload(chainID: "d1", batchID: "q\(i)", readings: readings("q\(i)", from: 1_700_000_000_000, count: 1)))
        }
        let outcomes = await withTaskGroup(of: StatusCode.self) { group in
            for tx in txs {
                group.addTask {
                    do {
                        _ = try await c.submitReadings(tx)
                        return .ok
                    } catch let error as RPCError {
                        return error.code
                    } catch {
                        return .unknown
                    }
                }
            }
            var all: [StatusCode] = []
            for await code in group { all.append(code) }
            return all
        }
        XCTAssertEqual(outcomes.filter { $0 == .ok }.count, 2, "\(outcomes)")
        XCTAssertEqual(outcomes.filter { $0 == .resourceExhausted }.count, 4, "\(outcomes)")
    }

    /// A block closes at max transactions (here 2) even before its delay.
    func testBlockClosesAtMaxTransactions() async throws {
        await client.rpc.close()
        await node.stop()
        config.chain.maxBlockTransactions = 2
        config.chain.maxBlockDelayMs = 60_000
        try await startNode()
        client = try await connect((pki.dir + "/col1/col1.crt", pki.dir + "/col1/col1.key"))
        let signer = collector!
        let c = client!
        let start = ContinuousClock.now
        let txs = try (0..<4).map { i in
            try signer.sign(signer.readingsPayload(chainID: "d1", batchID: "m\(i)", readings: readings("m\(i)", from: 1_700_000_000_000, count: 1)))
        }
        let heights = try await withThrowingTaskGroup(of: UInt64.self) { group in
            for tx in txs {
                group.addTask {
                    let r = try await c.submitReadings(tx)
                    return r.location?.height ?? 0
                }
            }
            var all: [UInt64] = []
            for try await h in group { all.append(h) }
            return all.sorted()
        }
        XCTAssertEqual(heights, [1, 1, 2, 2])
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(30), "blocks must not wait for the 60 s delay")
    }

    /// A subscriber more than the feed's capacity behind is cut off with RESOURCE_EXHAUSTED.
    func testSlowSubscriberIsCutOff() async throws {
        let feed = BlockFeed(capacity: 2)
        let stream = feed.subscribe()
        for h in 1...3 { feed.publish(height: UInt64(h), hash: [], blockBytes: []) }
        var received: [UInt64] = []
        do {
            for try await item in stream { received.append(item.height) }
            XCTFail("stream must end with an error")
        } catch let error as ChainError {  // BlockFeed is the ledger core's: it ends a stream with ChainError (the services map it)
            XCTAssertEqual(error.code, .resourceExhausted)
        }
        XCTAssertEqual(received, [1, 2])
    }

    /// Raft ordering, leader change: a block that a former leader proposed on an older head
    /// and that commits after another leader's block at the same height is skipped on every
    /// replica (deterministically), never stored, and never halts the chain.
    func testStaleProposalIsSkippedNotAFork() async throws {
        // A second, independent node of the same chain produces a different block 1 and 2.
        let other = try TestPKI()
        defer { other.remove() }
        var otherConfig = config
        otherConfig.dataDir = other.dir + "/data"
        var quiet = Logger(label: "other")
        quiet.logLevel = .critical
        let otherNode = try GridNode(configuration: otherConfig, logger: quiet)
        _ = try await otherNode.start()
        for i in 0..<2 {
            _ = try await otherNode.submit(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "o\(i)", readings: readings("o\(i)", from: 1_700_000_000_000, count: 1))))
        }
        let foreign1 = try XCTUnwrap(try otherNode.block(at: 1)).block.serializedBytes()
        let foreign2 = try XCTUnwrap(try otherNode.block(at: 2)).block.serializedBytes()
        await otherNode.stop()

        let mine = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "m", readings: readings("m", from: 1_700_000_000_000, count: 1))))
        let ledger = try node.chainSet.ledger("d1")
        let own1 = try XCTUnwrap(try node.block(at: 1)).block.serializedBytes()
        XCTAssertNoThrow(try ledger.applyCommitted(own1), "a replay of the stored block is accepted")
        XCTAssertNoThrow(try ledger.applyCommitted(foreign1), "a stale proposal at a stored height is skipped")
        XCTAssertNoThrow(try ledger.applyCommitted(foreign2), "a block on another parent is skipped")
        XCTAssertEqual(try node.head()?.height, 1)
        XCTAssertEqual(try node.head()?.hash, mine.location?.blockHash)
        // The chain goes on.
        let next = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "n", readings: readings("n", from: 1_700_000_000_000, count: 1))))
        XCTAssertEqual(next.location?.height, 2)
    }

    /// A committed block is re-verified with certificates checked at the block's time, not
    /// today's: a collector certificate that has expired since still verifies the blocks it
    /// signed while valid (replay, catch-up), while a new submission with it is refused.
    func testCommittedBlockVerifiesCertificatesAtItsOwnTime() async throws {
        let old = try pki.issue(.collector, "col-old", district: "d1", days: 1, backdateDays: 2)
        let signer = try TransactionSigner(certificatePath: old.cert, keyPath: old.key)
        let blockTime = Int64(Date().timeIntervalSince1970 * 1000) - 36 * 3_600_000
        let tx = try signer.sign(signer.readingsPayload(chainID: "d1", batchID: "then", readings: readings("old", from: 1_700_000_000_000, count: 2), createdMs: blockTime))
        do {
            _ = try await client.submitReadings(tx)
            XCTFail("an expired certificate was admitted")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .unauthenticated)
        }
        let ledger = try node.chainSet.ledger("d1")
        let genesis = try XCTUnwrap(ledger.store.head)
        // A block claiming a time when the certificate was not yet valid does not apply.
        let early = try block(on: genesis, [tx], timestampMs: blockTime - 3 * 86_400_000, ledger)
        XCTAssertThrowsError(try ledger.applyCommitted(early)) {
            XCTAssertTrue("\($0)".contains("fails validation"), "\($0)")
        }
        XCTAssertEqual(ledger.store.head?.height, genesis.height)
        // The block a leader built while the certificate was valid.
        try ledger.applyCommitted(try block(on: genesis, [tx], timestampMs: blockTime, ledger))
        XCTAssertEqual(ledger.store.head?.height, genesis.height + 1)
    }

    /// Block time never goes back: a committed block dated before the head block does not
    /// apply (contracts expire commands and reset billing cycles by block time).
    func testCommittedBlockBeforeTheHeadsTimeDoesNotApply() async throws {
        let first = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "now", readings: readings("t1", from: 1_700_000_000_000, count: 1))))
        let ledger = try node.chainSet.ledger("d1")
        let head = try XCTUnwrap(ledger.store.head)
        XCTAssertEqual(head.height, first.location?.height)
        let headTime = try XCTUnwrap(try ledger.store.block(at: head.height)?.header).timestampMs
        let tx = try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "back", readings: readings("t2", from: 1_700_000_000_000, count: 1)))
        XCTAssertThrowsError(try ledger.applyCommitted(try block(on: head, [tx], timestampMs: headTime - 1, ledger))) {
            XCTAssertTrue("\($0)".contains("timestamp"), "\($0)")
        }
        XCTAssertEqual(ledger.store.head, head)
        // The same block at the head's own time applies.
        try ledger.applyCommitted(try block(on: head, [tx], timestampMs: headTime, ledger))
        XCTAssertEqual(ledger.store.head?.height, head.height + 1)
        let blocks = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "later", readings: readings("t3", from: 1_700_000_000_000, count: 1))))
        let next = try XCTUnwrap(try ledger.store.block(at: try XCTUnwrap(blocks.location).height)?.header)
        XCTAssertGreaterThanOrEqual(next.timestampMs, headTime)
    }

    /// A leader whose clock is behind its head block's time (a new leader after one with a
    /// faster clock) dates its next block at the head's time, not earlier.
    func testLeaderClockBehindTheHeadKeepsBlockTimeFromGoingBack() async throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let clock = Mutex(now)
        var quiet = Logger(label: "clock")
        quiet.logLevel = .critical
        let ledger = try Ledger(
            chainID: "d1", nodeID: "clocked", store: try ChainStore(directory: pki.dir + "/clocked", chainID: "d1"),
            verifier: try SignerVerifier(caPath: pki.caCert), limits: LedgerLimits(), logger: quiet,
            wallClockMs: { clock.withLock { $0 } })
        ledger.start()
        let first = try await ledger.submit(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "c1", readings: readings("c1", from: 1_700_000_000_000, count: 1))))
        clock.withLock { $0 = now - 3_600_000 }
        let second = try await ledger.submit(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "c2", readings: readings("c2", from: 1_700_000_000_000, count: 1))))
        clock.withLock { $0 = now + 5_000 }
        let third = try await ledger.submit(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "c3", readings: readings("c3", from: 1_700_000_000_000, count: 1))))
        await ledger.stop()
        let times = try [first, second, third].map { try XCTUnwrap(try ledger.store.block(at: XCTUnwrap($0.location).height)?.header).timestampMs }
        XCTAssertEqual(times, [now, now, now + 5_000])
    }

    /// A block on `head` holding `transactions`, executed and rooted as a leader builds it.
    private func block(on head: ChainStore.Head, _ transactions: [SignedTransaction], timestampMs: Int64, _ ledger: Ledger) throws -> [UInt8] {
        let payloads = try transactions.map { try TxPayload(serializedBytes: $0.payload) }
        let (writes, outcomes) = try BlockExecutor.execute(
            payloads, context: ExecutionContext(chainID: "d1", height: head.height + 1, timestampMs: timestampMs),
            state: StoreStateReader(store: ledger.store, cache: MeterCache()))
        var header = BlockHeader()
        header.chainId = "d1"
        header.height = head.height + 1
        header.previousHash = head.hash
        header.timestampMs = timestampMs
        header.txRoot = ledger.hashing.txRoot(transactions.map(TransactionSigner.transactionID))
        header.stateRoot = ledger.hashing.stateRoot(previous: head.stateRoot, writes: writes, outcomes: outcomes)
        header.proposer = "leader"
        header.txCount = UInt32(transactions.count)
        header.hashSuite = ledger.hashing.suite.rawValue
        header.outcomesRoot = ledger.hashing.outcomesRoot(outcomes)
        return Block(header: header, transactions: transactions, outcomes: outcomes).serializedBytes()
    }

    /// `stop()` shuts the node's event loops down (so a host exiting next finds no thread
    /// still using OpenSSL); the stopped object refuses to start, a new one serves the data.
    func testAStoppedNodeDoesNotStartAgainANewOneDoes() async throws {
        let submitted = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "s", readings: readings("s1", from: 1_700_000_000_000, count: 1))))
        await client.rpc.close()
        await node.stop()
        do {
            _ = try await node.start()
            XCTFail("a stopped node started again")
        } catch let error as ConfigurationError {
            XCTAssertTrue("\(error)".contains("stopped"), "\(error)")
        }
        try await startNode()
        XCTAssertEqual(try node.head()?.height, submitted.location?.height)
        client = try await connect(try pki.issue(.collector, "col2", district: "d1"))
        let info = try await client.chainInfo()
        XCTAssertEqual(info.height, submitted.location?.height)
    }

    /// The hash suite is a per-chain setting recorded in every header: an SM3 chain hashes
    /// with SM3 end to end, verifies, and refuses to reopen under another suite.
    func testSM3ChainHashesWithSM3AndKeepsItsSuite() async throws {
        await client.rpc.close()
        await node.stop()
        config.dataDir = pki.dir + "/sm3"
        config.chain.hashSuite = "sm3"
        try await startNode()
        client = try await connect((pki.dir + "/col1/col1.crt", pki.dir + "/col1/col1.key"))
        let r = try await client.submitReadings(try collector.sign(collector.readingsPayload(chainID: "d1", batchID: "s", readings: readings("s", from: 1_700_000_000_000, count: 2))))
        let reader = try await connect(readerCert)
        let block = try await reader.block(at: try XCTUnwrap(r.location?.height))
        await reader.rpc.close()
        let header = try XCTUnwrap(block.block?.header)
        XCTAssertEqual(header.hashSuite, "sm3")
        XCTAssertEqual(block.hash, Digest.hash(.sm3, parts: [header.serializedBytes()]))
        XCTAssertNotEqual(block.hash, Digest.sha256(header.serializedBytes()))
        await client.rpc.close()
        client = nil
        await node.stop()
        node = nil
        let report = try ChainVerifier.verify(dataDirectory: config.dataDir)
        XCTAssertNil(report.firstInconsistency, report.firstInconsistency ?? "")
        config.chain.hashSuite = "sha256"
        do {
            try await startNode()
            XCTFail("an SM3 chain must not open as SHA-256")
        } catch {
            XCTAssertTrue("\(error)".contains("sm3"), "\(error)")
        }
    }
}
