"""Protobuf messages as JSON-ready values for the command line.

Unlike ``google.protobuf.json_format``: field names as in the .proto, every scalar field
present (proto3 defaults included), 64-bit integers as JSON numbers, bytes as lower-case
hex, enums by name.  A ``SignedTransaction`` additionally shows its ``tx_id``, its payload
decoded as a ``TxPayload`` (``payload_hex`` when it does not decode) and the signer
certificate's subject.
"""

from __future__ import annotations

from typing import Any, Dict

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from . import chain_pb2
from .signing import tx_id

__all__ = ["to_jsonable", "block_summary"]


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
