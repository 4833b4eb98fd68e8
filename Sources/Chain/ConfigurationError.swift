/// A configuration (or data directory) that cannot be used, with the reason: thrown when a
/// node, a chain or an offline tool (`gridnode verify`, `gridnode rebuild`) is set up.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
