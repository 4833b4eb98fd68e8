/// Bounded text: what the node says back about what a caller sent it.
///
/// Every text taken from a request (a method name, a service name, a chain id, an account,
/// a key …) is hostile: it may be megabytes long or hold control characters that forge log
/// lines. Status messages and log lines take such text only through `Bounded.quote`, and
/// every status message leaves the server through `Bounded.statusMessage`, so no TRAILERS
/// or GOAWAY frame can exceed the receiver's control-frame limit (Docs/security.md,
/// "Error texts").
public enum Bounded {
    /// Bytes of caller-supplied text kept by `quote`.
    public static let quoteBytes = 128
    /// Bytes of a status message (TRAILERS, GOAWAY) kept by `statusMessage`.
    public static let statusMessageBytes = 1024

    /// `text` between single quotes, control characters escaped, cut to at most `max`
    /// bytes of UTF-8 (never inside a character); a cut text ends in `…` and says how long
    /// the original was: `'abc…'(20000 bytes)`.
    public static func quote(_ text: String, max: Int = quoteBytes) -> String {
        let escaped = escapingControlCharacters(text, stopAfter: max + 1)
        if text.utf8.count <= max, escaped.utf8.count <= max {
            return "'" + escaped + "'"
        }
        return "'" + prefix(escaped, maxBytes: max) + "…'(\(text.utf8.count) bytes)"
    }

    /// `message` cut to at most `maxBytes` bytes of UTF-8 (plus the marker), never inside a
    /// character; a cut message ends in `…(N bytes)` with the original length.
    public static func truncate(_ message: String, maxBytes: Int = statusMessageBytes) -> String {
        let count = message.utf8.count
        guard count > maxBytes else { return message }
        return prefix(message, maxBytes: maxBytes) + "…(\(count) bytes)"
    }

    /// A status message fit for TRAILERS or GOAWAY: `truncate`d, control characters escaped.
    public static func statusMessage(_ message: String, maxBytes: Int = statusMessageBytes) -> String {
        let needsEscaping = message.unicodeScalars.contains { Self.isControl($0) && $0 != "\n" }
        let count = message.utf8.count
        let escaped = needsEscaping ? escapingControlCharacters(message, stopAfter: maxBytes + 1, keepNewlines: true) : message
        guard count > maxBytes || escaped.utf8.count > maxBytes else { return escaped }
        return prefix(escaped, maxBytes: maxBytes) + "…(\(count) bytes)"
    }

    /// The longest prefix of `text` of at most `maxBytes` UTF-8 bytes that ends on a
    /// character boundary.
    static func prefix(_ text: String, maxBytes: Int) -> String {
        guard text.utf8.count > maxBytes else { return text }
        var end = text.startIndex
        var bytes = 0
        for index in text.indices {
            let next = text.index(after: index)
            let size = text.utf8.distance(from: index, to: next)
            guard bytes + size <= maxBytes else { break }
            bytes += size
            end = next
        }
        return String(text[..<end])
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || scalar.value == 0x7f || (0x80...0x9f).contains(scalar.value)
            || scalar.value == 0x2028 || scalar.value == 0x2029
    }

    /// Escapes control characters (`\n`, `\u{1b}` …); stops once the output is longer than
    /// `stopAfter` bytes (the caller cuts it anyway), so a megabyte input costs nothing.
    private static func escapingControlCharacters(_ text: String, stopAfter: Int, keepNewlines: Bool = false) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if out.utf8.count > stopAfter { break }
            if isControl(scalar), !(keepNewlines && scalar == "\n") {
                switch scalar {
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default: out += "\\u{" + String(scalar.value, radix: 16) + "}"
                }
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
