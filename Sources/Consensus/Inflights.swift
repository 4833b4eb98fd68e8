/// The append messages sent to one follower and not yet acknowledged, oldest first
/// (etcd-io/raft `tracker/inflights.go`). Bounds pipelining by count and by bytes.
///
/// Invariant: `items` indexes strictly increase; `bytes` is the sum of their sizes;
/// `items.count <= capacity`.
struct Inflights: Sendable, Hashable {
    private(set) var items: [(index: UInt64, bytes: Int)] = []
    private(set) var bytes = 0
    let capacity: Int
    /// 0: unlimited.
    let maxBytes: Int

    init(capacity: Int, maxBytes: Int) {
        self.capacity = capacity
        self.maxBytes = maxBytes
    }

    var count: Int { items.count }

    /// True when no further append may be sent.
    var isFull: Bool { items.count >= capacity || (maxBytes > 0 && bytes >= maxBytes) }

    /// Records an append whose last entry is `index`.
    mutating func add(index: UInt64, bytes size: Int) {
        items.append((index, size))
        bytes += size
    }

    /// Frees every message whose last entry is `<= index` (acknowledged).
    mutating func free(upTo index: UInt64) {
        var n = 0
        while n < items.count, items[n].index <= index {
            bytes -= items[n].bytes
            n += 1
        }
        if n > 0 { items.removeFirst(n) }
    }

    mutating func reset() {
        items.removeAll(keepingCapacity: true)
        bytes = 0
    }

    static func == (a: Inflights, b: Inflights) -> Bool {
        a.items.map(\.index) == b.items.map(\.index) && a.bytes == b.bytes
    }

    func hash(into h: inout Hasher) {
        h.combine(items.count)
        h.combine(bytes)
    }
}
