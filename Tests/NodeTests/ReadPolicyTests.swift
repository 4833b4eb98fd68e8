import GridClient
import Identity
import Logging
@testable import Node
import Wire
import XCTest

/// `ReadPolicy` directly, over every role × caller district (none, d1, d2) × chain (district
/// d1, main) × subject. Each test is one clause of DOMAIN.md, "Who may read what":
///
/// > Writes are checked by role and district; so are reads. A customer's personal data
/// > (name, contact number) and account are readable by `marketing` and `admin`, and by the
/// > nodes of the customer's own district; `device` and `collector` see only what their
/// > district's work needs (commands, their own submissions' outcomes); `bank` and
/// > `finance` see reconciliation data; `ops` sees status and aggregates, never personal
/// > data. A certificate of district d2 reads nothing of district d1.
final class ReadPolicyTests: XCTestCase {
    typealias Subject = ReadPolicy.Subject
    static let d1 = ReadPolicy.Chain(id: "d1", kind: .district)
    static let main = ReadPolicy.Chain(id: "main", kind: .main)
    static let districts: [String?] = [nil, "d1", "d2"]

    /// Every subject of a chain read, raw state under keys of each kind.
    static let chainSubjects: [Subject] = [
        .chainInfo, .blockHeaders, .blocks, .transaction, .accounts, .commands, .notices, .blockProof,
        .state(key: "customer/c1"), .state(key: "account/c1"), .state(key: "meter/m1"), .state(key: "receipt/last"),
        .state(key: "district/d1"), .state(key: "anchor/d1/00000000000000000001"), .state(key: "uplink/d1/totals"),
        .state(key: "uplink/d1/account/c1"), .state(key: "parameters/d1/count"), .state(key: "uplink/d2/totals"),
    ]
    /// What carries a customer's personal data or account on a district chain.
    static let personal: [Subject] = [.blocks, .transaction, .accounts, .notices, .blockProof, .state(key: "customer/c1"), .state(key: "account/c1")]

    static func allowed(_ role: Role, _ district: String?, _ chain: ReadPolicy.Chain?, _ subject: Subject) -> Bool {
        ReadPolicy.decide(role: role, district: district, chain: chain, subject: subject) == .allowed
    }

    /// The subjects of `chain` a caller reads (own-submission reads count as reads).
    static func reads(_ role: Role, _ district: String?, _ chain: ReadPolicy.Chain) -> [Subject] {
        chainSubjects.filter { ReadPolicy.isAllowed(ReadPolicy.decide(role: role, district: district, chain: chain, subject: $0)) }
    }

    // "A certificate of district d2 reads nothing of district d1."
    func testACertificateOfD2ReadsNothingOfD1() {
        for role in Role.allCases {
            XCTAssertEqual(Self.reads(role, "d2", Self.d1), [], "\(role)@d2 on d1")
            // Nor d1's keys on the main chain.
            for key in ["district/d1", "anchor/d1", "uplink/d1/totals", "uplink/d1/account/c1", "parameters/d1/count"] {
                XCTAssertFalse(Self.allowed(role, "d2", Self.main, .state(key: key)), "\(role)@d2 reads \(key) on main")
            }
        }
    }

    // "A customer's personal data (name, contact number) and account are readable by
    // marketing and admin, and by the nodes of the customer's own district."
    func testPersonalDataAndAccountsAreMarketingsAdminsAndTheDistrictNodes() {
        for role in Role.allCases {
            for district in Self.districts {
                let entitled = [Role.marketing, .admin].contains(role) && district != "d2" || role == .node && district == "d1"
                for subject in Self.personal {
                    XCTAssertEqual(Self.allowed(role, district, Self.d1, subject), entitled, "\(role)@\(district ?? "none"): \(subject)")
                }
            }
        }
        XCTAssertEqual(Self.reads(.marketing, nil, Self.d1), Self.chainSubjects)
        XCTAssertEqual(Self.reads(.admin, nil, Self.main), Self.chainSubjects)
        XCTAssertEqual(Self.reads(.node, "d1", Self.d1), Self.chainSubjects)
    }

    // "device and collector see only what their district's work needs (commands, their own
    // submissions' outcomes)."
    func testDeviceAndCollectorSeeOnlyTheirDistrictsWork() {
        XCTAssertEqual(Self.reads(.device, "d1", Self.d1), [.chainInfo, .transaction, .commands])
        XCTAssertEqual(Self.reads(.collector, "d1", Self.d1), [.chainInfo, .transaction])
        for role in [Role.device, .collector] {
            XCTAssertEqual(ReadPolicy.decide(role: role, district: "d1", chain: Self.d1, subject: .transaction), .ownSubmissionsOnly)
            XCTAssertEqual(Self.reads(role, nil, Self.d1), [], "\(role) without a district")
            for district in Self.districts {
                XCTAssertEqual(Self.reads(role, district, Self.main), [.chainInfo], "\(role)@\(district ?? "none") on main")
            }
        }
    }

