internal import COpenSSL

/// Moves bytes between Swift arrays and OpenSSL memory BIOs for the PEM/DER encoders.
enum MemoryBIO {
    /// Calls `body` with a read-only memory BIO over `bytes`; the BIO is freed afterwards and
    /// must not escape `body`.
    static func withReadable<T>(_ bytes: [UInt8], _ body: (OpaquePointer) throws -> T) throws -> T {
        let result: Result<T, any Error> = bytes.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(clamping: raw.count)) else {
                return .failure(PKIError.fromQueue("BIO_new_mem_buf"))
            }
            defer { BIO_free(bio) }
            do { return .success(try body(bio)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Calls `fill` with an empty writable memory BIO and returns everything written to it.
    /// `fill` returns false when its OpenSSL call failed; the error then names `operation`.
    static func collect(_ operation: String, _ fill: (OpaquePointer) -> Bool) throws -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { throw PKIError.fromQueue("BIO_new") }
        defer { BIO_free(bio) }
        guard fill(bio) else { throw PKIError.fromQueue(operation) }
        let pending = Int(BIO_ctrl_pending(bio))
        guard pending > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: pending) { buffer, count in
            let read = BIO_read(bio, buffer.baseAddress, Int32(pending))
            count = max(0, Int(read))
        }
    }
}
