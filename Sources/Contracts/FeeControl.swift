public import GridProto

/// The fee-control contract, version 1 (Docs/contracts.md): VEE, tariff rating and prepaid
/// fee control, applied by every replica while it applies a block.
///
/// Determinism: every function reads and writes only through `state`, uses integer
/// arithmetic only, takes "now" from `context.timestampMs` only, draws no randomness and
/// never iterates a dictionary or set. Applying the same calls in the same order to the
/// same state gives byte-identical state and effects on every replica.
///
/// Errors: a thrown `ContractRejection` rejects the transaction with its code; any other
/// error (a record that does not decode) means corrupt state. Either way the caller must
/// discard the call's writes (see `ContractState`).
public enum FeeControl {
    /// The contract's name in `ContractActivation.contract`.
    public static let contractName = "fee-control"

    /// Applies a reading batch: validates, estimates and bills each reading at `positions`
    /// (those the node did not find duplicate), in (timestamp, position) order, then updates
    /// the line-loss records of the intervals the billed energy fell in (`LineLoss`).
    ///
    /// Readings of meters without a customer get READING_FLAG_NO_CUSTOMER, customers without a
    /// tariff READING_FLAG_NO_TARIFF; both leave the contract state untouched. See
    /// Docs/contracts.md for every other flag.
    /// - Throws: INVALID_ARGUMENT when the batch names another district or a position is out
    ///   of range.
    public static func applyReadings(
        _ batch: ReadingBatch, positions: [Int], context: BlockContext, state: inout some ContractState
    ) throws -> ContractEffects {
        guard batch.district.isEmpty || batch.district == context.district else {
            throw ContractRejection.invalidArgument("batch for district \(batch.district) on chain \(context.district)")
        }
        for p in positions where p < 0 || p >= batch.readings.count {
            throw ContractRejection.invalidArgument("reading position \(p) out of range")
        }
        let order = positions.sorted {
            let a = batch.readings[$0].timestampMs, b = batch.readings[$1].timestampMs
            return a != b ? a < b : $0 < $1
        }
        var run = ReadingRun(context: context, settings: try ActivationRecord.load(state).settings(at: context.height))
        for position in order {
            try run.apply(batch.readings[position], position: position, state: &state)
        }
        try run.lineLoss.flush(state: &state)
        run.effects.readingResults.sort { $0.position < $1.position }
        return run.effects
    }

    /// Applies a base parameter from the main chain.
    /// - customer: creates the account (opening balance) or updates the archive; maps the meter.
    /// - tariff / thresholds: validated and stored.
    /// - payment: raises the balance and runs the state machine; a reversal (naming the serial
    ///   it reverses) lowers it again.
    /// - notice templates: validated and stored (the language and texts of later notices).
    /// - activation: schedules a contract version and its VEE parameters at a height.
    /// - Throws: INVALID_ARGUMENT (malformed, another district, no body), NOT_FOUND (payment
    ///   for an unknown account), ALREADY_EXISTS (repeated payment serial; a meter already
    ///   mapped to another account).
    public static func applyParameter(
        _ parameter: DistrictParameter, context: BlockContext, state: inout some ContractState
    ) throws -> ContractEffects {
        guard parameter.district.isEmpty || parameter.district == context.district else {
            throw ContractRejection.invalidArgument("parameter for district \(parameter.district) on chain \(context.district)")
        }
        switch parameter.body {
        case .customer(let customer)?:
            try applyCustomer(customer, state: &state)
            return ContractEffects(accounts: [customer.account])
        case .tariff(let tariff)?:
            try TariffRules.validate(tariff)
            state.setMessage(ContractKeys.tariff(tariff.tariffId), tariff)
            return ContractEffects()
        case .thresholds(let thresholds)?:
            try Prepaid.validate(thresholds)
            state.setMessage(ContractKeys.thresholds(thresholds.thresholdsId), thresholds)
            return ContractEffects()
        case .payment(let payment)?:
            return try applyPayment(payment, context: context, state: &state)
        case .activation(let activation)?:
            try applyActivation(activation, context: context, state: &state)
            return ContractEffects()
        case .noticeTemplates(let templates)?:
            try NoticeText.validate(templates)
            state.setMessage(ContractKeys.noticeTemplates, templates)
            return ContractEffects()
        case nil:
            throw ContractRejection.invalidArgument("district parameter without a body")
        }
    }

