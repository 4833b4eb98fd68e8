/// Collects, during one reading batch, the validated or estimated energy that fee control
/// billed, per 15-minute interval, and writes the line-loss records at the end of the batch
/// (DOMAIN.md "Smart district", "Line loss": "Use only validated or estimated energy").
///
/// Only energy that `ReadingRun.billSegment` bills is added: readings VEE rejects
/// (NEGATIVE, SUM_MISMATCH, FUTURE, OUT_OF_ORDER) and held spikes add nothing; estimated
/// energy over a gap adds to the intervals it was estimated for. Sums and "meter has
/// energy" markers commute, so the records do not depend on the order of the pieces.
struct LineLossAccumulator {
    private struct Delta {
        var supply: UInt64 = 0
        var summary = false
        var customers: UInt64 = 0
        /// Customer meters with energy here, in first-seen order (deduplicated by `seen`).
        var meters: [String] = []
        var seen = Set<String>()
    }

    let settings: LineLoss.Settings
    /// Keyed by interval start (looked up; iterated only through sorted keys).
    private var deltas: [Int64: Delta] = [:]

    init(settings: LineLoss.Settings = LineLoss.Settings()) {
        self.settings = settings
    }

    /// Adds a billed piece of `meter`'s energy. A piece belongs to the intervals between its
    /// ends' nearest 15-minute slots (at least the one interval ending at its end's slot); a
    /// piece over several intervals is split equally among them (`TariffRules.cumulativeSplit`,
    /// integers; the sum is exact). Pieces over more than a day are left out.
    mutating func add(meter: String, summary: Bool, startMs: Int64, endMs: Int64, energy: UInt64) {
        let i = LineLoss.intervalMs
        let last = Vee.slot(endMs, intervalMs: i)
        let count = max(1, last - Vee.slot(startMs, intervalMs: i))
        guard count <= LineLoss.maxSpreadIntervals else { return }
        let parts = count == 1 ? [energy] : TariffRules.cumulativeSplit(energy, weights: Array(repeating: 1, count: Int(count)))
        for k in 0..<Int(count) {
            let start = (last - count + Int64(k)) * i
            var d = deltas[start] ?? Delta()
            if summary {
                d.supply = Self.saturatingAdd(d.supply, parts[k])
                d.summary = true
            } else {
                d.customers = Self.saturatingAdd(d.customers, parts[k])
                if d.seen.insert(meter).inserted { d.meters.append(meter) }
            }
            deltas[start] = d
        }
    }

    /// Writes every touched interval record (in interval order) and its day record.
    mutating func flush(state: inout some ContractState) throws {
        guard !deltas.isEmpty else { return }
        let total = try customerCount(state)
        for start in deltas.keys.sorted() {
            guard let d = deltas[start] else { continue }
            let key = LineLoss.intervalKey(start)
            let old = try state.get(key).map { try LineLossInterval(decoding: $0) }
            var record = old ?? LineLossInterval()
            record.supply = Self.saturatingAdd(record.supply, d.supply)
            record.summaryPresent = record.summaryPresent || d.summary
            record.customers = Self.saturatingAdd(record.customers, d.customers)
            for meter in d.meters.sorted() {
                let marker = LineLoss.meterKey(start, meter: meter)
                if try state.get(marker) == nil {
                    state.set(marker, [])
                    record.customerMeters &+= 1
                }
            }
            record.customerTotal = total
            record.classify(settings: settings)
            state.set(key, record.encoded())

            let local = CivilTime.local(start, offsetMinutes: settings.utcOffsetMinutes)
            let dayKey = LineLoss.dayKey(local.year * 10_000 + local.month * 100 + local.day)
            var day = try state.get(dayKey).map { try LineLossDay(decoding: $0) } ?? LineLossDay()
            day.replace(old, with: record, settings: settings)
            state.set(dayKey, day.encoded())
        }
        deltas = [:]
    }

    /// Customer meters of the district: every meter mapped to an account other than the
    /// summary account (`meter-account/` scan, once per flush).
    private func customerCount(_ state: some ContractState) throws -> UInt32 {
        var n: UInt32 = 0
        let summary = Array(LineLoss.summaryAccount.utf8)
        try state.scan(prefix: ContractKeys.meterAccountPrefix) { _, value in
            if value != summary { n &+= 1 }
            return true
        }
        return n
    }

    private static func saturatingAdd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (s, o) = a.addingReportingOverflow(b)
        return o ? .max : s
    }
}
