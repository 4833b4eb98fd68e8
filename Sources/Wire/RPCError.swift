import GridBase
import GridProto

/// A call that ended with a status other than OK. Handlers throw it to choose the status a
/// caller sees; any other error a handler throws reaches the caller as `INTERNAL`.
public struct RPCError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String
    /// Trailer metadata sent with the status (e.g. where a duplicate transaction already is).
    public var metadata: [MetadataEntry]

    public init(_ code: StatusCode, _ message: String, metadata: [MetadataEntry] = []) {
        self.code = code
        self.message = message
        self.metadata = metadata
    }

    /// The value of the first trailer metadata entry named `key`.
    public func metadataValue(_ key: String) -> [UInt8]? {
        metadata.first { $0.key == key }?.value
    }

    public var description: String { "\(code): \(message)" }
}
