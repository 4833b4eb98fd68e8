@testable import Chain
import Contracts
import Foundation
import Synchronization
import GridBase
import GridClient
import GridProto
@testable import Node
import Wire
import XCTest

/// Issue 6, end to end through real nodes (main chain + district, mutual TLS, real RPC):
/// marketing onboards a prepaid customer on the main chain; the downlink brings the archive,
/// tariff and thresholds to the district; meter readings drain the account through warning
/// 1, warning 2 and disconnection; the district terminal (role device) receives ALARM_ON
/// and then TRIP on `Control.SubscribeCommands` and acknowledges; marketing reads the SMS
/// notices on `Notices.Subscribe`; a payment on the main chain reaches the district and the
/// terminal receives the close command.
final class FeeControlEndToEndTests: XCTestCase {
    var chains: MainAndDistrict!

    override func setUp() async throws {
        chains = try await MainAndDistrict(anchorEveryBlocks: 4, anchorEveryMs: 100)
    }

    override func tearDown() async throws {
        await chains.shutdown()
    }

    /// Tariff "flat": one period, 0.5000 CNY/kWh all day, monthly cycle, no tiers.
    static func flatTariff() -> Tariff {
        Tariff(tariffId: "flat", utcOffsetMinutes: 480, periods: [TariffPeriod(name: "flat", basePrice: 5000)],
               weekdaySchedule: [UInt8](repeating: 0, count: 288), weekendSchedule: [UInt8](repeating: 0, count: 288),
               cycle: .monthly, tierLimits: [], tierSurcharges: [], fixedChargeFen: 0)
    }

