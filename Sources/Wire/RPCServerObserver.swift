import GridBase

/// What an RPC server reports as it happens, for metrics (the node's `NodeMetrics`).
///
/// Contract: called on the connection's event loop, inline with the call or connection it
/// reports; an implementation must be cheap and must not block (a counter increment, a
/// histogram observation). `method` is always a path the router serves, or `nil` for a path
/// it does not know (so an implementation can bound its label values by the method table).
///
/// Thread safety: called from every event loop at once.
public protocol RPCServerObserver: Sendable {
    /// A call ended with `code` (`.ok` included) after `duration` (from its HEADERS to its
    /// TRAILERS); refusals before the handler ran (role, unknown method) are reported too,
    /// with a zero duration.
    func callFinished(method: String?, code: StatusCode, duration: Duration)
    /// A connection failed with `error` below the RPC layer (TLS: a failed or timed-out
    /// handshake, a rejected peer, a broken record), before or after authentication.
    func connectionFailed(_ error: any Error)
}
