#!/usr/bin/env python3
"""Generates Swift value types for the messages in a protobuf descriptor set.

Usage: gen_swift_messages.py DESCRIPTOR_SET OUT_DIR

For every message `M` of package `p` it writes a `public struct M: ProtoMessage` with one
stored property per field, and an extension that converts to and from the protoc-c struct
`P__M` (see Sources/GridProto/ProtoMessage.swift for the runtime it calls). Encoding builds
the C struct graph in a `ProtoArena` and calls `p__m__pack`; decoding calls
`p__m__unpack`, copies every field into Swift values and frees the C graph, so no C
pointer outlives the call.

Supported: proto3 scalars, string, bytes, enums (open: any Int32 survives a round trip),
message fields, repeated fields of all of these, and oneofs. Not supported (the generator
stops with an error): nested types, maps, proto2 syntax, proto3 `optional` (which protoc-c
1.4.1 rejects anyway).
"""
import os
import sys

from google.protobuf import descriptor_pb2 as d

FD = d.FieldDescriptorProto

SWIFT_KEYWORDS = {
    "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func",
    "import", "init", "inout", "internal", "let", "open", "operator", "private",
    "protocol", "public", "rethrows", "static", "struct", "subscript", "typealias", "var",
    "break", "case", "continue", "default", "defer", "do", "else", "fallthrough", "for",
    "guard", "if", "in", "repeat", "return", "switch", "where", "while", "as", "catch",
    "false", "is", "nil", "super", "self", "Self", "throw", "throws", "true", "try", "Type",
}

# proto type -> (Swift type, Swift default, C element type for repeated, conversion kind)
SCALARS = {
    FD.TYPE_INT32: ("Int32", "0"),
    FD.TYPE_SINT32: ("Int32", "0"),
    FD.TYPE_SFIXED32: ("Int32", "0"),
    FD.TYPE_INT64: ("Int64", "0"),
    FD.TYPE_SINT64: ("Int64", "0"),
    FD.TYPE_SFIXED64: ("Int64", "0"),
    FD.TYPE_UINT32: ("UInt32", "0"),
    FD.TYPE_FIXED32: ("UInt32", "0"),
    FD.TYPE_UINT64: ("UInt64", "0"),
    FD.TYPE_FIXED64: ("UInt64", "0"),
    FD.TYPE_DOUBLE: ("Double", "0"),
    FD.TYPE_FLOAT: ("Float", "0"),
}


def camel_to_lower(name):
    """protoc-c's CamelToLower: '_' before an upper-case letter that follows a lower one."""
    out, was_upper = [], True
    for ch in name:
        if ch.isupper():
            if not was_upper:
                out.append("_")
            out.append(ch.lower())
            was_upper = True
        else:
            out.append(ch)
            was_upper = False
    return "".join(out)


def to_camel(name, upper_first):
    """protoc-c's ToCamel for oneof names, and Swift property names: a_b_c -> aBC / ABC."""
    parts = [p for p in name.split("_") if p]
    text = "".join(p[:1].upper() + p[1:] for p in parts)
    if not upper_first and text:
        text = text[0].lower() + text[1:]
    return text


def swift_ident(name):
    return "`%s`" % name if name in SWIFT_KEYWORDS else name


class Context:
    def __init__(self, files):
        self.messages = {}  # full name ".p.M" -> (package, DescriptorProto)
        self.enums = {}     # full name ".p.E" -> (package, EnumDescriptorProto)
        for f in files:
            if f.syntax != "proto3":
                sys.exit("%s: only proto3 is supported" % f.name)
            for m in f.message_type:
                if m.nested_type or m.enum_type:
                    sys.exit("%s.%s: nested types are not supported" % (f.package, m.name))
                self.messages[".%s.%s" % (f.package, m.name)] = (f.package, m)
            for e in f.enum_type:
                self.enums[".%s.%s" % (f.package, e.name)] = (f.package, e)

    @staticmethod
    def c_type(package, name):
        return "__".join([to_camel(p, True) for p in package.split(".")] + [name])

    @staticmethod
    def c_prefix(package, name):
        return "__".join(package.split(".") + [camel_to_lower(name)])


