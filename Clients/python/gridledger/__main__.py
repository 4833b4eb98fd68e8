"""Command line: ``python -m gridledger --addr HOST:PORT --cert C --key K --ca CA CMD``.

Commands:
  status                 Ops/GetStatus, printed as JSON (proto field names)
  health [SERVICE]       Health/Check, prints the status name, e.g. SERVING
  watch-health [SERVICE] Health/Watch, one JSON line per update until interrupted

Exit status: 0 on success; 2 when the call or the connection fails (the reason is printed
to stderr as ``error: CODE_NAME: message``); 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from google.protobuf import json_format

from .client import Client
from .status import RpcError, StatusCode


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gridledger",
                                description="GridLedger node client")
    p.add_argument("--addr", required=True, help="node address HOST:PORT")
    p.add_argument("--cert", required=True, help="client certificate (PEM)")
    p.add_argument("--key", required=True, help="client private key (PEM)")
    p.add_argument("--ca", required=True, help="deployment CA certificate (PEM)")
    p.add_argument("--server-name", default=None,
                   help="name the node certificate must carry (default: the host of --addr)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds for connecting and for each call (default 10); "
                        "watch-health has no deadline unless given")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("status", help="print the node status as JSON")
    h = sub.add_parser("health", help="print the serving status")
    h.add_argument("service", nargs="?", default="")
    w = sub.add_parser("watch-health", help="print serving status updates as JSON lines")
    w.add_argument("service", nargs="?", default="")
    return p


def _error(code: str, message: str) -> int:
    print(f"error: {code}: {message}", file=sys.stderr)
    return 2


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    timeout = 10.0 if args.timeout is None else args.timeout
    try:
        client = Client(args.addr, cert=args.cert, key=args.key, ca=args.ca,
                        server_name=args.server_name, timeout=timeout)
    except RpcError as exc:
        return _error(exc.code_name, f"cannot connect to {args.addr}: {exc.message}")
    except (OSError, ValueError) as exc:
        return _error(StatusCode.UNAVAILABLE.name, f"cannot connect to {args.addr}: {exc}")
    try:
        with client:
            if args.command == "status":
                response = client.status(timeout=timeout)
                print(json_format.MessageToJson(response, preserving_proto_field_name=True))
            elif args.command == "health":
                print(client.health(args.service, timeout=timeout))
            else:
                with client.watch_health(args.service, timeout=args.timeout) as updates:
                    for status in updates:
                        print(json.dumps({"service": args.service, "status": status}),
                              flush=True)
    except RpcError as exc:
        return _error(exc.code_name, exc.message)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
