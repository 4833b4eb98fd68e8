"""Why a connection to a node failed, as one sentence for people.

:class:`gridledger.Client` raises what the standard library raises (``OSError``,
``ssl.SSLError``, ``socket.gaierror``, ``TimeoutError``) or an ``RpcError`` from the PING
that follows the handshake; :func:`describe_connect_error` turns any of them into e.g.

    cannot connect to 127.0.0.1:1: connection refused (is the node running?)

so that the CLI prints a sentence rather than ``[Errno 111]`` or an OpenSSL dump.
"""

from __future__ import annotations

import errno
import socket
import ssl
from typing import Optional

from .status import RpcError, StatusCode

__all__ = ["describe_connect_error"]

# OpenSSL reasons of an alert the node sends when it refuses our certificate.
_REJECTED_CLIENT = {"TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_BAD_CERTIFICATE",
                    "TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
                    "SSLV3_ALERT_CERTIFICATE_EXPIRED", "SSLV3_ALERT_CERTIFICATE_REVOKED",
                    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "TLSV1_ALERT_DECRYPT_ERROR",
                    "TLSV1_ALERT_ACCESS_DENIED"}
# Reasons of a client certificate, key or CA file that cannot be loaded (before any I/O).
_LOCAL_FILES = {"PEM_LIB", "KEY_VALUES_MISMATCH", "NO_START_LINE", "X509_LIB",
                "CA_MD_TOO_WEAK", "EE_KEY_TOO_SMALL", "BAD_DECRYPT", "NO_CERTIFICATE_OR_CRL_FOUND"}
_REJECTED_HINT = ("the node rejected this client's certificate (is it issued by the node's CA "
                  "and still valid?)")


def _server_cert_problem(exc: ssl.SSLCertVerificationError, ca: Optional[str],
                         server_name: Optional[str]) -> str:
    code = getattr(exc, "verify_code", None)
    message = (getattr(exc, "verify_message", None) or "").rstrip(".")
    where = f" in {ca}" if ca else ""
    if code in (2, 18, 19, 20, 21):  # unable to get issuer / self-signed / leaf not verifiable
        return (f"TLS handshake failed: the node's certificate is not signed by the CA"
                f"{where} (wrong --ca, or a node of another deployment?)")
    if code == 62 or "hostname mismatch" in message.lower() or \
            "ip address mismatch" in message.lower():
        name = f" {server_name}" if server_name else " the address dialled"
        return (f"TLS handshake failed: the node's certificate does not name{name} "
                f"(use --server-name with a name it carries)")
    if code == 10:
        return "TLS handshake failed: the node's certificate has expired"
    if code == 9:
        return "TLS handshake failed: the node's certificate is not valid yet (check the clocks)"
    if code is None:  # raised by the client itself, e.g. the node role check
        return f"TLS handshake failed: {exc.args[0] if exc.args else exc}"
    return f"TLS handshake failed: the node's certificate was refused ({message or code})"


def describe_connect_error(address: str, exc: BaseException, ca: Optional[str] = None,
                           cert: Optional[str] = None, key: Optional[str] = None,
                           server_name: Optional[str] = None,
                           timeout: Optional[float] = None) -> str:
    """One line saying why connecting to ``address`` failed, with a hint when one helps.
    ``ca``, ``cert``, ``key``, ``server_name`` and ``timeout`` (seconds) are what the
    connection was attempted with (named in the sentence when they are the likely cause)."""
    prefix = f"cannot connect to {address}: "
    if isinstance(exc, RpcError):
        if exc.code == StatusCode.DEADLINE_EXCEEDED:
            return prefix + (f"the node did not answer within {timeout:g} s after the TLS "
                             f"handshake" if timeout else "the node did not answer in time")
        if exc.code == StatusCode.UNAVAILABLE:
            return prefix + ("the node closed the connection right after the TLS handshake: "
                             + _REJECTED_HINT)
        return prefix + str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return prefix + _server_cert_problem(exc, ca, server_name)
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or ""
        if reason in _LOCAL_FILES:
            files = ", ".join(f for f in (cert, key, ca) if f) or "the certificate files"
            return (f"cannot load the client certificate, key or CA ({files}): "
                    f"{reason.replace('_', ' ').lower()}")
        if reason in _REJECTED_CLIENT:
            return prefix + "TLS handshake failed: " + _REJECTED_HINT
        if "NO_APPLICATION_PROTOCOL" in reason or "ALPN" in str(exc):
            return prefix + ("TLS handshake failed: the server does not speak gridledger/1 "
                             "(ALPN); is this a GridLedger node's port?")
        if reason in ("WRONG_VERSION_NUMBER", "UNSUPPORTED_PROTOCOL", "RECORD_LAYER_FAILURE",
                      "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST") or \
                "PROTOCOL_VERSION" in reason:
            return prefix + ("TLS handshake failed: the server does not speak TLS 1.3 "
                             "(is this a GridLedger node's port?)")
        if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)) or reason == "EOF":
            return prefix + ("the node closed the connection during the TLS handshake (did "
                             "it reject this client's certificate?)")
        detail = reason.replace("_", " ").lower() if reason else str(exc)
        return prefix + f"TLS handshake failed: {detail}"
    if isinstance(exc, socket.gaierror):
        host = address.rpartition(":")[0]
        return prefix + f"unknown host {host} ({exc.strerror or exc}; check --addr)"
    if isinstance(exc, (socket.timeout, TimeoutError)) or \
            getattr(exc, "errno", None) == errno.ETIMEDOUT:
        within = f" within {timeout:g} s" if timeout else ""
        return prefix + (f"no answer{within} (is the address right, the node up and the "
                         f"port open?)")
    if isinstance(exc, ConnectionRefusedError):
        return prefix + "connection refused (is the node running?)"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return prefix + ("the node closed the connection during the TLS handshake (did it "
                         "reject this client's certificate?)")
    if isinstance(exc, OSError):
        no = exc.errno
        if no == errno.EHOSTUNREACH:
            return prefix + "host unreachable (check the address and the network)"
        if no == errno.ENETUNREACH:
            return prefix + "network unreachable (check the address and the network)"
        if no == errno.EADDRNOTAVAIL:
            return prefix + "address not available (check --addr)"
        if exc.filename:  # a certificate, key or CA file
            return f"cannot read {exc.filename}: {(exc.strerror or str(exc)).lower()}"
        text = exc.strerror or str(exc)
        return prefix + text[:1].lower() + text[1:]
    return prefix + str(exc)
