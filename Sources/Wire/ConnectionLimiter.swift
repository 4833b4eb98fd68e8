import Identity
import Synchronization

/// How many connections a server holds at once (Docs/security.md, "Limits").
public struct ConnectionLimits: Sendable, Hashable {
    /// Authenticated connections, all roles together.
    public var maxConnections: Int
    /// Of `maxConnections`, this many are kept for the privileged roles (`node`, `ops`,
    /// `admin`): other roles are refused once `maxConnections - reservedForPrivileged` are open.
    public var reservedForPrivileged: Int
    /// Authenticated connections of one identity (one certificate).
    public var maxPerIdentity: Int
    /// Connections accepted whose TLS handshake has not finished (or that were refused and
    /// are being closed); more are closed at once, before any TLS byte.
    public var maxHandshakes: Int

    public init(maxConnections: Int = 1024, reservedForPrivileged: Int = 64, maxPerIdentity: Int = 32, maxHandshakes: Int = 128) {
        self.maxConnections = maxConnections
        self.reservedForPrivileged = reservedForPrivileged
        self.maxPerIdentity = maxPerIdentity
        self.maxHandshakes = maxHandshakes
    }

    /// Roles the reserve is kept for: the chain's own peers and its operators.
    public static let privilegedRoles: Set<Role> = [.node, .ops, .admin]
}

/// Admission of connections against `ConnectionLimits`, shared by every connection of one
/// server.
///
/// A connection takes a handshake slot when it is accepted (`beginHandshake`), trades it for
/// an authenticated slot once its peer is known (`ConnectionAdmission.authenticate`), and
/// gives its slot back when it closes (`ConnectionAdmission.release`). A refused connection
/// keeps its handshake slot until it is closed, so refusals cannot pile up either.
///
/// Thread safety: counters behind a mutex; admissions are used on their channel's loop.
public final class ConnectionLimiter: Sendable {
    public let limits: ConnectionLimits

    private struct State {
        var handshaking = 0
        var authenticated = 0
        var perIdentity: [PeerIdentity: Int] = [:]
        var refused: UInt64 = 0
    }

    private let state = Mutex(State())

    public init(limits: ConnectionLimits) {
        self.limits = limits
    }

    /// Connections accepted and not yet authenticated (or refused and closing).
    public var handshaking: Int { state.withLock { $0.handshaking } }
    /// Authenticated connections.
    public var authenticated: Int { state.withLock { $0.authenticated } }
    /// Connections refused so far (before or after the handshake).
    public var refused: UInt64 { state.withLock { $0.refused } }

    /// Takes a handshake slot for a connection just accepted; nil when `maxHandshakes` are
    /// taken (the caller closes the connection at once).
    public func beginHandshake() -> ConnectionAdmission? {
        let admitted = state.withLock { s -> Bool in
            guard s.handshaking < limits.maxHandshakes else {
                s.refused += 1
                return false
            }
            s.handshaking += 1
            return true
        }
        return admitted ? ConnectionAdmission(limiter: self) : nil
    }

    /// Trades a handshake slot for an authenticated one; the refusal reason when a limit is
    /// reached (the handshake slot is then kept).
    fileprivate func authenticate(_ peer: PeerIdentity) -> String? {
        state.withLock { s in
            let privileged = ConnectionLimits.privilegedRoles.contains(peer.role)
            let cap = privileged ? limits.maxConnections : max(0, limits.maxConnections - limits.reservedForPrivileged)
            if s.authenticated >= cap {
                s.refused += 1
                return privileged
                    ? "the node holds its maximum of \(limits.maxConnections) connections"
                    : "the node holds its maximum of \(cap) connections for role \(peer.role.rawValue) (\(limits.reservedForPrivileged) more are kept for node, ops and admin)"
            }
            let mine = s.perIdentity[peer, default: 0]
            if mine >= limits.maxPerIdentity {
                s.refused += 1
                return "\(peer.role.rawValue) \(peer.name) already holds its maximum of \(limits.maxPerIdentity) connections"
            }
            s.handshaking -= 1
            s.authenticated += 1
            s.perIdentity[peer] = mine + 1
            return nil
        }
    }

    fileprivate func release(handshake: Bool, peer: PeerIdentity?) {
        state.withLock { s in
            if handshake { s.handshaking -= 1 }
            if let peer {
                s.authenticated -= 1
                let left = s.perIdentity[peer, default: 1] - 1
                s.perIdentity[peer] = left > 0 ? left : nil
            }
        }
    }
}

/// One connection's slot in a `ConnectionLimiter`.
///
/// Thread safety: used only on its channel's event loop (the limiter it calls is thread-safe).
public final class ConnectionAdmission {
    private let limiter: ConnectionLimiter
    private var holdsHandshake = true
    private var peer: PeerIdentity?

    fileprivate init(limiter: ConnectionLimiter) {
        self.limiter = limiter
    }

    /// Admits the authenticated `peer`; returns why it is refused, or nil when admitted.
    public func authenticate(_ peer: PeerIdentity) -> String? {
        guard holdsHandshake, self.peer == nil else { return nil }
        if let refusal = limiter.authenticate(peer) { return refusal }
        holdsHandshake = false
        self.peer = peer
        return nil
    }

    /// Gives the slot back; later calls do nothing.
    public func release() {
        guard holdsHandshake || peer != nil else { return }
        limiter.release(handshake: holdsHandshake, peer: peer)
        holdsHandshake = false
        peer = nil
    }
}

@available(*, unavailable)
extension ConnectionAdmission: Sendable {}
