"""Command line: ``python -m gridledger --addr HOST:PORT --cert C --key K --ca CA CMD``.

Commands:
  status                 Ops/GetStatus as JSON: every field (raft_*, raft_peers, halted
                         included), 64-bit integers as numbers, bytes as hex
  health [SERVICE]       Health/Check, prints the status name, e.g. SERVING
  watch-health [SERVICE] Health/Watch, one JSON line per update until interrupted
  chain-info             Query/GetChainInfo as JSON
  ingest --csv FILE [--batch 500] [--chain ID] [--retries 8]
                         sign the readings of FILE in batches with --cert/--key (or
                         --signer-cert/--signer-key) and submit them with
                         Ingest/SubmitReadings, one JSON line per batch
  block N | block --hash HEX [--linearizable]
                         Query/GetBlock as JSON
  tx HEX [--linearizable]
                         Query/GetTransaction as JSON
  state KEY [--linearizable]
                         Query/GetState as JSON
  history KEY [--limit N] [--linearizable]
                         Query/GetHistory as JSON
  blocks [--from H] [--to H]
                         Query/ListBlocks, one JSON line per block header
  watch [--from H] [--count N] [--full]
                         Query/SubscribeBlocks, one JSON line per block
  admin transfer-leader --chain ID --node N
  admin add-member --chain ID --node N --name CN --address HOST:PORT
  admin promote --chain ID --node N
  admin remove --chain ID --node N
                         Admin/TransferLeader, AddMember, PromoteMember, RemoveMember
                         (admin certificate), printing
                         {"leader": N, "voters": [...], "learners": [...]}

--chain ID (chain-info, ingest, block, tx, state, history, blocks, watch): the chain the
requests are for; a node serving several chains needs it (default: the node's only
chain).  ingest with --chain signs its payloads for that chain without GetChainInfo.

--linearizable: a linearizable read (Raft ReadIndex) that reflects every block committed
before the call, on followers too; without it the node answers from what it has applied.

JSON output: proto field names, bytes as hex, 64-bit integers as numbers; transactions
show their tx_id and decoded payload (gridledger.render).

ingest: the whole file is checked first; any bad row is reported as ``file:line: reason``
on stderr and the command exits 65 without submitting anything (66 if the file cannot be
read).  Then batch i (from 0) prints
``{"batch": i, "tx_id": hex, "height": H, "index": I, "accepted": n, "duplicate": d}``
once it is durable.  A batch refused with RESOURCE_EXHAUSTED (queue full) or
DEADLINE_EXCEEDED is resubmitted, the same signed transaction, after an exponential
backoff (0.2 s doubling, at most 5 s, ``--retries`` times); if the node answers
ALREADY_EXISTS the line carries ``"already_existed": true`` and the original location (and
the original outcome's counts when GetTransaction finds it).  A batch committed but
rejected when applied (outcome code not 0) adds ``"code"`` and ``"message"``; ingestion goes
on and the command exits 2 at the end.

Exit status: 0 on success; 2 when a call or the connection fails (the reason is printed
to stderr as ``error: CODE_NAME: message``); 65/66 for bad or unreadable ingest input;
130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import List, Optional


from .client import Client, member_response_json
from .readings_csv import ReadingsCsvError, read_readings_csv
from .render import block_summary, to_jsonable
from .signing import Signer, new_batch_id, tx_id
from .status import RpcError, StatusCode

EXIT_FAILURE = 2
EXIT_DATAERR = 65   # sysexits EX_DATAERR: bad input data
EXIT_NOINPUT = 66   # sysexits EX_NOINPUT: input file cannot be read
MAX_ERRORS_SHOWN = 100
_RETRYABLE = (StatusCode.RESOURCE_EXHAUSTED, StatusCode.DEADLINE_EXCEEDED)


def _hex(text: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not hex") from None
    if not value:
        raise argparse.ArgumentTypeError("empty hex value")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _address(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return text


def _linearizable(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--linearizable", action="store_true",
                        help="linearizable read (Raft ReadIndex): reflects every block "
                             "committed before the call, on followers too")


def _chain(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chain", default="", metavar="ID",
                        help="chain the requests are for (default: the node's only chain)")


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
                        "watch and watch-health have no deadline unless given")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("status", help="print the node status as JSON")
    h = sub.add_parser("health", help="print the serving status")
    h.add_argument("service", nargs="?", default="")
    w = sub.add_parser("watch-health", help="print serving status updates as JSON lines")
    w.add_argument("service", nargs="?", default="")

    _chain(sub.add_parser("chain-info", help="print the chain id, height and head hash as JSON"))
    i = sub.add_parser("ingest", help="sign and submit meter readings from a CSV file")
    i.add_argument("--csv", required=True, metavar="FILE", help="readings CSV file")
    i.add_argument("--batch", type=_positive, default=500, metavar="N",
                   help="readings per transaction (default 500)")
    i.add_argument("--chain", "--chain-id", dest="chain", default="", metavar="ID",
                   help="chain to submit to and sign for (default: the node's only chain, "
                        "asked with GetChainInfo)")
    i.add_argument("--signer-cert", default=None,
                   help="certificate that signs the transactions (default: --cert)")
    i.add_argument("--signer-key", default=None, help="its key (default: --key)")
    i.add_argument("--retries", type=_non_negative, default=8, metavar="N",
                   help="resubmissions of a batch refused with RESOURCE_EXHAUSTED or "
                        "DEADLINE_EXCEEDED (default 8)")
    b = sub.add_parser("block", help="print one block as JSON")
    where = b.add_mutually_exclusive_group(required=True)
    where.add_argument("height", nargs="?", type=_non_negative, help="block height")
    where.add_argument("--hash", type=_hex, help="block hash (hex)")
    _linearizable(b)
    _chain(b)
    t = sub.add_parser("tx", help="print one transaction with its location and outcome")
    t.add_argument("tx_id", type=_hex, metavar="HEX")
    _linearizable(t)
    _chain(t)
    s = sub.add_parser("state", help="print the current value of a state key")
    s.add_argument("state_key", metavar="KEY")
    _linearizable(s)
    _chain(s)
    hi = sub.add_parser("history", help="print the versions of a state key, newest first")
    hi.add_argument("state_key", metavar="KEY")
    hi.add_argument("--limit", type=_positive, default=100)
    _linearizable(hi)
    _chain(hi)
    bl = sub.add_parser("blocks", help="list block headers, one JSON line each")
    bl.add_argument("--from", dest="from_height", type=_non_negative, default=0)
    bl.add_argument("--to", dest="to_height", type=_non_negative, default=0,
                    help="end height, exclusive (default: the head)")
    bl.add_argument("--page-size", type=_positive, default=100)
    _chain(bl)
    wa = sub.add_parser("watch", help="print blocks as they become durable, one JSON line each")
    wa.add_argument("--from", dest="from_height", type=_non_negative, default=0)
    wa.add_argument("--count", type=_positive, default=None,
                    help="stop after this many blocks")
    wa.add_argument("--full", action="store_true",
                    help="print whole blocks instead of summaries")
    _chain(wa)
    ad = sub.add_parser("admin", help="Raft membership and leadership (admin certificate)")
    asub = ad.add_subparsers(dest="admin_command", required=True, metavar="SUBCOMMAND")
    for name, text in (("transfer-leader", "hand leadership to member --node"),
                       ("add-member", "add member --node as a learner"),
                       ("promote", "make learner --node a voter"),
                       ("remove", "remove member --node")):
        a = asub.add_parser(name, help=text)
        a.add_argument("--chain", required=True, metavar="ID", help="chain id")
        a.add_argument("--node", required=True, type=_positive, metavar="N",
                       help="Raft member id")
        if name == "add-member":
            a.add_argument("--name", required=True, metavar="CN",
                           help="certificate CN of the member's node certificate")
            a.add_argument("--address", required=True, type=_address, metavar="HOST:PORT",
                           help="where the member listens")
    return p


def _error(code: str, message: str) -> int:
    print(f"error: {code}: {message}", file=sys.stderr)
    return EXIT_FAILURE


def _print_json(value, pretty: bool = False) -> None:
    print(json.dumps(value, indent=2 if pretty else None), flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    timeout = 10.0 if args.timeout is None else args.timeout
    readings = signer = None
    if args.command == "ingest":
        # Everything local is checked before connecting: bad input submits nothing.
        try:
            readings = read_readings_csv(args.csv)
        except ReadingsCsvError as exc:
            for line in exc.lines(MAX_ERRORS_SHOWN):
                print(line, file=sys.stderr)
            return EXIT_DATAERR
        except OSError as exc:
            print(f"{args.csv}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_NOINPUT
        try:
            signer = Signer(args.signer_cert or args.cert, args.signer_key or args.key)
        except (OSError, ValueError) as exc:
            return _error("INVALID_ARGUMENT", f"cannot load the signer: {exc}")
        if not signer.district:
            return _error("INVALID_ARGUMENT", f"the signer certificate ({signer.name}, "
                                              f"role {signer.role}) names no district (L)")
    try:
        client = Client(args.addr, cert=args.cert, key=args.key, ca=args.ca,
                        server_name=args.server_name, timeout=timeout)
    except RpcError as exc:
        return _error(exc.code_name, f"cannot connect to {args.addr}: {exc.message}")
    except (OSError, ValueError) as exc:
        return _error(StatusCode.UNAVAILABLE.name, f"cannot connect to {args.addr}: {exc}")
    try:
        with client:
            return _run(client, args, timeout, readings, signer)
    except RpcError as exc:
        return _error(exc.code_name, exc.message)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _run(client: Client, args, timeout: float, readings, signer) -> int:
    cmd = args.command
    if cmd == "status":
        _print_json(to_jsonable(client.status(timeout=timeout)), pretty=True)
    elif cmd == "health":
        print(client.health(args.service, timeout=timeout))
    elif cmd == "watch-health":
        with client.watch_health(args.service, timeout=args.timeout) as updates:
            for status in updates:
                print(json.dumps({"service": args.service, "status": status}), flush=True)
    elif cmd == "chain-info":
        _print_json(to_jsonable(client.chain_info(timeout=timeout, chain_id=args.chain)), pretty=True)
    elif cmd == "ingest":
        return _ingest(client, args, timeout, readings, signer)
    elif cmd == "block":
        if args.hash is not None:
            response = client.get_block(hash=args.hash, timeout=timeout,
                                        linearizable=args.linearizable, chain_id=args.chain)
        else:
            response = client.get_block(height=args.height, timeout=timeout,
                                        linearizable=args.linearizable, chain_id=args.chain)
        _print_json(to_jsonable(response), pretty=True)
    elif cmd == "tx":
        _print_json(to_jsonable(client.get_transaction(args.tx_id, timeout=timeout,
                                                       linearizable=args.linearizable,
                                                       chain_id=args.chain)),
                    pretty=True)
    elif cmd == "state":
        _print_json(to_jsonable(client.get_state(args.state_key, timeout=timeout,
                                                 linearizable=args.linearizable,
                                                 chain_id=args.chain)), pretty=True)
    elif cmd == "history":
        _print_json(to_jsonable(client.get_history(args.state_key, limit=args.limit,
                                                   timeout=timeout,
                                                   linearizable=args.linearizable,
                                                   chain_id=args.chain)),
                    pretty=True)
    elif cmd == "admin":
        _print_json(member_response_json(_admin(client, args, timeout)))
    elif cmd == "blocks":
        for summary in client.list_blocks(args.from_height, args.to_height,
                                          page_size=args.page_size, timeout=timeout,
                                          chain_id=args.chain):
            line = {"height": summary.header.height, "hash": bytes(summary.hash).hex()}
            line.update((k, v) for k, v in to_jsonable(summary.header).items()
                        if k != "height")
            _print_json(line)
    elif cmd == "watch":
        seen = 0
        with client.subscribe_blocks(args.from_height, timeout=args.timeout,
                                     chain_id=args.chain) as blocks:
            for response in blocks:
                _print_json(to_jsonable(response) if args.full else block_summary(response))
                seen += 1
                if args.count is not None and seen >= args.count:
                    break
    return 0


def _admin(client: Client, args, timeout: float):
    sub = args.admin_command
    if sub == "transfer-leader":
        return client.transfer_leader(args.chain, args.node, timeout=timeout)
    if sub == "add-member":
        return client.add_member(args.chain, args.node, args.name, args.address,
                                 timeout=timeout)
    if sub == "promote":
        return client.promote_member(args.chain, args.node, timeout=timeout)
    return client.remove_member(args.chain, args.node, timeout=timeout)


def _ingest(client: Client, args, timeout: float, readings, signer: Signer) -> int:
    # With --chain the payloads name that chain and every request carries it; otherwise
    # the node's only chain (GetChainInfo) and requests without chain_id.
    chain_id = args.chain or client.chain_id(timeout=timeout)
    run = new_batch_id()
    rejected = 0
    for index, start in enumerate(range(0, len(readings), args.batch)):
        batch = readings[start:start + args.batch]
        signed = client.sign_readings(signer, batch, batch_id=f"{run}/{index}",
                                      chain_id=chain_id)
        txid = tx_id(signed)
        line = {"batch": index, "tx_id": txid.hex()}
        delay = 0.2
        attempt = 0
        while True:
            try:
                response = client.submit_signed_readings(signed, timeout=timeout,
                                                         chain_id=args.chain)
            except RpcError as exc:
                if exc.code in _RETRYABLE and attempt < args.retries:
                    attempt += 1
                    pause = delay * random.uniform(0.5, 1.0)
                    print(f"batch {index}: {exc}; resubmitting in {pause:.2f} s "
                          f"({attempt}/{args.retries})", file=sys.stderr, flush=True)
                    time.sleep(pause)
                    delay = min(delay * 2, 5.0)
                    continue
                if exc.code == StatusCode.ALREADY_EXISTS and exc.location is not None:
                    line.update(_already_existed(client, txid, exc.location, timeout,
                                                 args.chain))
                    break
                print(f"error: batch {index} (CSV readings {start + 1}-{start + len(batch)}) "
                      f"not submitted: {exc}", file=sys.stderr)
                return EXIT_FAILURE
            line.update(height=response.location.height, index=response.location.index,
                        accepted=response.outcome.readings_accepted,
                        duplicate=response.outcome.readings_duplicate)
            if response.already_existed:
                line["already_existed"] = True
            if response.outcome.code != 0:
                line.update(code=response.outcome.code, message=response.outcome.message)
                rejected += 1
                print(f"batch {index}: committed but rejected when applied: "
                      f"code {response.outcome.code}: {response.outcome.message}",
                      file=sys.stderr)
            break
        _print_json(line)
    if rejected:
        print(f"error: {rejected} batch(es) rejected when applied", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _already_existed(client: Client, txid: bytes, location, timeout: float,
                     chain_id: str = "") -> dict:
    out = {"height": location.height, "index": location.index}
    try:
        original = client.get_transaction(txid, timeout=timeout, chain_id=chain_id)
    except RpcError:
        pass
    else:
        out.update(accepted=original.outcome.readings_accepted,
                   duplicate=original.outcome.readings_duplicate)
    out["already_existed"] = True
    return out


if __name__ == "__main__":
    sys.exit(main())
