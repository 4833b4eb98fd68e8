#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The little file-system work the store does itself (LevelDB does the rest).
enum FileSystem {
    /// `mkdir -p path`: creates `path` and missing parents (mode 0755). An existing
    /// directory is fine; an existing non-directory is left for LevelDB to report.
    static func createDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            current += component
            if mkdir(current, 0o755) != 0 {
                let code = errno
                if code != EEXIST {
                    throw StoreError.io("creating directory \(current): \(String(cString: strerror(code)))")
                }
            }
            current += "/"
        }
    }
}
