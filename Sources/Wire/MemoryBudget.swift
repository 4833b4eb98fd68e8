import Synchronization

/// The node-wide budget for buffered request and response bytes (Docs/security.md,
/// "Limits"): one instance is shared by every connection of a server, and every byte a
/// connection buffers on behalf of a caller is reserved here first and released when it is
/// freed.
///
/// What is counted:
/// - a request MESSAGE, from the moment its header is read (before its body is buffered)
///   until its call ends (single-request kinds) or the method takes it (streaming kinds);
/// - a response MESSAGE, from the moment it is handed to the channel until the socket has
///   taken it.
///
/// A reservation that does not fit is refused, never waited for, so a flood that holds the
/// budget cannot stall anyone: the caller fails that call with `RESOURCE_EXHAUSTED`. Small
/// messages (at most `smallMessageBytes`) may also use `smallMessageReserve` beyond the
/// ceiling, so that status, health and control calls keep working while large requests are
/// refused. The accounted total therefore never exceeds `ceiling + smallMessageReserve`.
///
/// Thread safety: atomics; use from any thread.
public final class MemoryBudget: Sendable {
    public let ceiling: Int
    public let smallMessageBytes: Int
    public let smallMessageReserve: Int
    private let used = Atomic<Int>(0)
    private let peak = Atomic<Int>(0)
    private let refusals = Atomic<UInt64>(0)

    /// - Parameters:
    ///   - ceiling: bytes all connections together may buffer.
    ///   - smallMessageBytes: messages up to this size may use the small-message reserve.
    ///   - smallMessageReserve: extra bytes for small messages; default 1/16 of the ceiling.
    public init(ceiling: Int, smallMessageBytes: Int = 64 << 10, smallMessageReserve: Int? = nil) {
        precondition(ceiling > 0)
        self.ceiling = ceiling
        self.smallMessageBytes = smallMessageBytes
        self.smallMessageReserve = smallMessageReserve ?? ceiling / 16
    }

    /// Bytes reserved now.
    public var usedBytes: Int { used.load(ordering: .relaxed) }
    /// The most bytes ever reserved at once.
    public var peakBytes: Int { peak.load(ordering: .relaxed) }
    /// Reservations refused so far.
    public var refusedReservations: UInt64 { refusals.load(ordering: .relaxed) }
    /// Whether more than three quarters of the ceiling are reserved: connections whose
    /// buffered requests wait for a consumer stop reading until those are taken.
    public var isUnderPressure: Bool { usedBytes > ceiling - ceiling / 4 }

    /// Reserves `bytes`; false (nothing reserved) when they do not fit.
    public func tryReserve(_ bytes: Int) -> Bool {
        guard bytes > 0 else { return true }
        let limit = bytes <= smallMessageBytes ? ceiling + smallMessageReserve : ceiling
        var current = used.load(ordering: .relaxed)
        while true {
            guard current + bytes <= limit else {
                refusals.add(1, ordering: .relaxed)
                return false
            }
            let (exchanged, original) = used.compareExchange(
                expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged {
                recordPeak(current + bytes)
                return true
            }
            current = original
        }
    }

    /// Gives back `bytes` reserved earlier.
    public func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        used.subtract(bytes, ordering: .relaxed)
    }

    private func recordPeak(_ value: Int) {
        var seen = peak.load(ordering: .relaxed)
        while value > seen {
            let (exchanged, original) = peak.compareExchange(expected: seen, desired: value, ordering: .relaxed)
            if exchanged { return }
            seen = original
        }
    }
}
