#!/usr/bin/env python3
"""A scripted stand-in for gridnode, speaking wire protocol v1 (Docs/wire-protocol.md),
used to drive the C client through paths a healthy node rarely takes: server PING, GOAWAY,
an oversized MESSAGE, a missed deadline. Protobuf is hand-encoded (no dependencies).

usage: fake_node.py CERT KEY CA PORTFILE [PORT]
Listens on 127.0.0.1:PORT (default ephemeral), writes the port to PORTFILE, logs events to
stdout; exits 0 on SIGTERM.

Behaviour by method / HealthCheckRequest.service:
  /gridledger.Ops/GetStatus      caller with OU ops/admin gets a status, others PERMISSION_DENIED
  /gridledger.Health/Check ""    SERVING
                      "ping"     PINGs the client, waits for the ACK, then SERVING
                      "big"      sends a 5 MiB MESSAGE (client must skip it and CANCEL)
                      "slow"     never answers; logs the CANCEL that the client's deadline sends
                      "goaway"   GOAWAY(last_stream_id=0) then closes the connection
                      "idle-goaway" SERVING, then PING, GOAWAY(OK, "idle") and close
                      "twice"    two responses to a unary call
                      "garbage"  a MESSAGE that does not decode
                      other      NOT_FOUND
  /gridledger.Health/Watch       SERVING, NOT_SERVING, SERVING, TRAILERS OK
  anything else                  UNIMPLEMENTED
Every call checks the client's framing: HEADERS without END_STREAM, then exactly one
MESSAGE with END_STREAM (INTERNAL "framing: ..." otherwise).
"""
import os
import signal
import socket
import ssl
import struct
import sys
import threading

HEADERS, MESSAGE, TRAILERS, CANCEL, PING, GOAWAY = 1, 2, 3, 4, 5, 6
END = 1


def log(*a):
    print(*a, flush=True)


# ---- minimal protobuf -------------------------------------------------------------------
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(num, v):
    return varint(num << 3) + varint(v) if v else b""


def f_bytes(num, v):
    if isinstance(v, str):
        v = v.encode()
    return varint((num << 3) | 2) + varint(len(v)) + v if v else b""


def parse(buf):
    """{field: [values]} with varints as int and length-delimited as bytes."""
    out, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 2:
            n, i = read_varint(buf, i)
            v, i = bytes(buf[i:i + n]), i + n
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def read_varint(buf, i):
    shift = v = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def call_status(code, msg=""):
    return f_varint(1, code) + f_bytes(2, msg)


def health(status):
    return f_varint(1, status)


# ---- connection ------------------------------------------------------------------------------
class Conn:
    def __init__(self, sock):
        self.s = sock
        self.wlock = threading.Lock()

    def send(self, ftype, flags, sid, body=b""):
        with self.wlock:
            self.s.sendall(struct.pack(">IBBI", len(body), ftype, flags, sid) + body)

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return bytes(buf)

    def recv_frame(self):
        length, ftype, flags, sid = struct.unpack(">IBBI", self.recv_exact(10))
        return ftype, flags, sid, self.recv_exact(length)


def peer_role(sock):
    cert = sock.getpeercert()
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "organizationalUnitName":
                return v
    return ""


def serve(sock):
    c = Conn(sock)
    role = peer_role(sock)
    log("connected role=%s alpn=%s" % (role, sock.selected_alpn_protocol()))
    calls = {}  # sid -> [method, timeout, headers_flags, messages(list of (flags, body))]
    try:
        while True:
            ftype, flags, sid, body = c.recv_frame()
            if ftype == PING:
                log("PING from client flags=%d" % flags)
                if flags & 1:
                    log("PING-ACK %s" % body.hex())
                else:
                    c.send(PING, 1, 0, body)
                continue
            if ftype == CANCEL:
                log("CANCEL stream %d" % sid)
                if sid in calls:
                    del calls[sid]
                    c.send(TRAILERS, 0, sid, call_status(1, "cancelled"))
                continue
            if ftype == HEADERS:
                h = parse(body)
                method = h.get(1, [b""])[0].decode()
                timeout = h.get(2, [0])[0]
                log("HEADERS stream %d method=%s timeout_ms=%d flags=%d" % (sid, method, timeout, flags))
                calls[sid] = [method, timeout, flags, []]
                continue
            if ftype == MESSAGE:
                if sid not in calls:
                    continue
                calls[sid][3].append((flags, body))
                if flags & END:
                    call = calls[sid]
                    if not handle(c, sid, role, *call):
                        return
                    calls.pop(sid, None)
                continue
            log("unexpected frame type %d" % ftype)
    except (EOFError, ConnectionError, ssl.SSLError) as e:
        log("connection closed: %r" % e)
    finally:
        try:
            sock.close()
        except OSError:
            pass


