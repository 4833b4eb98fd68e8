import NIOCore
import Synchronization

/// Messages a task has handed to a connection but the event loop has not written yet.
///
/// Producers (any task) append without a hop to the event loop; the loop takes the whole
/// batch at once and writes it as one buffer. A producer waits while more than
/// `highWaterBytes` are queued or the channel is not writable, so one stream never makes
/// memory grow without bound.
///
/// Thread safety: all state behind a mutex.
/// Invariant: `drainScheduled` is true exactly while one drain is queued on the event loop.
final class MessageOutbox: Sendable {
    private struct State {
        var pending: [[UInt8]] = []
        var pendingBytes = 0
        var drainScheduled = false
        var blocked = false
        var waiters: [CheckedContinuation<Void, Error>] = []
        var failure: Error?
    }

    private let state = Mutex(State())
    let highWaterBytes: Int

    init(highWaterBytes: Int = 256 << 10) {
        self.highWaterBytes = highWaterBytes
    }

    /// Appends a message. Returns whether the caller must schedule a drain on the loop, and
    /// whether it must then `waitForRoom()`.
    func enqueue(_ bytes: [UInt8]) throws -> (scheduleDrain: Bool, mustWait: Bool) {
        try state.withLock { s in
            if let failure = s.failure { throw failure }
            s.pending.append(bytes)
            s.pendingBytes += bytes.count + Frame.headerLength
            let mustWait = s.pendingBytes > highWaterBytes || s.blocked
            if s.drainScheduled { return (false, mustWait) }
            s.drainScheduled = true
            return (true, mustWait)
        }
    }

    /// Waits while the queue is over the high-water mark or the channel is congested.
    func waitForRoom() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
            let outcome: Result<Void, Error>? = state.withLock { s in
                if let failure = s.failure { return .failure(failure) }
                if s.pendingBytes <= highWaterBytes && !s.blocked { return .success(()) }
                s.waiters.append(c)
                return nil
            }
            if let outcome { c.resume(with: outcome) }
        }
    }

    /// Event loop: takes every queued message.
    func takeAll() -> [[UInt8]] {
        state.withLock { s in
            s.drainScheduled = false
            s.pendingBytes = 0
            defer { s.pending.removeAll(keepingCapacity: true) }
            return s.pending
        }
    }

    /// Event loop: after a drain or a writability change, releases waiting producers when
    /// the channel can take more.
    func setWritable(_ writable: Bool) {
        let release: [CheckedContinuation<Void, Error>] = state.withLock { s in
            s.blocked = !writable
            guard writable, s.pendingBytes <= highWaterBytes else { return [] }
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for w in release { w.resume() }
    }

    /// Fails waiting and future producers (the call is over).
    func fail(_ error: Error) {
        let release: [CheckedContinuation<Void, Error>] = state.withLock { s in
            if s.failure == nil { s.failure = error }
            s.pending.removeAll()
            s.pendingBytes = 0
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for w in release { w.resume(throwing: error) }
    }

    /// Encodes `messages` as MESSAGE frames of `streamID` into one buffer.
    static func encode(_ messages: [[UInt8]], streamID: UInt32, allocator: ByteBufferAllocator) -> ByteBuffer {
        let total = messages.reduce(0) { $0 + $1.count + Frame.headerLength }
        var buffer = allocator.buffer(capacity: total)
        for m in messages {
            buffer.writeInteger(UInt32(m.count))
            buffer.writeInteger(FrameType.message.rawValue)
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(streamID)
            buffer.writeBytes(m)
        }
        return buffer
    }
}

/// Read-side flow control of one streaming call: the connection stops reading from the
/// socket while a consumer lags `limit` messages (or bytes) behind, and resumes at half of it.
///
/// The consumer counts what it takes with an atomic and hops to the event loop only when
/// the connection is paused, so a fast consumer costs no hop per message.
/// On a server, the bytes of requests buffered for the consumer are reserved in the node's
/// `MemoryBudget` (by the frame decoder); the flow releases them as the consumer takes each
/// request, and releases the rest when the call is over (`close`), exactly once.
/// Thread safety: atomics and a mutex; `yielded` is written only on the event loop.
final class InboundFlow: Sendable {
    let consumed = Atomic<Int>(0)
    let paused = Atomic<Bool>(false)
    private let budget: MemoryBudget?
    /// Reserved bytes buffered for the consumer; nil once the call is over.
    private let buffered = Mutex<Int?>(0)

    init(budget: MemoryBudget? = nil) {
        self.budget = budget
    }

    /// Event loop: `bytes` (reserved in the budget) were buffered for the consumer. Returns
    /// false, releasing them, when the call is already over.
    @discardableResult
    func didBuffer(_ bytes: Int) -> Bool {
        let open = buffered.withLock { b -> Bool in
            guard let current = b else { return false }
            b = current + bytes
            return true
        }
        if !open { budget?.release(bytes) }
        return open
    }

    /// Reserved bytes buffered and not taken by the consumer yet.
    var bufferedBytes: Int { buffered.withLock { $0 ?? 0 } }

    /// Consumer side: counts one message of `bytes`; true when the loop must be asked to resume.
    func didConsume(bytes: Int = 0) -> Bool {
        if bytes > 0 {
            let release = buffered.withLock { b -> Bool in
                guard let current = b else { return false }
                b = current - bytes
                return true
            }
            if release { budget?.release(bytes) }
        }
        consumed.add(1, ordering: .sequentiallyConsistent)
        return paused.load(ordering: .sequentiallyConsistent)
    }

    /// The call is over: releases every byte still buffered; later calls do nothing.
    func close() {
        let left = buffered.withLock { b -> Int in
            defer { b = nil }
            return b ?? 0
        }
        budget?.release(left)
    }
}
