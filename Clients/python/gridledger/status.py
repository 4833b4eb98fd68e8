"""Status codes and the error raised for a failed call."""

from __future__ import annotations

import enum
from typing import Sequence, Tuple

__all__ = ["StatusCode", "RpcError"]


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
    range), ``message`` the server's (or the client's) explanation and ``metadata`` the
    trailing metadata as a tuple of ``(key, value_bytes)`` pairs.
    ``str(err)`` is ``"CODE_NAME: message"``.
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
    def code_name(self) -> str:
        return _code_name(self.code)

    def __str__(self) -> str:
        if self.message:
            return f"{self.code_name}: {self.message}"
        return self.code_name

    def __repr__(self) -> str:
        return f"RpcError({self.code_name}, {self.message!r})"
