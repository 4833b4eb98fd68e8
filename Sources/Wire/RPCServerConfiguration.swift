import NIOCore
import Synchronization

/// Per-connection limits and timers of an RPC server (Docs/wire-protocol.md).
public struct RPCServerConfiguration: Sendable {
    public var limits = FrameLimits()
    /// HEADERS beyond this many open calls get `RESOURCE_EXHAUSTED`.
    public var maxConcurrentStreams = 256
    /// Requests buffered for one streaming call before the connection stops reading.
    public var maxBufferedRequests = 64
    /// Bytes of requests buffered for one streaming call before the connection stops reading.
    public var maxBufferedRequestBytes = 8 << 20
    /// Bytes of one call's responses handed to the socket and not yet taken by it; a call
    /// whose client does not read beyond this is ended with `RESOURCE_EXHAUSTED`.
    public var maxUnflushedResponseBytes = 8 << 20
    /// How long a connection refused for a connection limit stays open after its GOAWAY,
    /// answering calls with `RESOURCE_EXHAUSTED`, before it is closed.
    public var refusalLinger: TimeAmount = .milliseconds(500)
    /// A connection silent this long is pinged.
    public var keepaliveInterval: TimeAmount = .seconds(30)
    /// A pinged connection that stays silent this long is closed.
    public var keepaliveTimeout: TimeAmount = .seconds(10)
    /// A connection without open calls this long gets GOAWAY(OK, "idle").
    public var idleTimeout: TimeAmount = .minutes(5)
    /// How long calls in flight may run after GOAWAY before they get `UNAVAILABLE`.
    public var shutdownGracePeriod: TimeAmount = .seconds(10)

    public init() {}

    /// The period of the connection's housekeeping timer.
    var tick: TimeAmount {
        let smallest = min(keepaliveInterval, keepaliveTimeout, idleTimeout)
        return max(.milliseconds(20), min(.seconds(1), .nanoseconds(smallest.nanoseconds / 4)))
    }
}

/// Counters shared by every connection of one server.
///
/// Thread safety: all members are atomics; read and update from any thread.
public final class RPCServerStats: Sendable {
    let openConnectionsAtomic = Atomic<Int>(0)
    let callsServedAtomic = Atomic<UInt64>(0)
    let callsFailedAtomic = Atomic<UInt64>(0)
    let connectionsRefusedAtomic = Atomic<UInt64>(0)
    let connectionsOverLimitAtomic = Atomic<UInt64>(0)
    let callsOverBudgetAtomic = Atomic<UInt64>(0)
    let callsRoleRefusedAtomic = Atomic<UInt64>(0)

    /// Told of every finished call and failed connection (metrics); nil = nobody.
    public let observer: (any RPCServerObserver)?

    public init(observer: (any RPCServerObserver)? = nil) {
        self.observer = observer
    }

    public var openConnections: Int { openConnectionsAtomic.load(ordering: .relaxed) }
    /// Calls that ended with OK.
    public var callsServed: UInt64 { callsServedAtomic.load(ordering: .relaxed) }
    /// Calls that ended with any other status.
    public var callsFailed: UInt64 { callsFailedAtomic.load(ordering: .relaxed) }
    /// Connections closed for a protocol or TLS error.
    public var connectionsRefused: UInt64 { connectionsRefusedAtomic.load(ordering: .relaxed) }

    /// Connections refused for a connection limit (before or after the handshake).
    public var connectionsOverLimit: UInt64 { connectionsOverLimitAtomic.load(ordering: .relaxed) }
    /// Calls ended with `RESOURCE_EXHAUSTED` because the memory budget or the unflushed
    /// response bound was reached.
    public var callsOverBudget: UInt64 { callsOverBudgetAtomic.load(ordering: .relaxed) }
    /// Calls refused because the caller's role may not call the method (PERMISSION_DENIED).
    public var callsRoleRefused: UInt64 { callsRoleRefusedAtomic.load(ordering: .relaxed) }

    public func recordConnectionOverLimit() {
        connectionsOverLimitAtomic.add(1, ordering: .relaxed)
    }

    public func recordRefusedConnection() {
        connectionsRefusedAtomic.add(1, ordering: .relaxed)
    }
}
