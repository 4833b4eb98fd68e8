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
  watch [--from H] [--count N] [--full] [--reconnect]
                         Query/SubscribeBlocks, one JSON line per block
  admin transfer-leader --chain ID --node N
  admin add-member --chain ID --node N --name CN --address HOST:PORT [--pin sha256:HEX]
  admin promote --chain ID --node N
  admin remove --chain ID --node N
                         Admin/TransferLeader, AddMember, PromoteMember, RemoveMember
                         (admin certificate), printing
                         {"leader": N, "voters": [...], "learners": [...]}

Anchoring and fee control (Docs/anchoring.md):
  verify-proof FILE [--ca CA.pem]
                         verify a serialized BlockProof ("-" = stdin) offline: no node
                         and no --addr/--cert/--key; with --ca also the anchor signatures.
                         Prints the result as JSON; exit 1 (reason on stderr) if it fails
  prove [--chain D] HEIGHT [-o FILE] [--verify [--ca CA.pem]]
                         Query/ProveBlock: the proof bytes to FILE or stdout; --verify
                         verifies at once (signatures against --ca, default the
                         connection's CA) and prints the JSON instead of the bytes
  register-district [--chain MAIN] DISTRICT CERT.pem...        (admin)
  param customer [--chain MAIN] --district D --account A --meter M [--phase A|B|C|ABC]
        --tariff T [--protected] [--contact PHONE] [--thresholds ID]
        [--opening-balance FEN] [--cycle-start MM-DD]              (marketing)
  param tariff [--chain MAIN] --district D --file tariff.json      (marketing)
                         a tariff change is a new tariff with the same tariff_id: it
                         replaces the old one from the block that takes it on (a cycle
                         in progress starts new charge lines at the new prices)
  param thresholds [--chain MAIN] --district D [--id ID] --alarm1 FEN --alarm2 FEN
        --overdraft FEN --reconnect FEN [--direct-close] [--valid-ms MS]
        [--grid-worker PHONE]                                      (marketing)
  param notice-templates [--chain MAIN] --district D --language zh-CN|en
        [--file FILE] [--template KIND:RECIPIENT:TEXT]...           (marketing)
                         SMS texts: KIND warning1|warning2|disconnect|formal_disconnect|
                         reconnect, RECIPIENT customer|grid_worker, placeholders {account}
                         {meter} {balance} {state}; FILE is JSON {"language", "templates":
                         [{"kind", "recipient", "text"}]} or KIND:RECIPIENT:TEXT lines (UTF-8)
  param activation [--chain MAIN] --district D --version N --at-height H
        [--sum-tolerance E] [--spike-factor F] [--future-tolerance-ms MS]
        [--max-interpolation-ms MS] [--spike-min-history N]          (admin)
                         contract "fee-control" version N and its VEE parameters from
                         district height H on; an omitted or 0 value is the default
  pay [--chain MAIN] --district D --account A --amount FEN --serial S
        [--reverses SERIAL]                                         (marketing)
                         a payment; with --reverses a reversal (冲正) of payment SERIAL:
                         --amount is that payment's amount (positive), sent negative,
                         --serial the reversal's own serial
  ack [--chain D] COMMAND_ID [--failed] [--detail TEXT]            (device)
                         sign a TxPayload{chain_id, created_ms, nonce, body} with
                         --cert/--key (or --signer-cert/--signer-key), Ingest/Submit, and
                         print {"tx_id", "height", "index"} ("already_existed": true for a
                         transaction already on the chain; "code"/"message" and exit 2 when
                         rejected at apply time)
  account [--chain D] ACCOUNT       FeeControl/GetAccount as JSON
  warnings [--chain D] [--limit N]  FeeControl/ListAccounts (any_warning), JSON lines
  disconnected [--chain D] [--limit N]   ... state DISCONNECTED, JSON lines
  commands --district D [--status issued|acknowledged|failed|expired] [--limit N]
                         FeeControl/ListCommands, JSON lines
  watch-commands [--chain D] [--ack] [--count N] [--reconnect]
                         Control/SubscribeCommands (device), JSON lines; --ack
                         acknowledges each as a success, the line gets "ack": {...}
  watch-notices [--chain D] [--from H] [--count N] [--reconnect]
                         Notices/Subscribe (marketing), JSON lines
  district-results [--chain MAIN] --district D [--limit N] [--after ACCOUNT] [--all]
        [--json]         FeeControl/GetDistrictResults on the main chain: the district's
                         totals, warning and disconnect lists and one row per account
                         (balance, state, charges this cycle and in total, paid; yuan);
                         --all follows every page, --json prints each page as JSON

state and history decode the values of known keys ("decoded_as", "decoded"):
uplink/<d>/totals (UplinkSummary), uplink/<d>/account/<a> (AccountResult),
district/<d>, receipt/..., account/<a>, customer/<a>, tariff/<t>, thresholds/<id>,
command/<id>, notice/<id>, payment/<serial>; "value" stays hex.

--reconnect (watch, watch-commands, watch-notices): keep watching across node restarts;
when the connection or the stream ends, connect again (backing off up to 5 s) and go on
after the last item printed, without repeating it.

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

Exit status: 0 on success; 1 when a proof does not verify (verify-proof, prove --verify);
2 when a call or the connection fails (the reason is printed to stderr as
``error: CODE_NAME: message`` for a call, ``error: cannot connect to HOST:PORT: why``
when the node cannot be reached or the TLS handshake fails; also bad submission input,
nothing submitted then);
65/66 for bad or unreadable ingest input (66 also for an unreadable proof file); 74 when
the proof file cannot be written; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import random
import ssl
import sys
import time
from typing import List, Optional


from . import contracts_pb2, parameters
from .client import Client, member_response_json
from .connect_errors import describe_connect_error
from .parameters import parse_cycle_start
from .proof import ProofError, verify_proof
from .readings_csv import ReadingsCsvError, read_readings_csv
from .render import block_summary, district_results_json, district_results_text, \
    state_json, to_jsonable
from .signing import Signer, new_batch_id, tx_id
from .status import RpcError, StatusCode

EXIT_PROOF = 1      # verify-proof / prove --verify: the proof does not verify
EXIT_FAILURE = 2
EXIT_DATAERR = 65   # sysexits EX_DATAERR: bad input data
EXIT_NOINPUT = 66   # sysexits EX_NOINPUT: input file cannot be read
EXIT_IOERR = 74     # sysexits EX_IOERR: output file cannot be written
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


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _amount(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of fen") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"{value} is not positive (a reversal also takes the reversed payment's amount, "
            f"positive, with --reverses)")
    return value


def _vee(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        try:
            return parameters._check_vee(name, value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = name
    return parse


def _cycle_start(text: str):
    try:
        return parse_cycle_start(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_COMMAND_STATUS = {"issued": contracts_pb2.COMMAND_STATUS_ISSUED,
                   "acknowledged": contracts_pb2.COMMAND_STATUS_ACKNOWLEDGED,
                   "failed": contracts_pb2.COMMAND_STATUS_FAILED,
                   "expired": contracts_pb2.COMMAND_STATUS_EXPIRED}


def _address(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return text


def _linearizable(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--linearizable", action="store_true",
                        help="linearizable read (Raft ReadIndex): reflects every block "
                             "committed before the call, on followers too")


def _reconnect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reconnect", dest="watch_reconnect", action="store_true",
                        help="keep watching across node restarts: when the connection or the "
                             "stream ends, connect again (backing off up to 5 s) and go on "
                             "after the last item printed, without repeating it")


def _chain(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chain", default="", metavar="ID",
                        help="chain the requests are for (default: the node's only chain)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gridledger",
                                description="GridLedger node client")
    # Required by every command that talks to a node (checked in main; verify-proof is
    # offline and needs none of them).
    p.add_argument("--addr", help="node address HOST:PORT")
    p.add_argument("--cert", help="client certificate (PEM)")
    p.add_argument("--key", help="client private key (PEM)")
    p.add_argument("--ca", help="deployment CA certificate (PEM)")
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
    _reconnect(wa)
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
            a.add_argument("--pin", default="", metavar="sha256:HEX",
                           help="the key of the member's certificate (gridnode ca issue prints it)")

    vp = sub.add_parser("verify-proof", help="verify a BlockProof file offline (no node)")
    vp.add_argument("file", metavar="FILE", help='serialized gridledger.BlockProof ("-" = stdin)')
    vp.add_argument("--ca", dest="proof_ca", default=None, metavar="CA.pem",
                    help="also check the anchor signatures against this CA")
    pr = sub.add_parser("prove", help="Query/ProveBlock: the anchoring proof of a block")
    pr.add_argument("height", type=_non_negative, metavar="HEIGHT")
    pr.add_argument("-o", "--output", metavar="FILE",
                    help="write the proof bytes here (default: stdout, unless --verify)")
    pr.add_argument("--verify", action="store_true",
                    help="verify the proof at once (signatures against --ca) and print "
                         "the result as JSON")
    pr.add_argument("--ca", dest="proof_ca", default=None, metavar="CA.pem",
                    help="CA for --verify (default: the connection's --ca)")
    _chain(pr)

    def submitter(parser: argparse.ArgumentParser, chain_help: str) -> argparse.ArgumentParser:
        parser.add_argument("--chain", default="", metavar="ID", help=chain_help)
        parser.add_argument("--signer-cert", default=None,
                            help="certificate that signs the transaction (default: --cert)")
        parser.add_argument("--signer-key", default=None, help="its key (default: --key)")
        return parser

    main_help = "the main chain id (default: the node's only chain)"
    rd = submitter(sub.add_parser("register-district",
                                  help="DistrictRegistration on the main chain (admin)"),
                   main_help)
    rd.add_argument("district", metavar="DISTRICT")
    rd.add_argument("certs", nargs="+", metavar="CERT.pem",
                    help="member node certificates (PEM; a file may hold several)")
    pa = sub.add_parser("param", help="a DistrictParameter on the main chain (marketing)")
    psub = pa.add_subparsers(dest="param_command", required=True, metavar="KIND")
    cu = submitter(psub.add_parser("customer", help="customer archive entry"), main_help)
    cu.add_argument("--district", required=True)
    cu.add_argument("--account", required=True)
    cu.add_argument("--meter", required=True)
    cu.add_argument("--phase", default="A", choices=("A", "B", "C", "ABC"))
    cu.add_argument("--tariff", required=True, metavar="TARIFF_ID")
    cu.add_argument("--protected", action="store_true", help="protected supply (never tripped)")
    cu.add_argument("--contact", default="", metavar="PHONE")
    cu.add_argument("--thresholds", default="", metavar="ID")
    cu.add_argument("--opening-balance", type=_integer, default=0, metavar="FEN")
    cu.add_argument("--cycle-start", type=_cycle_start, default=None, metavar="MM-DD")
    ta = submitter(psub.add_parser(
        "tariff", help="tariff from a JSON file; a tariff change is a new tariff with the "
                       "same tariff_id, which replaces the old one",
        description="Submits a Tariff. To change a tariff, submit the new version with the "
                    "same tariff_id: it replaces the old one from the block that takes it "
                    "on (a cycle in progress starts new charge lines at the new prices)."),
        main_help)
    ta.add_argument("--district", required=True)
    ta.add_argument("--file", required=True, metavar="tariff.json")
    nt = submitter(psub.add_parser(
        "notice-templates", help="SMS notice texts in a language (zh-CN or en)",
        description="NoticeTemplates: the district's notices from then on are in LANGUAGE; "
                    "each template replaces the built-in text of its kind and recipient. "
                    "KIND: warning1, warning2, disconnect, formal_disconnect, reconnect; "
                    "RECIPIENT: customer, grid_worker; placeholders {account} {meter} "
                    "{balance} (yuan) {state}."), main_help)
    nt.add_argument("--district", required=True)
    nt.add_argument("--language", required=True, choices=parameters.NOTICE_LANGUAGES)
    nt.add_argument("--file", default=None, metavar="FILE",
                    help='UTF-8 JSON {"language", "templates": [{"kind", "recipient", '
                         '"text"}]} or lines KIND:RECIPIENT:TEXT')
    nt.add_argument("--template", action="append", default=[], metavar="KIND:RECIPIENT:TEXT",
                    help="one template (repeatable)")
    av = submitter(psub.add_parser(
        "activation", help="activate a contract version and its VEE parameters (admin)",
        description="ContractActivation (signer role admin): contract fee-control VERSION "
                    "with these VEE parameters applies from district height H on. An "
                    "omitted or 0 value means the default."), main_help)
    av.add_argument("--district", required=True)
    av.add_argument("--contract", default="fee-control", choices=parameters.CONTRACTS)
    av.add_argument("--version", type=_positive, required=True, metavar="N")
    av.add_argument("--at-height", type=_positive, required=True, metavar="H",
                    help="district block height from which the version applies")
    for name, flag, meta in (("sum_tolerance", "--sum-tolerance", "E"),
                             ("spike_factor", "--spike-factor", "F"),
                             ("future_tolerance_ms", "--future-tolerance-ms", "MS"),
                             ("max_interpolation_ms", "--max-interpolation-ms", "MS"),
                             ("spike_min_history", "--spike-min-history", "N")):
        low, high, unit, default = parameters.VEE_LIMITS[name]
        av.add_argument(flag, dest=name, type=_vee(name), default=0, metavar=meta,
                        help=f"{low}..{high} {unit}; 0 = the default ({default})")
    th = submitter(psub.add_parser("thresholds", help="fee-control thresholds"), main_help)
    th.add_argument("--district", required=True)
    th.add_argument("--id", default="", help="thresholds id (default: the district default)")
    th.add_argument("--alarm1", type=_integer, required=True, metavar="FEN")
    th.add_argument("--alarm2", type=_integer, required=True, metavar="FEN")
    th.add_argument("--overdraft", type=_integer, required=True, metavar="FEN")
    th.add_argument("--reconnect", type=_integer, required=True, metavar="FEN")
    th.add_argument("--direct-close", action="store_true")
    th.add_argument("--valid-ms", type=_non_negative, default=0, metavar="MS")
    th.add_argument("--grid-worker", default="", metavar="PHONE")
    py = submitter(sub.add_parser("pay", help="a Payment on the main chain (marketing)"),
                   main_help)
    py.add_argument("--district", required=True)
    py.add_argument("--account", required=True)
    py.add_argument("--amount", type=_amount, required=True, metavar="FEN",
                    help="fen, positive; with --reverses the reversed payment's amount")
    py.add_argument("--serial", required=True, help="this payment's (or reversal's) serial")
    py.add_argument("--reverses", default=None, metavar="SERIAL",
                    help="a reversal (冲正) of payment SERIAL: sent as minus --amount")
    ak = submitter(sub.add_parser("ack", help="a CommandAck on a district chain (device)"),
                   "the district chain id (default: the node's only chain)")
    ak.add_argument("command_id", metavar="COMMAND_ID")
    ak.add_argument("--failed", action="store_true", help="the command failed")
    ak.add_argument("--detail", default="", metavar="TEXT")

    ac = sub.add_parser("account", help="FeeControl/GetAccount as JSON")
    ac.add_argument("account", metavar="ACCOUNT")
    _chain(ac)
    for name, text in (("warnings", "accounts in WARNING1 or WARNING2, one JSON line each"),
                       ("disconnected", "accounts DISCONNECTED, one JSON line each")):
        x = sub.add_parser(name, help=text)
        x.add_argument("--limit", type=_non_negative, default=0)
        _chain(x)
    co = sub.add_parser("commands", help="FeeControl/ListCommands, one JSON line each")
    co.add_argument("--district", required=True, metavar="ID", help="the district chain id")
    co.add_argument("--status", choices=tuple(_COMMAND_STATUS), default=None)
    co.add_argument("--limit", type=_non_negative, default=0)
    wc = submitter(sub.add_parser("watch-commands",
                                  help="Control/SubscribeCommands (device), one JSON line each"),
                   "the district chain id (default: the node's only chain)")
    wc.add_argument("--ack", action="store_true",
                    help="acknowledge each command received as a success (CommandAck)")
    wc.add_argument("--count", type=_positive, default=None, help="stop after this many")
    _reconnect(wc)
    dr = sub.add_parser("district-results",
                        help="a district's results on the main chain, decoded "
                             "(FeeControl/GetDistrictResults)")
    dr.add_argument("--district", required=True)
    dr.add_argument("--limit", type=_non_negative, default=0,
                    help="accounts per page (default: the node's)")
    dr.add_argument("--after", default="", metavar="ACCOUNT",
                    help="start after this account (paging)")
    dr.add_argument("--all", action="store_true", help="follow every page")
    dr.add_argument("--json", action="store_true",
                    help="one JSON document per page instead of the table")
    dr.add_argument("--chain", default="", metavar="MAIN", help=main_help)
    wn = sub.add_parser("watch-notices", help="Notices/Subscribe (marketing), one JSON line each")
    wn.add_argument("--from", dest="from_height", type=_non_negative, default=0)
    wn.add_argument("--count", type=_positive, default=None, help="stop after this many")
    _reconnect(wn)
    _chain(wn)
    return p


def _error(code: str, message: str) -> int:
    print(f"error: {code}: {message}", file=sys.stderr)
    return EXIT_FAILURE


def _print_json(value, pretty: bool = False) -> None:
    print(json.dumps(value, indent=2 if pretty else None), flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "verify-proof":
        return _verify_proof_file(args.file, args.proof_ca or args.ca)
    missing = [f"--{n}" for n in ("addr", "cert", "key", "ca") if getattr(args, n) is None]
    if missing:
        parser.error("the following arguments are required: " + ", ".join(missing))
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
    elif args.command in _SUBMITTING and (args.command != "watch-commands" or args.ack):
        try:
            signer = Signer(args.signer_cert or args.cert, args.signer_key or args.key)
            readings = _submission_body(args)  # checked before connecting
        except OSError as exc:
            return _error("INVALID_ARGUMENT", f"cannot read {exc.filename}: {exc.strerror or exc}")
        except ValueError as exc:
            return _error("INVALID_ARGUMENT", str(exc))
    for flag in ("cert", "key", "ca"):
        path = getattr(args, flag)
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            print(f"error: cannot read --{flag} {path}: "
                  f"{(exc.strerror or str(exc)).lower()}", file=sys.stderr)
            return EXIT_FAILURE
    watch = _WatchProgress() if getattr(args, "watch_reconnect", False) else None
    backoff = 0.2
    while True:
        try:
            client = Client(args.addr, cert=args.cert, key=args.key, ca=args.ca,
                            server_name=args.server_name, timeout=timeout)
        except (RpcError, OSError, ValueError) as exc:
            why = describe_connect_error(args.addr, exc, ca=args.ca, cert=args.cert,
                                         key=args.key, server_name=args.server_name,
                                         timeout=timeout)
            retry = isinstance(exc, RpcError) and exc.code == StatusCode.UNAVAILABLE or \
                isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and \
                exc.filename is None
            if watch is None or not retry:
                print(f"error: {why}", file=sys.stderr)
                return EXIT_FAILURE
            backoff = _wait_to_reconnect(why, backoff)
            continue
        try:
            with client:
                if watch is None:
                    return _run(client, args, timeout, readings, signer)
                if _watch(client, args, timeout, signer, watch):
                    return 0
                reason = "the stream ended"
        except RpcError as exc:
            # UNAVAILABLE: the node went away; RESOURCE_EXHAUSTED: a subscriber that fell
            # too far behind was cut off. Either way the watch goes on after what it printed.
            if watch is None or exc.code not in (StatusCode.UNAVAILABLE, StatusCode.RESOURCE_EXHAUSTED):
                return _error(exc.code_name, exc.message)
            reason = exc.message
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            return 0
        except OSError as exc:
            if watch is None:
                raise
            reason = str(exc)
        if watch.printed_since_connect:
            backoff = 0.2
        backoff = _wait_to_reconnect(reason, backoff)


class _WatchProgress:
    """Where a --reconnect watch is: what it printed, so the next connection goes on after
    it. Commands are told apart by id (a resubscription replays the pending ones)."""

    def __init__(self):
        self.printed = 0
        self.printed_since_connect = 0
        self.next_height: Optional[int] = None
        self.notice_height: Optional[int] = None
        self.notices_at_height: set = set()
        self.commands_seen: set = set()


def _wait_to_reconnect(reason: str, backoff: float) -> float:
    print(f"watch: {reason}; reconnecting in {backoff:.1f} s", file=sys.stderr, flush=True)
    time.sleep(backoff)
    return min(backoff * 2, 5.0)


def _watch(client: Client, args, timeout: float, signer, progress: _WatchProgress) -> bool:
    """watch, watch-commands and watch-notices over one connection, one JSON line per item
    (with --ack a command's line carries the CommandAck's result under "ack"), going on
    after `progress`; True once --count items are printed."""
    progress.printed_since_connect = 0

    def printed(line) -> bool:
        _print_json(line)
        progress.printed += 1
        progress.printed_since_connect += 1
        return args.count is not None and progress.printed >= args.count

    cmd = args.command
    if cmd == "watch":
        start = args.from_height if progress.next_height is None else progress.next_height
        with client.subscribe_blocks(start, timeout=args.timeout, chain_id=args.chain) as blocks:
            for response in blocks:
                progress.next_height = response.block.header.height + 1
                if printed(to_jsonable(response) if args.full else block_summary(response)):
                    return True
    elif cmd == "watch-notices":
        start = args.from_height if progress.notice_height is None else progress.notice_height
        with client.subscribe_notices(start, chain_id=args.chain, timeout=args.timeout) as notices:
            for notice in notices:
                if notice.height == progress.notice_height and notice.notice_id in progress.notices_at_height:
                    continue
                if notice.height != progress.notice_height:
                    progress.notice_height, progress.notices_at_height = notice.height, set()
                progress.notices_at_height.add(notice.notice_id)
                if printed(to_jsonable(notice)):
                    return True
    elif cmd == "watch-commands":
        chain = args.chain or (client.chain_id(timeout=timeout) if args.ack else "")
        with client.subscribe_commands(args.chain, timeout=args.timeout) as commands:
            for command in commands:
                if command.command_id in progress.commands_seen:
                    continue
                if len(progress.commands_seen) >= 100_000:
                    progress.commands_seen.clear()
                progress.commands_seen.add(command.command_id)
                line = to_jsonable(command)
                if args.ack:
                    line["ack"] = _ack(client, signer, chain, command, args, timeout)
                if printed(line):
                    return True
    return False


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
        _print_json(state_json(args.state_key,
                               client.get_state(args.state_key, timeout=timeout,
                                                linearizable=args.linearizable,
                                                chain_id=args.chain)), pretty=True)
    elif cmd == "history":
        _print_json(state_json(args.state_key,
                               client.get_history(args.state_key, limit=args.limit,
                                                  timeout=timeout,
                                                  linearizable=args.linearizable,
                                                  chain_id=args.chain)),
                    pretty=True)
    elif cmd == "district-results":
        return _district_results(client, args, timeout)
    elif cmd == "admin":
        _print_json(member_response_json(_admin(client, args, timeout)))
    elif cmd == "prove":
        return _prove(client, args, timeout)
    elif cmd in _SUBMITTING and cmd != "watch-commands":
        return _submit_line(client, signer, args, timeout, readings)
    elif cmd == "account":
        _print_json(to_jsonable(client.get_account(args.account, chain_id=args.chain,
                                                   timeout=timeout)), pretty=True)
    elif cmd in ("warnings", "disconnected"):
        accounts = client.warning_accounts(args.chain, args.limit, timeout=timeout) \
            if cmd == "warnings" else \
            client.disconnected_accounts(args.chain, args.limit, timeout=timeout)
        for account in accounts:
            _print_json(to_jsonable(account))
    elif cmd == "commands":
        status = _COMMAND_STATUS.get(args.status, contracts_pb2.COMMAND_STATUS_UNSPECIFIED)
        for command in client.list_commands(args.district, status=status, limit=args.limit,
                                            timeout=timeout).commands:
            _print_json(to_jsonable(command))
    elif cmd in ("watch", "watch-commands", "watch-notices"):
        # Without --reconnect: one connection, until --count or the end of the stream.
        _watch(client, args, timeout, signer, _WatchProgress())
    elif cmd == "blocks":
        for summary in client.list_blocks(args.from_height, args.to_height,
                                          page_size=args.page_size, timeout=timeout,
                                          chain_id=args.chain):
            line = {"height": summary.header.height, "hash": bytes(summary.hash).hex()}
            line.update((k, v) for k, v in to_jsonable(summary.header).items()
                        if k != "height")
            _print_json(line)
    return 0


def _district_results(client: Client, args, timeout: float) -> int:
    """district-results: the table (or JSON per page) of one page, or of every page with
    --all."""
    if args.all:
        pages = client.district_results_pages(args.district, chain_id=args.chain,
                                              after_account=args.after, limit=args.limit,
                                              timeout=timeout)
    else:
        pages = iter([client.district_results(args.district, chain_id=args.chain,
                                              after_account=args.after, limit=args.limit,
                                              timeout=timeout)])
    if args.json:
        for page in pages:
            _print_json(district_results_json(page))
        return 0
    sys.stdout.write(district_results_text(list(pages), args.chain))
    sys.stdout.flush()
    return 0


def _admin(client: Client, args, timeout: float):
    sub = args.admin_command
    if sub == "transfer-leader":
        return client.transfer_leader(args.chain, args.node, timeout=timeout)
    if sub == "add-member":
        return client.add_member(args.chain, args.node, args.name, args.address,
                                 timeout=timeout, pin=args.pin)
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


# ---- anchoring, parameters, fee control --------------------------------------------------

_SUBMITTING = ("register-district", "param", "pay", "ack", "watch-commands")


def _verify_proof_file(path: str, ca: Optional[str]) -> int:
    """verify-proof: 0 and the result as JSON; 1 (reason on stderr) when it fails."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_NOINPUT
    return _print_verified(data, ca)


def _print_verified(data: bytes, ca: Optional[str]) -> int:
    try:
        result = verify_proof(data, ca_pem_path=ca)
    except ProofError as exc:
        print(f"error: proof does not verify: {exc}", file=sys.stderr)
        return EXIT_PROOF
    except OSError as exc:
        print(f"error: cannot read the CA {ca}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_NOINPUT
    _print_json(result.to_json(), pretty=True)
    return 0


def _prove(client: Client, args, timeout: float) -> int:
    data = client.prove_block(args.height, chain_id=args.chain, timeout=timeout
                              ).SerializeToString()
    if args.output:
        try:
            with open(args.output, "wb") as f:
                f.write(data)
        except OSError as exc:
            print(f"error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_IOERR
    elif not args.verify:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    if args.verify:
        return _print_verified(data, args.proof_ca or args.ca)
    return 0


def _submission_body(args) -> dict:
    """The TxPayload body field of a submitting command (watch-commands: none)."""
    cmd = args.command
    if cmd == "register-district":
        return {"district_registration": parameters.district_registration(
            args.district, parameters.certificates_der(args.certs))}
    if cmd == "ack":
        return {"command_ack": parameters.command_ack(args.command_id, not args.failed,
                                                      args.detail)}
    if cmd == "pay":
        if args.reverses is not None:
            return {"parameter": parameters.reversal_parameter(
                args.district, args.account, args.amount, args.serial, args.reverses)}
        return {"parameter": parameters.payment_parameter(args.district, args.account,
                                                          args.amount, args.serial)}
    if cmd == "watch-commands":
        return {}
    kind = args.param_command
    if kind == "customer":
        p = parameters.customer_parameter(
            args.district, args.account, args.meter, args.tariff, phase=args.phase,
            protected_supply=args.protected, contact=args.contact,
            thresholds_id=args.thresholds, opening_balance_fen=args.opening_balance,
            cycle_start=args.cycle_start)
    elif kind == "tariff":
        with open(args.file, "rb") as f:
            try:
                doc = json.load(f)
            except ValueError as exc:
                raise ValueError(f"{args.file}: not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{args.file}: a tariff is a JSON object")
        try:
            p = parameters.tariff_parameter(args.district, parameters.tariff_from_json(doc))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{args.file}: {exc}") from None
    elif kind == "notice-templates":
        templates = []
        if args.file is not None:
            language, templates = parameters.notice_templates_from_file(args.file)
            if language is not None and language != args.language:
                raise ValueError(f"{args.file} is in language {language!r}, not "
                                 f"--language {args.language}")
        for spec in args.template:
            templates.append(parameters.parse_notice_template(spec))
        p = parameters.notice_templates_parameter(args.district, args.language, templates)
    elif kind == "activation":
        p = parameters.activation_parameter(
            args.district, args.version, args.at_height, contract=args.contract,
            sum_tolerance=args.sum_tolerance, spike_factor=args.spike_factor,
            future_tolerance_ms=args.future_tolerance_ms,
            max_interpolation_ms=args.max_interpolation_ms,
            spike_min_history=args.spike_min_history)
    else:
        p = parameters.thresholds_parameter(
            args.district, args.alarm1, args.alarm2, args.overdraft, args.reconnect,
            thresholds_id=args.id, direct_close=args.direct_close,
            command_valid_ms=args.valid_ms, grid_worker_contact=args.grid_worker)
    return {"parameter": p}


def _submit_signed(client: Client, signed, chain: str, timeout: float) -> dict:
    """Submits; the JSON line of the result.  ALREADY_EXISTS is a line with
    ``already_existed`` and the original location; a rejection at apply time adds
    ``code`` and ``message``."""
    line = {"tx_id": tx_id(signed).hex()}
    try:
        response = client.submit(signed, timeout=timeout, chain_id=chain)
    except RpcError as exc:
        if exc.code == StatusCode.ALREADY_EXISTS and exc.location is not None:
            line.update(height=exc.location.height, index=exc.location.index,
                        already_existed=True)
            return line
        raise
    line.update(height=response.location.height, index=response.location.index)
    if response.already_existed:
        line["already_existed"] = True
    if response.outcome.code != 0:
        line.update(code=response.outcome.code, message=response.outcome.message)
    return line


def _submit_line(client: Client, signer: Signer, args, timeout: float, body: dict) -> int:
    chain = args.chain or client.chain_id(timeout=timeout)
    signed = signer.sign(parameters.tx_payload(chain, **body))
    line = _submit_signed(client, signed, args.chain, timeout)
    _print_json(line)
    if "code" in line:
        print(f"error: committed but rejected when applied: code {line['code']}: "
              f"{line['message']}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _ack(client: Client, signer: Signer, chain: str, command, args, timeout: float) -> dict:
    """Acknowledges `command` as executed (a CommandAck transaction); the submit's JSON line."""
    signed = signer.sign(parameters.tx_payload(
        chain, command_ack=parameters.command_ack(command.command_id, True)))
    return _submit_signed(client, signed, args.chain, timeout)


if __name__ == "__main__":
    sys.exit(main())
