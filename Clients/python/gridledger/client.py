"""Blocking GridLedger client (Docs/wire-protocol.md), built on ``ssl`` and ``socket``.

One :class:`Client` holds one mutually authenticated TLS 1.3 connection to a node.  A
background I/O thread owns the socket: it writes the frames callers queue, reads and
demultiplexes incoming frames into per-call queues, answers PINGs and records GOAWAY.
Every public method is therefore safe to call from several threads at once, and calls
(including open server-streaming iterators) may be interleaved freely.

Deadlines: a call's ``timeout`` (seconds) is sent to the node as ``timeout_ms`` and is
enforced locally as well; when it expires the client sends CANCEL and raises
``RpcError(DEADLINE_EXCEEDED)``.  ``timeout`` defaults to the client's ``timeout`` for
unary and client-streaming calls and to no deadline for server-streaming calls (a watch
would otherwise end after ``timeout`` seconds); pass ``None`` for no deadline.

After the node sends GOAWAY the calls already running finish normally and every new
call raises ``RpcError(UNAVAILABLE)``: create a new :class:`Client` to continue.
"""

from __future__ import annotations

import math
import queue
import re
import selectors
import socket
import ssl
import threading
import time
import weakref
from typing import Any, Callable, Iterable, Iterator, List, Mapping, \
    Optional, Sequence, Tuple, Type, TypeVar, Union

from google.protobuf.message import DecodeError, Message

from . import anchor_pb2, chain_pb2, contracts_pb2, health_pb2, ingest_pb2, ops_pb2, raft_pb2, \
    wire_pb2
from .frames import (
    DEFAULT_MAX_MESSAGE_BYTES,
    FLAG_ACK,
    FLAG_END_STREAM,
    MAX_BODY_LENGTH,
    Frame,
    FrameDecoder,
    FrameError,
    FrameType,
    OversizedMessage,
    encode_frame,
)
from .status import TX_LOCATION_METADATA_KEY, RpcError, StatusCode

from .parameters import command_ack, district_registration, tx_payload
from .signing import Signer, readings_payload

__all__ = ["Client", "ResponseStream", "BidiStream", "ALPN_PROTOCOL", "Metadata", "ack_error",
           "member_request", "member_response_json", "get_block_request"]

ALPN_PROTOCOL = "gridledger/1"
SERVER_ROLE = "node"

_M = TypeVar("_M", bound=Message)
Metadata = Union[Mapping[str, Union[str, bytes]], Iterable[Tuple[str, Union[str, bytes]]]]

_DEFAULT: Any = object()
_METADATA_KEY = re.compile(r"^[a-z0-9._-]+$")
_MAX_METADATA_BYTES = 16 * 1024
_WRITE_CHUNK = 256 * 1024
_READ_CHUNK = 256 * 1024
_OUT_HIGH_WATER = 1024 * 1024  # callers block while this much is queued for writing
_MAX_STREAM_ID = 0xFFFFFFFF


def _parse_address(address: str) -> Tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"address must be HOST:PORT, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def _make_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    ctx.load_verify_locations(cafile=ca)  # the deployment CA is the only trust root
    ctx.load_cert_chain(certfile=cert, keyfile=key)
    ctx.set_alpn_protocols([ALPN_PROTOCOL])
    return ctx


def _subject_values(cert: dict, attribute: str) -> List[str]:
    return [value for rdn in cert.get("subject", ()) for (name, value) in rdn if name == attribute]


def _metadata_entries(metadata: Optional[Metadata]) -> List[wire_pb2.MetadataEntry]:
    if metadata is None:
        return []
    items = metadata.items() if isinstance(metadata, Mapping) else metadata
    entries = []
    total = 0
    for key, value in items:
        if not isinstance(key, str) or not _METADATA_KEY.match(key):
            raise ValueError(f"metadata key {key!r} must match [a-z0-9._-]+")
        if isinstance(value, str):
            value = value.encode("utf-8")
        value = bytes(value)
        total += len(key) + len(value)
        entries.append(wire_pb2.MetadataEntry(key=key, value=value))
    if total > _MAX_METADATA_BYTES:
        raise ValueError(f"metadata of {total} bytes exceeds {_MAX_METADATA_BYTES}")
    return entries


def _pairs(entries: Iterable[wire_pb2.MetadataEntry]) -> Tuple[Tuple[str, bytes], ...]:
    return tuple((e.key, bytes(e.value)) for e in entries)


# --------------------------------------------------------------------------- connection


class _Stream:
    """Client side of one call.  The I/O thread puts events into ``events``:
    ("message", body), ("status", code, message, metadata) or ("error", RpcError);
    the last two end the call."""

    __slots__ = ("id", "events", "ended")

    def __init__(self, stream_id: int) -> None:
        self.id = stream_id
        self.events: "queue.Queue[tuple]" = queue.Queue()
        self.ended = False  # set by the I/O thread once the final event is queued


class _Closed(Exception):
    pass


class _DeadlineReached(Exception):
    pass