    func testReadingsDrainAccountDeviceTripsPaymentRecloses() async throws {
        let marketing = try chains.pki.issue(.marketing, "mkt1")
        let device = try chains.pki.issue(.device, "terminal-d1", district: "d1")
        let marketer = try TransactionSigner(certificatePath: marketing.cert, keyPath: marketing.key)
        let mainClient = try await chains.connect(chains.mainAddress, marketing)
        func onMain(_ parameter: DistrictParameter.Body) async throws -> UInt64 {
            let r = try await mainClient.submit(try marketer.sign(marketer.payload(chainID: "main", body: .parameter(DistrictParameter(district: "d1", body: parameter)))))
            XCTAssertEqual(r.outcome?.code, 0, r.outcome?.message ?? "")
            return r.location!.height
        }
        _ = try await onMain(.tariff(Self.flatTariff()))
        _ = try await onMain(.thresholds(FeeControlThresholds(
            thresholdsId: "", alarm1Fen: 1000, alarm2Fen: 500, overdraftLimitFen: 0, reconnectAllowedFen: 100,
            directClose: true, commandValidMs: 3_600_000, gridWorkerContact: "13900000000")))
        let onboarded = try await onMain(.customer(CustomerArchive(
            account: "c1", meterId: "m1", phase: "A", tariffId: "flat", contact: "13800000000", openingBalanceFen: 2000)))
        _ = try await chains.waitDistrict("the archive reaches d1") { $0.downlinkMainHeight >= onboarded }

        // The terminal and the marketing system listen.
        let terminal = try await chains.connect(chains.districtAddress, device)
        let deviceSigner = try TransactionSigner(certificatePath: device.cert, keyPath: device.key)
        let commands = CommandInbox()
        let listener = Task {
            do {
                for try await command in terminal.subscribeCommands(chain: "d1") { commands.add(command) }
            } catch {}
        }
        let sms = try await chains.connect(chains.districtAddress, marketing)
        let notices = NoticeInbox()
        let smsListener = Task {
            do {
                for try await notice in sms.subscribeNotices(from: 1, chain: "d1") { notices.add(notice) }
            } catch {}
        }

        // Marketing (sms) reads the account, the lists and the commands: the collector reads
        // only its own submissions' outcomes (Docs/permissions.md).
        // Readings: 10 kWh per 15 minutes at 0.5 CNY/kWh = 500 fen per interval. The first
        // reading is the baseline; then 2000 → 1500 → 1000 (warning 1) → 500 (warning 2)
        // → 0 (≤ −overdraft 0: disconnected).
        let collector = try await chains.connect(chains.districtAddress, chains.collector)
        let start = (Int64(Date().timeIntervalSince1970 * 1000) / 900_000 - 40) * 900_000
        var balances: [Int64] = []
        for i in 0..<5 {
            let reading = Reading(meterId: "m1", timestampMs: start + Int64(i) * 900_000, energyTotal: 100_000 + UInt64(i) * 1000, energyFlat: 100_000 + UInt64(i) * 1000, voltageDv: [2200], currentMa: [5000])
            let r = try await collector.submitReadings(try chains.collectorSigner.sign(chains.collectorSigner.readingsPayload(chainID: "d1", batchID: "r\(i)", readings: [reading])))
            XCTAssertEqual(r.outcome?.readingsBilled, 1)
            XCTAssertEqual(r.outcome?.chargedFen, i == 0 ? 0 : 500)
            balances.append(try await sms.account("c1", chain: "d1").account!.balanceFen)
        }
        XCTAssertEqual(balances, [2000, 1500, 1000, 500, 0])
        let account = try await sms.account("c1", chain: "d1").account!
        XCTAssertEqual(account.state, .disconnected)
        let disconnected = try await sms.accounts(state: .disconnected, chain: "d1")
        XCTAssertEqual(disconnected.map(\.account), ["c1"])

        // The terminal got ALARM_ON then TRIP, once each; it acknowledges the trip.
        let trip = try await commands.wait(for: .trip)
        XCTAssertEqual(commands.all.map(\.kind), [.alarmOn, .trip])
        XCTAssertEqual(trip.account, "c1")
        XCTAssertEqual(trip.meterId, "m1")
        let ack = try await collector.rpc.unary(GridMethod.Ingest.submit, SubmitRequest(transaction: try deviceSigner.sign(deviceSigner.payload(
            chainID: "d1", body: .commandAck(CommandAck(commandId: trip.commandId, success: true, detail: "relay open"))))), as: SubmitResponse.self)
        XCTAssertEqual(ack.outcome?.code, 0, ack.outcome?.message ?? "")
        let acknowledged = try await sms.commands(status: .acknowledged, chain: "d1")
        XCTAssertEqual(acknowledged.map(\.commandId), [trip.commandId])
        // A second reading at the same time is a duplicate: never charged twice.
        let again = Reading(meterId: "m1", timestampMs: start + 4 * 900_000, energyTotal: 104_000)
        let dup = try await collector.submitReadings(try chains.collectorSigner.sign(chains.collectorSigner.readingsPayload(chainID: "d1", batchID: "dup", readings: [again])))
        XCTAssertEqual(dup.outcome?.readingsDuplicate, 1)
        let unchanged = try await sms.account("c1", chain: "d1")
        XCTAssertEqual(unchanged.account?.balanceFen, 0)

        // Marketing sees the SMS notices: warning 1, warning 2, disconnect (customer), and
        // the formal disconnect notice for the grid worker.
        let formal = try await notices.wait(for: .formalDisconnect)
        XCTAssertEqual(formal.contact, "13900000000")
        XCTAssertEqual(notices.all.filter { $0.recipient == "customer" }.map(\.kind), [.warning1, .warning2, .disconnect])

        // A payment on the main chain reaches the district; the terminal receives the close.
        let paid = try await onMain(.payment(Payment(account: "c1", amountFen: 3000, serial: "bank-0001", paidMs: start)))
        _ = try await chains.waitDistrict("the payment reaches d1") { $0.downlinkMainHeight >= paid }
        let close = try await commands.wait(for: .directClose)
        XCTAssertEqual(close.account, "c1")
        let after = try await sms.account("c1", chain: "d1").account!
        XCTAssertEqual(after.balanceFen, 3000)
        XCTAssertEqual(after.state, .normal)
        _ = try await notices.wait(for: .reconnect)
        let stillDisconnected = try await sms.accounts(state: .disconnected, chain: "d1")
        XCTAssertTrue(stillDisconnected.isEmpty)

        // The account's results went up with the anchors. Wait for the payment's block (where
        // the close was issued), not the head: the head may be a receipt-only block, which an
        // idle district never anchors (Docs/anchoring.md, "Limits").
        let paidAt = close.issuedHeight
        _ = try await chains.waitDistrict("anchored to \(paidAt)") { $0.anchoredHeight >= paidAt }
        let uplink = try await mainClient.state(AnchorKeys.uplinkAccount("d1", "c1"), chain: "main")
        XCTAssertTrue(uplink.found)
        let result = try AccountResult(serializedBytes: uplink.value)
        XCTAssertEqual(result.balanceFen, 3000)
        // DOMAIN.md: "each customer's charge [is a result] sent up to the main chain".
        XCTAssertEqual(result.totalChargedFen, 2000)
        XCTAssertEqual(result.totalPaidFen, 3000)
        XCTAssertEqual(result.state, UInt32(AccountState.normal.rawValue))
        // Decoded through the main chain's query, paged by account.
        let results = try await mainClient.districtResults("d1", chain: "main")
        XCTAssertEqual(results.accounts.map(\.account), ["c1"])
        XCTAssertEqual(results.accounts.first?.totalChargedFen, 2000)
        XCTAssertEqual(results.totals?.chargedFen, 2000)
        XCTAssertEqual(results.nextAfter, "")
        let totals = try UplinkSummary(serializedBytes: try await mainClient.state(AnchorKeys.uplinkTotals("d1"), chain: "main").value)
        XCTAssertEqual(totals.chargedFen, 2000)
        XCTAssertEqual(totals.readingsBilled, 5)

        listener.cancel()
        smsListener.cancel()
        for c in [mainClient, terminal, sms, collector] { await c.rpc.close() }
    }