    /// A device's acknowledgement of a command: ISSUED → ACKNOWLEDGED (success) or FAILED.
    /// - Throws: NOT_FOUND for an unknown command; FAILED_PRECONDITION when the command is no
    ///   longer ISSUED (acknowledged, failed, expired) or its valid_until is before the block
    ///   time.
    public static func acknowledge(_ ack: CommandAck, context: BlockContext, state: inout some ContractState) throws -> ContractEffects {
        try Commands.acknowledge(ack, context: context, state: &state)
        return ContractEffects()
    }

    /// Call once at the start of every block, before its transactions: every ISSUED command
    /// whose valid_until is before the block timestamp becomes EXPIRED. Returns their ids in
    /// (valid_until, id) order.
    public static func expireCommands(context: BlockContext, state: inout some ContractState) throws -> [String] {
        try Commands.expire(context: context, state: &state)
    }

    // MARK: - Parameters

    /// Bound on an opening balance's magnitude and on one payment (10^15 fen = 10^13 CNY):
    /// far beyond any real account, and far enough below `Int64.max` (9.2 × 10^18) that
    /// balances and totals cannot overflow in practice. Sums are still checked (an overflow
    /// rejects the transaction with INVALID_ARGUMENT; it never traps).
    static let maxAbsAmountFen: Int64 = 1_000_000_000_000_000

    static func applyCustomer(_ c: CustomerArchive, state: inout some ContractState) throws {
        func fail(_ why: String) -> ContractRejection { .invalidArgument("customer \(c.account): \(why)") }
        guard ContractKeys.isValidComponent(c.account), ContractKeys.isValidComponent(c.meterId) else {
            throw fail("account and meter ids must be non-empty without '/'")
        }
        guard ContractKeys.isValidComponent(c.tariffId, allowEmpty: true),
            ContractKeys.isValidComponent(c.thresholdsId, allowEmpty: true)
        else { throw fail("tariff and thresholds ids must not contain '/'") }
        guard c.cycleStartMonth <= 12, c.cycleStartDay <= 31 else { throw fail("invalid cycle start date") }
        guard c.rollover <= TariffRules.maxEnergy else { throw fail("rollover above 10^10") }
        guard c.openingBalanceFen.magnitude <= maxAbsAmountFen.magnitude else { throw fail("opening balance out of range") }
        guard c.intervalMinutes <= 1440, c.intervalMinutes == 0 || 1440 % c.intervalMinutes == 0 else {
            throw fail("interval must divide a day")
        }
        let meterKey = ContractKeys.meterAccount(c.meterId)
        let owner = try state.get(meterKey).map { String(decoding: $0, as: UTF8.self) }
        if let owner, owner != c.account {
            throw ContractRejection.alreadyExists("meter \(c.meterId) belongs to account \(owner)")
        }
        let previous = try state.message(CustomerArchive.self, ContractKeys.customer(c.account))
        if let previous, previous.meterId != c.meterId {
            state.set(ContractKeys.meterAccount(previous.meterId), nil)
        }
        if owner == nil {
            // A meter newly mapped to this account starts from a fresh baseline.
            state.set(ContractKeys.vee(c.meterId), nil)
            state.set(meterKey, Array(c.account.utf8))
        }
        state.setMessage(ContractKeys.customer(c.account), c)

        var account = try state.message(Account.self, ContractKeys.account(c.account))
            ?? Account(account: c.account, balanceFen: c.openingBalanceFen, state: .normal)
        if account.meterId != c.meterId {
            account.lastReadingMs = 0
            account.lastTotal = 0
        }
        account.meterId = c.meterId
        account.protectedSupply = c.protectedSupply
        state.setMessage(ContractKeys.account(c.account), account)
    }