class _Connection:
    def __init__(self, sock: ssl.SSLSocket, max_message_bytes: int) -> None:
        self._sock = sock
        self._max_message_bytes = max_message_bytes
        self._decoder = FrameDecoder(max_message_bytes)
        self._lock = threading.Lock()
        self._writable = threading.Condition(self._lock)
        self._out = bytearray()
        self._streams: dict = {}
        self._next_id = 1
        self._pings: dict = {}
        self._ping_counter = 0
        self._cancel_later: "queue.SimpleQueue[_Stream]" = queue.SimpleQueue()
        self.goaway: Optional[wire_pb2.GoAway] = None
        self.error: Optional[RpcError] = None
        self._closing = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        sock.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="gridledger-io", daemon=True)
        self._thread.start()

    # ---- caller side (any thread)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already woken, or closed

    def _check_usable(self) -> None:
        if self.error is not None:
            raise RpcError(self.error.code, self.error.message) from self.error.__cause__
        if self._closing:
            raise RpcError(StatusCode.CANCELLED, "client is closed")
        if self.goaway is not None:
            msg = "server sent GOAWAY"
            if self.goaway.message:
                msg += f" ({self.goaway.message})"
            raise RpcError(StatusCode.UNAVAILABLE, msg + "; open a new connection")

    def open_stream(self, headers: bytes, end_stream: bool) -> _Stream:
        with self._lock:
            self._check_usable()
            stream_id = self._next_id
            if stream_id > _MAX_STREAM_ID:
                raise RpcError(StatusCode.UNAVAILABLE, "stream ids exhausted; open a new connection")
            self._next_id += 2
            stream = _Stream(stream_id)
            self._streams[stream_id] = stream
            self._out += encode_frame(FrameType.HEADERS, FLAG_END_STREAM if end_stream else 0,
                                      stream_id, headers)
        self._wake()
        return stream

    def send_message(self, stream: _Stream, body: bytes, end_stream: bool,
                     deadline: Optional[float]) -> bool:
        """Queue a MESSAGE; False if the call has already ended (nothing sent)."""
        if len(body) > MAX_BODY_LENGTH:
            raise RpcError(StatusCode.RESOURCE_EXHAUSTED, f"request of {len(body)} bytes is too large")
        with self._lock:
            while len(self._out) > _OUT_HIGH_WATER and self.error is None and not stream.ended:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise _DeadlineReached()
                self._writable.wait(remaining)
            if stream.ended or self._streams.get(stream.id) is not stream:
                return False
            self._out += encode_frame(FrameType.MESSAGE, FLAG_END_STREAM if end_stream else 0,
                                      stream.id, body)
        self._wake()
        return True

    def cancel(self, stream: _Stream) -> None:
        """Forget a stream; send CANCEL if the server has not ended it."""
        with self._lock:
            if self._streams.pop(stream.id, None) is None:
                return
            if self.error is None and not stream.ended:
                self._out += encode_frame(FrameType.CANCEL, 0, stream.id)
            stream.ended = True
        self._wake()

    def end(self, stream: _Stream) -> None:
        """Half-close with an END frame (no message left to carry END_STREAM)."""
        with self._lock:
            if stream.ended or self._streams.get(stream.id) is not stream:
                return
            self._out += encode_frame(FrameType.END, 0, stream.id)
        self._wake()

    def cancel_later(self, stream: _Stream) -> None:
        """cancel() for finalizers: takes no lock, the I/O thread does the work."""
        self._cancel_later.put(stream)
        self._wake()

    def ping(self, timeout: Optional[float]) -> float:
        event = threading.Event()
        with self._lock:
            if self.error is not None:
                raise RpcError(self.error.code, self.error.message) from self.error.__cause__
            if self._closing:
                raise RpcError(StatusCode.CANCELLED, "client is closed")
            self._ping_counter += 1
            payload = self._ping_counter.to_bytes(8, "big")
            self._pings[payload] = event
            self._out += encode_frame(FrameType.PING, 0, 0, payload)
        start = time.monotonic()
        self._wake()
        event.wait(timeout)
        with self._lock:
            self._pings.pop(payload, None)
            acked = getattr(event, "acked", False)
            if self.error is not None and not acked:
                raise RpcError(self.error.code, self.error.message) from self.error.__cause__
        if not acked:
            raise RpcError(StatusCode.DEADLINE_EXCEEDED, "no PING acknowledgement within the timeout")
        return time.monotonic() - start

    def close(self, timeout: float = 2.0) -> None:
        with self._lock:
            if not self._closing:
                self._closing = True
                for stream in self._streams.values():
                    if not stream.ended:
                        self._out += encode_frame(FrameType.CANCEL, 0, stream.id)
        self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # ---- I/O thread

    def _run(self) -> None:
        error: Optional[RpcError] = None
        try:
            self._loop()
            error = RpcError(StatusCode.CANCELLED, "client closed the connection")
        except _Closed as exc:
            msg = "connection closed by the server"
            if self.goaway is not None:
                msg += " after GOAWAY"
                if self.goaway.message:
                    msg += f" ({self.goaway.message})"
            if exc.args:
                msg += f": {exc.args[0]}"
            error = RpcError(StatusCode.UNAVAILABLE, msg)
            error.__cause__ = exc.__cause__
        except FrameError as exc:
            error = RpcError(StatusCode.INTERNAL, f"protocol error from server: {exc}")
            error.__cause__ = exc
        except ssl.SSLError as exc:
            error = RpcError(StatusCode.UNAVAILABLE, f"TLS error: {exc}")
            error.__cause__ = exc
        except OSError as exc:
            error = RpcError(StatusCode.UNAVAILABLE, f"connection error: {exc}")
            error.__cause__ = exc
        except BaseException as exc:  # a bug: fail every call rather than hang them
            error = RpcError(StatusCode.INTERNAL, f"client I/O thread failed: {exc!r}")
            error.__cause__ = exc
        finally:
            self._shutdown(error)

    def _shutdown(self, error: RpcError) -> None:
        with self._lock:
            if self.error is None:
                self.error = error
            streams = list(self._streams.values())
            self._streams.clear()
            pings = list(self._pings.values())
            self._writable.notify_all()
        for stream in streams:
            if not stream.ended:
                stream.ended = True
                stream.events.put(("error", error))
        for event in pings:
            event.set()
        try:
            self._sock.close()
        except OSError:
            pass
        self._wake_r.close()
        self._wake_w.close()

    def _loop(self) -> None:
        sel = selectors.DefaultSelector()
        sock = self._sock
        sel.register(self._wake_r, selectors.EVENT_READ)
        sel.register(sock, selectors.EVENT_READ)
        interest = selectors.EVENT_READ
        pending = b""  # the chunk being written; retried unchanged until written
        read_wants_write = False
        try:
            while True:
                while True:
                    try:
                        self.cancel(self._cancel_later.get_nowait())
                    except queue.Empty:
                        break
                with self._lock:
                    if not pending and self._out:
                        pending = bytes(self._out[:_WRITE_CHUNK])
                        del self._out[:_WRITE_CHUNK]
                        self._writable.notify_all()
                    closing = self._closing
                # Write as much as the socket takes.
                while pending:
                    try:
                        sent = sock.send(pending)
                    except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                        break
                    pending = pending[sent:]
                    if not pending:
                        with self._lock:
                            if self._out:
                                pending = bytes(self._out[:_WRITE_CHUNK])
                                del self._out[:_WRITE_CHUNK]
                                self._writable.notify_all()
                if closing and not pending:
                    with self._lock:
                        if not self._out:
                            self._goodbye()
                            return
                    continue
                # Read everything available.
                read_wants_write = self._read_available()
                with self._lock:
                    more_out = bool(self._out)
                want = selectors.EVENT_READ
                if pending or more_out or read_wants_write:
                    want |= selectors.EVENT_WRITE
                if want != interest:
                    sel.modify(sock, want)
                    interest = want
                if more_out and not pending:
                    continue
                for key, _ in sel.select(None):
                    if key.fileobj is self._wake_r:
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except (BlockingIOError, InterruptedError):
                            pass
        finally:
            sel.close()

    def _goodbye(self) -> None:
        """Closing on our side: send TLS close_notify, briefly."""
        try:
            self._sock.settimeout(0.5)
            self._sock.unwrap()
        except (OSError, ValueError):
            pass

    def _read_available(self) -> bool:
        """Read and dispatch until the socket would block; True if TLS wants a write."""
        for _ in range(64):
            try:
                data = self._sock.recv(_READ_CHUNK)
            except ssl.SSLWantReadError:
                return False
            except ssl.SSLWantWriteError:
                return True
            except BlockingIOError:
                return False
            except ssl.SSLZeroReturnError:
                data = b""
            if not data:
                try:
                    self._decoder.eof()
                except FrameError as exc:
                    raise _Closed(str(exc)) from exc
                raise _Closed()
            for event in self._decoder.feed(data):
                self._dispatch(event)
        # Fairness: leave the rest (possibly buffered inside TLS) for the next round.
        if self._sock.pending():
            self._wake()
        return False

    def _dispatch(self, event) -> None:
        if isinstance(event, OversizedMessage):
            with self._lock:
                stream = self._streams.pop(event.stream_id, None)
                if stream is None or stream.ended:
                    return
                stream.ended = True
                self._out += encode_frame(FrameType.CANCEL, 0, stream.id)
            stream.events.put(("error", RpcError(
                StatusCode.RESOURCE_EXHAUSTED,
                f"response message of {event.length} bytes exceeds the client limit of "
                f"{self._max_message_bytes} bytes")))
            return
        frame: Frame = event
        ftype = frame.type
        if ftype == FrameType.MESSAGE:
            with self._lock:
                stream = self._streams.get(frame.stream_id)
            if stream is not None and not stream.ended:
                stream.events.put(("message", frame.body))
        elif ftype == FrameType.TRAILERS:
            try:
                status = wire_pb2.CallStatus.FromString(frame.body)
            except DecodeError as exc:
                raise FrameError(f"TRAILERS on stream {frame.stream_id} does not decode: {exc}")
            with self._lock:
                stream = self._streams.pop(frame.stream_id, None)
                if stream is None or stream.ended:
                    return
                stream.ended = True
            stream.events.put(("status", status.code, status.message, _pairs(status.metadata)))
        elif ftype == FrameType.PING:
            if frame.flags & FLAG_ACK:
                with self._lock:
                    waiter = self._pings.get(frame.body)
                if waiter is not None:
                    waiter.acked = True
                    waiter.set()
            else:
                with self._lock:
                    self._out += encode_frame(FrameType.PING, FLAG_ACK, 0, frame.body)
        elif ftype == FrameType.GOAWAY:
            try:
                goaway = wire_pb2.GoAway.FromString(frame.body)
            except DecodeError as exc:
                raise FrameError(f"GOAWAY does not decode: {exc}")
            failed = []
            with self._lock:
                self.goaway = goaway
                for stream_id in [s for s in self._streams if s > goaway.last_stream_id]:
                    stream = self._streams.pop(stream_id)
                    if not stream.ended:
                        stream.ended = True
                        failed.append(stream)
            msg = f"server is going away; the call was not started"
            if goaway.message:
                msg += f" ({goaway.message})"
            for stream in failed:
                stream.events.put(("error", RpcError(StatusCode.UNAVAILABLE, msg)))
        else:  # HEADERS or CANCEL: client -> server only
            raise FrameError(f"unexpected {FrameType(ftype).name} frame from the server")


