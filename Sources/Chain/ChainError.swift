public import GridBase
public import GridProto

/// Why the chain refused or could not do what it was asked (submit a transaction, wait for
/// a linearizable read, deliver blocks): a status from the one vocabulary (`StatusCode`), a
/// message, and, for a transaction already on the chain, where it is.
///
/// The node answers calls with it unchanged: its RPC layer maps a `ChainError` to the RPC
/// status with the same code and message, and `location` to the
/// `gridledger-tx-location-bin` trailer (Docs/wire-protocol.md).
public struct ChainError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String
    /// Where the transaction already is (ALREADY_EXISTS for a duplicate or an anchored range).
    public var location: TxLocation?

    public init(_ code: StatusCode, _ message: String, location: TxLocation? = nil) {
        self.code = code
        self.message = message
        self.location = location
    }

    /// `CODE: message`, as the node's RPC errors print.
    public var description: String { "\(code): \(message)" }
}
