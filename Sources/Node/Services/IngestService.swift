import GridProto
import Wire

/// `Ingest.Submit`, `Ingest.SubmitReadings`, `Ingest.StreamReadings`.
struct IngestService: Sendable {
    static let submitMethod = "/gridledger.Ingest/Submit"
    static let submitReadingsMethod = "/gridledger.Ingest/SubmitReadings"
    static let streamReadingsMethod = "/gridledger.Ingest/StreamReadings"

    let ledger: Ledger

    func register(in router: inout RPCRouter) {
        router.unary(Self.submitMethod, roles: [.collector, .marketing, .bank, .finance, .device, .admin, .node]) {
            [ledger] (request: SubmitRequest, _) in
            try await ledger.submit(try Self.transaction(request))
        }
        router.unary(Self.submitReadingsMethod, roles: [.collector, .node]) { [ledger] (request: SubmitRequest, _) in
            try await ledger.submit(try Self.transaction(request), readingsOnly: true)
        }
        // Acknowledgements go out in request order; up to `window` submissions are in flight
        // at once, so one stream can fill several blocks without waiting for each.
        router.bidirectional(Self.streamReadingsMethod, roles: [.collector, .node]) {
            [ledger] (requests: RequestStream<SubmitRequest>, out: ResponseWriter<StreamAck>, _) in
            let window = 64
            // Credits bound the submissions whose acknowledgement is not yet sent.
            let (credits, creditsIn) = AsyncStream<Void>.makeStream()
            for _ in 0..<window { creditsIn.yield() }
            let (acks, acksIn) = AsyncStream<Task<StreamAck, Never>>.makeStream()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await task in acks {
                        try await out.send(await task.value)
                        creditsIn.yield()
                    }
                }
                var creditIterator = credits.makeAsyncIterator()
                var sequence: UInt64 = 0
                for try await request in requests {
                    _ = await creditIterator.next()
                    let seq = sequence
                    sequence += 1
                    acksIn.yield(Task<StreamAck, Never> {
                        do {
                            let response = try await ledger.submit(try Self.transaction(request), readingsOnly: true)
                            return StreamAck(sequence: seq, code: 0, message: "", response: response)
                        } catch let error as RPCError {
                            var response: SubmitResponse?
                            if error.code == .alreadyExists, let raw = error.metadataValue("gridledger-tx-location-bin") {
                                response = SubmitResponse(location: try? TxLocation(serializedBytes: raw), outcome: nil, alreadyExisted: true)
                            }
                            return StreamAck(sequence: seq, code: error.code.rawValue, message: error.message, response: response)
                        } catch {
                            return StreamAck(sequence: seq, code: StatusCode.internal.rawValue, message: "\(error)", response: nil)
                        }
                    })
                }
                acksIn.finish()
                try await group.waitForAll()
            }
        }
    }

    static func transaction(_ request: SubmitRequest) throws -> SignedTransaction {
        guard let tx = request.transaction else { throw RPCError(.invalidArgument, "request has no transaction") }
        return tx
    }
}
