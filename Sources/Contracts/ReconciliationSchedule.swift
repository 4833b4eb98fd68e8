import GridBase
public import GridProto

/// When the main chain reconciles a working date by itself (DOMAIN.md, "Multi-party
/// reconciliation"; issue 13: "Daily for working date D once D+1 has closed on the main
/// chain (the cut-off is a chain parameter), and again, superseding, when a late record for
/// D or D+1 arrives"). Docs/reconciliation.md, "Schedule".
///
/// **Cut-off.** D+1 closes at local midnight ending it (00:00 of D+2 at the settings' UTC
/// offset); D is due `cutoff_minutes_after_midnight` later (`closeMs`). The parameter is the
/// `ReconcileSettings` at `recon/settings`, set by an `admin`-signed transaction and in
/// effect from the block carrying it; unset, UTC+8 and 120 minutes (`defaultSettings`).
///
/// **Queues** (state, so every replica holds the same): a record stored for date X puts X in
/// `recon/due/` until X's first automatic run ("a working date that has records"), or, once
/// that run happened (`recon/auto/X`), in `recon/dirty/` ("a late record"). A marketing or
/// bank record dated X is also a record "for D+1" of D = X−1, and one that X+1's run loads
/// (a receipt of D−1 credited on D): each neighbour becomes dirty when it was run
/// automatically, due when it was only run on request. Finance's entry counts for its
/// collection day C when booked by C+1 (the only run that considers it).
///
/// **Step** (`scheduled`, then `run` each; the block executor calls them after a block's
/// transactions): the dirty dates in ascending order, then the due dates in ascending order
/// whose cut-off is at or before the block's timestamp (the scan stops at the first that is
/// not: cut-offs grow with the date), at most `maxRunsPerBlock` in all; the rest wait for
/// the following blocks. Each run is `Reconciliation.reconcile`, the path of a
/// `ReconcileRequest`: a new run number per pair, superseding, both results staying.
///
/// Determinism: only the block's timestamp and the state decide; dates are integer day
/// numbers (`CivilTime`); the queues are read by prefix scan in key order (YYYYMMDD sorts by
/// date).
public enum ReconciliationSchedule {
    /// Dates reconciled automatically in one block at most (a day's run loads three days of
    /// records: the bound keeps a block's execution time bounded).
    public static let maxRunsPerBlock = 2

    /// The schedule when no `ReconcileSettings` was ever set: D+1 closes at 00:00 of D+2 in
    /// UTC+8 (China Standard Time), and D is due 120 minutes later, at 02:00 of D+2.
    public static let defaultSettings = ReconcileSettings(cutoffMinutesAfterMidnight: 120, utcOffsetMinutes: 480)

    /// Bounds of the parameter: a cut-off up to seven days, an offset up to ±18 hours.
    public static let maxCutoffMinutes: UInt32 = 7 * 24 * 60
    public static let maxUTCOffsetMinutes: Int32 = 18 * 60

    /// One automatic run: the date, and whether it reruns after a late record.
    public struct Run: Equatable, Sendable {
        public var date: UInt32
        public var rerun: Bool

        public init(date: UInt32, rerun: Bool) {
            self.date = date
            self.rerun = rerun
        }
    }

    // MARK: The parameter

    /// nil when `settings` is within bounds, else why not.
    public static func problem(_ settings: ReconcileSettings) -> String? {
        if settings.cutoffMinutesAfterMidnight > maxCutoffMinutes {
            return "cut-off \(settings.cutoffMinutesAfterMidnight) minutes is beyond \(maxCutoffMinutes)"
        }
        if settings.utcOffsetMinutes.magnitude > maxUTCOffsetMinutes.magnitude {
            return "UTC offset \(settings.utcOffsetMinutes) minutes is beyond ±\(maxUTCOffsetMinutes)"
        }
        return nil
    }

    /// Stores the schedule's parameter (`recon/settings`), in effect from this block's step.
    /// - Throws: INVALID_ARGUMENT when out of bounds (admission checks it first).
    public static func applySettings<S: ContractState>(_ settings: ReconcileSettings, state: inout S) throws -> ContractEffects {
        if let problem = problem(settings) { throw ContractRejection.invalidArgument("reconcile settings: \(problem)") }
        state.set(ReconciliationKeys.settings, settings.serializedBytes())
        return ContractEffects()
    }

    /// The parameter in effect: the stored one, else `defaultSettings`.
    /// - Throws: INTERNAL when the stored record does not decode.
    public static func settings<S: ContractState>(state: S) throws -> ReconcileSettings {
        guard let bytes = try state.get(ReconciliationKeys.settings) else { return defaultSettings }
        do {
            return try ReconcileSettings(serializedBytes: bytes)
        } catch {
            throw ContractRejection.internalError("recon/settings does not decode")
        }
    }

