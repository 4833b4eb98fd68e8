"""GridLedger wire frames (Docs/wire-protocol.md, "Frames").

A frame is a 10-byte header followed by ``length`` body bytes::

    length:    uint32 big-endian   byte length of the body (header excluded)
    type:      uint8               HEADERS=1 MESSAGE=2 TRAILERS=3 CANCEL=4 PING=5 GOAWAY=6
                                   END=7
    flags:     uint8               bit 0 = END_STREAM (HEADERS, MESSAGE) / ACK (PING)
    stream id: uint32 big-endian   0 for connection frames (PING, GOAWAY)

:class:`FrameDecoder` is incremental: feed it chunks of any size and it returns the
complete frames found so far.  A MESSAGE whose body exceeds ``max_message_bytes`` is
never buffered: the decoder reports :class:`OversizedMessage` as soon as it has read the
header and then discards the body as it streams past.  Violations that the protocol
treats as connection errors raise :class:`FrameError`.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import List, Union

__all__ = [
    "FrameType",
    "FLAG_END_STREAM",
    "FLAG_ACK",
    "HEADER_SIZE",
    "MAX_BODY_LENGTH",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MAX_HEADERS_BYTES",
    "MAX_TRAILERS_BYTES",
    "MAX_GOAWAY_BYTES",
    "PING_BODY_SIZE",
    "Frame",
    "OversizedMessage",
    "FrameError",
    "TruncatedFrameError",
    "FrameDecoder",
    "encode_frame",
    "encode_header",
]


class FrameType(enum.IntEnum):
    HEADERS = 1
    MESSAGE = 2
    TRAILERS = 3
    CANCEL = 4
    PING = 5
    GOAWAY = 6
    END = 7  # client half-close without a message


FLAG_END_STREAM = 0x01
FLAG_ACK = 0x01

HEADER_SIZE = 10
_HEADER = struct.Struct(">IBBI")
MAX_BODY_LENGTH = 0xFFFFFFFF

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_HEADERS_BYTES = 16 * 1024
MAX_TRAILERS_BYTES = 16 * 1024
MAX_GOAWAY_BYTES = 4 * 1024
PING_BODY_SIZE = 8

_CONNECTION_TYPES = (FrameType.PING, FrameType.GOAWAY)


@dataclass(frozen=True)
class Frame:
    type: int
    flags: int
    stream_id: int
    body: bytes = b""

    @property
    def end_stream(self) -> bool:
        return bool(self.flags & FLAG_END_STREAM)

    @property
    def ack(self) -> bool:
        return bool(self.flags & FLAG_ACK)

    def encode(self) -> bytes:
        return encode_frame(self.type, self.flags, self.stream_id, self.body)


@dataclass(frozen=True)
class OversizedMessage:
    """A MESSAGE frame larger than the limit; its body is being discarded unread.

    The call on ``stream_id`` must fail with RESOURCE_EXHAUSTED.
    """

    stream_id: int
    length: int
    flags: int = 0


Event = Union[Frame, OversizedMessage]


class FrameError(Exception):
    """A connection error: the peer violated the framing rules."""


class TruncatedFrameError(FrameError):
    """The byte stream ended in the middle of a frame."""


def encode_header(frame_type: int, flags: int, stream_id: int, length: int) -> bytes:
    if not 0 <= length <= MAX_BODY_LENGTH:
        raise ValueError(f"frame body length {length} out of range")
    if not 0 <= frame_type <= 0xFF:
        raise ValueError(f"frame type {frame_type} out of range")
    if not 0 <= flags <= 0xFF:
        raise ValueError(f"frame flags {flags} out of range")
    if not 0 <= stream_id <= 0xFFFFFFFF:
        raise ValueError(f"stream id {stream_id} out of range")
    return _HEADER.pack(length, frame_type, flags, stream_id)


def encode_frame(frame_type: int, flags: int, stream_id: int, body: bytes = b"") -> bytes:
    """Encode one frame (header and body) into bytes."""
    return encode_header(frame_type, flags, stream_id, len(body)) + bytes(body)


class FrameDecoder:
    """Incremental frame decoder.

    ``feed(data)`` returns the list of events (:class:`Frame` or
    :class:`OversizedMessage`) completed by ``data``; a partial frame is kept until the
    rest arrives.  ``eof()`` raises :class:`TruncatedFrameError` if the stream ended
    inside a frame.  After a :class:`FrameError` the decoder is unusable (the connection
    must be closed).
    """

    def __init__(
        self,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        *,
        max_headers_bytes: int = MAX_HEADERS_BYTES,
        max_trailers_bytes: int = MAX_TRAILERS_BYTES,
        max_goaway_bytes: int = MAX_GOAWAY_BYTES,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self._control_limits = {
            FrameType.HEADERS: max_headers_bytes,
            FrameType.TRAILERS: max_trailers_bytes,
            FrameType.GOAWAY: max_goaway_bytes,
            FrameType.CANCEL: 0,
            FrameType.END: 0,
            FrameType.PING: PING_BODY_SIZE,
        }
        self._buf = bytearray()
        self._skip = 0  # body bytes of an oversized MESSAGE still to discard
        self._failed: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for a partial frame (never more than one header plus a body
        within the limits)."""
        return len(self._buf)

    @property
    def skipping(self) -> int:
        """Body bytes of an oversized MESSAGE still to be discarded."""
        return self._skip

    @property
    def at_boundary(self) -> bool:
        return not self._buf and not self._skip

    def feed(self, data: bytes) -> List[Event]:
        if self._failed is not None:
            raise self._failed
        events: List[Event] = []
        view = memoryview(data)
        pos = 0
        n = len(view)
        try:
            while pos < n or (self._buf and not self._skip):
                if self._skip:
                    take = min(self._skip, n - pos)
                    self._skip -= take
                    pos += take
                    continue
                # Gather a header.
                if len(self._buf) < HEADER_SIZE:
                    need = HEADER_SIZE - len(self._buf)
                    take = min(need, n - pos)
                    self._buf += view[pos:pos + take]
                    pos += take
                    if len(self._buf) < HEADER_SIZE:
                        break
                    length, ftype, flags, stream_id = _HEADER.unpack_from(self._buf, 0)
                    if self._check_header(length, ftype, flags, stream_id, events):
                        # Oversized MESSAGE: header consumed, body skipped.
                        self._buf.clear()
                        continue
                length, ftype, flags, stream_id = _HEADER.unpack_from(self._buf, 0)
                need = HEADER_SIZE + length - len(self._buf)
                if need > 0:
                    take = min(need, n - pos)
                    self._buf += view[pos:pos + take]
                    pos += take
                    if take < need:
                        break
                body = bytes(self._buf[HEADER_SIZE:])
                self._buf.clear()
                events.append(Frame(ftype, flags, stream_id, body))
        except FrameError as exc:
            self._failed = exc
            self._buf.clear()
            raise
        finally:
            view.release()
        return events

    def _check_header(self, length: int, ftype: int, flags: int, stream_id: int,
                      events: List[Event]) -> bool:
        """Validate a header; returns True when it starts an oversized MESSAGE."""
        try:
            kind = FrameType(ftype)
        except ValueError:
            raise FrameError(f"unknown frame type {ftype}") from None
        if kind in _CONNECTION_TYPES:
            if stream_id != 0:
                raise FrameError(f"{kind.name} frame on stream {stream_id} (must be 0)")
        elif stream_id == 0:
            raise FrameError(f"{kind.name} frame on stream 0")
        if kind == FrameType.PING and length != PING_BODY_SIZE:
            raise FrameError(f"PING body is {length} bytes (must be 8)")
        if kind == FrameType.MESSAGE:
            if length > self.max_message_bytes:
                events.append(OversizedMessage(stream_id, length, flags))
                self._skip = length
                return True
            return False
        limit = self._control_limits[kind]
        if length > limit:
            raise FrameError(f"{kind.name} body of {length} bytes exceeds {limit}")
        return False

    def eof(self) -> None:
        """Signal the end of the byte stream; raises if it ended inside a frame."""
        if self._failed is not None:
            return
        if self._buf or self._skip:
            got = len(self._buf)
            self._buf.clear()
            self._skip = 0
            raise TruncatedFrameError(f"connection ended inside a frame ({got} bytes buffered)")
