"""Transaction signing (Docs/wire-protocol.md, "Chain services", "Submitting").

A ``SignedTransaction`` carries the serialized ``TxPayload`` exactly as signed, an ECDSA
P-256 / SHA-256 signature (DER) over those bytes and the signer's certificate (DER).  The
transaction id is SHA-256 of the payload bytes.

    signer = Signer("col1.crt", "col1.key")        # PEM files from `gridnode ca issue`
    signed = signer.sign(payload)                  # chain_pb2.SignedTransaction
    tx_id(signed).hex()
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from typing import Iterable, Optional, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from . import chain_pb2

__all__ = ["Signer", "tx_id", "verify_signature", "readings_payload", "new_batch_id"]

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def _payload_bytes(signed_or_payload) -> bytes:
    if isinstance(signed_or_payload, chain_pb2.SignedTransaction):
        return signed_or_payload.payload
    if isinstance(signed_or_payload, chain_pb2.TxPayload):
        return signed_or_payload.SerializeToString()
    return bytes(signed_or_payload)


def tx_id(signed: Union[chain_pb2.SignedTransaction, chain_pb2.TxPayload, bytes]) -> bytes:
    """The transaction id: SHA-256 of the payload bytes (32 bytes).

    Accepts a ``SignedTransaction`` (its ``payload`` field), a ``TxPayload`` (serialized
    first) or the payload bytes themselves."""
    return hashlib.sha256(_payload_bytes(signed)).digest()


def _subject(cert: x509.Certificate, oid) -> Optional[str]:
    values = cert.subject.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value.decode() if isinstance(value, bytes) else value


class Signer:
    """A party that signs transactions: a PEM certificate and its PEM private key.

    ``name`` (subject CN), ``role`` (OU) and ``district`` (L; None when the certificate
    has none) come from the certificate subject.  The key must be EC P-256 and match the
    certificate.  ``password`` decrypts an encrypted key.  Thread-safe.
    """

    def __init__(self, cert_path: str, key_path: str, password: Optional[bytes] = None) -> None:
        with open(cert_path, "rb") as f:
            cert_pem = f.read()
        with open(key_path, "rb") as f:
            key_pem = f.read()
        try:
            self.certificate = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as exc:
            raise ValueError(f"{cert_path}: not a PEM certificate: {exc}") from None
        try:
            key = serialization.load_pem_private_key(key_pem, password=password)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{key_path}: cannot load the private key: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or \
                not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"{key_path}: the key is not an EC P-256 key")
        public = self.certificate.public_key()
        raw = serialization.PublicFormat.SubjectPublicKeyInfo
        if public.public_bytes(serialization.Encoding.DER, raw) != \
                key.public_key().public_bytes(serialization.Encoding.DER, raw):
            raise ValueError(f"{key_path}: the key does not belong to {cert_path}")
        self._key = key
        self.certificate_der: bytes = self.certificate.public_bytes(serialization.Encoding.DER)
        self.name: Optional[str] = _subject(self.certificate, NameOID.COMMON_NAME)
        self.role: Optional[str] = _subject(self.certificate, NameOID.ORGANIZATIONAL_UNIT_NAME)
        self.district: Optional[str] = _subject(self.certificate, NameOID.LOCALITY_NAME)

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, role={self.role!r}, district={self.district!r})"

    def sign_bytes(self, payload: bytes) -> chain_pb2.SignedTransaction:
        """Sign payload bytes as they are (they need not decode as a TxPayload)."""
        payload = bytes(payload)
        signature = self._key.sign(payload, _ECDSA_SHA256)  # DER, over SHA-256(payload)
        return chain_pb2.SignedTransaction(payload=payload, signature=signature,
                                           signer_certificate=self.certificate_der)

    def sign(self, payload: Union[chain_pb2.TxPayload, bytes]) -> chain_pb2.SignedTransaction:
        """Serialize ``payload`` once and sign exactly those bytes."""
        if isinstance(payload, chain_pb2.TxPayload):
            payload = payload.SerializeToString()
        return self.sign_bytes(payload)


def verify_signature(signed: chain_pb2.SignedTransaction) -> bool:
    """True if ``signed.signature`` verifies with the key of ``signed.signer_certificate``.
    (Only the signature: whether the certificate chains to the CA is the node's check.)"""
    try:
        cert = x509.load_der_x509_certificate(signed.signer_certificate)
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        key.verify(signed.signature, signed.payload, _ECDSA_SHA256)
        return True
    except (InvalidSignature, ValueError):
        return False


def new_batch_id() -> str:
    """A fresh collector batch id (random UUID)."""
    return str(uuid.uuid4())


def readings_payload(chain_id: str, district: str, readings: Iterable[chain_pb2.Reading],
                     batch_id: Optional[str] = None, created_ms: Optional[int] = None,
                     nonce: Optional[str] = None) -> chain_pb2.TxPayload:
    """A ``TxPayload`` holding a ``ReadingBatch``: created_ms defaults to now, nonce to 16
    random hex digits, batch_id to a random UUID."""
    return chain_pb2.TxPayload(
        chain_id=chain_id,
        created_ms=int(time.time() * 1000) if created_ms is None else created_ms,
        nonce=secrets.token_hex(8) if nonce is None else nonce,
        readings=chain_pb2.ReadingBatch(
            district=district,
            batch_id=new_batch_id() if batch_id is None else batch_id,
            readings=list(readings)))