    /// UTC ms from which working date `date` is due: 00:00 of `date`+2 local, plus the
    /// cut-off. nil for a date that is not a calendar date.
    public static func dueMs(of date: UInt32, settings: ReconcileSettings) -> Int64? {
        guard let day = Reconciliation.dayNumber(date) else { return nil }
        return CivilTime.utcMs(ofLocalDay: day + 2, offsetMinutes: settings.utcOffsetMinutes)
            + Int64(settings.cutoffMinutesAfterMidnight) * CivilTime.msPerMinute
    }

    // MARK: Records arriving

    /// Queues the dates that records just stored change: each date in `dates` (the records'
    /// own dates), and with `neighbours` the day before (the records are its D+1) and the day
    /// after (its run loads D−1 records: a receipt of D−1 credited on D) — those only when
    /// they were already run.
    static func recordsStored<S: ContractState>(dates: Set<UInt32>, neighbours: Bool, state: inout S) throws {
        for date in dates.sorted() {
            try note(date, own: true, state: &state)
            if neighbours {
                try note(Reconciliation.date(date, plus: -1), own: false, state: &state)
                try note(Reconciliation.date(date, plus: 1), own: false, state: &state)
            }
        }
    }

    /// Whether a run of `date` can happen (`reconcile` needs D−1, D and D+1 calendar dates).
    static func isRunnable(_ date: UInt32) -> Bool {
        Reconciliation.isValidDate(date) && Reconciliation.isValidDate(Reconciliation.date(date, plus: 1))
            && Reconciliation.isValidDate(Reconciliation.date(date, plus: -1))
    }

    private static func note<S: ContractState>(_ date: UInt32, own: Bool, state: inout S) throws {
        guard isRunnable(date) else { return }
        if try state.get(ReconciliationKeys.auto(date)) != nil {
            try setOnce(ReconciliationKeys.dirty(date), state: &state)
        } else if try own || state.get(ReconciliationKeys.latest(date: date, pair: .marketingBank)) != nil {
            try setOnce(ReconciliationKeys.due(date), state: &state)
        }
    }

    private static func setOnce<S: ContractState>(_ key: String, state: inout S) throws {
        if try state.get(key) == nil { state.set(key, []) }
    }

    // MARK: The step

    /// The runs of this block, in order: dirty dates, then due dates whose cut-off has passed
    /// by `context.timestampMs`, at most `maxRunsPerBlock`.
    public static func scheduled<S: ContractState>(context: BlockContext, state: S) throws -> [Run] {
        var runs: [Run] = []
        try state.scan(prefix: ReconciliationKeys.dirtyPrefix) { key, _ in
            guard runs.count < maxRunsPerBlock else { return false }
            if let date = ReconciliationKeys.scheduledDate(key) { runs.append(Run(date: date, rerun: true)) }
            return runs.count < maxRunsPerBlock
        }
        guard runs.count < maxRunsPerBlock else { return runs }
        let settings = try settings(state: state)
        try state.scan(prefix: ReconciliationKeys.duePrefix) { key, _ in
            guard let date = ReconciliationKeys.scheduledDate(key), let due = dueMs(of: date, settings: settings) else { return true }
            guard due <= context.timestampMs else { return false }
            runs.append(Run(date: date, rerun: false))
            return runs.count < maxRunsPerBlock
        }
        return runs
    }

    /// Runs `run` (`Reconciliation.reconcile`, as a request would) and takes it off its
    /// queue; a first run records its run number at `recon/auto/<date>`.
    /// - Throws: what `reconcile` throws; the caller drops this call's writes and calls
    ///   `refused`.
    public static func run<S: ContractState>(_ run: Run, context: BlockContext, state: inout S) throws -> ContractEffects {
        let effects = try Reconciliation.reconcile(date: run.date, context: context, state: &state)
        try finish(run, firstRun: try state.get(ReconciliationKeys.latest(date: run.date, pair: .marketingBank)), state: &state)
        return effects
    }

    /// Takes a run that `reconcile` refused (a total overflowing, say) off its queue, so the
    /// schedule never stalls on it; a first run is recorded with run number 0.
    public static func refused<S: ContractState>(_ run: Run, state: inout S) throws {
        try finish(run, firstRun: BigEndianWriter.bytes(of: UInt32(0)), state: &state)
    }

    /// Clears the date's queue entry; for a first run records `firstRun` (u32, big-endian).
    private static func finish<S: ContractState>(_ run: Run, firstRun: [UInt8]?, state: inout S) throws {
        if try state.get(ReconciliationKeys.dirty(run.date)) != nil { state.set(ReconciliationKeys.dirty(run.date), nil) }
        guard !run.rerun else { return }
        state.set(ReconciliationKeys.due(run.date), nil)
        if try state.get(ReconciliationKeys.auto(run.date)) == nil {
            state.set(ReconciliationKeys.auto(run.date), firstRun ?? BigEndianWriter.bytes(of: UInt32(0)))
        }
    }
}
