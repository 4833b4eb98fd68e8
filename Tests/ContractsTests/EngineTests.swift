import GridBase
import GridProto
import XCTest

@testable import Contracts

/// Parameters, activation and replica determinism.
final class EngineTests: XCTestCase {
    /// Accounts are created by the customer archive with the opening balance, applied once;
    /// readings of unknown meters or customers without a tariff are stored, not billed.
    func testArchiveCreatesAccountAndUnbilledReadingsAreFlagged() throws {
        var h = Harness()
        let t = cst(2025, 1, 8)
        var e = try h.read([reading("m1", t, 0)])
        XCTAssertEqual(flags(e), [.noCustomer])
        try h.param(.customer(customer("a1", meter: "m1", tariff: "later", opening: 700)))
        XCTAssertEqual(try h.account("a1").balanceFen, 700)
        XCTAssertEqual(h.state.entries[ContractKeys.meterAccount("m1")], Array("a1".utf8))
        e = try h.read([reading("m1", t + interval, 10), reading("m9", t + interval, 10)])
        XCTAssertEqual(flags(e), [.noTariff, .noCustomer])
        XCTAssertEqual(e.readingsBilled, 0)
        XCTAssertNil(h.state.entries[ContractKeys.vee("m1")])
        try h.param(.tariff(flatTariff("later")))
        try h.param(.customer(customer("a1", meter: "m1", tariff: "later", opening: 999_999)))
        XCTAssertEqual(try h.account("a1").balanceFen, 700)
        try h.read([reading("m1", t + 2 * interval, 20)])
        e = try h.read([reading("m1", t + 3 * interval, 25)])
        XCTAssertEqual(e.chargedFen, 5)
        // A meter cannot belong to two accounts; ids with '/' are refused.
        XCTAssertThrowsError(try h.param(.customer(customer("a2", meter: "m1")))) { XCTAssertEqual(($0 as? ContractRejection)?.code, .alreadyExists) }
        XCTAssertThrowsError(try h.param(.customer(customer("a/3", meter: "m3")))) { XCTAssertEqual(($0 as? ContractRejection)?.code, .invalidArgument) }
        XCTAssertThrowsError(try FeeControl.applyParameter(DistrictParameter(district: "other", body: .tariff(flatTariff())), context: h.context, state: &h.state)) {
            XCTAssertEqual(($0 as? ContractRejection)?.code, .invalidArgument)
        }
    }

    /// Rule: contract versions and parameters switch at `activate_at_height` on every replica:
    /// before it the old parameters apply, at and after it the new ones.
    func testActivationSwitchesAtTheGivenHeight() throws {
        var h = Harness(spikeChecks: true)
        try h.param(.tariff(flatTariff()))
        try h.param(.customer(customer("a1", meter: "m1")))
        let t = cst(2025, 1, 8, 3)
        try h.read([touReading("m1", t, [0, 0, 0, 10])])
        let switchAt = h.height + 3
        try h.param(.activation(ContractActivation(contract: "fee-control", version: 1, activateAtHeight: switchAt,
                                                   vee: VeeParameters(sumTolerance: 20))))
        XCTAssertEqual(h.height, switchAt - 2)
        // Height switchAt − 1: the default tolerance (2) still applies.
        var e = try h.read([touReading("m1", t + interval, [0, 0, 0, 20], total: 30)])
        XCTAssertEqual(h.height, switchAt - 1)
        XCTAssertEqual(flags(e), [.sumMismatch])
        // Height switchAt: tolerance 20.
        e = try h.read([touReading("m1", t + 2 * interval, [0, 0, 0, 30], total: 40)])
        XCTAssertEqual(h.height, switchAt)
        XCTAssertEqual(flags(e), [])
        // Consumption is the sum of the TOU deltas (10 → 30: 20), not the total's (10 → 40).
        XCTAssertEqual(e.chargedFen, 20)
        XCTAssertThrowsError(try h.param(.activation(ContractActivation(contract: "fee-control", version: 2, activateAtHeight: 1)))) {
            XCTAssertEqual(($0 as? ContractRejection)?.code, .invalidArgument)
        }
        XCTAssertThrowsError(try h.param(.activation(ContractActivation(contract: "line-loss", version: 1)))) {
            XCTAssertEqual(($0 as? ContractRejection)?.code, .invalidArgument)
        }
        // Superseded activations are pruned; the one in effect and future ones stay.
        var record = ActivationRecord()
        record.add(.init(height: 5, version: 1, vee: nil), currentHeight: 1)
        record.add(.init(height: 9, version: 1, vee: VeeParameters(spikeFactor: 7)), currentHeight: 1)
        XCTAssertEqual(record.settings(at: 8).spikeFactor, 5)
        XCTAssertEqual(record.settings(at: 9).spikeFactor, 7)
        record.add(.init(height: 20, version: 1, vee: nil), currentHeight: 12)
        XCTAssertEqual(record.entries.map(\.height), [9, 20])
    }

