import GridBase
public import GridProto

/// The world state a contract reads and writes, as of this point in the block.
///
/// The block executor hands each contract call a view of the district chain's world state
/// that already holds every write of the earlier transactions of the block. Contracts touch
/// state through this view only.
///
/// Atomicity: a contract call that throws may have written some keys before it threw. The
/// caller must apply every call against a transactional overlay and discard the overlay's
/// writes when the call throws (the transaction is then rejected with the error's code).
///
/// Determinism: implementations must return exactly what was last `set` (or what the
/// committed state holds). The only enumeration is `scan(prefix:_:)`, in ascending byte
/// order of the UTF-8 keys, the same on every replica.
public protocol ContractState {
    /// The value stored at `key`, or nil when there is none.
    func get(_ key: String) throws -> [UInt8]?
    /// Stores `value` at `key`; nil deletes the key.
    mutating func set(_ key: String, _ value: [UInt8]?)
    /// Calls `body(key, value)` for every live key that starts with `prefix`, in ascending
    /// byte order of the UTF-8 keys, as of this point in the block: the pending writes of the
    /// block (and of the open transaction) merged over the committed state, a pending
    /// deletion hiding a committed key. Stops when `body` returns false. `body` must not
    /// write to the state.
    /// - Throws: what `body` throws, or a store read failure.
    func scan(prefix: String, _ body: (String, [UInt8]) throws -> Bool) throws
}

/// The block a contract call runs in. Contracts read no clock: `timestampMs` (the block's
/// timestamp, UTC ms, the same on every replica) is the only "now" they know.
public struct BlockContext: Sendable, Equatable {
    /// The district (side chain id) the block belongs to.
    public var district: String
    /// The block's height.
    public var height: UInt64
    /// The block's timestamp, UTC ms.
    public var timestampMs: Int64

    public init(district: String, height: UInt64, timestampMs: Int64) {
        self.district = district
        self.height = height
        self.timestampMs = timestampMs
    }
}

/// What one transaction produced; the node copies it into the transaction's `TxOutcome`.
public struct ContractEffects: Sendable, Equatable {
    /// Readings of this transaction that passed VEE and advanced billing (a meter's first
    /// reading, the baseline, counts with a zero charge).
    public var readingsBilled: UInt32
    /// Fen charged by this transaction (period, tier and fixed lines; includes the energy of
    /// an earlier held spike confirmed by one of these readings).
    public var chargedFen: Int64
    /// Readings not billed as received, by batch position: the reason (`ReadingFlag`) and a
    /// human-readable detail. Rollover and replaces-estimate readings are listed too.
    /// Sorted by position.
    public var readingResults: [ReadingResult]
    /// Control commands issued by this transaction, in issue order.
    public var commandIDs: [String]
    /// Notices issued by this transaction, in issue order.
    public var noticeIDs: [String]
    /// Accounts whose record this call wrote (balance, state, usage), each once, in the
    /// order first written: what goes up to the main chain with the next anchor.
    public var accounts: [String]
    /// Reconciliation records taken, and records whose id was already on the chain (counted
    /// once, the first stands).
    public var recordsAccepted: UInt32 = 0
    public var recordsDuplicate: UInt32 = 0
    /// Keys of the reconciliation results written.
    public var resultKeys: [String] = []
    /// A note for the outcome's message (e.g. repeated ids whose content differs).
    public var note: String = ""

    public init(
        readingsBilled: UInt32 = 0,
        chargedFen: Int64 = 0,
        readingResults: [ReadingResult] = [],
        commandIDs: [String] = [],
        noticeIDs: [String] = [],
        accounts: [String] = []
    ) {
        self.readingsBilled = readingsBilled
        self.chargedFen = chargedFen
        self.readingResults = readingResults
        self.commandIDs = commandIDs
        self.noticeIDs = noticeIDs
        self.accounts = accounts
    }
}

/// A transaction the contract refuses: the node rejects it with `code` (a gRPC status code)
/// and `reason`, and discards the call's writes.
public struct ContractRejection: Error, Sendable, Equatable, CustomStringConvertible {
    /// INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, or INTERNAL (corrupt
    /// contract state).
    public var code: StatusCode
    public var reason: String

    public init(code: StatusCode, reason: String) {
        self.code = code
        self.reason = reason
    }

    public static func invalidArgument(_ reason: String) -> ContractRejection { .init(code: .invalidArgument, reason: reason) }
    public static func notFound(_ reason: String) -> ContractRejection { .init(code: .notFound, reason: reason) }
    public static func alreadyExists(_ reason: String) -> ContractRejection { .init(code: .alreadyExists, reason: reason) }
    public static func failedPrecondition(_ reason: String) -> ContractRejection { .init(code: .failedPrecondition, reason: reason) }
    public static func internalError(_ reason: String) -> ContractRejection { .init(code: .internal, reason: reason) }

    /// The number, as before (e.g. "contract rejection 9: …").
    public var description: String { "contract rejection \(code.rawValue): \(reason)" }
}

/// A `ContractState` over a dictionary: the in-memory twin used by tests and benchmarks.
public struct InMemoryContractState: ContractState, Sendable, Equatable {
    public var entries: [String: [UInt8]]

    public init(entries: [String: [UInt8]] = [:]) { self.entries = entries }

    public func get(_ key: String) throws -> [UInt8]? { entries[key] }

    public mutating func set(_ key: String, _ value: [UInt8]?) { entries[key] = value }

    /// Every entry sorted by key (byte order of the UTF-8 key): a canonical form to compare
    /// replicas.
    public func sortedEntries() -> [(key: String, value: [UInt8])] {
        entries.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
            .map { (key: $0.key, value: $0.value) }
    }

    public func scan(prefix: String, _ body: (String, [UInt8]) throws -> Bool) throws {
        for key in keys(withPrefix: prefix) {
            guard let value = entries[key] else { continue }
            guard try body(key, value) else { return }
        }
    }

    /// Keys that start with `prefix`, sorted (what the node does with a prefix scan).
    public func keys(withPrefix prefix: String) -> [String] {
        entries.keys.filter { $0.hasPrefix(prefix) }
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }
}

extension ContractState {
    /// Every live entry under `prefix`, in key byte order (`scan(prefix:_:)` collected).
    public func entries(withPrefix prefix: String) throws -> [(key: String, value: [UInt8])] {
        var out: [(key: String, value: [UInt8])] = []
        try scan(prefix: prefix) { key, value in
            out.append((key, value))
            return true
        }
        return out
    }

    /// Decodes the proto message at `key`, or nil when absent.
    func message<M: ProtoMessage>(_ type: M.Type, _ key: String) throws -> M? {
        guard let bytes = try get(key) else { return nil }
        return try M(serializedBytes: bytes)
    }

    mutating func setMessage<M: ProtoMessage>(_ key: String, _ message: M) {
        set(key, message.serializedBytes())
    }
}
