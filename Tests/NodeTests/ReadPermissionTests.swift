@testable import Chain
import Contracts
import Foundation
import GridClient
import GridProto
import Identity
import NIOCore
@testable import Node
import Wire
import XCTest

/// DOMAIN.md, "Places and parties", "Who may read what":
///
/// > Writes are checked by role and district; so are reads. A customer's personal data
/// > (name, contact number) and account are readable by `marketing` and `admin`, and by the
/// > nodes of the customer's own district; `device` and `collector` see only what their
/// > district's work needs (commands, their own submissions' outcomes); `bank` and
/// > `finance` see reconciliation data; `ops` sees status and aggregates, never personal
/// > data. A certificate of district d2 reads nothing of district d1.
///
/// The table of Docs/permissions.md, through real nodes: every role, with a certificate of
/// district d1, of district d2 and of none, calls every read RPC of district d1's node and
/// of the main chain's node. An allowed read succeeds or fails with anything but
/// PERMISSION_DENIED; a refused one is PERMISSION_DENIED, and its message holds none of the
/// customer's data.
final class ReadPermissionTests: XCTestCase {
    /// The customer whose data the refusals must not leak.
    static let account = "c1"
    static let contact = "13800000000"

    /// The reads of the table: on district d1's node, then on the main chain's node.
    enum Read: String, CaseIterable {
        case d1ChainInfo, d1BlockHeaders, d1Block, d1BlockStream, d1CollectorTransaction
        case d1CustomerState, d1AccountHistory, d1Account, d1AccountList
        case d1CommandList, d1CommandStream, d1NoticeStream, d1Proof, d1NodeStatus, d1Health
        case mainChainInfo, mainBlockHeaders, mainBlock, mainBlockStream, mainCustomerTransaction
        case mainD1Totals, mainD1Registration, mainD1UplinkAccount, mainD1AnchorHistory, mainD1DistrictResults
        case mainAccount, mainNodeStatus, mainHealth

        var onMain: Bool { rawValue.hasPrefix("main") }
    }

    /// A certificate holder: role, district (nil = none), and a name for messages.
    struct Reader: Hashable, CustomStringConvertible {
        var role: Role
        var district: String?
        /// The collector of d1 that submitted the transaction read (its own submission).
        var isSubmitter = false
        var description: String { "\(role.rawValue)@\(district ?? "none")\(isSubmitter ? " (submitter)" : "")" }
    }

    /// What each reader may read, as Docs/permissions.md states it.
    static func allowed(_ r: Reader) -> Set<Read> {
        let health: Set<Read> = [.d1Health, .mainHealth]
        let status: Set<Read> = [.d1NodeStatus, .mainNodeStatus]
        let d1Everything = Set(Read.allCases.filter { !$0.onMain }).subtracting([.d1NodeStatus])
        let mainEverything = Set(Read.allCases.filter(\.onMain)).subtracting([.mainNodeStatus])
        let mainD1Keys: Set<Read> = [.mainD1Totals, .mainD1Registration, .mainD1UplinkAccount, .mainD1AnchorHistory, .mainD1DistrictResults]
        let mainBlocks: Set<Read> = [.mainChainInfo, .mainBlockHeaders, .mainBlock, .mainBlockStream, .mainCustomerTransaction]
        // A certificate of district d2 reads nothing of district d1: not its chain, not its keys.
        let ofD2 = r.district == "d2"
        switch r.role {
        case .admin, .marketing:
            // Customers' personal data and accounts: marketing and admin.
            let reads = (ofD2 ? [] : d1Everything).union(mainEverything.subtracting(ofD2 ? mainD1Keys : []))
            return reads.union(health).union(r.role == .admin ? status : [])
        case .node:
            // ... and the nodes of the customer's own district; nodes read the main chain
            // for anchoring and the downlink (their own district's keys only).
            switch r.district {
            case nil: return mainEverything.union(health)
            case "d1": return d1Everything.union(mainBlocks).union(mainD1Keys).union(health)
            default: return mainBlocks.union(health)
            }
        case .collector, .device:
            // Only what their district's work needs: commands, their own submissions' outcomes.
            guard r.district == "d1" else { return health.union([.mainChainInfo]) }
            var reads = health.union([.d1ChainInfo, .mainChainInfo])
            if r.role == .device { reads.formUnion([.d1CommandList, .d1CommandStream]) }
            if r.isSubmitter { reads.insert(.d1CollectorTransaction) }
            return reads
        case .ops:
            // Status and aggregates, never personal data.
            let aggregates: Set<Read> = ofD2 ? [] : [.mainD1Totals]
            return health.union(status).union([.mainChainInfo, .mainBlockHeaders]).union(aggregates)
                .union(ofD2 ? [] : [.d1ChainInfo, .d1BlockHeaders])
        case .bank, .finance:
            // Reconciliation data (none on the chains yet): the chains' progress only.
            return health.union([.mainChainInfo]).union(ofD2 ? [] : [.d1ChainInfo])
        }
    }

