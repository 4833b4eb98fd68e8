import Contracts
import GridProto

/// Bills readings through the contract engine alone, over an in-memory state: the cost of
/// the contracts without storage, consensus or network (`gridnode bench contracts`).
///
/// The only place in this target that reads a clock (`ContinuousClock`), and only to time
/// the run; the contracts themselves never do.
public enum ContractsBenchmark {
    /// Creates `accounts` customers on a two-tier TOU tariff with thresholds, then applies
    /// `readingsPerAccount` rounds of 15-minute readings (one batch per round, one block per
    /// round). Returns the number of readings applied and the seconds it took (setup excluded).
    public static func run(accounts: Int, readingsPerAccount: Int) -> (readings: Int, seconds: Double) {
        let district = "bench"
        var state = InMemoryContractState()
        let start: Int64 = 1_735_660_800_000 // 2024-12-31T16:00Z = 2025-01-01 00:00 +08:00
        let interval: Int64 = 900_000
        var schedule = [UInt8](repeating: 2, count: 288)
        for month in 0..<12 {
            for hour in 0..<24 {
                schedule[month * 24 + hour] = hour < 8 ? 3 : (hour >= 18 && hour < 21 ? 0 : (hour >= 8 && hour < 12 ? 1 : 2))
            }
        }
        let tariff = Tariff(
            tariffId: "t", utcOffsetMinutes: 480,
            periods: [
                TariffPeriod(name: "sharp", basePrice: 9000), TariffPeriod(name: "peak", basePrice: 7000),
                TariffPeriod(name: "flat", basePrice: 5000), TariffPeriod(name: "valley", basePrice: 3000),
            ],
            weekdaySchedule: schedule, weekendSchedule: schedule, cycle: .monthly,
            tierLimits: [24_000, 40_000], tierSurcharges: [500, 3000], fixedChargeFen: 0
        )
        let thresholds = FeeControlThresholds(
            alarm1Fen: 5000, alarm2Fen: 1000, overdraftLimitFen: 2000, reconnectAllowedFen: 0,
            commandValidMs: 3_600_000, gridWorkerContact: "worker"
        )
        var setup = BlockContext(district: district, height: 1, timestampMs: start)
        do {
            _ = try FeeControl.applyParameter(.init(district: district, body: .tariff(tariff)), context: setup, state: &state)
            _ = try FeeControl.applyParameter(.init(district: district, body: .thresholds(thresholds)), context: setup, state: &state)
            for a in 0..<accounts {
                let customer = CustomerArchive(
                    account: "acct\(a)", meterId: "m\(a)", tariffId: "t", contact: "p\(a)", openingBalanceFen: 20_000
                )
                _ = try FeeControl.applyParameter(.init(district: district, body: .customer(customer)), context: setup, state: &state)
            }
        } catch {
            return (0, 0)
        }
        var batches: [ReadingBatch] = []
        for round in 0..<readingsPerAccount {
            var batch = ReadingBatch(district: district, batchId: "b\(round)")
            for a in 0..<accounts {
                // 0.04-0.11 kWh per interval, varying by account and round; TOU registers
                // advance in the flat register only.
                let base = UInt64(a * 1000)
                let total = base + UInt64(round) * UInt64(4 + (a + round) % 8)
                batch.readings.append(Reading(
                    meterId: "m\(a)", timestampMs: start + Int64(round) * interval,
                    energyTotal: total, energyFlat: total
                ))
            }
            batches.append(batch)
        }
        let clock = ContinuousClock()
        let began = clock.now
        var applied = 0
        for (round, batch) in batches.enumerated() {
            setup = BlockContext(district: district, height: UInt64(2 + round), timestampMs: start + Int64(round) * interval + 1000)
            do {
                _ = try FeeControl.expireCommands(context: setup, state: &state)
                _ = try FeeControl.applyReadings(batch, positions: Array(batch.readings.indices), context: setup, state: &state)
                applied += batch.readings.count
            } catch {
                break
            }
        }
        let elapsed = clock.now - began
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return (applied, seconds)
    }
}
