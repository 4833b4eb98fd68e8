"""An in-process fake node speaking the wire protocol, for client unit tests.

One thread per connection, blocking reads; behaviour is chosen by method name.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Dict, List, Optional

from gridledger import health_pb2, wire_pb2
from gridledger.frames import FLAG_ACK, FLAG_END_STREAM, FrameDecoder, FrameType, encode_frame


class FakeNode:
    def __init__(self, ca_path: str, cert: str, key: str, alpn: Optional[str] = "gridledger/1",
                 chain=None):
        self.chain = chain  # a fakechain.FakeChain serving Ingest/Query, or None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=ca_path)
        ctx.load_cert_chain(cert, key)
        if alpn:
            ctx.set_alpn_protocols([alpn])
        self.ctx = ctx
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.events: List[tuple] = []  # (kind, stream_id, detail)
        self.cond = threading.Condition()
        self.headers: Dict[int, wire_pb2.CallHeaders] = {}
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def record(self, *event) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait_for(self, kind: str, stream_id: Optional[int] = None, timeout: float = 30.0):
        def match(e):
            return e[0] == kind and (stream_id is None or e[1] == stream_id)
        with self.cond:
            ok = self.cond.wait_for(lambda: any(match(e) for e in self.events), timeout)
            assert ok, f"no {kind} event; got {self.events[-20:]}"
            return next(e for e in self.events if match(e))

    def close(self) -> None:
        self._stop = True
        self.listener.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.record("handshake_failed", 0, str(exc))
            raw.close()
            return
        Conn(self, conn).run()


class Conn:
    def __init__(self, node: FakeNode, sock: ssl.SSLSocket):
        self.node = node
        self.sock = sock
        self.wlock = threading.Lock()
        self.requests: Dict[int, List[bytes]] = {}
        self.methods: Dict[int, str] = {}
        self.open_watch: set = set()

    def send(self, ftype: int, flags: int, sid: int, body: bytes = b"") -> None:
        with self.wlock:
            self.sock.sendall(encode_frame(ftype, flags, sid, body))

    def trailers(self, sid: int, code: int = 0, message: str = "", metadata=()) -> None:
        st = wire_pb2.CallStatus(code=code, message=message, metadata=[
            wire_pb2.MetadataEntry(key=k, value=v) for k, v in metadata])
        self.send(FrameType.TRAILERS, 0, sid, st.SerializeToString())

    def message(self, sid: int, msg) -> None:
        self.send(FrameType.MESSAGE, 0, sid, msg.SerializeToString())

    def run(self) -> None:
        dec = FrameDecoder(16 * 1024 * 1024)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    self.node.record("eof", 0, None)
                    return
                for f in dec.feed(data):
                    self.on_frame(f)
        except (OSError, ssl.SSLError) as exc:
            self.node.record("conn_error", 0, str(exc))
        finally:
            try:
                self.sock.close()
            except OSError:
                pass

    def on_frame(self, f) -> None:
        node = self.node
        if f.type == FrameType.PING:
            if f.flags & FLAG_ACK:
                node.record("ping_ack", 0, f.body)
            else:
                self.send(FrameType.PING, FLAG_ACK, 0, f.body)
            return
        if f.type == FrameType.HEADERS:
            h = wire_pb2.CallHeaders.FromString(f.body)
            node.headers[f.stream_id] = h
            node.record("headers", f.stream_id, h)
            self.methods[f.stream_id] = h.method
            self.requests[f.stream_id] = []
            if f.flags & FLAG_END_STREAM:
                self.handle(f.stream_id)
            return
        if f.type == FrameType.MESSAGE:
            chain = self.node.chain
            if chain is not None and self.methods.get(f.stream_id) == \
                    "/gridledger.Ingest/StreamReadings":
                sequence = len(self.requests[f.stream_id])
                self.requests[f.stream_id].append(b"")
                chain.stream_message(self, f.stream_id, sequence, f.body)
                if f.flags & FLAG_END_STREAM:
                    self.handle(f.stream_id)
                return
            self.requests[f.stream_id].append(f.body)
            node.record("first_message", f.stream_id, f.body)
            if f.flags & FLAG_END_STREAM:
                self.handle(f.stream_id)
            return
        if f.type == FrameType.END:
            node.record("end", f.stream_id, None)
            self.handle(f.stream_id)
            return
        if f.type == FrameType.CANCEL:
            node.record("cancel", f.stream_id, self.methods.get(f.stream_id))
            if node.chain is not None and node.chain.cancel(self, f.stream_id):
                return
            if f.stream_id in self.open_watch:
                self.open_watch.discard(f.stream_id)
                self.trailers(f.stream_id, 1, "cancelled")
            return

    def handle(self, sid: int) -> None:
        method = self.methods[sid]
        reqs = self.requests[sid]
        Req, Resp = health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
        if self.node.chain is not None and self.node.chain.handles(method):
            self.node.chain.handle(self, sid, method, reqs)
        elif method == "/gridledger.Health/Check":
            req = Req.FromString(reqs[0])
            if req.service == "":
                self.message(sid, Resp(status=1))
                self.trailers(sid, 0, "", [("x-served-by", b"fake")])
            else:
                self.trailers(sid, 5, f"unknown service {req.service!r}")
        elif method == "/gridledger.Health/Watch":
            self.message(sid, Resp(status=1))
            self.message(sid, Resp(status=2))
            self.open_watch.add(sid)
        elif method == "/test/Finite":
            for i in range(3):
                self.message(sid, Resp(status=i))
            self.trailers(sid, 0)
        elif method == "/test/StreamThenFail":
            self.message(sid, Resp(status=1))
            self.trailers(sid, 10, "aborted after one")
        elif method == "/test/Slow":
            pass  # never answers; the client's deadline must fire
        elif method == "/test/Big":
            self.send(FrameType.MESSAGE, 0, sid, b"\x00" * 100_000)
            self.trailers(sid, 0)
        elif method == "/test/Sum":
            total = sum(len(Req.FromString(r).service) for r in reqs)
            self.message(sid, Resp(status=total % 4))
            self.trailers(sid, 0, "", [("count", str(len(reqs)).encode())])
        elif method == "/test/PingFirst":
            self.send(FrameType.PING, 0, 0, b"abcdefgh")
            self.message(sid, Resp(status=1))
            self.trailers(sid, 0)
        elif method == "/test/GoAway":
            ga = wire_pb2.GoAway(last_stream_id=sid, code=0, message="shutting down")
            self.send(FrameType.GOAWAY, 0, 0, ga.SerializeToString())
            self.message(sid, Resp(status=1))
            self.trailers(sid, 0)
        elif method == "/test/Error":
            self.trailers(sid, 7, "nope", [("why", b"role")])
        elif method == "/test/NoResponse":
            self.trailers(sid, 0)
        elif method == "/test/Garbage":
            self.send(FrameType.MESSAGE, 0, sid, b"\xff\xff\xff")
            self.trailers(sid, 0)
        elif method == "/test/BadFrame":
            self.send(9, 0, sid, b"")
        elif method == "/test/Hangup":
            self.sock.close()
            raise OSError("hung up")
        else:
            self.trailers(sid, 12, f"unknown method {method}")