def enum_case_name(enum_name, value_name):
    prefix = camel_to_lower(enum_name).upper() + "_"
    name = value_name[len(prefix):] if value_name.startswith(prefix) else value_name
    return swift_ident(to_camel(name.lower(), False))


def gen_enum(package, e):
    name = e.name
    lines = [
        "/// proto enum `%s.%s`. Open: values this build does not name survive a round trip." % (package, name),
        "public struct %s: RawRepresentable, Hashable, Sendable, CustomStringConvertible {" % name,
        "    public var rawValue: Int32",
        "    public init(rawValue: Int32) { self.rawValue = rawValue }",
    ]
    for v in e.value:
        lines.append("    public static let %s = %s(rawValue: %d)" % (enum_case_name(name, v.name), name, v.number))
    lines.append("    /// The proto name of the value, or its number when this build does not name it.")
    lines.append("    public var description: String {")
    lines.append("        switch rawValue {")
    seen = set()
    for v in e.value:
        if v.number in seen:
            continue
        seen.add(v.number)
        lines.append('        case %d: return "%s"' % (v.number, v.name))
    lines.append("        default: return String(rawValue)")
    lines.append("        }")
    lines.append("    }")
    lines.append("}")
    return lines


class Field:
    """How one field maps between Swift and C."""

    def __init__(self, ctx, package, msg, f):
        self.f = f
        self.cname = f.name
        self.sname = swift_ident(to_camel(f.name, False))
        self.raw_sname = to_camel(f.name, False)
        self.repeated = f.label == FD.LABEL_REPEATED
        self.oneof = f.oneof_index if f.HasField("oneof_index") else None
        t = f.type
        if t in SCALARS:
            self.kind, (self.stype, self.default) = "scalar", SCALARS[t]
        elif t == FD.TYPE_BOOL:
            self.kind, self.stype, self.default = "bool", "Bool", "false"
        elif t == FD.TYPE_STRING:
            self.kind, self.stype, self.default = "string", "String", '""'
        elif t == FD.TYPE_BYTES:
            self.kind, self.stype, self.default = "bytes", "[UInt8]", "[]"
        elif t == FD.TYPE_ENUM:
            epkg, e = ctx.enums[f.type_name]
            self.kind, self.stype, self.default = "enum", e.name, "%s(rawValue: 0)" % e.name
            self.ctype = ctx.c_type(epkg, e.name)
        elif t == FD.TYPE_MESSAGE:
            if f.type_name not in ctx.messages:
                sys.exit("%s.%s: unknown message type %s" % (msg.name, f.name, f.type_name))
            mpkg, m = ctx.messages[f.type_name]
            self.kind, self.stype, self.default = "message", m.name, "nil"
            self.ctype = ctx.c_type(mpkg, m.name)
        else:
            sys.exit("%s.%s: unsupported field type %d" % (msg.name, f.name, t))

    def decl_type(self):
        if self.repeated:
            return "[%s]" % self.stype
        if self.kind == "message":
            return "%s?" % self.stype
        return self.stype

    def decl_default(self):
        return "[]" if self.repeated else self.default

    # -- C <- Swift, single value expression
    def to_c(self, v):
        k = self.kind
        if k == "scalar":
            return v
        if k == "bool":
            return "(%s ? 1 : 0)" % v
        if k == "string":
            return "arena.string(%s)" % v
        if k == "bytes":
            return "arena.bytes(%s)" % v
        if k == "enum":
            return "%s(rawValue: .init(truncatingIfNeeded: %s.rawValue))" % (self.ctype, v)
        if k == "message":
            return "%s.makeC(arena)" % v
        raise AssertionError(k)

    # -- Swift <- C, single value expression
    def from_c(self, v):
        k = self.kind
        if k == "scalar":
            return v
        if k == "bool":
            return "(%s != 0)" % v
        if k == "string":
            return "ProtoArena.string(%s)" % v
        if k == "bytes":
            return "ProtoArena.bytes(%s)" % v
        if k == "enum":
            return "%s(rawValue: Int32(truncatingIfNeeded: %s.rawValue))" % (self.stype, v)
        if k == "message":
            return "%s(c: %s)" % (self.stype, v)
        raise AssertionError(k)

    def c_element(self):
        """The C type of one element of a repeated field's array."""
        k = self.kind
        if k == "message":
            return "UnsafeMutablePointer<%s>?" % self.ctype
        if k == "string":
            return "UnsafeMutablePointer<CChar>?"
        if k == "bytes":
            return "ProtobufCBinaryData"
        if k == "bool":
            return "protobuf_c_boolean"
        if k == "enum":
            return self.ctype
        return self.stype


