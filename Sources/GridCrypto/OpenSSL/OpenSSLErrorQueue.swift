internal import COpenSSL

/// Reads and clears OpenSSL's per-thread error queue.
///
/// Thread safety: OpenSSL keeps one error queue per thread, so these functions only ever see
/// errors raised on the calling thread. Call them on the thread that made the failing call,
/// before any other OpenSSL call can add to or clear the queue.
package enum OpenSSLErrorQueue {
    /// Every queued error as OpenSSL's long form (`error:0A000086:SSL routines::certificate
    /// verify failed`), oldest first. The queue is empty afterwards.
    package static func drainDetailed() -> [String] {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            buffer.withUnsafeMutableBufferPointer { pointer in
                ERR_error_string_n(code, pointer.baseAddress, pointer.count)
            }
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        ERR_clear_error()
        return messages
    }

    /// Every queued error's reason text alone (`certificate verify failed`), oldest first,
    /// without duplicates. The queue is empty afterwards.
    package static func drainReasons() -> [String] {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            let reason: String
            if let text = ERR_reason_error_string(code) {
                reason = String(cString: text)
            } else {
                reason = "OpenSSL error 0x\(String(code, radix: 16))"
            }
            if !reasons.contains(reason) { reasons.append(reason) }
        }
        ERR_clear_error()
        return reasons
    }

    /// Discards whatever is queued, so that a later failure does not report stale errors.
    package static func clear() {
        ERR_clear_error()
    }
}