# --------------------------------------------------------------------------- calls


class _Call:
    def __init__(self, conn: _Connection, method: str, timeout: Optional[float],
                 metadata: Optional[Metadata], end_stream: bool) -> None:
        self._conn = conn
        self._timeout = timeout
        if timeout is not None:
            if timeout <= 0:
                raise RpcError(StatusCode.DEADLINE_EXCEEDED, "deadline already expired")
            timeout_ms = max(1, math.ceil(timeout * 1000))
            self._deadline: Optional[float] = time.monotonic() + timeout
        else:
            timeout_ms = 0
            self._deadline = None
        headers = wire_pb2.CallHeaders(method=method, timeout_ms=timeout_ms,
                                       metadata=_metadata_entries(metadata))
        self.method = method
        self.trailing_metadata: Tuple[Tuple[str, bytes], ...] = ()
        self.done = False
        self._stream = conn.open_stream(headers.SerializeToString(), end_stream)

    @property
    def server_ended(self) -> bool:
        return self._stream.ended

    def send(self, message: Message, end_stream: bool) -> bool:
        """Queue one request; False if the call already ended (see recv())."""
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self._expire()
        try:
            return self._conn.send_message(self._stream, message.SerializeToString(),
                                           end_stream, self._deadline)
        except _DeadlineReached:
            self._expire()
            raise AssertionError("unreachable")

    def end(self) -> None:
        """Half-close the call after the last send(end_stream=False)."""
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self._expire()
        self._conn.end(self._stream)

    def recv(self) -> Optional[bytes]:
        """Next response body, or None at an OK end; raises RpcError otherwise."""
        if self.done:
            return None
        while True:
            remaining = None
            if self._deadline is not None:
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    self._expire()
            try:
                event = self._stream.events.get(timeout=remaining)
            except queue.Empty:
                self._expire()
                continue
            kind = event[0]
            if kind == "message":
                return event[1]
            self.done = True
            if kind == "status":
                _, code, message, metadata = event
                self.trailing_metadata = metadata
                if code == StatusCode.OK:
                    return None
                raise RpcError(code, message, metadata)
            raise event[1]

    def decode(self, body: bytes, response_cls: Type[_M]) -> _M:
        try:
            return response_cls.FromString(body)
        except DecodeError as exc:
            self.cancel()
            raise RpcError(StatusCode.INTERNAL,
                           f"cannot decode {response_cls.DESCRIPTOR.full_name} response: {exc}")

    def _expire(self) -> None:
        self.cancel()
        raise RpcError(StatusCode.DEADLINE_EXCEEDED,
                       f"deadline of {self._timeout:g} s exceeded calling {self.method}")

    def cancel(self) -> None:
        if not self.done:
            self.done = True
            self._conn.cancel(self._stream)

    def cancel_later(self) -> None:
        if not self.done:
            self.done = True
            self._conn.cancel_later(self._stream)


class ResponseStream(Iterator[_M]):
    """Iterator over the responses of a server-streaming call.

    ``next()`` blocks for the next response, raises :class:`RpcError` when the call ends
    with a non-OK status and ``StopIteration`` at an OK end.  ``close()`` (or leaving a
    ``with`` block) cancels a call still running: the node receives CANCEL.
    ``trailing_metadata`` holds the trailers' metadata once the call ended OK.
    """

    def __init__(self, call: _Call, response_cls: Type[Message],
                 transform: Optional[Callable[[Message], Any]] = None) -> None:
        self._call = call
        self._response_cls = response_cls
        self._transform = transform
        self._finished = False

    def __iter__(self) -> "ResponseStream":
        return self

    def __next__(self):
        if self._finished:
            raise StopIteration
        try:
            body = self._call.recv()
        except BaseException:
            self._finished = True
            raise
        if body is None:
            self._finished = True
            raise StopIteration
        message = self._call.decode(body, self._response_cls)
        return self._transform(message) if self._transform else message

    @property
    def trailing_metadata(self) -> Tuple[Tuple[str, bytes], ...]:
        return self._call.trailing_metadata

    def close(self) -> None:
        self._finished = True
        self._call.cancel()

    cancel = close

    def __enter__(self) -> "ResponseStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        # May run inside any code (garbage collection): must not take locks.
        try:
            self._call.cancel_later()
        except Exception:
            pass