    // "bank and finance see reconciliation data": of the chains' other data, only their progress
    // (and, on the main chain, their own submissions' outcomes).
    func testBankAndFinanceSeeNoMoreThanTheChainsProgress() {
        for role in [Role.bank, .finance] {
            XCTAssertEqual(Self.reads(role, nil, Self.d1), [.chainInfo], "\(role) on d1")
            XCTAssertEqual(Self.reads(role, nil, Self.main), [.chainInfo, .transaction], "\(role) on main")
        }
    }

    // "ops sees status and aggregates, never personal data."
    func testOpsSeesStatusAndAggregatesNeverPersonalData() {
        XCTAssertTrue(Self.allowed(.ops, nil, nil, .nodeStatus))
        XCTAssertEqual(Self.reads(.ops, nil, Self.d1), [.chainInfo, .blockHeaders])
        XCTAssertEqual(Self.reads(.ops, nil, Self.main), [.chainInfo, .blockHeaders, .state(key: "uplink/d1/totals"), .state(key: "uplink/d2/totals")])
        XCTAssertEqual(Self.reads(.ops, "d1", Self.main), [.chainInfo, .blockHeaders, .state(key: "uplink/d1/totals")])
        for role in Role.allCases {
            XCTAssertTrue(Self.allowed(role, "d2", nil, .health))
            XCTAssertEqual(Self.allowed(role, nil, nil, .nodeStatus), [.ops, .admin].contains(role), "\(role): node status")
        }
    }

    // Nodes: what replication, anchoring, proofs and the downlink need.
    func testNodesReadTheirDistrictAndWhatAnchoringNeedsOfTheMainChain() {
        XCTAssertEqual(Self.reads(.node, nil, Self.d1), [], "a main-chain node reads no district")
        XCTAssertEqual(Self.reads(.node, nil, Self.main), Self.chainSubjects)
        XCTAssertEqual(Self.reads(.node, "d1", Self.main), [
            .chainInfo, .blockHeaders, .blocks, .transaction,
            .state(key: "district/d1"), .state(key: "anchor/d1/00000000000000000001"), .state(key: "uplink/d1/totals"),
            .state(key: "uplink/d1/account/c1"), .state(key: "parameters/d1/count"),
        ])
    }

    func testRefusalsNameTheCallerAndBoundCallerText() {
        guard case .denied(let reason) = ReadPolicy.decide(role: .ops, district: nil, chain: Self.d1, subject: .accounts) else {
            return XCTFail("ops reads accounts")
        }
        XCTAssertTrue(reason.contains("role ops of no district"), reason)
        XCTAssertTrue(reason.contains("accounts of chain d1"), reason)
        let long = String(repeating: "x", count: 1000)
        guard case .denied(let other) = ReadPolicy.decide(role: .collector, district: long, chain: ReadPolicy.Chain(id: long, kind: .district), subject: .blocks) else {
            return XCTFail("collector reads blocks")
        }
        XCTAssertLessThan(other.utf8.count, 400, other)
        XCTAssertEqual(ReadPolicy.bounded("a\u{0}b\nc"), "a?b?c")
        XCTAssertEqual(ReadPolicy.bounded(String(repeating: "é", count: 100)).utf8.count, 128 + "…".utf8.count)
    }

    func testMainChainKeysBelongToTheDistrictTheyName() {
        XCTAssertEqual(ReadPolicy.mainKeyDistrict("district/d1"), "d1")
        XCTAssertEqual(ReadPolicy.mainKeyDistrict("anchor/d1"), "d1")
        XCTAssertEqual(ReadPolicy.mainKeyDistrict("anchor/d1/00000000000000000007"), "d1")
        XCTAssertEqual(ReadPolicy.mainKeyDistrict("uplink/d2/account/c1"), "d2")
        XCTAssertEqual(ReadPolicy.mainKeyDistrict("parameters/d1/count"), "d1")
        XCTAssertNil(ReadPolicy.mainKeyDistrict("district/d1/extra"))
        XCTAssertNil(ReadPolicy.mainKeyDistrict("anchor//x"))
        XCTAssertNil(ReadPolicy.mainKeyDistrict("account/c1"))
        XCTAssertTrue(ReadPolicy.isAggregate("uplink/d1/totals"))
        XCTAssertFalse(ReadPolicy.isAggregate("uplink/d1/account/c1"))
        XCTAssertFalse(ReadPolicy.isAggregate("uplink//totals"))
    }

