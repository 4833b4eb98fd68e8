/// Why a `LevelDB`, `ChainStore` or `RaftLogStore` operation failed.
///
/// Every failing operation leaves the store unchanged: a refused commit or persist writes
/// nothing, and a failed LevelDB write applies none of its batch.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// LevelDB reported an I/O or usage error (file system, lock held by another process,
    /// missing database with `createIfMissing: false`). The text is LevelDB's, prefixed
    /// with what was being done.
    case io(String)
    /// Stored bytes are not what the format says (LevelDB checksum failure, a value of the
    /// wrong length, an undecodable block, a head without its block).
    case corrupt(String)
    /// A state key that the layout cannot store: empty, or containing a NUL byte (NUL
    /// separates the key from the version in history keys; Docs/storage-format.md).
    case invalidKey(String)
    /// An argument that violates the called method's contract: `ChainStore.commit` (hash
    /// lengths, transaction-id count, duplicate transaction, chain id of the block) or
    /// `RaftLogStore.persist` / `compact` / `setApplied` (a hole or a decreasing term in the
    /// log, a snapshot going backwards, an index beyond what is committed or applied).
    case invalidArgument(String)
    /// A commit of block `got` when the next height is `expected`: it would leave a hole.
    case gap(expected: UInt64, got: UInt64)
    /// A commit of block `height` at or below the committed head `head`: it would replace
    /// a committed block.
    case fork(height: UInt64, head: UInt64)
    /// The directory holds the chain `stored`, not the `requested` one.
    case chainMismatch(stored: String, requested: String)
    /// The store was written in chain format `stored`; this code reads `supported` only.
    case formatMismatch(stored: Int, supported: Int)

    public var description: String {
        switch self {
        case .io(let text): return "storage I/O error: \(text)"
        case .corrupt(let text): return "storage corrupt: \(text)"
        case .invalidKey(let text): return "invalid state key: \(text)"
        case .invalidArgument(let text): return "invalid argument: \(text)"
        case .gap(let expected, let got):
            return "refused block \(got): the next block must be \(expected) (no gaps)"
        case .fork(let height, let head):
            return "refused block \(height): block \(height) is already committed (head \(head); no forks)"
        case .chainMismatch(let stored, let requested):
            return "store holds chain \"\(stored)\", not \"\(requested)\""
        case .formatMismatch(let stored, let supported):
            return "store was written in chain format \(stored); this gridnode reads format \(supported) only (no migration: start from a fresh data directory)"
        }
    }

    /// Maps LevelDB's error text (`Status::ToString()`) to a case.
    static func leveldb(_ text: String, while context: String) -> StoreError {
        if text.hasPrefix("Corruption:") {
            return .corrupt("\(context): \(text)")
        }
        return .io("\(context): \(text)")
    }
}
