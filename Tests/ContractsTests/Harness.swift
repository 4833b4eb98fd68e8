import Foundation
import GridProto
import XCTest

@testable import Contracts

/// UTC ms of a civil UTC time (Foundation as an independent oracle for the contract's own
/// calendar arithmetic).
func utcMs(_ y: Int, _ m: Int, _ d: Int, _ h: Int = 0, _ min: Int = 0) -> Int64 {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let date = calendar.date(from: DateComponents(year: y, month: m, day: d, hour: h, minute: min))!
    return Int64(date.timeIntervalSince1970) * 1000
}

/// UTC ms of a +08:00 local time.
func cst(_ y: Int, _ m: Int, _ d: Int, _ h: Int = 0, _ min: Int = 0) -> Int64 {
    utcMs(y, m, d, h, min) - 8 * 3_600_000
}

let minute: Int64 = 60_000
let interval: Int64 = 15 * minute

/// A no-TOU reading.
func reading(_ meter: String, _ ts: Int64, _ total: UInt64) -> Reading {
    Reading(meterId: meter, timestampMs: ts, energyTotal: total)
}

/// A TOU reading (total = sum of the four unless given).
func touReading(_ meter: String, _ ts: Int64, _ tou: [UInt64], total: UInt64? = nil) -> Reading {
    Reading(
        meterId: meter, timestampMs: ts, energyTotal: total ?? tou.reduce(0, +),
        energySharp: tou[0], energyPeak: tou[1], energyFlat: tou[2], energyValley: tou[3]
    )
}

/// A single-period tariff: every hour in period 0 at `price` (10,000 = 1 CNY/kWh, so one
/// 0.01 kWh unit costs exactly 1 fen), +08:00, monthly.
func flatTariff(_ id: String = "flat", price: Int64 = 10_000, cycle: BillingCycle = .monthly,
                limits: [UInt64] = [], surcharges: [Int64] = [], fixed: Int64 = 0) -> Tariff {
    Tariff(
        tariffId: id, utcOffsetMinutes: 480, periods: [TariffPeriod(name: "flat", basePrice: price)],
        cycle: cycle, tierLimits: limits, tierSurcharges: surcharges, fixedChargeFen: fixed
    )
}

func customer(_ account: String, meter: String, tariff: String = "flat", opening: Int64 = 1_000_000,
              thresholds: String = "", protected: Bool = false) -> CustomerArchive {
    CustomerArchive(
        account: account, meterId: meter, tariffId: tariff, protectedSupply: protected, contact: "phone-\(account)",
        thresholdsId: thresholds, openingBalanceFen: opening
    )
}

/// Drives the contract like a block executor: one block per call, expiry at block start.
struct Harness {
    static let district = "d1"
    var state = InMemoryContractState()
    var height: UInt64 = 0
    var now: Int64 = utcMs(2025, 1, 1)
    var lastExpired: [String] = []

    /// `spikeChecks` false (the default) turns the spike check off, so that large test
    /// consumptions are not held as spikes: a factor of 10^6 written straight into the
    /// activation record (the contract refuses factors above 1,000 from a parameter). Tests
    /// of the spike rule pass true for the default parameters.
    init(spikeChecks: Bool = false) {
        if !spikeChecks {
            var record = ActivationRecord()
            record.add(.init(height: 0, version: 1, vee: VeeParameters(spikeFactor: 1_000_000)), currentHeight: 0)
            record.store(&state)
        }
    }

    var context: BlockContext { BlockContext(district: Harness.district, height: height, timestampMs: now) }

    mutating func nextBlock(at ts: Int64) throws {
        height += 1
        now = max(now, ts)
        lastExpired = try FeeControl.expireCommands(context: context, state: &state)
    }

    @discardableResult
    mutating func param(_ body: DistrictParameter.Body, at ts: Int64? = nil) throws -> ContractEffects {
        try nextBlock(at: ts ?? now)
        return try FeeControl.applyParameter(DistrictParameter(district: Harness.district, body: body), context: context, state: &state)
    }

    /// Applies readings in a new block timed just after the latest reading (or at `blockTs`).
    @discardableResult
    mutating func read(_ readings: [Reading], blockTs: Int64? = nil) throws -> ContractEffects {
        try nextBlock(at: blockTs ?? ((readings.map(\.timestampMs).max() ?? now) + 1000))
        let batch = ReadingBatch(district: Harness.district, batchId: "b\(height)", readings: readings)
        return try FeeControl.applyReadings(batch, positions: Array(readings.indices), context: context, state: &state)
    }

    mutating func ack(_ id: String, success: Bool = true, at ts: Int64? = nil) throws -> ContractEffects {
        try nextBlock(at: ts ?? now)
        return try FeeControl.acknowledge(CommandAck(commandId: id, success: success, detail: "ok"), context: context, state: &state)
    }

    func account(_ id: String) throws -> Account {
        try XCTUnwrap(try Account(serializedBytes: XCTUnwrap(state.entries[ContractKeys.account(id)])))
    }

    func command(_ id: String) throws -> ControlCommand {
        try ControlCommand(serializedBytes: XCTUnwrap(state.entries[ContractKeys.command(id)]))
    }

    func notice(_ id: String) throws -> Notice {
        try Notice(serializedBytes: XCTUnwrap(state.entries[ContractKeys.notice(id)]))
    }

    func commandKinds(_ effects: ContractEffects) throws -> [CommandKind] {
        try effects.commandIDs.map { try command($0).kind }
    }

    func noticeKinds(_ effects: ContractEffects) throws -> [NoticeKind] {
        try effects.noticeIDs.map { try notice($0).kind }
    }
}

func flags(_ e: ContractEffects) -> [ReadingFlag] { e.readingResults.map(\.flag) }