    /// A refusal is logged with peer, method and reason, at most once per peer per interval.
    func testRefusalsAreLoggedOncePerPeerPerInterval() throws {
        let logs = CapturedLogs()
        let gate = ReadGate(logger: logs.logger(), logInterval: .seconds(60))
        let ops = RPCCallContext(peer: PeerIdentity(name: "ops1", role: .ops, serial: "01"), method: GridMethod.FeeControl.getAccount)
        let other = RPCCallContext(peer: PeerIdentity(name: "ops2", role: .ops, serial: "02"), method: GridMethod.FeeControl.getAccount)
        for _ in 0..<5 {
            XCTAssertEqual(gate.refuse(ops, "no").code, .permissionDenied)
        }
        _ = gate.refuse(other, "no")
        let lines = logs.all.filter { $0.contains("read refused") }
        XCTAssertEqual(lines.count, 2, "\(lines)")
        XCTAssertTrue(lines[0].contains("ops:ops1") && lines[0].contains("method=/gridledger.FeeControl/GetAccount") && lines[0].contains("reason=no"), lines[0])
    }

    // DOMAIN.md, "Multi-party reconciliation": "Each party reads its own records and every
    // result; nobody reads another party's raw records beyond what a result names."
    func testEachPartyReadsItsOwnRecordsAndEveryResult() {
        let marketing = ["recon/m/20261201/6222000011112222/r-1", "recon/id/m/r-1", "recon/reversal/r-1/r-2"]
        let icbc = ["recon/b/20261201/6222000011112222/icbc/b-1", "recon/id/b/icbc/b-1", "recon/by-serial/r-1/icbc/b-1"]
        let abc = ["recon/b/20261201/6222000033334444/abc/b-9", "recon/id/b/abc/b-9"]
        let finance = ["recon/f/20261201/6222000011112222/v-1", "recon/id/f/v-1"]
        let results = ["recon/result/20261201/marketing-bank/000001", "recon/latest/20261201/finance-bank"]
        func reads(_ role: Role, _ name: String, _ key: String) -> Bool {
            ReadPolicy.decide(role: role, district: nil, name: name, chain: Self.main, subject: .state(key: key)) == .allowed
        }
        for key in results {
            for (role, name) in [(Role.marketing, "mkt"), (.bank, "icbc"), (.bank, "abc"), (.finance, "fin"), (.admin, "adm")] {
                XCTAssertTrue(reads(role, name, key), "\(role) \(name) reads result \(key)")
            }
            XCTAssertFalse(reads(.ops, "ops1", key), "ops reads aggregates only")
        }
        for key in marketing {
            XCTAssertTrue(reads(.marketing, "mkt", key))
            XCTAssertFalse(reads(.bank, "icbc", key), key)
            XCTAssertFalse(reads(.finance, "fin", key), key)
        }
        for key in icbc {
            XCTAssertTrue(reads(.bank, "icbc", key), key)
            XCTAssertFalse(reads(.bank, "abc", key), "one bank reads another's records: \(key)")
            XCTAssertFalse(reads(.marketing, "mkt", key), key)
            XCTAssertFalse(reads(.finance, "fin", key), key)
        }
        for key in abc { XCTAssertFalse(reads(.bank, "icbc", key), key) }
        for key in finance {
            XCTAssertTrue(reads(.finance, "fin", key), key)
            XCTAssertFalse(reads(.bank, "icbc", key), key)
            XCTAssertFalse(reads(.marketing, "mkt", key), key)
        }
        for key in marketing + icbc + finance { XCTAssertTrue(reads(.admin, "adm", key), "admin operates the chain: \(key)") }
        // Nothing else of the chains but progress, headers and their own submissions.
        for role in [Role.bank, .finance] {
            XCTAssertEqual(ReadPolicy.decide(role: role, district: nil, name: "x", chain: Self.main, subject: .transaction), .ownSubmissionsOnly)
            for subject in [Subject.blocks, .accounts, .blockProof, .state(key: "customer/c1"), .state(key: "uplink/d1/totals")] {
                XCTAssertFalse(Self.allowed(role, nil, Self.main, subject), "\(role): \(subject)")
            }
            XCTAssertEqual(Self.reads(role, nil, Self.d1), [.chainInfo], "\(role) on a district chain")
        }
    }
}