    /// A seeded scenario: parameters, readings (gaps, late, spikes), payments and
    /// acknowledgements over many blocks.
    private func scenario(seed: UInt64, into state: inout InMemoryContractState) throws -> [ContractEffects] {
        var rng = SplitMix64(seed: seed)
        var out: [ContractEffects] = []
        var height: UInt64 = 0
        var now = cst(2025, 1, 30)
        func context() -> BlockContext { BlockContext(district: "d1", height: height, timestampMs: now) }
        func block() throws {
            height += 1
            now += interval
            out.append(ContractEffects(commandIDs: try FeeControl.expireCommands(context: context(), state: &state)))
        }
        func param(_ body: DistrictParameter.Body) throws {
            do {
                out.append(try FeeControl.applyParameter(DistrictParameter(district: "d1", body: body), context: context(), state: &state))
            } catch let r as ContractRejection {
                out.append(ContractEffects(readingResults: [ReadingResult(position: r.code.rawValue, detail: r.reason)]))
            }
        }
        try block()
        try param(.tariff(flatTariff(price: 8_000, limits: [3_000], surcharges: [1_000], fixed: 300)))
        try param(.thresholds(PrepaidTests.thresholds))
        let meters = 12
        for m in 0..<meters {
            try param(.customer(customer("a\(m)", meter: "m\(m)", opening: Int64(rng.next() % 8_000), protected: m == 3)))
        }
        var registers = (0..<meters).map { _ in rng.next() % 10_000 }
        var serial = 0
        for _ in 0..<150 {
            try block()
            var batch = ReadingBatch(district: "d1", batchId: "b\(height)")
            for m in 0..<meters where rng.next() % 5 != 0 {
                registers[m] += rng.next() % (rng.next() % 10 == 0 ? 900 : 60)
                let late = rng.next() % 15 == 0
                batch.readings.append(reading("m\(m)", now - (late ? 3 * interval : 0), registers[m]))
            }
            let positions = batch.readings.indices.filter { _ in rng.next() % 9 != 0 }
            out.append(try FeeControl.applyReadings(batch, positions: positions, context: context(), state: &state))
            if rng.next() % 4 == 0 {
                serial += 1
                try param(.payment(Payment(account: "a\(rng.next() % UInt64(meters))", amountFen: Int64(1 + rng.next() % 6_000),
                                           serial: "s\(serial % 20)", paidMs: now)))
            }
            if let pending = try Commands.loadPending(state).first, rng.next() % 3 == 0 {
                do {
                    out.append(try FeeControl.acknowledge(CommandAck(commandId: pending.id, success: rng.next() % 4 != 0),
                                                          context: context(), state: &state))
                } catch let r as ContractRejection {
                    out.append(ContractEffects(readingResults: [ReadingResult(position: r.code.rawValue, detail: r.reason)]))
                }
            }
        }
        return out
    }

    /// Rule (STYLE.md 13, "apply must be deterministic"): the same sequence applied to three
    /// independent states gives byte-identical states and identical effects.
    func testReplayOnThreeReplicasIsByteIdentical() throws {
        for seed: UInt64 in [7, 42, 2025] {
            var replicas = [InMemoryContractState(), InMemoryContractState(), InMemoryContractState()]
            var effects: [[ContractEffects]] = []
            for i in replicas.indices { effects.append(try scenario(seed: seed, into: &replicas[i])) }
            let canonical = replicas.map { $0.sortedEntries().map { Array($0.key.utf8) + [0] + $0.value } }
            XCTAssertEqual(canonical[0], canonical[1], "seed \(seed)")
            XCTAssertEqual(canonical[0], canonical[2], "seed \(seed)")
            XCTAssertEqual(effects[0], effects[1])
            XCTAssertEqual(effects[0], effects[2])
            // The scenario exercised the machinery, so the comparison means something.
            let all = effects[0]
            XCTAssertGreaterThan(all.reduce(0) { $0 + $1.commandIDs.count }, 5, "seed \(seed)")
            XCTAssertGreaterThan(all.reduce(0) { $0 + $1.noticeIDs.count }, 5, "seed \(seed)")
            XCTAssertGreaterThan(all.reduce(0) { $0 + $1.chargedFen }, 10_000, "seed \(seed)")
            XCTAssertTrue(all.contains { $0.readingResults.contains { $0.flag == .outOfOrder || $0.flag == .replacesEstimate } })
            XCTAssertTrue(all.contains { $0.readingResults.contains { $0.position == 6 && $0.flag == .valid } }, "a duplicate serial was refused")
            XCTAssertGreaterThan(replicas[0].keys(withPrefix: ContractKeys.estimatePrefix).count, 0)
            // A different seed gives a different state (the comparison is not vacuous).
            var other = InMemoryContractState()
            _ = try scenario(seed: seed + 1, into: &other)
            XCTAssertNotEqual(other.sortedEntries().map(\.key), replicas[0].sortedEntries().map(\.key))
        }
    }

}
