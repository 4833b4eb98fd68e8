"""GridLedger Python client: framed protobuf RPC over mutual TLS 1.3.

See Docs/wire-protocol.md in the repository for the protocol.
"""

from .client import ALPN_PROTOCOL, Client, ResponseStream, serving_status_name
from .status import RpcError, StatusCode

__all__ = ["Client", "RpcError", "StatusCode", "ResponseStream", "ALPN_PROTOCOL",
           "serving_status_name"]
__version__ = "0.1.0"
