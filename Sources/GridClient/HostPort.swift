/// `host:port` and `[v6]:port` parsing: the form of every address a client dials and a node
/// listens on or names its peers by.
public enum HostPort {
    /// An address that is not `host:port` (or `[host]:port`) with a port in 0...65535.
    public struct Invalid: Error, CustomStringConvertible, Sendable, Equatable {
        /// One sentence naming the address and the expected form.
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// Splits `text` into host and port; the brackets of `[v6]:port` are removed.
    ///
    /// - Throws: `Invalid` when there is no host, no port, or the port is out of range.
    public static func parse(_ text: String) throws(Invalid) -> (host: String, port: Int) {
        var host: Substring
        var portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw Invalid("address '\(text)' is not [host]:port")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw Invalid("address '\(text)' is not host:port") }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else {
            throw Invalid("address '\(text)' is not host:port with a port in 0...65535")
        }
        return (String(host), port)
    }
}