    static func applyPayment(_ p: Payment, context: BlockContext, state: inout some ContractState) throws -> ContractEffects {
        guard ContractKeys.isValidComponent(p.serial) else { throw ContractRejection.invalidArgument("payment serial empty or with '/'") }
        if !p.reversesSerial.isEmpty { return try applyReversal(p, context: context, state: &state) }
        guard p.amountFen > 0 else {
            throw ContractRejection.invalidArgument("payment \(p.serial): amount must be positive (a reversal names the serial it reverses)")
        }
        guard p.amountFen <= maxAbsAmountFen else { throw ContractRejection.invalidArgument("payment \(p.serial): amount above 10^15 fen") }
        guard ContractKeys.isValidComponent(p.account),
            var account = try state.message(Account.self, ContractKeys.account(p.account))
        else { throw ContractRejection.notFound("payment \(p.serial): no account \(p.account)") }
        guard try state.get(ContractKeys.payment(p.serial)) == nil else {
            throw ContractRejection.alreadyExists("payment serial \(p.serial) already applied")
        }
        account.balanceFen = try TariffRules.add(account.balanceFen, p.amountFen, "balance \(account.balanceFen) + payment \(p.amountFen)")
        account.totalPaidFen = try TariffRules.add(account.totalPaidFen, p.amountFen, "total paid")
        state.setMessage(ContractKeys.payment(p.serial), p)
        return try settle(&account, event: .payment, context: context, state: &state)
    }

    /// A payment reversal (冲正, DOMAIN.md "Prepaid fee control", "Multi-party
    /// reconciliation"): a negative payment naming the serial it reverses. The reversed
    /// payment must be a top-up of the same account, not reversed before, and the reversal's
    /// amount exactly its negation; the balance drops by it and the state follows (a reversal
    /// is a charge to the state machine: it can enter a warning or disconnect, never reconnect).
    /// - Throws: INVALID_ARGUMENT (amount not the negation, another account, reversing a
    ///   reversal), NOT_FOUND (unknown serial or account), ALREADY_EXISTS (the reversal's own
    ///   serial is taken), FAILED_PRECONDITION (the payment was already reversed).
    static func applyReversal(_ p: Payment, context: BlockContext, state: inout some ContractState) throws -> ContractEffects {
        let what = "reversal \(p.serial) of \(p.reversesSerial)"
        guard ContractKeys.isValidComponent(p.reversesSerial) else { throw ContractRejection.invalidArgument("\(what): reversed serial with '/'") }
        guard let original = try state.message(Payment.self, ContractKeys.payment(p.reversesSerial)) else {
            throw ContractRejection.notFound("\(what): no payment with serial \(p.reversesSerial)")
        }
        guard original.reversesSerial.isEmpty else { throw ContractRejection.invalidArgument("\(what): \(p.reversesSerial) is itself a reversal") }
        if let by = try state.get(ContractKeys.reversal(p.reversesSerial)) {
            throw ContractRejection.failedPrecondition("\(what): payment \(p.reversesSerial) was already reversed by \(String(decoding: by, as: UTF8.self))")
        }
        guard try state.get(ContractKeys.payment(p.serial)) == nil else {
            throw ContractRejection.alreadyExists("payment serial \(p.serial) already applied")
        }
        guard p.account == original.account else {
            throw ContractRejection.invalidArgument("\(what): account \(p.account) is not the payment's account \(original.account)")
        }
        guard p.amountFen == -original.amountFen else {
            throw ContractRejection.invalidArgument("\(what): amount \(p.amountFen) fen must be -\(original.amountFen), the reversed payment's amount negated")
        }
        guard var account = try state.message(Account.self, ContractKeys.account(p.account)) else {
            throw ContractRejection.notFound("\(what): no account \(p.account)")
        }
        account.balanceFen = try TariffRules.add(account.balanceFen, p.amountFen, "balance \(account.balanceFen) + reversal \(p.amountFen)")
        account.totalPaidFen = try TariffRules.add(account.totalPaidFen, p.amountFen, "total paid")
        state.setMessage(ContractKeys.payment(p.serial), p)
        state.set(ContractKeys.reversal(p.reversesSerial), Array(p.serial.utf8))
        return try settle(&account, event: .charge, context: context, state: &state)
    }

