#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// POSIX file helpers for PKI material.
///
/// Durability: `writeFile(_:to:mode:replacing:)` writes a temporary file created with the final
/// mode (so a key is never readable by others, not even briefly), fsyncs it, moves it into place
/// (rename, or link when replacing is refused) and fsyncs the directory. After it returns the file
/// survives a crash; a crash before that leaves the old file (or none) and possibly a stray
/// `.<name>.tmp-*` file, never a partial file under the final name.
enum FileIO {
    /// Whether anything exists at `path` (without following a final symlink's target).
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// The whole content of the regular file at `path`.
    static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PKIError.fileSystem(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw PKIError.fileSystem(operation: "read", path: path, errno: errno)
            }
            if count == 0 { return result }
            result.append(contentsOf: chunk[0..<count])
        }
    }

    /// Creates `path` and any missing parents with mode 0755 (less the umask). Existing
    /// directories are left as they are.
    static func createDirectory(_ path: String) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw PKIError.fileSystem(operation: "mkdir", path: path, errno: ENOTDIR)
            }
            return
        }
        let parent = directoryName(of: path)
        if parent != path, !parent.isEmpty { try createDirectory(parent) }
        if mkdir(path, 0o755) != 0, errno != EEXIST {
            throw PKIError.fileSystem(operation: "mkdir", path: path, errno: errno)
        }
    }

    /// Durably writes `bytes` to `path` with permission bits `mode` (see the type's contract).
    ///
    /// - Parameter replacing: when false and `path` exists, throws `PKIError.fileExists`, also
    ///   when the file appears concurrently (the final step is an atomic `link`).
    static func writeFile(_ bytes: [UInt8], to path: String, mode: mode_t, replacing: Bool) throws {
        if !replacing, exists(path) { throw PKIError.fileExists(path: path) }
        let directory = directoryName(of: path)
        let temporary = directory + "/." + baseName(of: path) + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw PKIError.fileSystem(operation: "create", path: temporary, errno: errno) }
        var ok = false
        defer { if !ok { unlink(temporary) } }
        do {
            defer { close(fd) }
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes { raw in
                    write(fd, raw.baseAddress! + offset, raw.count - offset)
                }
                if written < 0 {
                    if errno == EINTR { continue }
                    throw PKIError.fileSystem(operation: "write", path: temporary, errno: errno)
                }
                offset += written
            }
            if fsync(fd) != 0 { throw PKIError.fileSystem(operation: "fsync", path: temporary, errno: errno) }
        }
        if replacing {
            if rename(temporary, path) != 0 { throw PKIError.fileSystem(operation: "rename", path: path, errno: errno) }
        } else {
            if link(temporary, path) != 0 {
                if errno == EEXIST { throw PKIError.fileExists(path: path) }
                throw PKIError.fileSystem(operation: "link", path: path, errno: errno)
            }
            unlink(temporary)
        }
        ok = true
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }

    /// `path` joined with `name`.
    static func join(_ path: String, _ name: String) -> String {
        path.hasSuffix("/") ? path + name : path + "/" + name
    }

    /// The directory part of `path` ("." when there is none).
    static func directoryName(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        if slash == trimmed.startIndex { return "/" }
        return String(trimmed[..<slash])
    }

    /// The last path component of `path`.
    static func baseName(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return String(trimmed) }
        return String(trimmed[trimmed.index(after: slash)...])
    }
}
