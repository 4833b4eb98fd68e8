import Foundation
import Logging
import Synchronization

/// A swift-log handler writing one JSON object per line (`log_format: json`,
/// Docs/operations.md): `ts` (UTC, RFC 3339 with milliseconds), `level`, `label`,
/// `message`, `source`, then the metadata flattened into the object (the node's `node`,
/// and where they apply `chain`, `term`, `height`, `method`, `peer`, …). A metadata key that
/// equals one of the fixed keys is written with a `meta_` prefix, so no field is lost.
/// Nested metadata becomes nested JSON (dictionaries as objects, arrays as arrays);
/// every other value is a JSON string.
///
/// Thread safety: a value type like every `LogHandler`; the lines of all handlers writing
/// to the same stream are serialized by one process-wide lock, so lines never interleave.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    static let fixedKeys: Set<String> = ["ts", "level", "label", "message", "source"]

    /// A handler writing to standard error.
    public static func standardError(label: String) -> JSONLogHandler {
        JSONLogHandler(label: label, write: { line in
            let bytes = Data(line.utf8)
            Self.stderrLock.withLock { _ in FileHandle.standardError.write(bytes) }
        })
    }

    private static let stderrLock = Mutex<Void>(())

    /// A handler giving each line (with its trailing newline) to `write`.
    public init(label: String, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        write(Self.line(
            timestamp: Date(), level: event.level, label: label, message: event.message.description, source: event.source, metadata: merged))
    }

    /// The JSON line (ending in "\n") of one event; keys after the fixed ones are sorted.
    static func line(timestamp: Date, level: Logger.Level, label: String, message: String, source: String, metadata: Logger.Metadata) -> String {
        var out = "{\"ts\":"
        appendString(Self.rfc3339(timestamp), to: &out)
        out += ",\"level\":"
        appendString(level.rawValue, to: &out)
        out += ",\"label\":"
        appendString(label, to: &out)
        out += ",\"message\":"
        appendString(message, to: &out)
        out += ",\"source\":"
        appendString(source, to: &out)
        for key in metadata.keys.sorted() {
            out += ","
            appendString(fixedKeys.contains(key) ? "meta_" + key : key, to: &out)
            out += ":"
            appendValue(metadata[key]!, to: &out)
        }
        out += "}\n"
        return out
    }

    private static func appendValue(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let s): appendString(s, to: &out)
        case .stringConvertible(let c): appendString(c.description, to: &out)
        case .array(let values):
            out += "["
            for (i, v) in values.enumerated() {
                if i > 0 { out += "," }
                appendValue(v, to: &out)
            }
            out += "]"
        case .dictionary(let d):
            out += "{"
            for (i, key) in d.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                appendString(key, to: &out)
                out += ":"
                appendValue(d[key]!, to: &out)
            }
            out += "}"
        }
    }

    /// `s` as a JSON string literal: quotes, backslashes and control characters escaped;
    /// everything else (non-ASCII included) as UTF-8.
    static func appendString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    /// `2026-12-08T03:57:11.123Z`.
    static func rfc3339(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        let millis = Int((date.timeIntervalSince1970 - Double(seconds)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let ms = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(ms)Z"
    }
}