    /// Runs the state machine after a balance change and stores the account.
    private static func settle(_ account: inout Account, event: Prepaid.Event, context: BlockContext, state: inout some ContractState) throws -> ContractEffects {
        var effects = ContractEffects()
        let customer = try state.message(CustomerArchive.self, ContractKeys.customer(account.account))
        try runStateMachine(&account, customer: customer, event: event, context: context, state: &state, effects: &effects)
        state.setMessage(ContractKeys.account(account.account), account)
        effects.accounts = [account.account]
        return effects
    }

    static func applyActivation(_ a: ContractActivation, context: BlockContext, state: inout some ContractState) throws {
        guard a.contract == contractName else { throw ContractRejection.invalidArgument("unknown contract \(a.contract)") }
        guard ActivationRecord.implementedVersions.contains(a.version) else {
            throw ContractRejection.invalidArgument("fee-control version \(a.version) is not implemented (have 1)")
        }
        if let vee = a.vee { try VeeSettings.validate(vee) }
        var record = try ActivationRecord.load(state)
        record.add(.init(height: a.activateAtHeight, version: a.version, vee: a.vee), currentHeight: context.height)
        record.store(&state)
    }

    // MARK: - State machine

    /// The thresholds for a customer: its own (`thresholds/<id>`) when set and present, else
    /// the district default (`thresholds/`); nil when neither exists.
    static func thresholds(for customer: CustomerArchive?, state: some ContractState) throws -> FeeControlThresholds? {
        if let id = customer?.thresholdsId, !id.isEmpty,
            let own = try state.message(FeeControlThresholds.self, ContractKeys.thresholds(id))
        {
            return own
        }
        return try state.message(FeeControlThresholds.self, ContractKeys.thresholds(""))
    }

    /// Runs the prepaid machine after a charge or payment and performs its effects: commands,
    /// notices, list keys. Without thresholds nothing changes.
    static func runStateMachine(
        _ account: inout Account, customer: CustomerArchive?, event: Prepaid.Event, context: BlockContext,
        state: inout some ContractState, effects: inout ContractEffects
    ) throws {
        guard let t = try thresholds(for: customer, state: state) else { return }
        let (next, actions) = Prepaid.transition(
            from: account.state, balance: account.balanceFen, event: event, thresholds: t, protectedSupply: account.protectedSupply
        )
        let previous = account.state
        account.state = next
        for action in actions {
            switch action {
            case .command(let kind):
                let detail = "\(previous) -> \(next), balance \(account.balanceFen) fen"
                effects.commandIDs.append(
                    try Commands.issue(kind, account: account, thresholds: t, detail: detail, context: context, state: &state)
                )
            case .notice(let kind, let recipient):
                let contact: String
                switch recipient {
                case .customer: contact = customer?.contact ?? ""
                case .gridWorker: contact = t.gridWorkerContact
                }
                let (language, text) = try NoticeText.render(kind, recipient, account: account, state: state)
                effects.noticeIDs.append(
                    try Commands.notify(
                        kind, account: account.account, recipient: NoticeText.recipientName(recipient),
                        contact: contact, text: text, language: language, context: context, state: &state
                    )
                )
            }
        }
        guard next != previous else { return }
        let warning = next == .warning1 || next == .warning2
        state.set(ContractKeys.warningList(account.account), warning ? [UInt8(truncatingIfNeeded: next.rawValue)] : nil)
        state.set(ContractKeys.disconnectedList(account.account), next == .disconnected ? [] : nil)
    }
}
