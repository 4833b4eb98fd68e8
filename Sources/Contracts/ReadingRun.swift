import GridProto

/// Applies the readings of one batch, one at a time (DOMAIN.md "Readings", "Tariffs").
///
/// Per reading, in this order (the first that applies decides; see Docs/contracts.md):
/// 1. no customer for the meter → NO_CUSTOMER; no tariff → NO_TARIFF (state untouched);
/// 2. timestamp > block time + future tolerance → FUTURE (not billed, not accepted); a
///    timestamp before the epoch (negative) → OUT_OF_ORDER; a register at or above the
///    meter's rollover point (a value the meter cannot show, e.g. UInt64.max) → NEGATIVE;
/// 3. the meter's first reading: the sum check, then it becomes the baseline (billed, 0 fen);
/// 4. timestamp ≤ the last accepted reading's → REPLACES_ESTIMATE when an estimate exists
///    for its slot (the estimate is deleted; nothing billed), else OUT_OF_ORDER;
/// 5. sum check fails → SUM_MISMATCH (held: not accepted; its energy is billed with the next
///    good reading, whose delta covers it);
/// 6. a register decreased → NEGATIVE (not accepted), unless a held spike is discarded (the
///    reading is below the spike but not below the billed cursor) or it is a rollover;
/// 7. a held spike that this reading continues (registers not below it) is confirmed and its
///    segment billed;
/// 8. spike check → SPIKE (accepted, held); else the segment is billed (ROLLOVER listed when
///    a register wrapped).
struct ReadingRun {
    let context: BlockContext
    let settings: VeeSettings
    var effects = ContractEffects()
    /// Tariffs decoded in this call, by id (looked up, never iterated). Nothing in
    /// `applyReadings` writes a tariff, so a tariff read once stays current for the call.
    private var tariffs: [String: Tariff] = [:]
    /// Accounts already listed in `effects.accounts` (membership only; never iterated).
    private var savedAccounts = Set<String>()
    /// Billed energy per 15-minute interval for the line-loss records (`LineLoss`).
    var lineLoss = LineLossAccumulator()

    init(context: BlockContext, settings: VeeSettings) {
        self.context = context
        self.settings = settings
    }

    /// What one reading's processing needs about its meter.
    private struct Meter {
        var id: String
        var customer: CustomerArchive
        var tariff: Tariff
        var account: Account
        var vee: VeeRecord
        var intervalMs: Int64
        var rollover: UInt64
    }

    private mutating func flag(_ position: Int, _ flag: ReadingFlag, _ detail: String) {
        effects.readingResults.append(ReadingResult(position: UInt32(position), flag: flag, detail: detail))
    }

