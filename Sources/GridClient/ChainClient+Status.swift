import GridProto
import NIOCore

extension ChainClient {
    /// Dials `address` (as `GridConnection.connect(to:…)`), calls `Ops.GetStatus`, and closes
    /// the connection, whether the call succeeded or not. `timeoutMs` bounds the connect, the
    /// handshake and the call, each. Throws the connection's errors (`ConnectionErrorText`
    /// words them) or the call's `RPCError` (`PERMISSION_DENIED` unless role ops or admin).
    public static func status(
        address: String, certificate: String, key: String, ca: String, serverName: String? = nil, timeoutMs: Int = 10_000
    ) async throws -> GetStatusResponse {
        let rpc = try await GridConnection.connect(
            to: address, certificate: certificate, key: key, ca: ca, serverName: serverName,
            connectTimeout: .milliseconds(Int64(timeoutMs)))
        do {
            let status = try await ChainClient(rpc).status(timeout: .milliseconds(timeoutMs))
            await rpc.close()
            return status
        } catch {
            await rpc.close()
            throw error
        }
    }
}
