import GridProto

/// The prepaid fee-control state machine (DOMAIN.md "Prepaid fee control"), pure: it maps
/// (state, balance, event) to the next state and the effects to emit; `FeeControl` performs
/// them.
///
/// Target state of a balance b (thresholds alarm1 > alarm2 ≥ 0, overdraft ≥ 0):
/// b > alarm1 → NORMAL; alarm2 < b ≤ alarm1 → WARNING1; −overdraft < b ≤ alarm2 → WARNING2;
/// b ≤ −overdraft → DISCONNECTED, except for protected supply, which stays in WARNING2
/// (overdraft unbounded, never tripped).
///
/// Effects happen only on entering a state, never while staying in it:
/// - the alarm is on in every state but NORMAL: ALARM_ON when leaving NORMAL, ALARM_OFF when
///   returning to it (from a warning, or straight from a reconnect);
/// - entering WARNING1 / WARNING2: an SMS to the customer (NOTICE_KIND_WARNING1 / 2);
/// - entering DISCONNECTED: TRIP, an SMS to the customer (NOTICE_KIND_DISCONNECT) and a
///   formal disconnect notice to the grid worker (NOTICE_KIND_FORMAL_DISCONNECT);
/// - DISCONNECTED is left only by a payment bringing b above reconnect_allowed: DIRECT_CLOSE
///   (thresholds.direct_close) or ALLOW_CLOSE, NOTICE_KIND_RECONNECT to the customer and to
///   the grid worker; then the state follows the balance (entering WARNING1/2 sends its SMS;
///   entering NORMAL sends ALARM_OFF).
enum Prepaid {
    enum Event: Equatable {
        case charge
        case payment
    }

    enum Recipient: Equatable {
        case customer
        case gridWorker
    }

    enum Effect: Equatable {
        case command(CommandKind)
        case notice(NoticeKind, Recipient)
    }

    static func target(balance b: Int64, thresholds t: FeeControlThresholds, protectedSupply: Bool) -> AccountState {
        if b > t.alarm1Fen { return .normal }
        if b > t.alarm2Fen { return .warning1 }
        if b > -t.overdraftLimitFen || protectedSupply { return .warning2 }
        return .disconnected
    }

    /// The next state and the effects of entering it, in emission order.
    static func transition(
        from current: AccountState, balance: Int64, event: Event, thresholds t: FeeControlThresholds, protectedSupply: Bool
    ) -> (state: AccountState, effects: [Effect]) {
        var effects: [Effect] = []
        if current == .disconnected {
            guard event == .payment, balance > t.reconnectAllowedFen else { return (.disconnected, []) }
            effects = [
                .command(t.directClose ? .directClose : .allowClose),
                .notice(.reconnect, .customer),
                .notice(.reconnect, .gridWorker),
            ]
        }
        var next = target(balance: balance, thresholds: t, protectedSupply: protectedSupply)
        // Validation guarantees reconnect_allowed ≥ −overdraft, so a reconnect never lands in
        // DISCONNECTED; keep the machine total anyway.
        if current == .disconnected, next == .disconnected { next = .warning2 }
        guard next != current else { return (current, effects) }
        let alarmWasOn = current != .normal
        switch next {
        case .normal:
            if alarmWasOn { effects.append(.command(.alarmOff)) }
        case .warning1:
            if !alarmWasOn { effects.append(.command(.alarmOn)) }
            effects.append(.notice(.warning1, .customer))
        case .warning2:
            if !alarmWasOn { effects.append(.command(.alarmOn)) }
            effects.append(.notice(.warning2, .customer))
        case .disconnected:
            if !alarmWasOn { effects.append(.command(.alarmOn)) }
            effects += [.command(.trip), .notice(.disconnect, .customer), .notice(.formalDisconnect, .gridWorker)]
        default:
            break
        }
        return (next, effects)
    }

    /// Longest command validity accepted (366 days).
    static let maxCommandValidMs: Int64 = 366 * 86_400_000

    /// Throws INVALID_ARGUMENT unless alarm1 > alarm2 ≥ 0, overdraft ≥ 0,
    /// reconnect_allowed ≥ −overdraft, 0 ≤ command_valid_ms ≤ 366 days, and alarm1,
    /// overdraft and reconnect_allowed within ±10^15 fen.
    static func validate(_ t: FeeControlThresholds) throws {
        func fail(_ why: String) -> ContractRejection { .invalidArgument("thresholds \"\(t.thresholdsId)\": \(why)") }
        guard ContractKeys.isValidComponent(t.thresholdsId, allowEmpty: true) else { throw fail("id with '/'") }
        guard t.alarm1Fen > t.alarm2Fen, t.alarm2Fen >= 0 else { throw fail("needs alarm1 > alarm2 >= 0") }
        guard t.overdraftLimitFen >= 0 else { throw fail("negative overdraft limit") }
        guard t.reconnectAllowedFen >= -t.overdraftLimitFen else { throw fail("reconnect_allowed below -overdraft_limit") }
        guard t.commandValidMs >= 0 else { throw fail("negative command_valid_ms") }
        guard t.commandValidMs <= maxCommandValidMs else { throw fail("command_valid_ms above 366 days") }
        // Bounded so that −overdraft and every comparison stay far from Int64's ends.
        for v in [t.alarm1Fen, t.overdraftLimitFen, t.reconnectAllowedFen] where v.magnitude > FeeControl.maxAbsAmountFen.magnitude {
            throw fail("amount out of range (|fen| ≤ 10^15)")
        }
    }
}