    /// GetDistrictResults takes hostile input: each bad request is refused with a clear,
    /// bounded status and the node keeps answering.
    func testDistrictResultsRefuseBadInput() async throws {
        let marketing = try chains.pki.issue(.marketing, "mkt-bad")
        let main = try await chains.connect(chains.mainAddress, marketing)
        let district = try await chains.connect(chains.districtAddress, marketing)
        func code(_ body: () async throws -> Void) async -> (StatusCode?, String) {
            do { try await body(); return (.ok, "") } catch let e as RPCError { return (e.code, e.message) } catch { return (nil, "\(error)") }
        }
        let long = String(repeating: "x", count: 20_000)
        let cases: [(String, StatusCode, () async throws -> Void)] = [
            ("on a district chain", .failedPrecondition, { _ = try await district.districtResults("d1", chain: "d1") }),
            ("no district", .invalidArgument, { _ = try await main.districtResults("", chain: "main") }),
            ("a '/' in the district", .invalidArgument, { _ = try await main.districtResults("d1/account", chain: "main") }),
            ("a 20,000-byte district", .invalidArgument, { _ = try await main.districtResults(long, chain: "main") }),
            ("a 20,000-byte page cursor", .invalidArgument, { _ = try await main.districtResults("d1", after: long, chain: "main") }),
            ("an unregistered district", .notFound, { _ = try await main.districtResults("d9", chain: "main") }),
        ]
        for (what, expected, call) in cases {
            let (got, message) = await code(call)
            XCTAssertEqual(got, expected, what)
            XCTAssertLessThan(message.utf8.count, 512, "\(what): the message is bounded")
        }
        // A huge limit is capped, not an error; the node still answers.
        let page = try await main.districtResults("d1", limit: .max, chain: "main")
        XCTAssertEqual(page.district, "d1")
        await main.rpc.close()
        await district.rpc.close()
    }

    func testDeviceOfAnotherDistrictIsRefused() async throws {
        let stranger = try chains.pki.issue(.device, "terminal-d2", district: "d2")
        let client = try await chains.connect(chains.districtAddress, stranger)
        do {
            for try await _ in client.subscribeCommands(chain: "d1") {}
            XCTFail("a device of d2 subscribed to d1's commands")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .permissionDenied)
        }
        let collectorClient = try await chains.connect(chains.districtAddress, chains.collector)
        do {
            for try await _ in collectorClient.subscribeCommands(chain: "d1") {}
            XCTFail("a collector subscribed to commands")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .permissionDenied)
        }
        await client.rpc.close()
        await collectorClient.rpc.close()
    }
}

final class CommandInbox: Sendable {
    private let items = Mutex<[ControlCommand]>([])
    func add(_ c: ControlCommand) { items.withLock { $0.append(c) } }
    var all: [ControlCommand] { items.withLock { $0 } }

    func wait(for kind: CommandKind, timeout: Duration = .seconds(10)) async throws -> ControlCommand {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if let c = all.first(where: { $0.kind == kind }) { return c }
            try await Task.sleep(for: .milliseconds(10))
        }
        XCTFail("no \(kind) command; got \(all.map(\.kind))")
        throw CancellationError()
    }
}

final class NoticeInbox: Sendable {
    private let items = Mutex<[Notice]>([])
    func add(_ n: Notice) { items.withLock { $0.append(n) } }
    var all: [Notice] { items.withLock { $0 } }

    func wait(for kind: NoticeKind, timeout: Duration = .seconds(10)) async throws -> Notice {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if let n = all.first(where: { $0.kind == kind }) { return n }
            try await Task.sleep(for: .milliseconds(10))
        }
        XCTFail("no \(kind) notice; got \(all.map(\.kind))")
        throw CancellationError()
    }
}