class BidiStream(ResponseStream):
    """Iterator over the responses of a bidirectional call.

    A background thread (``gridledger-send``) takes requests from the iterable as it
    yields them and sends them, then half-closes the call with END when it is exhausted;
    the caller iterates the responses meanwhile.  ``window`` (optional) bounds the
    requests sent but not yet answered by a response the caller has taken (useful when
    every request gets one response).  If the iterable raises, or the call's deadline
    passes while sending, the call is cancelled and the exception is raised by the
    iterator.  ``close()`` cancels the call and stops sending.
    """

    def __init__(self, call: _Call, requests: Iterable[Message], response_cls: Type[Message],
                 transform: Optional[Callable[[Message], Any]] = None,
                 window: Optional[int] = None) -> None:
        super().__init__(call, response_cls, transform)
        if window is not None and window < 1:
            raise ValueError("window must be at least 1")
        self._send_error: Optional[BaseException] = None
        self._credit = threading.Semaphore(window) if window else None
        self._sender = threading.Thread(target=self._pump, args=(requests,),
                                        name="gridledger-send", daemon=True)
        self._sender.start()

    def _stopped(self) -> bool:
        return self._finished or self._call.done or self._call.server_ended

    def _pump(self, requests: Iterable[Message]) -> None:
        try:
            for request in requests:
                if self._credit is not None:
                    while not self._credit.acquire(timeout=0.1):
                        if self._stopped():
                            return
                if self._stopped():
                    return
                if not self._call.send(request, end_stream=False):
                    return  # the node ended the call: the reader sees its status
            if not self._stopped():
                self._call.end()
        except BaseException as exc:  # report it to the reader, then stop the call
            if self._finished:
                return  # the caller closed the stream
            self._send_error = exc
            self._call.cancel()
            self._call._stream.events.put(("error", exc))

    def __next__(self):
        try:
            response = super().__next__()
        except StopIteration:
            if self._send_error is not None:
                raise self._send_error
            raise
        if self._credit is not None:
            self._credit.release()
        return response

    def close(self) -> None:
        super().close()
        if self._credit is not None:
            self._credit.release()

    cancel = close


# --------------------------------------------------------------------------- client