    func testEveryRoleAndDistrictAgainstEveryReadRPC() async throws {
        let chains = try await MainAndDistrict(anchorEveryBlocks: 2, anchorEveryMs: 100)
        addTeardownBlock { await chains.shutdown() }

        // Marketing onboards customer c1 of d1 on the main chain; the downlink brings it.
        let marketing = try chains.pki.issue(.marketing, "mkt-setup")
        let marketer = try TransactionSigner(certificatePath: marketing.cert, keyPath: marketing.key)
        let mainMarketing = try await chains.connect(chains.mainAddress, marketing)
        var customerTx: [UInt8] = []
        var onboarded: UInt64 = 0
        for body: DistrictParameter.Body in [
            .tariff(FeeControlEndToEndTests.flatTariff()),
            .thresholds(FeeControlThresholds(thresholdsId: "", alarm1Fen: 1000, alarm2Fen: 500, overdraftLimitFen: 0, reconnectAllowedFen: 100,
                                             directClose: true, commandValidMs: 3_600_000, gridWorkerContact: "13900000000")),
            .customer(CustomerArchive(account: Self.account, meterId: "m1", phase: "A", tariffId: "flat", contact: Self.contact, openingBalanceFen: 2000)),
        ] {
            let signed = try marketer.sign(marketer.payload(chainID: "main", body: .parameter(DistrictParameter(district: "d1", body: body))))
            let r = try await mainMarketing.submit(signed)
            XCTAssertEqual(r.outcome?.code, 0, r.outcome?.message ?? "")
            customerTx = TransactionSigner.transactionID(signed)
            onboarded = r.location!.height
        }
        _ = try await chains.waitDistrict("the customer reaches d1") { $0.downlinkMainHeight >= onboarded }
        // The collector of d1 submits readings: its own submission.
        let submitter = try await chains.connect(chains.districtAddress, chains.collector)
        let start = (Int64(Date().timeIntervalSince1970 * 1000) / 900_000 - 10) * 900_000
        let batch = try chains.collectorSigner.sign(chains.collectorSigner.readingsPayload(
            chainID: "d1", batchID: "b1", readings: [Reading(meterId: "m1", timestampMs: start, energyTotal: 100_000, energyFlat: 100_000)]))
        _ = try await submitter.submitReadings(batch)
        let collectorTx = TransactionSigner.transactionID(batch)
        _ = try await chains.waitDistrict("anchored") { $0.anchoredHeight >= 1 }
        // The data exists: what the refusals below must not reveal.
        let districtMarketing = try await chains.connect(chains.districtAddress, marketing)
        let seen = try await districtMarketing.account(Self.account, chain: "d1")
        XCTAssertEqual(seen.customer?.contact, Self.contact)

        // Every role with a certificate of d1, of d2 and of none; plus a second collector of
        // d1 (not the submitter) and the submitter itself.
        var readers: [(Reader, ChainClient, ChainClient)] = []
        for role in Role.allCases {
            for district in [nil, "d1", "d2"] as [String?] {
                let name = "\(role.rawValue)-\(district ?? "none")"
                let cert = try chains.pki.issue(role, name, district: district)
                readers.append((Reader(role: role, district: district),
                                try await chains.connect(chains.districtAddress, cert), try await chains.connect(chains.mainAddress, cert)))
            }
        }
        readers.append((Reader(role: .collector, district: "d1", isSubmitter: true),
                        submitter, try await chains.connect(chains.mainAddress, chains.collector)))

        let customerTxID = customerTx
        let results = try await withThrowingTaskGroup(of: (Reader, [Read: RPCError?]).self) { group in
            for (reader, district, main) in readers {
                group.addTask {
                    var outcomes: [Read: RPCError?] = [:]
                    for read in Read.allCases {
                        outcomes[read] = await Self.call(read, district: district, main: main, collectorTx: collectorTx, customerTx: customerTxID)
                    }
                    return (reader, outcomes)
                }
            }
            var all: [(Reader, [Read: RPCError?])] = []
            for try await r in group { all.append(r) }
            return all
        }
        XCTAssertEqual(results.count, readers.count)
        let data = try NSRegularExpression(pattern: "\\b\(Self.account)\\b|\(Self.contact)|m1")
        for (reader, outcomes) in results {
            let expected = Self.allowed(reader)
            for read in Read.allCases {
                let error = outcomes[read] ?? nil
                if expected.contains(read) {
                    XCTAssertNotEqual(error?.code, .permissionDenied, "\(reader) should read \(read): \(error.map { "\($0)" } ?? "")")
                } else {
                    XCTAssertEqual(error?.code, .permissionDenied, "\(reader) should not read \(read); got \(error.map { "\($0)" } ?? "OK")")
                    if let message = error?.message {
                        XCTAssertNil(data.firstMatch(in: message, range: NSRange(message.startIndex..., in: message)),
                                     "\(reader), \(read): the refusal leaks data: \(message)")
                        XCTAssertTrue(message.contains("role \(reader.role.rawValue)"), "\(reader), \(read): \(message)")
                    }
                }
            }
        }

        // A refusal is the same whether the account exists or not (permission first).
        let ops = readers.first { $0.0 == Reader(role: .ops, district: nil) }!.1
        let known = await Self.status { _ = try await ops.account(Self.account, chain: "d1") }
        let unknown = await Self.status { _ = try await ops.account("nobody", chain: "d1") }
        XCTAssertEqual(known?.code, .permissionDenied)
        XCTAssertEqual(known, unknown)

        for (_, district, main) in readers {
            await district.rpc.close()
            await main.rpc.close()
        }
        await mainMarketing.rpc.close()
        await districtMarketing.rpc.close()
    }

