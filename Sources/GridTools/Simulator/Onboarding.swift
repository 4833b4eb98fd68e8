import Node
import Foundation
import GridBase
import GridProto
import Wire

/// The simulated marketing system of `gridnode simulate --main`: it puts the simulated
/// meters' customers on the main chain (tariff, fee-control thresholds, one prepaid account
/// per customer meter) so that the districts' contracts bill them, and later tops up the
/// accounts the districts have disconnected (payments through the main chain).
///
/// Everything is seeded: the same fleet gives the same archive.
struct Onboarding: Sendable {
    static let tariffID = "cn-residential-tou"

    /// The China pattern of DOMAIN.md: four TOU periods on MeterFleet's hour table (the
    /// meters' TOU registers follow it), monthly tiers at 240 and 400 kWh adding 0.05 and
    /// 0.30 CNY/kWh.
    static func tariff() -> Tariff {
        let periods: [MeterFleet.TOUPeriod] = [.sharp, .peak, .flat, .valley]
        var day = [UInt8](repeating: 0, count: 24)
        for hour in 0..<24 {
            day[hour] = UInt8(periods.firstIndex(of: MeterFleet.touPeriod(localHour: hour))!)
        }
        let schedule = Array((0..<12).map { _ in day }.joined())
        return Tariff(
            tariffId: tariffID, utcOffsetMinutes: 480,
            periods: [
                TariffPeriod(name: "sharp", basePrice: 9_000), TariffPeriod(name: "peak", basePrice: 7_500),
                TariffPeriod(name: "flat", basePrice: 5_500), TariffPeriod(name: "valley", basePrice: 3_500),
            ],
            weekdaySchedule: schedule, weekendSchedule: schedule, cycle: .monthly,
            tierLimits: [24_000, 40_000], tierSurcharges: [500, 3_000], fixedChargeFen: 0)
    }

    /// District default thresholds: warn at 10 and 5 CNY, cut at 2 CNY of overdraft,
    /// reconnect once the balance is positive (allow-close: the customer presses the button).
    static func thresholds(gridWorker: String) -> FeeControlThresholds {
        FeeControlThresholds(
            thresholdsId: "", alarm1Fen: 1_000, alarm2Fen: 500, overdraftLimitFen: 200, reconnectAllowedFen: 0,
            directClose: false, commandValidMs: 3_600_000, gridWorkerContact: gridWorker)
    }

    /// One prepaid customer per customer meter: opening balances from 3 to 60 CNY (seeded),
    /// every 25th customer on protected supply.
    static func customers(_ meters: [MeterFleet.Meter], seed: UInt64) -> [CustomerArchive] {
        var rng = SplitMix64(seed: seed ^ 0x0B0A_2D11)
        return meters.filter { !$0.isSummary }.map { meter in
            CustomerArchive(
                account: "acct-" + meter.id, meterId: meter.id, phase: meter.phase.rawValue,
                tariffId: tariffID, protectedSupply: meter.number % 25 == 0,
                contact: "139" + String(format: "%08d", meter.number), openingBalanceFen: Int64(300 + rng.next() % 5_700))
        }
    }

    /// The parameters of one district, in the order marketing sends them.
    static func parameters(district: String, meters: [MeterFleet.Meter], seed: UInt64) -> [DistrictParameter] {
        var out = [
            DistrictParameter(district: district, body: .tariff(tariff())),
            DistrictParameter(district: district, body: .thresholds(thresholds(gridWorker: "grid-worker-\(district)"))),
        ]
        out += customers(meters.filter { $0.district == district }, seed: seed).map { DistrictParameter(district: district, body: .customer($0)) }
        return out
    }
}