class Client:
    """A connection to one GridLedger node.

    ``Client(address="host:port", cert=..., key=..., ca=...)`` connects at once: TCP,
    then TLS 1.3 with the client certificate ``cert``/``key``, trusting only ``ca``,
    checking that the server certificate names ``server_name`` (default: the host of
    ``address``) and carries role (subject OU) ``node``, with ALPN ``gridledger/1``.
    It then exchanges one PING so that a node rejecting the client certificate (which
    TLS 1.3 reports only after the client's side of the handshake) fails here.
    Connection failures raise ``ssl.SSLError`` (certificate problems) or ``OSError``.

    ``timeout`` (seconds) bounds connecting and is the default deadline of unary and
    client-streaming calls.  ``max_message_bytes`` limits a response message; a larger
    one fails its call with RESOURCE_EXHAUSTED without being read into memory.

    Thread-safe; use as a context manager or call :meth:`close`.
    """

    def __init__(self, address: str, cert: str, key: str, ca: str,
                 server_name: Optional[str] = None, timeout: Optional[float] = 10.0,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        host, port = _parse_address(address)
        self.address = address
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        context = _make_context(cert, key, ca)
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = context.wrap_socket(raw, server_hostname=server_name or host)
        except BaseException:
            raw.close()
            raise
        try:
            self._verify_peer(tls)
        except BaseException:
            tls.close()
            raise
        self.peer_certificate: dict = tls.getpeercert()
        self._chain_id: Optional[str] = None
        self._conn = _Connection(tls, max_message_bytes)
        # Garbage collection closes without waiting for the I/O thread.
        self._finalizer = weakref.finalize(self, self._conn.close, 0)
        try:
            self._conn.ping(timeout)
        except RpcError as exc:
            self.close()
            if isinstance(exc.__cause__, OSError):
                raise exc.__cause__ from None
            raise

    @staticmethod
    def _verify_peer(tls: ssl.SSLSocket) -> None:
        alpn = tls.selected_alpn_protocol()
        if alpn != ALPN_PROTOCOL:
            raise ssl.SSLError(f"server did not select ALPN {ALPN_PROTOCOL!r} (got {alpn!r})")
        cert = tls.getpeercert()
        roles = _subject_values(cert or {}, "organizationalUnitName")
        if roles != [SERVER_ROLE]:
            raise ssl.SSLCertVerificationError(
                f"server certificate subject OU is {roles!r}, expected [{SERVER_ROLE!r}]")

    # ---- lifecycle

    def close(self) -> None:
        """Close the connection; calls still running fail with CANCELLED."""
        if self._finalizer.detach() is not None:
            self._conn.close()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def goaway(self) -> Optional[wire_pb2.GoAway]:
        """The GOAWAY the node sent, if any."""
        return self._conn.goaway

    def ping(self, timeout: Any = _DEFAULT) -> float:
        """Send a PING and wait for its ACK; returns the round trip in seconds."""
        return self._conn.ping(self.timeout if timeout is _DEFAULT else timeout)

    # ---- generic calls

    def _call(self, method: str, timeout: Any, default: Optional[float],
              metadata: Optional[Metadata], end_stream: bool) -> _Call:
        if self.closed:
            raise RpcError(StatusCode.CANCELLED, "client is closed")
        return _Call(self._conn, method, default if timeout is _DEFAULT else timeout,
                     metadata, end_stream)

    def unary(self, method: str, request: Message, response_cls: Type[_M],
              timeout: Any = _DEFAULT, metadata: Optional[Metadata] = None) -> _M:
        """One request, one response.  ``method`` is "/package.Service/Method"."""
        call = self._call(method, timeout, self.timeout, metadata, end_stream=False)
        try:
            call.send(request, end_stream=True)
            return self._single_response(call, response_cls)
        except BaseException:
            call.cancel()
            raise

    def server_stream(self, method: str, request: Message, response_cls: Type[_M],
                      timeout: Any = None, metadata: Optional[Metadata] = None
                      ) -> ResponseStream:
        """One request, an iterator of responses (see :class:`ResponseStream`)."""
        call = self._call(method, timeout, None, metadata, end_stream=False)
        try:
            call.send(request, end_stream=True)
        except BaseException:
            call.cancel()
            raise
        return ResponseStream(call, response_cls)

    def client_stream(self, method: str, requests: Iterable[Message], response_cls: Type[_M],
                      timeout: Any = _DEFAULT, metadata: Optional[Metadata] = None) -> _M:
        """Many requests, one response.

        ``requests`` (any iterable) is consumed lazily: each request is sent as soon as
        the iterable yields it, and an END frame half-closes the call when it is
        exhausted.  If the node ends the call early, sending stops and its status is
        raised."""
        call = self._call(method, timeout, self.timeout, metadata, end_stream=False)
        try:
            for request in requests:
                if not call.send(request, end_stream=False) or call.server_ended:
                    break  # the node ended the call early: report its status
            else:
                call.end()
            return self._single_response(call, response_cls)
        except BaseException:
            call.cancel()
            raise

    def bidi_stream(self, method: str, requests: Iterable[Message], response_cls: Type[_M],
                    timeout: Any = None, metadata: Optional[Metadata] = None,
                    window: Optional[int] = None) -> BidiStream:
        """Many requests, many responses: ``requests`` is sent from a background thread
        while the returned :class:`BidiStream` yields the responses."""
        call = self._call(method, timeout, None, metadata, end_stream=False)
        return BidiStream(call, requests, response_cls, window=window)

    @staticmethod
    def _single_response(call: _Call, response_cls: Type[_M]) -> _M:
        body = call.recv()
        if body is None:
            raise RpcError(StatusCode.INTERNAL, f"{call.method} ended OK without a response")
        response = call.decode(body, response_cls)
        if call.recv() is not None:
            call.cancel()
            raise RpcError(StatusCode.INTERNAL, f"{call.method} sent more than one response")
        return response

    # ---- typed methods

    def status(self, timeout: Any = _DEFAULT, metadata: Optional[Metadata] = None
               ) -> ops_pb2.GetStatusResponse:
        """``/gridledger.Ops/GetStatus`` (roles ops, admin)."""
        return self.unary("/gridledger.Ops/GetStatus", ops_pb2.GetStatusRequest(),
                          ops_pb2.GetStatusResponse, timeout=timeout, metadata=metadata)

    def health(self, service: str = "", timeout: Any = _DEFAULT,
               metadata: Optional[Metadata] = None) -> str:
        """``/gridledger.Health/Check``: the status name, e.g. "SERVING".
        An unknown service raises RpcError(NOT_FOUND)."""
        response = self.unary("/gridledger.Health/Check",
                              health_pb2.HealthCheckRequest(service=service),
                              health_pb2.HealthCheckResponse, timeout=timeout, metadata=metadata)
        return serving_status_name(response.status)

    def watch_health(self, service: str = "", timeout: Any = None,
                     metadata: Optional[Metadata] = None) -> ResponseStream:
        """``/gridledger.Health/Watch``: an iterator of status names ("SERVING", ...,
        "SERVICE_UNKNOWN"), the current one first.  Close it to stop watching."""
        call = self._call("/gridledger.Health/Watch", timeout, None, metadata, end_stream=False)
        try:
            call.send(health_pb2.HealthCheckRequest(service=service), end_stream=True)
        except BaseException:
            call.cancel()
            raise
        return ResponseStream(call, health_pb2.HealthCheckResponse,
                              lambda r: serving_status_name(r.status))


    # ---- chain services (Docs/wire-protocol.md, "Chain services")

    # Every chain-service call takes ``chain_id``: the chain the request is for; "" (the
    # default) = the node's only chain.  A node serving several chains answers
    # RpcError(INVALID_ARGUMENT) to "", NOT_FOUND to a chain it does not serve.

    def chain_info(self, timeout: Any = _DEFAULT, metadata: Optional[Metadata] = None,
                   chain_id: str = "") -> ingest_pb2.ChainInfo:
        """``/gridledger.Query/GetChainInfo``: chain id, head height and hash, hash suite."""
        info = self.unary("/gridledger.Query/GetChainInfo",
                          ingest_pb2.GetChainInfoRequest(chain_id=chain_id or ""),
                          ingest_pb2.ChainInfo, timeout=timeout, metadata=metadata)
        if info.chain_id and not chain_id:
            self._chain_id = info.chain_id
        return info

    def chain_id(self, timeout: Any = _DEFAULT) -> str:
        """The node's (only) chain id (asked once with GetChainInfo, then remembered)."""
        return self._chain_id or self.chain_info(timeout=timeout).chain_id

    def submit(self, signed: Union[chain_pb2.SignedTransaction, ingest_pb2.SubmitRequest],
               timeout: Any = _DEFAULT, metadata: Optional[Metadata] = None,
               chain_id: str = "") -> ingest_pb2.SubmitResponse:
        """``/gridledger.Ingest/Submit``: any signed transaction.  Answers once the block
        holding it is durable.  A transaction already on the chain raises
        ``RpcError(ALREADY_EXISTS)`` whose ``.location`` is the original ``TxLocation``."""
        return self.unary("/gridledger.Ingest/Submit", _submit_request(signed, chain_id),
                          ingest_pb2.SubmitResponse, timeout=timeout, metadata=metadata)

    def submit_signed_readings(self, signed: Union[chain_pb2.SignedTransaction,
                                                   ingest_pb2.SubmitRequest],
                               timeout: Any = _DEFAULT, metadata: Optional[Metadata] = None,
                               chain_id: str = "") -> ingest_pb2.SubmitResponse:
        """``/gridledger.Ingest/SubmitReadings`` with a transaction signed beforehand
        (resubmitting the same one is safe: ALREADY_EXISTS gives its location)."""
        return self.unary("/gridledger.Ingest/SubmitReadings", _submit_request(signed, chain_id),
                          ingest_pb2.SubmitResponse, timeout=timeout, metadata=metadata)

    def sign_readings(self, signer: Signer, readings: Iterable[chain_pb2.Reading],
                      batch_id: Optional[str] = None, chain_id: Optional[str] = None,
                      district: Optional[str] = None) -> chain_pb2.SignedTransaction:
        """A signed ``TxPayload`` with a ``ReadingBatch`` for ``signer.district`` (or
        ``district``), created now, with a random nonce, for chain ``chain_id`` (default:
        the node's only chain, :meth:`chain_id`); ``batch_id`` defaults to a random UUID."""
        if district is None:
            district = signer.district
            if not district:
                raise ValueError(f"the signer certificate ({signer.name}) names no district "
                                 "(subject L): pass district=")
        payload = readings_payload(chain_id or self.chain_id(), district, readings,
                                   batch_id=batch_id)
        return signer.sign(payload)

    def submit_readings(self, signer: Signer, readings: Iterable[chain_pb2.Reading],
                        batch_id: Optional[str] = None, chain_id: Optional[str] = None,
                        timeout: Any = _DEFAULT, metadata: Optional[Metadata] = None
                        ) -> ingest_pb2.SubmitResponse:
        """Sign a batch of readings (see :meth:`sign_readings`) and submit it with
        ``/gridledger.Ingest/SubmitReadings``.  Returns the ``SubmitResponse`` (location,
        outcome with readings_accepted / readings_duplicate).  ALREADY_EXISTS raises
        ``RpcError`` with ``.location``; other refusals raise ``RpcError`` too."""
        signed = self.sign_readings(signer, readings, batch_id=batch_id, chain_id=chain_id)
        return self.submit_signed_readings(signed, timeout=timeout, metadata=metadata,
                                           chain_id=chain_id or "")

    def stream_readings(self, signer: Signer,
                        batches: Iterable[Union[Iterable[chain_pb2.Reading],
                                                chain_pb2.ReadingBatch,
                                                chain_pb2.SignedTransaction]],
                        chain_id: Optional[str] = None, timeout: Any = None,
                        metadata: Optional[Metadata] = None, window: Optional[int] = 64
                        ) -> BidiStream:
        """``/gridledger.Ingest/StreamReadings``: yields one ``StreamAck`` per batch, in
        order (``ack.code`` 0 = committed, ``ack.response`` the SubmitResponse; a failed
        batch does not end the stream: :func:`ack_error` turns its code and message into
        an ``RpcError``, with ``.location`` for ALREADY_EXISTS).  Each batch is an iterable of ``Reading`` (signed
        for ``signer.district`` with a random batch id), a ``ReadingBatch`` (its district
        and batch id are kept; an empty district means the signer's) or a
        ``SignedTransaction`` sent as it is.  Batches are signed and sent lazily, at most
        ``window`` ahead of the acks taken.  Close the stream to cancel the call."""
        chain = chain_id or self.chain_id()
        request_chain = chain_id or ""

        def requests():
            for batch in batches:
                if isinstance(batch, chain_pb2.SignedTransaction):
                    signed = batch
                elif isinstance(batch, chain_pb2.ReadingBatch):
                    signed = self.sign_readings(
                        signer, batch.readings, batch_id=batch.batch_id or None,
                        chain_id=chain, district=batch.district or None)
                else:
                    signed = self.sign_readings(signer, batch, chain_id=chain)
                yield ingest_pb2.SubmitRequest(transaction=signed, chain_id=request_chain)

        return self.bidi_stream("/gridledger.Ingest/StreamReadings", requests(),
                                ingest_pb2.StreamAck, timeout=timeout, metadata=metadata,
                                window=window)

    # Reads of single items take ``linearizable``: False (CONSISTENCY_LOCAL) answers from
    # what the node has applied; True (CONSISTENCY_LINEARIZABLE) first obtains a
    # leader-confirmed read index (Raft ReadIndex) and waits until the node has applied
    # it, so the answer reflects every block committed before the call, on followers too
    # (RpcError(UNAVAILABLE) without a leader).

    def get_block(self, height: Optional[int] = None, hash: Union[bytes, str, None] = None,
                  timeout: Any = _DEFAULT, metadata: Optional[Metadata] = None,
                  linearizable: bool = False, chain_id: str = ""
                  ) -> ingest_pb2.GetBlockResponse:
        """``/gridledger.Query/GetBlock`` by ``height`` or by ``hash`` (bytes or hex),
        exactly one.  An unknown block raises ``RpcError(NOT_FOUND)``."""
        return self.unary("/gridledger.Query/GetBlock",
                          get_block_request(height, hash, linearizable, chain_id),
                          ingest_pb2.GetBlockResponse, timeout=timeout, metadata=metadata)

    def get_transaction(self, tx_id: Union[bytes, str], timeout: Any = _DEFAULT,
                        metadata: Optional[Metadata] = None, linearizable: bool = False,
                        chain_id: str = "") -> ingest_pb2.GetTransactionResponse:
        """``/gridledger.Query/GetTransaction`` by id (bytes or hex): the transaction, its
        location and outcome."""
        return self.unary("/gridledger.Query/GetTransaction",
                          ingest_pb2.GetTransactionRequest(tx_id=_as_bytes(tx_id, "tx_id"),
                                                           consistency=_consistency(linearizable),
                                                           chain_id=chain_id or ""),
                          ingest_pb2.GetTransactionResponse, timeout=timeout,
                          metadata=metadata)

    def get_state(self, key: str, timeout: Any = _DEFAULT,
                  metadata: Optional[Metadata] = None, linearizable: bool = False,
                  chain_id: str = "") -> ingest_pb2.GetStateResponse:
        """``/gridledger.Query/GetState``: ``found``, ``value`` and ``version``.  Reading
        keys are ``reading/<meter>/<timestamp_ms zero-padded to 15 digits>``."""
        return self.unary("/gridledger.Query/GetState",
                          ingest_pb2.GetStateRequest(key=key,
                                                     consistency=_consistency(linearizable),
                                                     chain_id=chain_id or ""),
                          ingest_pb2.GetStateResponse, timeout=timeout, metadata=metadata)

    def get_history(self, key: str, limit: int = 100, timeout: Any = _DEFAULT,
                    metadata: Optional[Metadata] = None, linearizable: bool = False,
                    chain_id: str = "") -> ingest_pb2.GetHistoryResponse:
        """``/gridledger.Query/GetHistory``: at most ``limit`` versions, newest first."""
        return self.unary("/gridledger.Query/GetHistory",
                          ingest_pb2.GetHistoryRequest(key=key, limit=limit,
                                                       consistency=_consistency(linearizable),
                                                       chain_id=chain_id or ""),
                          ingest_pb2.GetHistoryResponse, timeout=timeout, metadata=metadata)

    def list_blocks(self, from_height: int = 0, to_height: int = 0, page_size: int = 100,
                    timeout: Any = _DEFAULT, metadata: Optional[Metadata] = None,
                    chain_id: str = "") -> Iterator[ingest_pb2.BlockSummary]:
        """``/gridledger.Query/ListBlocks`` over ``[from_height, to_height)`` (``to_height``
        0 = up to the head): a generator of ``BlockSummary`` that asks for page after
        page, following ``next_height`` until it is 0.  ``timeout`` applies per page."""
        height = from_height
        while True:
            page = self.unary("/gridledger.Query/ListBlocks",
                              ingest_pb2.ListBlocksRequest(from_height=height,
                                                           to_height=to_height,
                                                           page_size=page_size,
                                                           chain_id=chain_id or ""),
                              ingest_pb2.ListBlocksResponse, timeout=timeout,
                              metadata=metadata)
            yield from page.blocks
            if page.next_height == 0:
                return
            if page.next_height <= height:
                raise RpcError(StatusCode.INTERNAL,
                               f"ListBlocks from {height} answered next_height "
                               f"{page.next_height}: no progress")
            height = page.next_height

    def subscribe_blocks(self, from_height: int = 0, timeout: Any = None,
                         metadata: Optional[Metadata] = None, chain_id: str = ""
                         ) -> ResponseStream:
        """``/gridledger.Query/SubscribeBlocks``: an iterator of ``GetBlockResponse``, every
        block from ``from_height`` and then each new one as it becomes durable.  Close it
        to stop.  A subscriber more than 256 blocks behind is cut off with
        RESOURCE_EXHAUSTED: subscribe again from the last height seen + 1."""
        return self.server_stream("/gridledger.Query/SubscribeBlocks",
                                  ingest_pb2.SubscribeBlocksRequest(from_height=from_height,
                                                                    chain_id=chain_id or ""),
                                  ingest_pb2.GetBlockResponse, timeout=timeout,
                                  metadata=metadata)


    # ---- anchoring, parameters, fee control (Docs/anchoring.md; contracts.proto)
    #
    # Submissions sign a ``TxPayload{chain_id, created_ms = now, nonce = random, body}``
    # with ``signer`` and call ``/gridledger.Ingest/Submit`` like :meth:`submit`: the
    # ``SubmitResponse`` once durable, ``RpcError(ALREADY_EXISTS)`` with ``.location``
    # for a transaction already on the chain.  ``chain_id`` is the chain the payload names
    # and the request is for ("" = the node's only chain, asked with GetChainInfo).

    def prove_block(self, height: int, chain_id: str = "", timeout: Any = _DEFAULT,
                    metadata: Optional[Metadata] = None) -> anchor_pb2.BlockProof:
        """``/gridledger.Query/ProveBlock``: the proof that district block ``height`` is
        anchored on the main chain (verify it with :func:`gridledger.proof.verify_proof`).
        A block not anchored yet is refused by the node (NOT_FOUND or
        FAILED_PRECONDITION)."""
        return self.unary("/gridledger.Query/ProveBlock",
                          anchor_pb2.ProveBlockRequest(chain_id=chain_id or "", height=height),
                          anchor_pb2.BlockProof, timeout=timeout, metadata=metadata)

    def sign_payload(self, signer: Signer, chain_id: str = "", **body: Any
                     ) -> chain_pb2.SignedTransaction:
        """A signed ``TxPayload`` with one body field (``parameter=``,
        ``district_registration=``, ``command_ack=`` ...) for ``chain_id`` (default: the
        node's only chain)."""
        return signer.sign(tx_payload(chain_id or self.chain_id(), **body))

    def submit_payload(self, signer: Signer, chain_id: str = "", timeout: Any = _DEFAULT,
                       metadata: Optional[Metadata] = None, **body: Any
                       ) -> ingest_pb2.SubmitResponse:
        """Sign (:meth:`sign_payload`) and submit with ``/gridledger.Ingest/Submit``."""
        signed = self.sign_payload(signer, chain_id, **body)
        return self.submit(signed, timeout=timeout, metadata=metadata, chain_id=chain_id)

    def register_district(self, signer: Signer, district: str,
                          member_certificates: Sequence[bytes], chain_id: str = "",
                          timeout: Any = _DEFAULT, metadata: Optional[Metadata] = None
                          ) -> ingest_pb2.SubmitResponse:
        """A ``DistrictRegistration`` on the main chain (signer role admin): the
        district's member node certificates (DER); replaces an earlier registration."""
        return self.submit_payload(signer, chain_id, timeout=timeout, metadata=metadata,
                                   district_registration=district_registration(
                                       district, member_certificates))

    def submit_parameter(self, signer: Signer, parameter: contracts_pb2.DistrictParameter,
                         chain_id: str = "", timeout: Any = _DEFAULT,
                         metadata: Optional[Metadata] = None) -> ingest_pb2.SubmitResponse:
        """A ``DistrictParameter`` (customer, tariff, thresholds, payment or reversal,
        notice templates, activation; builders in :mod:`gridledger.parameters`) on the main
        chain (signer role marketing; admin for an activation), carried down to
        ``parameter.district`` by the downlink."""
        return self.submit_payload(signer, chain_id, timeout=timeout, metadata=metadata,
                                   parameter=parameter)

    def ack_command(self, signer: Signer, command_id: str, success: bool = True,
                    detail: str = "", chain_id: str = "", timeout: Any = _DEFAULT,
                    metadata: Optional[Metadata] = None) -> ingest_pb2.SubmitResponse:
        """A ``CommandAck`` on the district chain (signer role device)."""
        return self.submit_payload(signer, chain_id, timeout=timeout, metadata=metadata,
                                   command_ack=command_ack(command_id, success, detail))

    def district_results(self, district: str, chain_id: str = "", after_account: str = "",
                         limit: int = 0, timeout: Any = _DEFAULT,
                         metadata: Optional[Metadata] = None
                         ) -> anchor_pb2.GetDistrictResultsResponse:
        """``/gridledger.FeeControl/GetDistrictResults`` on the main chain ``chain_id``:
        what ``district``'s anchors carried up, decoded: ``totals`` (UplinkSummary over
        every anchor), ``accounts`` (each account's newest ``AccountResult``, in account
        order, after ``after_account``; at most ``limit``, 0 = the node's default),
        ``warning`` and ``disconnected`` (the accounts of this page in those states) and
        ``next_after`` ("" = no more pages)."""
        if not district:
            raise ValueError("district is required")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit < 2 ** 32:
            raise ValueError(f"limit must be 0 .. 2^32-1, not {limit!r}")
        return self.unary("/gridledger.FeeControl/GetDistrictResults",
                          anchor_pb2.GetDistrictResultsRequest(
                              chain_id=chain_id or "", district=district,
                              after_account=after_account, limit=limit),
                          anchor_pb2.GetDistrictResultsResponse, timeout=timeout,
                          metadata=metadata)

    def district_results_pages(self, district: str, chain_id: str = "", after_account: str = "",
                               limit: int = 0, timeout: Any = _DEFAULT,
                               metadata: Optional[Metadata] = None
                               ) -> Iterator[anchor_pb2.GetDistrictResultsResponse]:
        """Every page of :meth:`district_results`, following ``next_after`` until it is
        "" (``limit`` accounts per page; ``timeout`` per page).  A page that does not move
        forward raises ``RpcError(INTERNAL)``."""
        after = after_account
        while True:
            page = self.district_results(district, chain_id=chain_id, after_account=after,
                                         limit=limit, timeout=timeout, metadata=metadata)
            yield page
            if not page.next_after:
                return
            if page.next_after <= after:
                raise RpcError(StatusCode.INTERNAL,
                               f"GetDistrictResults after {after!r} answered next_after "
                               f"{page.next_after!r}: no progress")
            after = page.next_after

    def get_account(self, account: str, chain_id: str = "", timeout: Any = _DEFAULT,
                    metadata: Optional[Metadata] = None) -> contracts_pb2.GetAccountResponse:
        """``/gridledger.FeeControl/GetAccount``: the account (balance, state, cycle usage
        per period and tier, charges) and its customer archive.  Unknown: NOT_FOUND."""
        return self.unary("/gridledger.FeeControl/GetAccount",
                          contracts_pb2.GetAccountRequest(chain_id=chain_id or "",
                                                          account=account),
                          contracts_pb2.GetAccountResponse, timeout=timeout, metadata=metadata)

    def list_accounts(self, chain_id: str = "", state: int = contracts_pb2.ACCOUNT_STATE_NORMAL,
                      any_warning: bool = False, limit: int = 0, timeout: Any = _DEFAULT,
                      metadata: Optional[Metadata] = None
                      ) -> contracts_pb2.ListAccountsResponse:
        """``/gridledger.FeeControl/ListAccounts``: accounts in ``state``
        (``contracts_pb2.ACCOUNT_STATE_*``), or with ``any_warning`` those in WARNING1 or
        WARNING2; ``limit`` 0 = the node's default."""
        return self.unary("/gridledger.FeeControl/ListAccounts",
                          contracts_pb2.ListAccountsRequest(chain_id=chain_id or "", state=state,
                                                            any_warning=any_warning, limit=limit),
                          contracts_pb2.ListAccountsResponse, timeout=timeout,
                          metadata=metadata)

    def warning_accounts(self, chain_id: str = "", limit: int = 0, timeout: Any = _DEFAULT
                         ) -> List[contracts_pb2.Account]:
        """The warning list: accounts in WARNING1 or WARNING2."""
        return list(self.list_accounts(chain_id, any_warning=True, limit=limit,
                                       timeout=timeout).accounts)

    def disconnected_accounts(self, chain_id: str = "", limit: int = 0,
                              timeout: Any = _DEFAULT) -> List[contracts_pb2.Account]:
        """The disconnect list: accounts in DISCONNECTED."""
        return list(self.list_accounts(chain_id, state=contracts_pb2.ACCOUNT_STATE_DISCONNECTED,
                                       limit=limit, timeout=timeout).accounts)

    def list_commands(self, chain_id: str = "",
                      status: int = contracts_pb2.COMMAND_STATUS_UNSPECIFIED, limit: int = 0,
                      timeout: Any = _DEFAULT, metadata: Optional[Metadata] = None
                      ) -> contracts_pb2.ListCommandsResponse:
        """``/gridledger.FeeControl/ListCommands``: control commands of the district in
        ``status`` (``contracts_pb2.COMMAND_STATUS_*``; UNSPECIFIED = every status)."""
        return self.unary("/gridledger.FeeControl/ListCommands",
                          contracts_pb2.ListCommandsRequest(chain_id=chain_id or "",
                                                            status=status, limit=limit),
                          contracts_pb2.ListCommandsResponse, timeout=timeout,
                          metadata=metadata)

    def subscribe_commands(self, chain_id: str = "", timeout: Any = None,
                           metadata: Optional[Metadata] = None) -> ResponseStream:
        """``/gridledger.Control/SubscribeCommands`` (role device, own district): an
        iterator of ``ControlCommand``, the pending ones first, then each one issued.
        Close it to stop."""
        return self.server_stream("/gridledger.Control/SubscribeCommands",
                                  contracts_pb2.SubscribeCommandsRequest(chain_id=chain_id or ""),
                                  contracts_pb2.ControlCommand, timeout=timeout,
                                  metadata=metadata)

    def subscribe_notices(self, from_height: int = 0, chain_id: str = "", timeout: Any = None,
                          metadata: Optional[Metadata] = None) -> ResponseStream:
        """``/gridledger.Notices/Subscribe`` (role marketing): an iterator of ``Notice``
        from district height ``from_height`` on.  Close it to stop."""
        return self.server_stream("/gridledger.Notices/Subscribe",
                                  contracts_pb2.SubscribeNoticesRequest(chain_id=chain_id or "",
                                                                        from_height=from_height),
                                  contracts_pb2.Notice, timeout=timeout, metadata=metadata)


    # ---- administration (Docs/wire-protocol.md, "Raft and administration"; role admin)
    #
    # Each returns the ``MemberResponse``: ``conf_state`` (``voters``, ``learners``) and
    # ``leader``.  Other roles get RpcError(PERMISSION_DENIED); a chain the node does not
    # serve NOT_FOUND.

    def transfer_leader(self, chain_id: str, node_id: int, timeout: Any = _DEFAULT,
                        metadata: Optional[Metadata] = None) -> raft_pb2.MemberResponse:
        """``/gridledger.Admin/TransferLeader``: hand leadership of ``chain_id`` to member
        ``node_id``."""
        return self.unary("/gridledger.Admin/TransferLeader",
                          member_request(chain_id, node_id), raft_pb2.MemberResponse,
                          timeout=timeout, metadata=metadata)

    def add_member(self, chain_id: str, node_id: int, name: str, address: str,
                   timeout: Any = _DEFAULT, metadata: Optional[Metadata] = None, pin: str = ""
                   ) -> raft_pb2.MemberResponse:
        """``/gridledger.Admin/AddMember``: add ``node_id`` (node certificate CN ``name``,
        listening on ``address`` "host:port") to the group as a learner."""
        if not name:
            raise ValueError("name (the member's certificate CN) is required")
        _parse_address(address)
        return self.unary("/gridledger.Admin/AddMember",
                          member_request(chain_id, node_id, name=name, address=address, pin=pin),
                          raft_pb2.MemberResponse, timeout=timeout, metadata=metadata)

    def promote_member(self, chain_id: str, node_id: int, timeout: Any = _DEFAULT,
                       metadata: Optional[Metadata] = None) -> raft_pb2.MemberResponse:
        """``/gridledger.Admin/PromoteMember``: make learner ``node_id`` a voter."""
        return self.unary("/gridledger.Admin/PromoteMember",
                          member_request(chain_id, node_id), raft_pb2.MemberResponse,
                          timeout=timeout, metadata=metadata)

    def remove_member(self, chain_id: str, node_id: int, timeout: Any = _DEFAULT,
                      metadata: Optional[Metadata] = None) -> raft_pb2.MemberResponse:
        """``/gridledger.Admin/RemoveMember``: remove ``node_id`` from the group."""
        return self.unary("/gridledger.Admin/RemoveMember",
                          member_request(chain_id, node_id), raft_pb2.MemberResponse,
                          timeout=timeout, metadata=metadata)


def _consistency(linearizable: bool) -> int:
    return (ingest_pb2.CONSISTENCY_LINEARIZABLE if linearizable
            else ingest_pb2.CONSISTENCY_LOCAL)


def get_block_request(height: Optional[int] = None, hash: Union[bytes, str, None] = None,
                      linearizable: bool = False, chain_id: str = ""
                      ) -> ingest_pb2.GetBlockRequest:
    """The ``GetBlockRequest`` of :meth:`Client.get_block`."""
    if (height is None) == (hash is None):
        raise ValueError("give exactly one of height= and hash=")
    if height is not None:
        if height < 0:
            raise ValueError("height must not be negative")
        return ingest_pb2.GetBlockRequest(height=height, by_height=True,
                                          consistency=_consistency(linearizable),
                                          chain_id=chain_id or "")
    return ingest_pb2.GetBlockRequest(hash=_as_bytes(hash, "hash"),
                                      consistency=_consistency(linearizable),
                                      chain_id=chain_id or "")


def member_request(chain_id: str, node_id: int, name: str = "", address: str = "",
                   pin: str = "") -> raft_pb2.MemberRequest:
    """The ``MemberRequest`` of the Admin calls (``name``, ``address`` and the key ``pin``
    "sha256:HEX" for AddMember)."""
    if not chain_id:
        raise ValueError("chain_id is required")
    if isinstance(node_id, bool) or not isinstance(node_id, int) or not 0 < node_id < 2 ** 64:
        raise ValueError(f"node_id must be a Raft member id (1 .. 2^64-1), not {node_id!r}")
    if pin and not (pin.startswith("sha256:") and len(pin) == 71
                    and all(c in "0123456789abcdefABCDEF" for c in pin[7:])):
        raise ValueError(f"pin must be sha256: and 64 hex digits (gridnode ca issue prints it), not {pin!r}")
    return raft_pb2.MemberRequest(chain_id=chain_id, node_id=node_id, name=name,
                                  address=address, public_key_sha256=pin)


def member_response_json(response: raft_pb2.MemberResponse) -> dict:
    """``{"leader": N, "voters": [...], "learners": [...]}`` (the CLI's admin output)."""
    return {"leader": response.leader, "voters": list(response.conf_state.voters),
            "learners": list(response.conf_state.learners)}


def ack_error(ack: ingest_pb2.StreamAck) -> Optional[RpcError]:
    """The status of a failed ``StreamAck`` as an :class:`RpcError` (None when
    ``ack.code`` is 0).  For ALREADY_EXISTS, ``.location`` gives the original location
    (from ``ack.response.location`` when the node filled it, else from the message)."""
    if ack.code == 0:
        return None
    metadata = ()
    if ack.HasField("response") and ack.response.HasField("location"):
        metadata = ((TX_LOCATION_METADATA_KEY, ack.response.location.SerializeToString()),)
    return RpcError(ack.code, ack.message, metadata)


def _submit_request(signed, chain_id: str = "") -> ingest_pb2.SubmitRequest:
    if isinstance(signed, ingest_pb2.SubmitRequest):
        if chain_id and not signed.chain_id:
            request = ingest_pb2.SubmitRequest()
            request.CopyFrom(signed)
            request.chain_id = chain_id
            return request
        return signed
    if isinstance(signed, chain_pb2.SignedTransaction):
        return ingest_pb2.SubmitRequest(transaction=signed, chain_id=chain_id or "")
    raise TypeError(f"expected a SignedTransaction, got {type(signed).__name__}")


def _as_bytes(value: Union[bytes, str], what: str) -> bytes:
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise ValueError(f"{what} {value!r} is not hex") from None
    return bytes(value)


def serving_status_name(value: int) -> str:
    """ServingStatus number -> short name: 1 -> "SERVING"."""
    try:
        name = health_pb2.ServingStatus.Name(value)
    except ValueError:
        return str(value)
    return name[len("SERVING_STATUS_"):] if name.startswith("SERVING_STATUS_") else name