    mutating func apply(_ reading: Reading, position: Int, state: inout some ContractState) throws {
        let meterID = reading.meterId
        guard ContractKeys.isValidComponent(meterID),
            let accountBytes = try state.get(ContractKeys.meterAccount(meterID))
        else { return flag(position, .noCustomer, "") }  // the flag says it all: no detail per reading
        let accountID = String(decoding: accountBytes, as: UTF8.self)
        guard let customer = try state.message(CustomerArchive.self, ContractKeys.customer(accountID)),
            let account = try state.message(Account.self, ContractKeys.account(accountID))
        else { return flag(position, .noCustomer, "meter \(meterID): account \(accountID) missing") }
        guard !customer.tariffId.isEmpty, let tariff = try tariff(customer.tariffId, state: state) else {
            return flag(position, .noTariff, "account \(accountID): tariff \"\(customer.tariffId)\" not found")
        }
        let point = RegisterPoint(reading)
        // Saturating: a hostile tolerance or block time must not trap the replica.
        let (latest, overflow) = context.timestampMs.addingReportingOverflow(settings.futureToleranceMs)
        guard point.timestampMs <= min(overflow ? .max : latest, Vee.maxTimestampMs) else {
            return flag(position, .future, "timestamp \(point.timestampMs) is after block time \(context.timestampMs) + \(settings.futureToleranceMs) ms")
        }
        guard point.timestampMs >= 0 else {
            return flag(position, .outOfOrder, "timestamp \(point.timestampMs) is before 1970-01-01; stored, not billed")
        }
        var meter = Meter(
            id: meterID, customer: customer, tariff: tariff, account: account,
            vee: try state.get(ContractKeys.vee(meterID)).map { try VeeRecord(decoding: $0) } ?? VeeRecord(),
            intervalMs: Int64(customer.intervalMinutes == 0 ? 15 : customer.intervalMinutes) * CivilTime.msPerMinute,
            rollover: customer.rollover == 0 ? Vee.defaultRollover : customer.rollover
        )
        guard Vee.registersInRange(point, rollover: meter.rollover) else {
            return flag(position, .negative, "registers \(point.registers) not all below the rollover point \(meter.rollover); not a meter value, not billed")
        }
        let sumOK = Vee.sumMatches(point, tolerance: settings.sumTolerance, rollover: meter.rollover)

        guard meter.vee.hasBaseline else {
            guard sumOK else { return flag(position, .sumMismatch, sumDetail(point)) }
            meter.vee = VeeRecord()
            meter.vee.hasBaseline = true
            meter.vee.billed = point
            meter.vee.accepted = point
            meter.account.lastReadingMs = point.timestampMs
            meter.account.lastTotal = point.total
            effects.readingsBilled += 1
            return save(meter, state: &state)
        }
        guard point.timestampMs > meter.vee.accepted.timestampMs else {
            return try late(point, position: position, meter: meter, state: &state)
        }
        guard sumOK else { return flag(position, .sumMismatch, sumDetail(point)) }

        var base = meter.vee.accepted
        var steps = self.steps(from: base, to: point, rollover: meter.rollover)
        if steps == nil, meter.vee.held, let fromBilled = self.steps(from: meter.vee.billed, to: point, rollover: meter.rollover) {
            // The held spike was not continued: it was a glitch. Measure from the billed cursor.
            meter.vee.held = false
            meter.vee.accepted = meter.vee.billed
            base = meter.vee.billed
            steps = fromBilled
        }
        guard let steps else {
            return flag(position, .negative, "registers decreased from \(base.registers) at \(base.timestampMs) to \(point.registers), not a rollover")
        }

        var charge: Int64 = 0
        var billedSomething = false
        if meter.vee.held {
            // This reading continues from the held spike: the spike was real. Bill it.
            let held = meter.vee.accepted
            let heldSteps = self.steps(from: meter.vee.billed, to: held, rollover: meter.rollover) ?? []
            charge = try TariffRules.add(charge, try billSegment(to: held, steps: heldSteps, meter: &meter, state: &state), "charge")
            meter.vee.held = false
            billedSomething = true
        }
        let energy = consumption(steps, from: base, to: point)
        let intervals = UInt64(max(1, Vee.slot(point.timestampMs, intervalMs: meter.intervalMs) - Vee.slot(base.timestampMs, intervalMs: meter.intervalMs)))
        let trailing = meter.vee.trailing(atMs: point.timestampMs)
        if Vee.isSpike(energy: energy, intervals: intervals, trailing: trailing, factor: settings.spikeFactor, minHistory: settings.spikeMinHistory) {
            meter.vee.accepted = point
            meter.vee.held = true
            flag(position, .spike, "consumption \(energy) over \(intervals) interval(s) > \(settings.spikeFactor) x trailing average \(trailing.energy)/\(trailing.intervals); held until confirmed")
        } else {
            charge = try TariffRules.add(charge, try billSegment(to: point, steps: steps, meter: &meter, state: &state), "charge")
            billedSomething = true
            effects.readingsBilled += 1
            if steps.contains(where: { if case .rollover = $0 { return true } else { return false } }) {
                flag(position, .rollover, "register rolled over at \(meter.rollover); consumption \(energy)")
            }
        }
        if billedSomething {
            effects.chargedFen = try TariffRules.add(effects.chargedFen, charge, "batch charge")
            try FeeControl.runStateMachine(&meter.account, customer: meter.customer, event: .charge, context: context, state: &state, effects: &effects)
        }
        save(meter, state: &state)
    }

    /// A reading not after the last accepted one: it replaces an estimate, or is out of order.
    private mutating func late(_ point: RegisterPoint, position: Int, meter: Meter, state: inout some ContractState) throws {
        let slot = Vee.slot(point.timestampMs, intervalMs: meter.intervalMs) * meter.intervalMs
        let key = ContractKeys.estimate(meter.id, timestampMs: slot)
        if point.timestampMs > 0, let bytes = try state.get(key) {
            let estimate = try EstimateRecord(decoding: bytes)
            state.set(key, nil)
            return flag(position, .replacesEstimate, "replaces the estimate at \(slot) (estimated total \(estimate.total), real \(point.total)); energy already billed, not billed again")
        }
        flag(position, .outOfOrder, "timestamp \(point.timestampMs) not after the last accepted reading \(meter.vee.accepted.timestampMs); stored, not billed")
    }

    private func sumDetail(_ p: RegisterPoint) -> String {
        "total \(p.total) vs sharp+peak+flat+valley \(p.tou.map { String($0) }.joined(separator: "+")) beyond tolerance \(settings.sumTolerance); held from billing"
    }

    /// Steps of all five registers, or nil when one decreased without a rollover. TOU
    /// registers of a meter without them (all zero at the later reading) count as zero steps;
    /// a meter whose TOU registers start from zero counts from zero.
    private func steps(from a: RegisterPoint, to b: RegisterPoint, rollover: UInt64) -> [RegisterStep]? {
        var result: [RegisterStep] = []
        let tou = b.hasTOU
        for i in 0..<5 {
            if i > 0, !tou {
                result.append(.forward(0))
                continue
            }
            let s = Vee.step(from: a.registers[i], to: b.registers[i], rollover: rollover)
            if s == .negative { return nil }
            result.append(s)
        }
        return result
    }

