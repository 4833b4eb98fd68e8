import GridBase
import Identity
import Logging
import Synchronization
import Wire

/// Security refusals (impersonation, relays, wrong district or key) as statuses and log lines.
///
/// Each refusal becomes an `RPCError` whose message is bounded (`clip`: text that came from
/// the network is cut to `maxTextBytes`), and a warning naming the peer (role, CN, district,
/// serial, key fingerprint prefix), the method and the reason. Lines are rate limited per
/// peer certificate: at most one per `interval`; the next one that gets through says how many
/// were suppressed. At most `maxPeers` peers are remembered (the oldest are forgotten first),
/// so a flood of distinct certificates cannot grow it without bound.
///
/// Thread safety: the per-peer state is behind a mutex.
final class RefusalLog: Sendable {
    static let maxTextBytes = 128

    private let logger: Logger
    private let interval: Duration
    private let maxPeers: Int
    private let lastLines = Mutex<[String: (at: ContinuousClock.Instant, suppressed: Int)]>([:])

    /// Counted here, whether or not the line is logged.
    let counters: SecurityRefusals?

    init(logger: Logger, interval: Duration = .seconds(5), maxPeers: Int = 4096, counters: SecurityRefusals? = nil) {
        self.logger = logger
        self.counters = counters
        self.interval = interval
        self.maxPeers = maxPeers
    }

    /// Logs (rate limited) and returns the error to throw.
    func refuse(_ peer: PeerIdentity, method: String, _ reason: String, code: StatusCode = .permissionDenied) -> RPCError {
        let reason = Self.clip(reason, maxBytes: 2 * Self.maxTextBytes + 256)
        note(peer, method: method, code: code, reason: reason)
        return RPCError(code, reason)
    }

    /// Logs (rate limited) a refusal already expressed as `error`.
    func note(_ peer: PeerIdentity, method: String, code: StatusCode, reason: String) {
        counters?.record(SecurityRefusals.kind(method: method, unauthenticated: code == .unauthenticated))
        let key = "\(peer.role.rawValue):\(peer.name)@\(peer.district ?? "")#\(peer.serial)"
        let now = ContinuousClock.now
        let suppressed: Int? = lastLines.withLock { lines in
            if let last = lines[key], now - last.at < interval {
                lines[key]!.suppressed += 1
                return nil
            }
            let suppressed = lines[key]?.suppressed ?? 0
            if lines[key] == nil, lines.count >= maxPeers {
                // Forget the peers heard from longest ago.
                let cutoff = lines.values.map(\.at).sorted()[lines.count / 2]
                lines = lines.filter { $0.value.at > cutoff }
            }
            lines[key] = (now, 0)
            return suppressed
        }
        guard let suppressed else { return }
        var metadata: Logger.Metadata = [
            "peer": "\(Self.clip(peer.name, maxBytes: Self.maxTextBytes))", "role": "\(peer.role.rawValue)",
            "district": "\(peer.district.map { Self.clip($0, maxBytes: Self.maxTextBytes) } ?? "(none)")",
            "serial": "\(Self.clip(peer.serial, maxBytes: 64))", "key": "sha256:\(MemberBinding.prefix(peer.publicKeySHA256))",
            "method": "\(Self.clip(method, maxBytes: Self.maxTextBytes))", "status": "\(code)", "reason": "\(reason)",
        ]
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.warning("security refusal", metadata: metadata)
    }

    /// `text` cut to at most `maxBytes` UTF-8 bytes (on a character boundary), with "…" when cut.
    static func clip(_ text: String, maxBytes: Int = maxTextBytes) -> String {
        guard text.utf8.count > maxBytes else { return text }
        var kept = ""
        var bytes = 0
        for scalar in text.unicodeScalars {
            let size = String(scalar).utf8.count
            guard bytes + size <= maxBytes else { break }
            kept.unicodeScalars.append(scalar)
            bytes += size
        }
        return kept + "…"
    }
}
