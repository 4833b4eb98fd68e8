internal import COpenSSL

/// Message digests of the chain's hash suites.
public enum Digest {
    /// A chain's hash function, recorded in every block header (`hash_suite`).
    public enum Suite: String, Sendable, CaseIterable {
        case sha256
        /// GB/T 32905 SM3, from the default provider of Debian's OpenSSL 3.
        case sm3
    }

    /// The digest of the concatenation of `parts` under `suite` (32 bytes for both).
    public static func hash(_ suite: Suite, parts: [[UInt8]]) -> [UInt8] {
        switch suite {
        case .sha256: return sha256(parts: parts)
        case .sm3: return evp(EVP_sm3(), parts)
        }
    }

    /// SHA-256 of `bytes` (32 bytes).
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                _ = SHA256(input.baseAddress, input.count, output.baseAddress)
            }
        }
        return out
    }

    /// SHA-256 over the concatenation of `parts`, without concatenating them.
    public static func sha256(parts: [[UInt8]]) -> [UInt8] {
        evp(EVP_sha256(), parts)
    }

    private static func evp(_ md: OpaquePointer?, _ parts: [[UInt8]]) -> [UInt8] {
        let context = EVP_MD_CTX_new()!
        defer { EVP_MD_CTX_free(context) }
        EVP_DigestInit_ex(context, md, nil)
        for part in parts {
            part.withUnsafeBufferPointer { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
        }
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        return out
    }
}
