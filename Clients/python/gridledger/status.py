"""Status codes and the error raised for a failed call."""

from __future__ import annotations

import enum
import re
from typing import Optional, Sequence, Tuple

__all__ = ["StatusCode", "RpcError", "TX_LOCATION_METADATA_KEY"]

# Trailer metadata of ALREADY_EXISTS: the original gridledger.TxLocation, serialized.
TX_LOCATION_METADATA_KEY = "gridledger-tx-location-bin"
_LOCATION_IN_MESSAGE = re.compile(r"\bheight=(\d+) index=(\d+)\b")


class StatusCode(enum.IntEnum):
    """The gRPC status codes, with the same numbers."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


def _code_name(code: int) -> str:
    try:
        return StatusCode(code).name
    except ValueError:
        return f"CODE_{code}"


class RpcError(Exception):
    """A call ended with a non-OK status.

    ``code`` is a :class:`StatusCode` (or a plain int for a number outside the gRPC
    range), ``message`` the server's (or the client's) explanation and ``metadata`` (alias
    ``trailing_metadata``) the trailer metadata as a tuple of ``(key, value_bytes)`` pairs;
    :meth:`metadata_value` looks one key up.  ``str(err)`` is ``"CODE_NAME: message"``.

    ``location``: for ALREADY_EXISTS from a submission, the original
    ``gridledger.TxLocation`` (decoded from trailer ``gridledger-tx-location-bin``).
    """

    def __init__(self, code: int, message: str = "",
                 metadata: Sequence[Tuple[str, bytes]] = ()) -> None:
        try:
            code = StatusCode(code)
        except ValueError:
            code = int(code)
        self.code = code
        self.message = message
        self.metadata = tuple(metadata)
        super().__init__(code, message)

    @property
    def trailing_metadata(self) -> Tuple[Tuple[str, bytes], ...]:
        return self.metadata

    def metadata_value(self, key: str) -> Optional[bytes]:
        """The first trailer value under ``key``, or None."""
        for k, v in self.metadata:
            if k == key:
                return v
        return None

    @property
    def location(self):
        """The ``gridledger.TxLocation`` an ALREADY_EXISTS status points at, else None.

        Read from trailer ``gridledger-tx-location-bin``; when that is missing or does not
        decode, from ``height=H index=I`` in the message (tx_id and block_hash then empty).
        """
        from . import chain_pb2  # generated module; imported late to keep this one light
        from google.protobuf.message import DecodeError

        raw = self.metadata_value(TX_LOCATION_METADATA_KEY)
        if raw is not None:
            try:
                return chain_pb2.TxLocation.FromString(raw)
            except DecodeError:
                pass
        if self.code == StatusCode.ALREADY_EXISTS:
            m = _LOCATION_IN_MESSAGE.search(self.message or "")
            if m:
                return chain_pb2.TxLocation(height=int(m.group(1)), index=int(m.group(2)))
        return None

    @property
    def code_name(self) -> str:
        return _code_name(self.code)

    def __str__(self) -> str:
        if self.message:
            return f"{self.code_name}: {self.message}"
        return self.code_name

    def __repr__(self) -> str:
        return f"RpcError({self.code_name}, {self.message!r})"