def gen_message(ctx, package, m):
    name = m.name
    ctype = ctx.c_type(package, name)
    cprefix = ctx.c_prefix(package, name)
    fields = [Field(ctx, package, m, f) for f in m.field]
    plain = [f for f in fields if f.oneof is None]
    oneofs = []
    for i, o in enumerate(m.oneof_decl):
        members = [f for f in fields if f.oneof == i]
        oneofs.append((o.name, members))

    out = ["/// proto message `%s.%s`." % (package, name),
           "public struct %s: ProtoMessage {" % name]
    for f in plain:
        out.append("    public var %s: %s = %s" % (f.sname, f.decl_type(), f.decl_default()))
    for oname, members in oneofs:
        ename = to_camel(oname, True)
        out.append("    /// oneof `%s`." % oname)
        out.append("    public enum %s: Equatable, Sendable {" % ename)
        for f in members:
            t = f.stype
            out.append("        case %s(%s)" % (f.sname, t))
        out.append("    }")
        out.append("    public var %s: %s? = nil" % (swift_ident(to_camel(oname, False)), ename))
    out.append("")
    out.append("    public init() {}")
    params = [(f.sname, f.raw_sname, f.decl_type(), f.decl_default()) for f in plain]
    params += [(swift_ident(to_camel(o, False)), to_camel(o, False), "%s?" % to_camel(o, True), "nil") for o, _ in oneofs]
    if params:
        out.append("")
        out.append("    public init(")
        out.append(",\n".join("        %s: %s = %s" % (raw, t, dflt) for _, raw, t, dflt in params))
        out.append("    ) {")
        for s, raw, _, _ in params:
            out.append("        self.%s = %s" % (raw, swift_ident(raw)))
        out.append("    }")
    out.append("}")
    out.append("")

    # C bridge.
    out.append("extension %s {" % name)
    out.append("    /// Builds the C struct graph in `arena`; valid until the arena is released.")
    out.append("    func makeC(_ arena: ProtoArena) -> UnsafeMutablePointer<%s> {" % ctype)
    out.append("        let c = arena.allocate(%s.self)" % ctype)
    out.append("        %s__init(c)" % cprefix)
    for f in plain:
        v = "self.%s" % f.raw_sname
        if f.repeated:
            out.append("        c.pointee.n_%s = %s.count" % (f.cname, v))
            out.append("        c.pointee.%s = arena.array(%s) { (e: %s) -> %s in %s }" % (
                f.cname, v, f.stype, f.c_element(), f.to_c("e")))
        elif f.kind == "message":
            out.append("        c.pointee.%s = %s.map { $0.makeC(arena) }" % (f.cname, v))
        else:
            out.append("        c.pointee.%s = %s" % (f.cname, f.to_c(v)))
    for oname, members in oneofs:
        upper_msg = "__".join([p.upper() for p in package.split(".")] + [camel_to_lower(name).upper()])
        out.append("        switch self.%s {" % to_camel(oname, False))
        out.append("        case nil:")
        out.append("            c.pointee.%s_case = %s__%s__NOT_SET" % (oname, upper_msg, oname.upper()))
        for f in members:
            out.append("        case .%s(let v)?:" % f.sname)
            out.append("            c.pointee.%s_case = %s__%s_%s" % (oname, upper_msg, oname.upper(), f.cname.upper()))
            out.append("            c.pointee.%s = %s" % (f.cname, f.to_c("v")))
        out.append("        }")
    out.append("        return c")
    out.append("    }")
    out.append("")
    out.append("    /// Copies every field out of a C struct graph (which the caller still owns).")
    out.append("    init(c: UnsafePointer<%s>) {" % ctype)
    out.append("        self.init()")
    for f in plain:
        v = "c.pointee.%s" % f.cname
        if f.repeated:
            out.append("        self.%s = ProtoArena.collect(%s, c.pointee.n_%s) { (e: %s) -> %s in %s }" % (
                f.raw_sname, v, f.cname, f.c_element(), f.stype,
                f.from_c("e!" if f.kind == "message" else "e")))
        elif f.kind == "message":
            out.append("        self.%s = %s.map { %s(c: $0) }" % (f.raw_sname, v, f.stype))
        else:
            out.append("        self.%s = %s" % (f.raw_sname, f.from_c(v)))
    for oname, members in oneofs:
        upper_msg = "__".join([p.upper() for p in package.split(".")] + [camel_to_lower(name).upper()])
        out.append("        switch c.pointee.%s_case {" % oname)
        for f in members:
            out.append("        case %s__%s_%s:" % (upper_msg, oname.upper(), f.cname.upper()))
            src = "c.pointee.%s" % f.cname
            if f.kind == "message":
                out.append("            self.%s = c.pointee.%s.map { .%s(%s(c: $0)) }" % (
                    to_camel(oname, False), f.cname, f.sname, f.stype))
            else:
                out.append("            self.%s = .%s(%s)" % (to_camel(oname, False), f.sname, f.from_c(src)))
        out.append("        default:")
        out.append("            self.%s = nil" % to_camel(oname, False))
        out.append("        }")
    out.append("    }")
    out.append("")
    out.append("    public func serializedBytes() -> [UInt8] {")
    out.append("        let arena = ProtoArena()")
    out.append("        let c = makeC(arena)")
    out.append("        let size = %s__get_packed_size(c)" % cprefix)
    out.append("        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in")
    out.append("            count = %s__pack(c, buffer.baseAddress)" % cprefix)
    out.append("        }")
    out.append("    }")
    out.append("")
    out.append("    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws {")
    out.append("        guard let c = ProtoArena.unpack(bytes, { %s__unpack(nil, $0, $1) }) else {" % cprefix)
    out.append('            throw ProtoDecodingError(messageName: "%s.%s")' % (package, name))
    out.append("        }")
    out.append("        defer { %s__free_unpacked(c, nil) }" % cprefix)
    out.append("        self.init(c: c)")
    out.append("    }")
    out.append("}")
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    fds = d.FileDescriptorSet()
    with open(sys.argv[1], "rb") as fh:
        fds.ParseFromString(fh.read())
    ctx = Context(fds.file)
    for f in fds.file:
        base = os.path.splitext(os.path.basename(f.name))[0]
        swift_name = "".join(to_camel(p, True) for p in base.split("_"))
        lines = [
            "// Generated by scripts/gen-proto from Proto/%s. DO NOT EDIT." % f.name,
            "",
            "internal import CGridProto",
            "internal import CProtobufC",
            "",
        ]
        for e in f.enum_type:
            lines += gen_enum(f.package, e) + [""]
        for m in f.message_type:
            lines += gen_message(ctx, f.package, m) + [""]
        while lines and lines[-1] == "":
            lines.pop()
        with open(os.path.join(sys.argv[2], "%s.pb.swift" % swift_name), "w") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
