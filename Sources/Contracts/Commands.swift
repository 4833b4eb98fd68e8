import GridBase
import GridProto

/// Control commands and notices: deterministic ids, issue, lifecycle (DOMAIN.md "Prepaid fee
/// control": issued → acknowledged or failed by the device, or expired).
///
/// Invariants: every command has exactly one `command-status/<status>/<id>` index key,
/// matching its `status`; `commands/pending` lists exactly the ISSUED commands, sorted by
/// (valid_until, id).
enum Commands {
    static let defaultValidMs: Int64 = 3_600_000

    /// The next id of this block: "<district>-<height>-<n>", n = 0, 1, … counting commands and
    /// notices together within the block (counter at `contract/fee-control/seq`, reset when
    /// the height changes). Identical on every replica because blocks apply in order.
    static func nextID(context: BlockContext, state: inout some ContractState) throws -> String {
        var n: UInt32 = 0
        if let bytes = try state.get(ContractKeys.idCounter) {
            var r = BigEndianReader(contractRecord: bytes, what: "id counter")
            try r.expectVersion(1)
            let height = try r.u64()
            let next = try r.u32()
            if height == context.height { n = next }
        }
        var w = BigEndianWriter()
        w.u8(1)
        w.u64(context.height)
        w.u32(n + 1)
        state.set(ContractKeys.idCounter, w.bytes)
        return "\(context.district)-\(context.height)-\(n)"
    }

    /// Issues a command for `account`: stored ISSUED, valid until block time + the thresholds'
    /// command_valid_ms (default 1 h), indexed and queued for expiry.
    static func issue(
        _ kind: CommandKind, account: Account, thresholds: FeeControlThresholds, detail: String,
        context: BlockContext, state: inout some ContractState
    ) throws -> String {
        let id = try nextID(context: context, state: &state)
        let validMs = thresholds.commandValidMs > 0 ? thresholds.commandValidMs : defaultValidMs
        // Saturating: thresholds are bounded by validation, the block time by consensus; a
        // trap here would halt the replica.
        let (until, overflow) = context.timestampMs.addingReportingOverflow(validMs)
        let command = ControlCommand(
            commandId: id, district: context.district, account: account.account, meterId: account.meterId,
            kind: kind, status: .issued, issuedMs: context.timestampMs,
            validUntilMs: overflow ? .max : until, issuedHeight: context.height, detail: detail
        )
        state.setMessage(ContractKeys.command(id), command)
        state.set(ContractKeys.commandStatus(CommandStatus.issued.rawValue, id), [])
        var pending = try loadPending(state)
        pending.append((command.validUntilMs, id))
        pending.sort(by: pendingOrder)
        storePending(pending, state: &state)
        return id
    }

    /// Issues a notice (an SMS the marketing system sends).
    static func notify(
        _ kind: NoticeKind, account: String, recipient: String, contact: String, text: String, language: String,
        context: BlockContext, state: inout some ContractState
    ) throws -> String {
        let id = try nextID(context: context, state: &state)
        let notice = Notice(
            noticeId: id, district: context.district, account: account, kind: kind, recipient: recipient,
            contact: contact, text: text, issuedMs: context.timestampMs, height: context.height, language: language
        )
        state.setMessage(ContractKeys.notice(id), notice)
        return id
    }

    /// A device's answer. Throws NOT_FOUND for an unknown command, FAILED_PRECONDITION when
    /// it is no longer ISSUED or its valid-until has passed (block time > valid_until).
    static func acknowledge(_ ack: CommandAck, context: BlockContext, state: inout some ContractState) throws {
        guard ContractKeys.isValidComponent(ack.commandId),
            var command = try state.message(ControlCommand.self, ContractKeys.command(ack.commandId))
        else { throw ContractRejection.notFound("no command \(ack.commandId)") }
        guard command.status == .issued else {
            throw ContractRejection.failedPrecondition("command \(ack.commandId) is already \(command.status)")
        }
        guard context.timestampMs <= command.validUntilMs else {
            throw ContractRejection.failedPrecondition("command \(ack.commandId) expired at \(command.validUntilMs)")
        }
        command.detail = ack.detail
        try move(&command, to: ack.success ? .acknowledged : .failed, state: &state)
    }

    /// Expires every ISSUED command whose valid_until is before the block time; returns their
    /// ids in (valid_until, id) order.
    static func expire(context: BlockContext, state: inout some ContractState) throws -> [String] {
        let pending = try loadPending(state)
        let due = pending.prefix { $0.validUntil < context.timestampMs }
        guard !due.isEmpty else { return [] }
        var expired: [String] = []
        for entry in due {
            guard var command = try state.message(ControlCommand.self, ContractKeys.command(entry.id)) else { continue }
            try move(&command, to: .expired, state: &state, updatePending: false)
            expired.append(entry.id)
        }
        storePending(Array(pending.dropFirst(due.count)), state: &state)
        return expired
    }

    /// Changes a command's status, its index key and (leaving ISSUED) its pending entry.
    private static func move(
        _ command: inout ControlCommand, to status: CommandStatus, state: inout some ContractState, updatePending: Bool = true
    ) throws {
        let id = command.commandId
        state.set(ContractKeys.commandStatus(command.status.rawValue, id), nil)
        if command.status == .issued, updatePending {
            storePending(try loadPending(state).filter { $0.id != id }, state: &state)
        }
        command.status = status
        state.setMessage(ContractKeys.command(id), command)
        state.set(ContractKeys.commandStatus(status.rawValue, id), [])
    }

    typealias PendingEntry = (validUntil: Int64, id: String)

    private static func pendingOrder(_ a: PendingEntry, _ b: PendingEntry) -> Bool {
        a.validUntil != b.validUntil ? a.validUntil < b.validUntil : Array(a.id.utf8).lexicographicallyPrecedes(Array(b.id.utf8))
    }

    /// `commands/pending`: `u8 version=1, u32 n, n × (i64 valid_until, string id)`.
    static func loadPending(_ state: some ContractState) throws -> [PendingEntry] {
        guard let bytes = try state.get(ContractKeys.pendingCommands) else { return [] }
        var r = BigEndianReader(contractRecord: bytes, what: "pending commands")
        try r.expectVersion(1)
        var entries: [PendingEntry] = []
        for _ in 0..<(try r.u32()) { entries.append((try r.i64(), try r.string())) }
        return entries
    }

    private static func storePending(_ entries: [PendingEntry], state: inout some ContractState) {
        guard !entries.isEmpty else {
            state.set(ContractKeys.pendingCommands, nil)
            return
        }
        var w = BigEndianWriter()
        w.u8(1)
        w.u32(UInt32(entries.count))
        for e in entries {
            w.i64(e.validUntil)
            w.string(e.id)
        }
        state.set(ContractKeys.pendingCommands, w.bytes)
    }
}
