import GridProto
import Synchronization

/// Fans each newly durable block out to subscribers.
///
/// Each subscriber has a bounded buffer (`capacity` blocks). A subscriber whose buffer is
/// full when a block arrives is cut off: its stream ends with `ChainError` RESOURCE_EXHAUSTED, so a
/// slow reader never makes the node buffer without bound.
/// Thread safety: behind a mutex; `publish` is called by the ledger's cutter only.
package final class BlockFeed: Sendable {
    package struct Item: Sendable {
        package let height: UInt64
        package let hash: [UInt8]
        package let blockBytes: [UInt8]
    }

    private struct State {
        var subscribers: [Int: AsyncThrowingStream<Item, Error>.Continuation] = [:]
        var next = 0
        var finished = false
    }

    private let state = Mutex(State())
    package let capacity: Int

    package init(capacity: Int = 256) {
        self.capacity = capacity
    }

    package func subscribe() -> AsyncThrowingStream<Item, Error> {
        let (stream, continuation) = AsyncThrowingStream<Item, Error>.makeStream(bufferingPolicy: .bufferingOldest(capacity))
        let id: Int? = state.withLock { s in
            if s.finished { return nil }
            let id = s.next
            s.next += 1
            s.subscribers[id] = continuation
            return id
        }
        guard let id else {
            continuation.finish(throwing: ChainError(.unavailable, "node is shutting down"))
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    package func publish(height: UInt64, hash: [UInt8], blockBytes: [UInt8]) {
        let item = Item(height: height, hash: hash, blockBytes: blockBytes)
        let subscribers = state.withLock { Array($0.subscribers) }
        for (id, continuation) in subscribers {
            if case .dropped = continuation.yield(item) {
                continuation.finish(throwing: ChainError(.resourceExhausted, "subscriber fell more than \(capacity) blocks behind; re-subscribe from height \(height)"))
                _ = state.withLock { $0.subscribers.removeValue(forKey: id) }
            }
        }
    }

    package func finishAll() {
        let subscribers = state.withLock { s in
            s.finished = true
            defer { s.subscribers.removeAll() }
            return Array(s.subscribers.values)
        }
        for c in subscribers { c.finish() }
    }
}

extension Ledger {
    /// Calls `body` for every block from `height` on, in order: the stored ones, then each
    /// new one as it commits, until the feed ends (node stopping) or `body` throws (the
    /// subscriber went away or is too slow; the feed cuts slow subscribers off).
    package func follow(from height: UInt64, _ body: (Block, [UInt8]) async throws -> Void) async throws {
        // Subscribe first, then catch up from the store: a block committed in between is in
        // the live buffer, and heights already sent are skipped.
        let live = feed.subscribe()
        var next = height
        while let head = store.head?.height, next <= head {
            let stop = min(head + 1, next + 256)
            var batch: [[UInt8]] = []
            try store.blocks(from: next, to: stop) { _, bytes in
                batch.append(bytes)
                return true
            }
            for bytes in batch {
                let block = try Block(serializedBytes: bytes)
                try await body(block, block.header.map(hashing.headerHash) ?? [])
            }
            next = stop
        }
        for try await item in live where item.height >= next {
            try await body(try Block(serializedBytes: item.blockBytes), item.hash)
            next = item.height + 1
        }
    }
}
