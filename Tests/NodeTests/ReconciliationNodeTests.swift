import Foundation
import GridBase
import GridClient
import GridProto
import Logging
@testable import Node
import Wire
import XCTest

/// Reconciliation on a real main-chain node (Docs/reconciliation.md): the three parties
/// submit their records, each only its own kind ("each party submits only its own kind,
/// signed"), finance requests the run, and the result is read back by state query.
final class ReconciliationNodeTests: XCTestCase {
    func testThreePartiesRecordsAndAReconcileRequestOnAMainChain() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        var c = pki.loopbackNode(try pki.issue(.node, "cloud1"), dataDir: pki.dir + "/main")
        c.rpc.threads = 1
        c.chain.id = "main"
        c.chain.kind = "main"
        c.chain.maxBlockDelayMs = 2
        var logger = Logger(label: "recon")
        logger.logLevel = .critical
        let node = try GridNode(configuration: c, logger: logger)
        let address = "127.0.0.1:\(try await node.start().port!)"
        defer { Task { await node.stop() } }

        let marketing = try pki.issue(.marketing, "marketing1")
        let bank = try pki.issue(.bank, "icbc")
        let finance = try pki.issue(.finance, "finance1")
        func party(_ p: (cert: String, key: String)) async throws -> (ChainClient, TransactionSigner) {
            (ChainClient(try await GridConnection.connect(to: address, certificate: p.cert, key: p.key, ca: pki.caCert)),
             try TransactionSigner(certificatePath: p.cert, keyPath: p.key))
        }
        func code(_ body: () async throws -> Void) async -> StatusCode? {
            do { try await body(); return .ok } catch let e as RPCError { return e.code } catch { return nil }
        }
        let (m, mSigner) = try await party(marketing)
        let (b, bSigner) = try await party(bank)
        let (f, fSigner) = try await party(finance)
        let D: UInt32 = 20260315

        let receipts = ChargeReceiptBatch(batchId: "m-1", receipts: [
            ChargeReceipt(serial: "m1", customerAccount: "c1", amountFen: 1000, bankAccount: "A1", workingDate: D, timeMs: 1),
            ChargeReceipt(serial: "m2", customerAccount: "c2", amountFen: 700, bankAccount: "A1", workingDate: D, timeMs: 2),
            ChargeReceipt(serial: "m1", customerAccount: "c1", amountFen: 1000, bankAccount: "A1", workingDate: D, timeMs: 1),
        ])
        let taken = try await m.submit(try mSigner.sign(mSigner.payload(chainID: "main", body: .chargeReceipts(receipts))))
        XCTAssertEqual(taken.outcome?.code, 0)
        XCTAssertEqual(taken.outcome?.recordsAccepted, 2)
        XCTAssertEqual(taken.outcome?.recordsDuplicate, 1, "a repeated id is recognised, not counted twice")

        // Role rules: marketing may not submit bank records, the bank may not submit
        // receipts, nor under another bank's name, nor request a run.
        let payments = BankPaymentBatch(bank: "icbc", batchId: "b-1", payments: [
            BankPayment(serial: "b1", marketingSerial: "m1", customerAccount: "c1", amountFen: 1000, bankAccount: "A1", valueDate: D, status: .success),
        ])
        let wrongRole = await code { _ = try await m.submit(try mSigner.sign(mSigner.payload(chainID: "main", body: .bankPayments(payments)))) }
        XCTAssertEqual(wrongRole, .permissionDenied)
        let bankAsMarketing = await code { _ = try await b.submit(try bSigner.sign(bSigner.payload(chainID: "main", body: .chargeReceipts(receipts)))) }
        XCTAssertEqual(bankAsMarketing, .permissionDenied)
        var otherBank = payments
        otherBank.bank = "abc"
        let impersonation = await code { _ = try await b.submit(try bSigner.sign(bSigner.payload(chainID: "main", body: .bankPayments(otherBank)))) }
        XCTAssertEqual(impersonation, .permissionDenied)
        let bankRun = await code { _ = try await b.submit(try bSigner.sign(bSigner.payload(chainID: "main", body: .reconcile(ReconcileRequest(date: D))))) }
        XCTAssertEqual(bankRun, .permissionDenied)
        let badDate = await code { _ = try await f.submit(try fSigner.sign(fSigner.payload(chainID: "main", body: .reconcile(ReconcileRequest(date: 20260230))))) }
        XCTAssertEqual(badDate, .invalidArgument)
        // The schedule's parameter is the admin's alone (Docs/reconciliation.md, "Schedule").
        let settingsByFinance = await code {
            _ = try await f.submit(try fSigner.sign(fSigner.payload(chainID: "main", body: .reconcileSettings(ReconcileSettings(cutoffMinutesAfterMidnight: 60, utcOffsetMinutes: 480)))))
        }
        XCTAssertEqual(settingsByFinance, .permissionDenied)

        let banked = try await b.submit(try bSigner.sign(bSigner.payload(chainID: "main", body: .bankPayments(payments))))
        XCTAssertEqual(banked.outcome?.recordsAccepted, 1)
        let entries = AccountingEntryBatch(batchId: "f-1", entries: [
            AccountingEntry(voucherId: "v1", bankAccount: "A1", amountFen: 1700, workingDate: D, collectionDate: D),
        ])
        let booked = try await f.submit(try fSigner.sign(fSigner.payload(chainID: "main", body: .accountingEntries(entries))))
        XCTAssertEqual(booked.outcome?.recordsAccepted, 1)
        let run = try await f.submit(try fSigner.sign(fSigner.payload(chainID: "main", body: .reconcile(ReconcileRequest(date: D)))))
        XCTAssertEqual(run.outcome?.code, 0, run.outcome?.message ?? "")
        // D's cut-off (Docs/reconciliation.md, "Schedule") passed long before this test's
        // clock: the receipts' block ran D automatically (run 1), the bank's and finance's
        // records each reran it (2, 3), and the request supersedes them all (4).
        XCTAssertEqual(run.outcome?.resultKeys.first, "recon/result/20260315/marketing-bank/000004")
        let first = try await m.state("recon/result/20260315/marketing-bank/000001", chain: "main")
        XCTAssertEqual(try ReconciliationResult(serializedBytes: first.value).items.map(\.leftRefs), [["m:m1"], ["m:m2"]], "the automatic run before the bank's records")
        let auto = try await m.state("recon/auto/20260315", chain: "main")
        XCTAssertTrue(auto.found)

        let got = try await m.state("recon/result/20260315/marketing-bank/000004", chain: "main")
        XCTAssertTrue(got.found)
        let result = try ReconciliationResult(serializedBytes: got.value)
        XCTAssertEqual(result.run, 4)
        XCTAssertEqual(result.totals.map(\.status), [.matched, .onlyInMarketing])
        XCTAssertEqual(result.items.map(\.leftRefs), [["m:m2"]])
        let fbState = try await m.state("recon/result/20260315/finance-bank/000004", chain: "main")
        let fb = try ReconciliationResult(serializedBytes: fbState.value)
        XCTAssertEqual(fb.items.map(\.status), [.amountDiff])
        XCTAssertEqual(fb.items.first?.differenceFen, -700)
        for x in [m, b, f] { await x.rpc.close() }
    }
}
