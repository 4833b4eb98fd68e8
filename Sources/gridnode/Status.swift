import ArgumentParser
import Foundation
import GridClient
import Logging

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Call Ops.GetStatus and print the answer as JSON.")
    @OptionGroup var client: ClientOptions

    func run() async throws {
        // The failure is reported once, as a sentence, below: not also as the TLS layer's
        // connection warnings.
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .error
            return handler
        }
        do {
            let status = try await ChainClient.status(
                address: client.addr, certificate: client.cert, key: client.key, ca: client.ca,
                serverName: client.serverName, timeoutMs: client.timeout)
            print(status.jsonString)
        } catch {
            let sentence = ConnectionErrorText.describe(error, address: client.addr, ca: client.ca)
            FileHandle.standardError.write(Data("error: \(sentence)\n".utf8))
            throw ExitCode(2)
        }
    }
}