    /// One read; nil when it succeeded.
    static func call(_ read: Read, district d: ChainClient, main m: ChainClient, collectorTx: [UInt8], customerTx: [UInt8]) async -> RPCError? {
        await status {
            switch read {
            case .d1ChainInfo: _ = try await d.chainInfo(chain: "d1")
            case .d1BlockHeaders: _ = try await d.rpc.unary(GridMethod.Query.listBlocks, ListBlocksRequest(fromHeight: 0, chainId: "d1"), as: ListBlocksResponse.self)
            case .d1Block: _ = try await d.block(at: 1, chain: "d1")
            case .d1BlockStream: try await firstOf(d.subscribeBlocks(from: 0, chain: "d1"))
            case .d1CollectorTransaction: _ = try await d.transaction(collectorTx, chain: "d1")
            case .d1CustomerState: _ = try await d.state("customer/\(account)", chain: "d1")
            case .d1AccountHistory: _ = try await d.history("account/\(account)", chain: "d1")
            case .d1Account: _ = try await d.account(account, chain: "d1")
            case .d1AccountList: _ = try await d.accounts(anyWarning: true, chain: "d1")
            case .d1CommandList: _ = try await d.commands(chain: "d1")
            case .d1CommandStream:
                try await firstOf(d.rpc.serverStreaming(GridMethod.Control.subscribeCommands, SubscribeCommandsRequest(chainId: "d1"), as: ControlCommand.self, timeout: .milliseconds(300)))
            case .d1NoticeStream:
                try await firstOf(d.rpc.serverStreaming(GridMethod.Notices.subscribe, SubscribeNoticesRequest(chainId: "d1", fromHeight: 1), as: Notice.self, timeout: .milliseconds(300)))
            case .d1Proof: _ = try await d.proveBlock(1, chain: "d1")
            case .d1NodeStatus: _ = try await d.rpc.unary(GridMethod.Ops.getStatus, GetStatusRequest(), as: GetStatusResponse.self)
            case .d1Health: _ = try await d.rpc.unary(GridMethod.Health.check, HealthCheckRequest(service: ""), as: HealthCheckResponse.self)
            case .mainChainInfo: _ = try await m.chainInfo(chain: "main")
            case .mainBlockHeaders: _ = try await m.rpc.unary(GridMethod.Query.listBlocks, ListBlocksRequest(fromHeight: 0, chainId: "main"), as: ListBlocksResponse.self)
            case .mainBlock: _ = try await m.block(at: 1, chain: "main")
            case .mainBlockStream: try await firstOf(m.subscribeBlocks(from: 0, chain: "main"))
            case .mainCustomerTransaction: _ = try await m.transaction(customerTx, chain: "main")
            case .mainD1Totals: _ = try await m.state(AnchorKeys.uplinkTotals("d1"), chain: "main")
            case .mainD1Registration: _ = try await m.state(AnchorKeys.district("d1"), chain: "main")
            case .mainD1UplinkAccount: _ = try await m.state(AnchorKeys.uplinkAccount("d1", account), chain: "main")
            case .mainD1AnchorHistory: _ = try await m.history(AnchorKeys.lastAnchor("d1"), chain: "main")
            case .mainD1DistrictResults: _ = try await m.districtResults("d1", chain: "main")
            case .mainAccount: _ = try await m.account(account, chain: "main")
            case .mainNodeStatus: _ = try await m.rpc.unary(GridMethod.Ops.getStatus, GetStatusRequest(), as: GetStatusResponse.self)
            case .mainHealth: _ = try await m.rpc.unary(GridMethod.Health.check, HealthCheckRequest(service: ""), as: HealthCheckResponse.self)
            }
        }
    }

    /// Waits for a stream's first response (an allowed stream may also end at its deadline).
    static func firstOf<M: ProtoMessage>(_ stream: ResponseStream<M>) async throws {
        for try await _ in stream { return }
    }

    static func status(_ body: () async throws -> Void) async -> RPCError? {
        do {
            try await body()
            return nil
        } catch let error as RPCError {
            return error
        } catch {
            return RPCError(.unknown, "\(error)")
        }
    }
}