    /// A segment's consumption (DOMAIN.md "Tariffs"): the sum of the four TOU register deltas
    /// when both ends have TOU registers (the total register then only serves the sum check),
    /// else the total register's delta. `steps` has the total's step first, then the TOU ones
    /// (zero steps for a meter without TOU registers).
    private func consumption(_ steps: [RegisterStep], from a: RegisterPoint, to b: RegisterPoint) -> UInt64 {
        guard steps.count == 5 else { return 0 }
        guard b.hasTOU else { return value(steps[0]) }
        // Each delta is below the rollover point (≤ 10^10): the sum cannot overflow.
        return steps[1...4].map(value).reduce(0, +)
    }

    private func value(_ s: RegisterStep) -> UInt64 {
        switch s {
        case .forward(let v), .rollover(let v): return v
        case .negative: return 0
        }
    }

    /// Bills billed-cursor → `point`: splits over missing slots (writing estimates), rates the
    /// pieces into the account, updates the trailing window and profile, moves the cursor.
    private mutating func billSegment(to point: RegisterPoint, steps: [RegisterStep], meter: inout Meter, state: inout some ContractState) throws -> Int64 {
        let from = meter.vee.billed
        let energy = consumption(steps, from: from, to: point)
        let offset = meter.tariff.utcOffsetMinutes
        let slotsPerDay = Int(CivilTime.msPerDay / meter.intervalMs)
        var profiles: [Int: [UInt32]] = [:]
        if point.timestampMs - from.timestampMs > settings.maxInterpolationMs {
            for weekday in 0..<7 {
                if let bytes = try state.get(ContractKeys.profile(meter.id, weekday: weekday)) {
                    profiles[weekday] = try Profile.decode(bytes, slots: slotsPerDay)
                }
            }
        }
        let intervalMs = meter.intervalMs
        let split = Estimation.split(
            startMs: from.timestampMs, endMs: point.timestampMs, energy: energy, intervalMs: intervalMs,
            maxInterpolationMs: settings.maxInterpolationMs
        ) { startMs in
            let slotStart = Vee.slot(startMs, intervalMs: intervalMs) * intervalMs
            let local = CivilTime.local(slotStart, offsetMinutes: offset)
            guard let day = profiles[Int(local.weekday)] else { return 0 }
            return UInt64(day[Int(local.msOfDay / intervalMs)])
        }
        // Line loss takes exactly the energy billed here: validated or estimated (DOMAIN.md
        // "Smart district", "Line loss").
        let summary = meter.account.account == LineLoss.summaryAccount
        for piece in split.pieces {
            lineLoss.add(meter: meter.id, summary: summary, startMs: piece.startMs, endMs: piece.endMs, energy: piece.energy)
        }
        let rolled: Bool
        if case .rollover = steps[0] { rolled = true } else { rolled = false }
        for e in split.estimates {
            var total = from.total + e.cumulative
            if rolled, total >= meter.rollover { total -= meter.rollover }
            let record = EstimateRecord(method: split.method, total: total, intervalEnergy: e.intervalEnergy)
            state.set(ContractKeys.estimate(meter.id, timestampMs: e.timestampMs), record.encoded())
        }
        let tou: [UInt64]? = point.hasTOU ? steps[1...4].map(value) : nil
        let lines = try Billing.bill(
            pieces: split.pieces, touDeltas: tou, tariff: meter.tariff, customer: meter.customer, intervalMs: intervalMs,
            account: &meter.account
        )

        let slots = Vee.slot(point.timestampMs, intervalMs: intervalMs) - Vee.slot(from.timestampMs, intervalMs: intervalMs)
        meter.vee.record(energy: energy, intervals: UInt64(max(1, slots)), endMs: point.timestampMs)
        if slots == 1 {
            // One real interval: it is the profile's latest value for its slot.
            let slotStart = Vee.slot(from.timestampMs, intervalMs: intervalMs) * intervalMs
            let local = CivilTime.local(slotStart, offsetMinutes: offset)
            let key = ContractKeys.profile(meter.id, weekday: Int(local.weekday))
            var day = try state.get(key).map { try Profile.decode($0, slots: slotsPerDay) } ?? Array(repeating: 0, count: slotsPerDay)
            day[Int(local.msOfDay / intervalMs)] = UInt32(min(energy, UInt64(UInt32.max)))
            state.set(key, Profile.encode(day))
        }
        meter.vee.billed = point
        if !meter.vee.held { meter.vee.accepted = point }
        meter.account.lastReadingMs = point.timestampMs
        meter.account.lastTotal = point.total
        var charge: Int64 = 0
        for line in lines { charge = try TariffRules.add(charge, line.fen, "segment charge") }
        return charge
    }

    /// The tariff `id` from state, decoded once per call.
    private mutating func tariff(_ id: String, state: some ContractState) throws -> Tariff? {
        if let cached = tariffs[id] { return cached }
        guard let tariff = try state.message(Tariff.self, ContractKeys.tariff(id)) else { return nil }
        tariffs[id] = tariff
        return tariff
    }

    private mutating func save(_ meter: Meter, state: inout some ContractState) {
        state.set(ContractKeys.vee(meter.id), meter.vee.encoded())
        state.setMessage(ContractKeys.account(meter.account.account), meter.account)
        if savedAccounts.insert(meter.account.account).inserted { effects.accounts.append(meter.account.account) }
    }
}
