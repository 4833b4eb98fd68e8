import Foundation
import Identity
import Logging
import Node
import Synchronization
import Wire

/// A throwaway deployment: a CA, a node certificate and client certificates, in a temp dir.
struct TestPKI {
    let dir: String
    var caDir: String { dir + "/ca" }
    var caCert: String { dir + "/ca/ca.crt" }

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("gridledger-test-\(UUID().uuidString)").path
        try PKI.initializeCA(outDirectory: dir + "/ca", commonName: "test CA")
    }

    /// A node on loopback (any free port) with `node`'s certificate, this CA and its data in
    /// `dataDir`.
    func loopbackNode(_ node: (cert: String, key: String), dataDir: String) -> NodeConfiguration {
        var c = NodeConfiguration()
        c.listen = "127.0.0.1:0"
        c.dataDir = dataDir
        c.tls.cert = node.cert
        c.tls.key = node.key
        c.tls.ca = caCert
        return c
    }

    /// Issues NAME.crt / NAME.key and returns (cert, key).
    @discardableResult
    func issue(_ role: Role, _ name: String, district: String? = nil, days: Int = 30, backdateDays: Int = 0) throws -> (cert: String, key: String) {
        let issued = try PKI.issue(caDirectory: caDir, role: role, name: name, district: district, days: days, backdateDays: backdateDays, outDirectory: dir + "/" + name)
        return (issued.certificatePath, issued.privateKeyPath)
    }

    func remove() { try? FileManager.default.removeItem(atPath: dir) }
}

/// Collects log records so tests can assert that a refusal was logged.
final class CapturedLogs: @unchecked Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
    func contains(_ fragment: String) -> Bool { all.contains { $0.contains(fragment) } }

    func logger() -> Logger {
        var logger = Logger(label: "test") { _ in CapturingHandler(sink: self) }
        logger.logLevel = .info
        return logger
    }

    struct CapturingHandler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = self.metadata.merging(event.metadata ?? [:]) { $1 }
            sink.append("\(event.level) \(event.message) \(all.map { "\($0)=\($1)" }.sorted().joined(separator: " "))")
        }
    }
}
