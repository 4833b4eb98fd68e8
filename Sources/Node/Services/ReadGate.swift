import Chain
import Identity
import Logging
import Synchronization
import Wire

/// Where the read handlers apply `ReadPolicy`: a refused read ends with PERMISSION_DENIED
/// and is logged with the peer, the method and the reason, at most one line per peer per
/// `logInterval` (a client retrying in a loop does not flood the log).
///
/// Thread safety: the per-peer log times are behind a mutex.
/// Invariant: the table holds at most `maxPeers` entries (older ones are dropped first).
final class ReadGate: Sendable {
    private let logger: Logger
    private let logInterval: Duration
    private let maxPeers = 4096
    private let lastLogged = Mutex<[PeerIdentity: ContinuousClock.Instant]>([:])

    /// Counted here, whether or not the line is logged.
    let counters: SecurityRefusals?

    init(logger: Logger, logInterval: Duration = .seconds(5), counters: SecurityRefusals? = nil) {
        self.logger = logger
        self.counters = counters
        self.logInterval = logInterval
    }

    /// The policy's decision for the caller reading `subject` of `ledger`'s chain (nil: not
    /// a chain read); throws PERMISSION_DENIED when it is refused.
    @discardableResult
    func check(_ ctx: RPCCallContext, _ ledger: Ledger?, _ subject: ReadPolicy.Subject) throws -> ReadPolicy.Decision {
        let chain = ledger.map { ReadPolicy.Chain(id: $0.chainID, kind: $0.kind) }
        let decision = ReadPolicy.decide(role: ctx.peer.role, district: ctx.peer.district, name: ctx.peer.name, chain: chain, subject: subject)
        if case .denied(let reason) = decision { throw refuse(ctx, reason) }
        return decision
    }

    /// Logs the refusal (rate-limited per peer) and returns the error to throw.
    func refuse(_ ctx: RPCCallContext, _ reason: String) -> RPCError {
        counters?.record(.read)
        let now = ContinuousClock.now
        let log = lastLogged.withLock { table -> Bool in
            if let last = table[ctx.peer], now - last < logInterval { return false }
            if table.count >= maxPeers {
                table = table.filter { now - $0.value < logInterval }
                if table.count >= maxPeers, let oldest = table.min(by: { $0.value < $1.value })?.key { table[oldest] = nil }
            }
            table[ctx.peer] = now
            return true
        }
        if log {
            logger.notice("read refused", metadata: [
                "peer": "\(ReadPolicy.bounded(ctx.peer.description))", "method": "\(ReadPolicy.bounded(ctx.method))", "reason": "\(reason)",
            ])
        }
        return RPCError(.permissionDenied, reason)
    }
}
