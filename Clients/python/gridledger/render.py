"""Protobuf messages as JSON-ready values for the command line.

Unlike ``google.protobuf.json_format``: field names as in the .proto, every scalar field
present (proto3 defaults included), 64-bit integers as JSON numbers, bytes as lower-case
hex, enums by name.  A ``SignedTransaction`` additionally shows its ``tx_id``, its payload
decoded as a ``TxPayload`` (``payload_hex`` when it does not decode) and the signer
certificate's subject.

State values of known keys are decoded too (:func:`decode_state_value`), and a district's
results on the main chain (``GetDistrictResultsResponse``) are rendered for people by
:func:`district_results_text`: amounts in yuan, state names, one row per account.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple, Type

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from . import anchor_pb2, chain_pb2, contracts_pb2
from .signing import tx_id

__all__ = ["to_jsonable", "block_summary", "decode_state_value", "state_json", "yuan",
           "account_state_name", "district_results_json", "district_results_text"]


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return to_jsonable(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return bytes(value).hex()
    if field.type == FieldDescriptor.TYPE_ENUM:
        enum_value = field.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value is not None else value
    return value


def _signer_subject(der: bytes) -> Any:
    try:
        from cryptography import x509
        return x509.load_der_x509_certificate(der).subject.rfc4514_string()
    except Exception:  # undecodable certificate: show the bytes only
        return None


def _signed_transaction(tx: chain_pb2.SignedTransaction) -> Dict[str, Any]:
    out: Dict[str, Any] = {"tx_id": tx_id(tx).hex()}
    try:
        payload = chain_pb2.TxPayload.FromString(tx.payload)
        out["payload"] = to_jsonable(payload)
    except DecodeError:
        out["payload_hex"] = bytes(tx.payload).hex()
    out["signature"] = bytes(tx.signature).hex()
    out["signer"] = _signer_subject(tx.signer_certificate)
    out["signer_certificate"] = bytes(tx.signer_certificate).hex()
    return out


def to_jsonable(message: Message) -> Dict[str, Any]:
    """``message`` as a dict of JSON-ready values (see the module docstring)."""
    if isinstance(message, chain_pb2.SignedTransaction):
        return _signed_transaction(message)
    out: Dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.label == FieldDescriptor.LABEL_REPEATED:
            out[field.name] = [_value(field, v) for v in value]
        elif field.containing_oneof is not None:
            if message.WhichOneof(field.containing_oneof.name) == field.name:
                out[field.name] = _value(field, value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            out[field.name] = _value(field, value) if message.HasField(field.name) else None
        else:
            out[field.name] = _value(field, value)
    return out


def block_summary(response) -> Dict[str, Any]:
    """A ``GetBlockResponse`` in brief: the header, the block hash and per transaction
    its id, outcome code and reading counts."""
    block = response.block
    header = to_jsonable(block.header)
    out: Dict[str, Any] = {"height": block.header.height, "hash": bytes(response.hash).hex()}
    out.update((k, v) for k, v in header.items() if k != "height")
    txs = []
    for i, tx in enumerate(block.transactions):
        entry: Dict[str, Any] = {"tx_id": tx_id(tx).hex()}
        if i < len(block.outcomes):
            o = block.outcomes[i]
            entry.update(code=o.code, accepted=o.readings_accepted,
                         duplicate=o.readings_duplicate)
            if o.message:
                entry["message"] = o.message
        txs.append(entry)
    out["transactions"] = txs
    return out


# ---- state values of known keys (Docs/anchoring.md "State keys", Docs/contracts.md) --------

# (key pattern, message type): values stored as serialized protobuf messages. Other keys
# (readings, binary records, lists) are left as hex.
_STATE_MESSAGES: List[Tuple["re.Pattern[str]", Type[Message]]] = [
    (re.compile(r"uplink/[^/]+/totals"), anchor_pb2.UplinkSummary),
    (re.compile(r"uplink/[^/]+/account/.+"), anchor_pb2.AccountResult),
    (re.compile(r"district/[^/]+"), anchor_pb2.DistrictRegistration),
    (re.compile(r"receipt/(last|\d{20})"), anchor_pb2.AnchorReceipt),
    (re.compile(r"customer/[^/]+"), contracts_pb2.CustomerArchive),
    (re.compile(r"tariff/[^/]+"), contracts_pb2.Tariff),
    (re.compile(r"thresholds/[^/]*"), contracts_pb2.FeeControlThresholds),
    (re.compile(r"account/[^/]+"), contracts_pb2.Account),
    (re.compile(r"command/[^/]+"), contracts_pb2.ControlCommand),
    (re.compile(r"notice/[^/]+"), contracts_pb2.Notice),
    (re.compile(r"payment/[^/]+"), contracts_pb2.Payment),
]


def decode_state_value(key: str, value: bytes) -> Optional[Message]:
    """The message a state value of ``key`` holds (``uplink/<d>/account/<a>`` ->
    AccountResult, ``uplink/<d>/totals`` -> UplinkSummary, ``account/<a>`` -> Account, ...),
    or None for a key of no known message kind or a value that does not decode."""
    for pattern, cls in _STATE_MESSAGES:
        if pattern.fullmatch(key):
            try:
                return cls.FromString(bytes(value))
            except DecodeError:
                return None
    return None


def state_json(key: str, response) -> Dict[str, Any]:
    """A ``GetStateResponse`` or ``GetHistoryResponse`` as JSON, each value of a known
    key also decoded: ``"decoded"`` (the message's fields, enums by name) and
    ``"decoded_as"`` (its type)."""
    out = to_jsonable(response)

    def add(entry: Dict[str, Any], value: bytes) -> None:
        message = decode_state_value(key, value) if value else None
        if message is not None:
            entry["decoded_as"] = message.DESCRIPTOR.full_name
            entry["decoded"] = to_jsonable(message)

    if "entries" in out:
        for entry, e in zip(out["entries"], response.entries):
            add(entry, e.value)
    elif getattr(response, "found", False):
        add(out, response.value)
    return out


# ---- district results (GetDistrictResults) ----------------------------------------------


def yuan(fen: int) -> str:
    """Fen as yuan with two decimals: -1234 -> "-12.34" (integers only, no rounding)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{whole}.{cents:02d}"


def account_state_name(value: int) -> str:
    """AccountState number -> short name: 3 -> "DISCONNECTED" (unknown: the number)."""
    try:
        return contracts_pb2.AccountState.Name(value)[len("ACCOUNT_STATE_"):]
    except ValueError:
        return str(value)


def _utc(ms: int) -> str:
    if ms <= 0:
        return "-"
    t = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M")


def district_results_json(page: anchor_pb2.GetDistrictResultsResponse) -> Dict[str, Any]:
    """One page as JSON: every field, account states by name, amounts in fen."""
    out = to_jsonable(page)
    for entry in out["accounts"]:
        entry["state"] = account_state_name(entry["state"])
    return out


def district_results_text(pages: Iterable[anchor_pb2.GetDistrictResultsResponse],
                          main_chain: str = "") -> str:
    """Pages of one district's results as a report for people: the totals (from the
    first page), the warning and disconnect lists and one row per account with its
    balance, state, charges (this cycle, since opening) and payments in yuan, and the
    start of its cycle (UTC).  A last page with ``next_after`` ends with how to go on."""
    pages = list(pages)
    if not pages:
        return ""
    first = pages[0]
    t = first.totals
    lines = [f"district {first.district}" + (f" (main chain {main_chain})" if main_chain else "")]
    lines.append(f"totals: {t.transactions} transactions, {t.readings_accepted} readings "
                 f"accepted, {t.readings_billed} billed, charged {yuan(t.charged_fen)} yuan, "
                 f"{t.commands_issued} commands, {t.notices_issued} notices, "
                 f"{t.downlink_count} parameters taken")
    warning = [a for p in pages for a in p.warning]
    disconnected = [a for p in pages for a in p.disconnected]
    lines.append("warning: " + (", ".join(warning) if warning else "none"))
    lines.append("disconnected: " + (", ".join(disconnected) if disconnected else "none"))
    accounts = [a for p in pages for a in p.accounts]
    header = ("ACCOUNT", "BALANCE", "STATE", "CYCLE CHARGED", "TOTAL CHARGED", "TOTAL PAID",
              "CYCLE START (UTC)")
    rows = [(a.account, yuan(a.balance_fen), account_state_name(a.state),
             yuan(a.cycle_charged_fen), yuan(a.total_charged_fen), yuan(a.total_paid_fen),
             _utc(a.cycle_start_ms)) for a in accounts]
    if rows:
        widths = [max(_width(r[i]) for r in rows + [header]) for i in range(len(header))]
        lines.append("amounts in yuan")
        for r in [header] + rows:
            cells = []
            for i, cell in enumerate(r):
                pad = " " * (widths[i] - _width(cell))
                # Money right-aligned, names left-aligned.
                cells.append(pad + cell if i in (1, 3, 4, 5) else cell + pad)
            lines.append("  ".join(cells).rstrip())
    else:
        lines.append("no accounts")
    if pages[-1].next_after:
        lines.append(f"more accounts after {pages[-1].next_after} (--after "
                     f"{pages[-1].next_after}, or --all)")
    return "\n".join(lines) + "\n"


def _width(text: str) -> int:
    """Columns on a terminal: CJK characters take two."""
    import unicodedata
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)
