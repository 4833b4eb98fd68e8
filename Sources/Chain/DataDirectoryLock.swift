import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive `flock` on `<data dir>/LOCK`, held while a node runs, so two nodes never
/// share a data directory. The kernel drops the lock when the process dies (even by
/// SIGKILL), so a crashed node never leaves a stale lock behind.
package final class DataDirectoryLock: Sendable {
    private let fd: Int32

    package init(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw ConfigurationError("cannot create data directory \(directory): \(error.localizedDescription)")
        }
        let path = (directory as NSString).appendingPathComponent("LOCK")
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ConfigurationError("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw ConfigurationError("data directory \(directory) is in use by another node (\(path) is locked)")
        }
        self.fd = fd
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
