internal import CProtobufC
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns every C allocation made while building one protoc-c struct graph for packing.
///
/// Thread safety: none; an arena lives inside one encode call.
/// Invariant: every pointer handed out stays valid until the arena is deinitialised, and
/// is freed exactly once then.
final class ProtoArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    init() {}

    deinit {
        for p in allocations { free(p) }
    }

    /// Zeroed storage for one `T` (protoc-c's `*__init` fills it in).
    func allocate<T>(_ type: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        let bytes = max(1, MemoryLayout<T>.stride * count)
        guard let raw = calloc(1, bytes) else { fatalError("out of memory") }
        allocations.append(raw)
        return raw.bindMemory(to: T.self, capacity: count)
    }

    /// A NUL-terminated copy of `s`. An embedded NUL truncates the string on the wire, as
    /// it would in any protobuf-c program.
    func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        var utf8 = Array(s.utf8CString)
        let p = allocate(CChar.self, count: utf8.count)
        utf8.withUnsafeMutableBufferPointer { p.update(from: $0.baseAddress!, count: $0.count) }
        return p
    }

    func bytes(_ b: [UInt8]) -> ProtobufCBinaryData {
        if b.isEmpty { return ProtobufCBinaryData(len: 0, data: nil) }
        let p = allocate(UInt8.self, count: b.count)
        b.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: $0.count) }
        return ProtobufCBinaryData(len: b.count, data: p)
    }

    /// A C array holding `transform` of each element; nil for an empty array.
    func array<E, C>(_ elements: [E], _ transform: (E) -> C) -> UnsafeMutablePointer<C>? {
        if elements.isEmpty { return nil }
        let p = allocate(C.self, count: elements.count)
        for (i, e) in elements.enumerated() { (p + i).initialize(to: transform(e)) }
        return p
    }

    static func string(_ p: UnsafeMutablePointer<CChar>?) -> String {
        guard let p else { return "" }
        return String(cString: p)
    }

    static func bytes(_ b: ProtobufCBinaryData) -> [UInt8] {
        guard let data = b.data, b.len > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: b.len))
    }

    static func collect<C, E>(_ p: UnsafeMutablePointer<C>?, _ n: Int, _ transform: (C) -> E) -> [E] {
        guard let p, n > 0 else { return [] }
        return UnsafeBufferPointer(start: p, count: n).map(transform)
    }

    /// Calls a protoc-c `*__unpack` with a non-nil data pointer even for empty input.
    static func unpack<T>(
        _ bytes: UnsafeRawBufferPointer,
        _ body: (Int, UnsafePointer<UInt8>) -> UnsafeMutablePointer<T>?
    ) -> UnsafeMutablePointer<T>? {
        if let base = bytes.baseAddress, bytes.count > 0 {
            return body(bytes.count, base.assumingMemoryBound(to: UInt8.self))
        }
        var empty: UInt8 = 0
        return withUnsafePointer(to: &empty) { body(0, $0) }
    }
}