def handle(c, sid, role, method, timeout, hflags, msgs):
    """Returns False when the connection must end."""
    if hflags & END or len(msgs) != 1 or not msgs[0][0] & END:
        log("framing: stream %d hflags=%d msgs=%r" % (sid, hflags, msgs))
        c.send(TRAILERS, 0, sid, call_status(13, "framing: hflags=%d msgs=%r" % (hflags, msgs)))
        return True
    req = parse(msgs[0][1])
    if method == "/gridledger.Ops/GetStatus":
        if role not in ("ops", "admin"):
            c.send(TRAILERS, 0, sid, call_status(7, "role %s may not call %s" % (role, method)))
            return True
        caller = f_bytes(1, "ops1") + f_bytes(2, role) + f_bytes(4, "0a1b")
        chain = f_bytes(1, "meter\"chain\n") + f_varint(2, 7) + f_bytes(3, b"\x00\xff\x10") + f_bytes(4, "leader")
        resp = (f_bytes(1, "fake1") + f_bytes(2, "0.0-fake") + f_varint(3, 1234) +
                f_bytes(4, "127.0.0.1:1") + f_bytes(5, caller) + f_varint(6, 1) +
                f_varint(7, 5) + f_varint(9, 1700000000000) + f_bytes(10, chain))
        c.send(MESSAGE, 0, sid, resp)
        c.send(TRAILERS, 0, sid, call_status(0))
        return True
    if method == "/gridledger.Health/Check":
        service = req.get(1, [b""])[0].decode()
        if service == "":
            c.send(MESSAGE, 0, sid, health(1))
            c.send(TRAILERS, 0, sid, call_status(0))
        elif service == "ping":
            c.send(PING, 0, 0, b"\x01\x02\x03\x04\x05\x06\x07\x08")
            ftype, flags, _, body = c.recv_frame()
            ok = ftype == PING and flags == 1 and body == b"\x01\x02\x03\x04\x05\x06\x07\x08"
            log("PING-ACK %s" % ("ok" if ok else "WRONG %d %d %r" % (ftype, flags, body)))
            c.send(MESSAGE, 0, sid, health(1 if ok else 2))
            c.send(TRAILERS, 0, sid, call_status(0))
        elif service == "big":
            big = 5 * 1024 * 1024
            with c.wlock:
                c.s.sendall(struct.pack(">IBBI", big, MESSAGE, 0, sid))
                chunk = b"\xaa" * 65536
                for _ in range(big // len(chunk)):
                    c.s.sendall(chunk)
            log("sent big message on stream %d" % sid)
            # The client cancels; our CANCEL handler answers.
            c.send(TRAILERS, 0, sid, call_status(0))
        elif service == "slow":
            log("slow call on stream %d, waiting for CANCEL" % sid)
        elif service == "goaway":
            c.send(GOAWAY, 0, 0, f_varint(1, 0) + f_varint(2, 14) + f_bytes(3, "shutting down"))
            log("sent GOAWAY")
            return True
        elif service == "idle-goaway":
            c.send(MESSAGE, 0, sid, health(1))
            c.send(TRAILERS, 0, sid, call_status(0))
            c.send(PING, 0, 0, b"idlepng!")
            c.send(GOAWAY, 0, 0, f_varint(1, sid) + f_varint(2, 0) + f_bytes(3, "idle"))
            log("sent idle GOAWAY")
            c.s.settimeout(2.0)  # the client answers the PING when it next looks
            try:
                ftype, flags, _, body = c.recv_frame()
                if ftype == PING and flags & 1:
                    log("PING-ACK %s" % body.hex())
            except (OSError, EOFError):
                pass
            return False
        elif service == "twice":
            c.send(MESSAGE, 0, sid, health(1))
            c.send(MESSAGE, 0, sid, health(1))
            c.send(TRAILERS, 0, sid, call_status(0))
        elif service == "garbage":
            c.send(MESSAGE, 0, sid, b"\xff\xff\xff")
            c.send(TRAILERS, 0, sid, call_status(0))
        else:
            c.send(TRAILERS, 0, sid, call_status(5, "unknown service %s" % service))
        return True
    if method == "/gridledger.Health/Watch":
        for st in (1, 2, 1):
            c.send(MESSAGE, 0, sid, health(st))
        c.send(TRAILERS, 0, sid, call_status(0))
        return True
    c.send(TRAILERS, 0, sid, call_status(12, "unknown method %s" % method))
    return True


def main():
    cert, key, ca, portfile = sys.argv[1:5]
    port = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["gridledger/1"])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(tmp, portfile)
    while True:
        raw, _ = ls.accept()
        try:
            s = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log("handshake failed: %r" % e)
            raw.close()
            continue
        threading.Thread(target=serve, args=(s,), daemon=True).start()


if __name__ == "__main__":
    main()
