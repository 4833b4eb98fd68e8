"""Offline verification of a ``BlockProof`` (Docs/anchoring.md, "Proofs"), the algorithm of
the Swift SDK's ``ProofVerifier`` (GridClient).  No connection is needed: every hash is
recomputed.

Hashes (Docs/chain.md, "Hashes"; H is the hash suite a header names: "sha256" or "sm3",
empty = "sha256"):

    header-hash  = H(serialized BlockHeader, the bytes as given in the proof)
    tx-id        = SHA-256(TxPayload bytes as signed)            ; every chain
    merkle fold  = node := H(0x00 || leaf); per MerkleStep, leaf upwards:
                     promoted      -> node unchanged
                     sibling_left  -> node := H(0x01 || sibling || node)
                     otherwise     -> node := H(0x01 || node || sibling)
    anchor-digest = SHA-256("gridledger-anchor/v1" || u16 len district || district ||
                            u64 from || u64 to || u16 len || last-header-hash ||
                            u16 len || headers-root || SHA-256(summary))   ; big-endian

Path shape: a path must be the one of its leaf index i in a tree of n leaves (pairs
(0,1),(2,3),...; an odd last node promoted), step by step from the leaf:

    while n > 1:
        i even, i + 1 == n -> promoted (sibling empty)
        i even             -> not promoted, sibling right (sibling_left false)
        i odd              -> not promoted, sibling left (sibling_left true)
        i //= 2; n = (n + 1) // 2

exactly that many steps, a non-promoted sibling of the hash's length (32 bytes for sha256
and sm3).  header_path: i = height - from, n = to - from + 1; tx_path and outcome_path:
i = main_index, n = the main header's tx_count (main_index < tx_count).

Checks, in order:
  1. the district header decodes, names a known suite, and is block ``proof.height`` of
     chain ``proof.district``;
  2. the anchor transaction decodes to an ``Anchor`` for that district whose range
     covers the height;
  3. ``header_path`` has the shape of the height in the range, and the header hash folds
     along it (district suite) to the anchor's ``headers_root``; for the last block of the
     range it equals ``last_header_hash``;
  4. the main header decodes and is of the chain the anchor payload names; ``tx_path`` has
     the shape of ``main_index`` in ``tx_count`` leaves and the anchor's tx-id folds along
     it (main suite) to its ``tx_root``;
  5. the main chain accepted the anchor: ``anchor_outcome`` decodes to a ``TxOutcome`` of
     code 0, ``outcome_path`` has the shape of ``main_index`` in ``tx_count`` leaves, and
     H_main(anchor_outcome bytes as given) folds along it (main suite) to the main
     header's ``outcomes_root`` (which must not be empty);
  6. with a CA: every anchor signature is ECDSA P-256 / SHA-256 (DER) over the
     anchor-digest by a distinct certificate that the CA issued, valid now, with subject
     OU "node" and L = the district; at least one signature.

    result = verify_proof(open("p.bin", "rb").read(), ca_pem_path="ca.crt")
    result.main_height, result.signatures_verified, result.to_json()

A failed check raises :class:`ProofError` (a ``ValueError``) saying which.
"""

from __future__ import annotations

import datetime
import hashlib
import struct
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf.message import DecodeError

from . import anchor_pb2, chain_pb2

__all__ = ["ProofError", "ProofResult", "verify_proof", "hash_function", "fold_path",
           "merkle_root", "merkle_path", "path_shape", "path_fits", "anchor_digest",
           "ANCHOR_DIGEST_DOMAIN"]

ANCHOR_DIGEST_DOMAIN = b"gridledger-anchor/v1"
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())

Hash = Callable[[bytes], bytes]


class ProofError(ValueError):
    """A proof that does not verify; ``str(e)`` says which check failed."""


@dataclass(frozen=True)
class ProofResult:
    """What a verified proof establishes."""

    district: str
    height: int
    header_hash: bytes
    anchor_from: int
    anchor_to: int
    main_chain: str
    main_height: int
    main_index: int
    main_block_hash: bytes
    # Anchor signatures verified against the CA (0 when no CA was given).
    signatures_verified: int

    def to_json(self) -> Dict[str, object]:
        """The CLI's output: hashes as hex, ``"verified": true``."""
        return {"verified": True, "district": self.district, "height": self.height,
                "header_hash": self.header_hash.hex(), "anchor_from": self.anchor_from,
                "anchor_to": self.anchor_to, "main_chain": self.main_chain,
                "main_height": self.main_height, "main_index": self.main_index,
                "main_block_hash": self.main_block_hash.hex(),
                "signatures_verified": self.signatures_verified}


def hash_function(suite: str) -> Hash:
    """The hash of a suite name ("" = "sha256"); ``ProofError`` for an unknown suite, or
    for "sm3" when this Python's OpenSSL lacks it."""
    if suite in ("", "sha256"):
        return lambda data: hashlib.sha256(data).digest()
    if suite == "sm3":
        try:
            hashlib.new("sm3")
        except ValueError:
            raise ProofError("hash suite sm3 is not available in this Python's OpenSSL") from None
        return lambda data: hashlib.new("sm3", data).digest()
    raise ProofError(f"unknown hash suite {suite!r}")


def fold_path(h: Hash, leaf: bytes, steps: Iterable[anchor_pb2.MerkleStep]) -> bytes:
    """The root that ``leaf`` and its path give (the chain's tx-root rule)."""
    node = h(b"\x00" + leaf)
    for step in steps:
        if step.promoted:
            continue
        if step.sibling_left:
            node = h(b"\x01" + step.sibling + node)
        else:
            node = h(b"\x01" + node + step.sibling)
    return node


def path_shape(index: int, count: int) -> Optional[List[Optional[bool]]]:
    """The steps the path of leaf ``index`` in a tree of ``count`` leaves has, leaf
    upwards: ``None`` for a promoted step, else the step's ``sibling_left``.  ``None``
    when there is no such leaf (``index >= count``)."""
    if not 0 <= index < count:
        return None
    shape: List[Optional[bool]] = []
    i, n = index, count
    while n > 1:
        if i % 2 == 0:
            shape.append(None if i + 1 == n else False)
        else:
            shape.append(True)
        i //= 2
        n = (n + 1) // 2
    return shape


def path_fits(steps: Sequence[anchor_pb2.MerkleStep], index: int, count: int,
              hash_len: int) -> bool:
    """Whether ``steps`` is exactly the path shape of leaf ``index`` of ``count``: as many
    steps, the same promoted steps (with an empty sibling) and sides, every sibling
    ``hash_len`` bytes."""
    shape = path_shape(index, count)
    if shape is None or len(shape) != len(steps):
        return False
    for step, expected in zip(steps, shape):
        if expected is None:
            if not step.promoted or step.sibling:
                return False
        elif step.promoted or step.sibling_left != expected or len(step.sibling) != hash_len:
            return False
    return True


def merkle_root(h: Hash, leaves: Sequence[bytes]) -> bytes:
    """The tx-root rule over ``leaves``: H("") when empty, odd nodes promoted."""
    if not leaves:
        return h(b"")
    level = [h(b"\x00" + leaf) for leaf in leaves]
    while len(level) > 1:
        level = [h(b"\x01" + level[i] + level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return level[0]


def merkle_path(h: Hash, leaves: Sequence[bytes], index: int) -> List[anchor_pb2.MerkleStep]:
    """The path of ``leaves[index]``: one step per level, leaf upwards (as ProveBlock
    builds it)."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} of {len(leaves)}")
    level = [h(b"\x00" + leaf) for leaf in leaves]
    steps: List[anchor_pb2.MerkleStep] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            steps.append(anchor_pb2.MerkleStep(sibling=level[sibling],
                                               sibling_left=sibling < index))
        else:
            steps.append(anchor_pb2.MerkleStep(promoted=True))
        level = [h(b"\x01" + level[i] + level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
        index //= 2
    return steps


def anchor_digest(anchor: anchor_pb2.Anchor) -> bytes:
    """The 32 bytes every district member signs for ``anchor`` (module docstring)."""
    district = anchor.district.encode()
    out = ANCHOR_DIGEST_DOMAIN
    out += struct.pack(">H", len(district)) + district
    out += struct.pack(">QQ", anchor.from_height, anchor.to_height)
    out += struct.pack(">H", len(anchor.last_header_hash)) + anchor.last_header_hash
    out += struct.pack(">H", len(anchor.headers_root)) + anchor.headers_root
    out += hashlib.sha256(anchor.summary).digest()
    return hashlib.sha256(out).digest()


def _parse(cls, data: bytes, what: str):
    try:
        return cls.FromString(data)
    except DecodeError:
        raise ProofError(f"{what} does not decode") from None


def _subject(cert: x509.Certificate, oid) -> List[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


def _load_ca(path: str) -> List[x509.Certificate]:
    with open(path, "rb") as f:
        data = f.read()
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ProofError(f"{path}: no PEM certificate: {exc}") from None


def _issued_by(cert: x509.Certificate, cas: Sequence[x509.Certificate]) -> bool:
    for ca in cas:
        if cert.issuer != ca.subject:
            continue
        key = ca.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            continue
        try:
            key.verify(cert.signature, cert.tbs_certificate_bytes,
                       ec.ECDSA(cert.signature_hash_algorithm))
            return True
        except InvalidSignature:
            continue
    return False


def _check_signatures(anchor: anchor_pb2.Anchor, cas: Sequence[x509.Certificate],
                      now: datetime.datetime) -> int:
    digest = anchor_digest(anchor)
    seen = set()
    for i, sig in enumerate(anchor.signatures):
        def fail(why: str):
            return ProofError(f"anchor signature {i} does not verify against the CA: {why}")
        try:
            cert = x509.load_der_x509_certificate(sig.certificate)
        except ValueError:
            raise fail("certificate does not decode") from None
        if not _issued_by(cert, cas):
            raise fail("certificate is not issued by the CA")
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise fail("certificate is not valid now")
        if _subject(cert, NameOID.ORGANIZATIONAL_UNIT_NAME) != ["node"]:
            raise fail("certificate role (OU) is not node")
        if _subject(cert, NameOID.LOCALITY_NAME) != [anchor.district]:
            raise fail(f"certificate district (L) is not {anchor.district}")
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or \
                not isinstance(key.curve, ec.SECP256R1):
            raise fail("certificate key is not ECDSA P-256")
        try:
            key.verify(sig.signature, digest, _ECDSA_SHA256)
        except InvalidSignature:
            raise fail("signature does not verify over the anchor digest") from None
        fingerprint = hashlib.sha256(sig.certificate).digest()
        if fingerprint in seen:
            raise fail("certificate signed twice")
        seen.add(fingerprint)
    if not seen:
        raise ProofError("anchor carries no signature")
    return len(seen)


def verify_proof(proof: Union[bytes, anchor_pb2.BlockProof],
                 ca_pem_path: Optional[str] = None,
                 now: Optional[datetime.datetime] = None) -> ProofResult:
    """Verify a serialized ``BlockProof`` (or the message); with ``ca_pem_path`` also the
    anchor signatures (certificates checked for validity at ``now``, default the current
    time).  Returns a :class:`ProofResult`; raises :class:`ProofError`."""
    if not isinstance(proof, anchor_pb2.BlockProof):
        proof = _parse(anchor_pb2.BlockProof, bytes(proof), "proof")
    header = _parse(chain_pb2.BlockHeader, proof.header, "district header")
    hd = hash_function(header.hash_suite)
    if header.chain_id != proof.district or header.height != proof.height:
        raise ProofError(f"header is block {header.height} of {header.chain_id!r}, the proof "
                         f"says {proof.height} of {proof.district!r}")
    tx = _parse(chain_pb2.SignedTransaction, proof.anchor_transaction, "anchor transaction")
    payload = _parse(chain_pb2.TxPayload, tx.payload, "anchor transaction payload")
    if payload.WhichOneof("body") != "anchor":
        raise ProofError("anchor transaction does not hold an anchor")
    anchor = payload.anchor
    if anchor.district != proof.district or \
            not anchor.from_height <= header.height <= anchor.to_height:
        raise ProofError(f"anchor covers {anchor.district!r} {anchor.from_height}..."
                         f"{anchor.to_height}, not block {header.height}")
    header_hash = hd(proof.header)
    if not path_fits(proof.header_path, header.height - anchor.from_height,
                     anchor.to_height - anchor.from_height + 1, len(header_hash)):
        raise ProofError(f"header path is not the path of block {header.height} in the "
                         f"anchored range {anchor.from_height}...{anchor.to_height}")
    if fold_path(hd, header_hash, proof.header_path) != anchor.headers_root:
        raise ProofError(f"district block {header.height} does not fold to the anchored "
                         "headers root")
    if header.height == anchor.to_height and header_hash != anchor.last_header_hash:
        raise ProofError("last header hash of the anchor differs")
    main = _parse(chain_pb2.BlockHeader, proof.main_header, "main header")
    hm = hash_function(main.hash_suite)
    if main.chain_id != payload.chain_id:
        raise ProofError(f"anchor is for chain {payload.chain_id!r}, the main header is of "
                         f"{main.chain_id!r}")
    main_hash_len = len(hm(b""))
    if not path_fits(proof.tx_path, proof.main_index, main.tx_count, main_hash_len):
        raise ProofError(f"transaction path is not the path of index {proof.main_index} in "
                         f"main block {main.height}'s {main.tx_count} transactions")
    anchor_id = hashlib.sha256(tx.payload).digest()
    if fold_path(hm, anchor_id, proof.tx_path) != main.tx_root:
        raise ProofError(f"anchor transaction does not fold to main block {main.height}'s "
                         "transaction root")
    outcome = _parse(chain_pb2.TxOutcome, proof.anchor_outcome, "anchor outcome")
    if outcome.code != 0:
        raise ProofError(f"the main chain refused this anchor (outcome code {outcome.code}"
                         + (f": {outcome.message})" if outcome.message else ")"))
    if not path_fits(proof.outcome_path, proof.main_index, main.tx_count, main_hash_len):
        raise ProofError(f"outcome path is not the path of index {proof.main_index} in "
                         f"main block {main.height}'s {main.tx_count} outcomes")
    if not main.outcomes_root:
        raise ProofError(f"main block {main.height}'s header has no outcomes root")
    if fold_path(hm, hm(proof.anchor_outcome), proof.outcome_path) != main.outcomes_root:
        raise ProofError(f"anchor outcome does not fold to main block {main.height}'s "
                         "outcomes root")
    verified = 0
    if ca_pem_path is not None:
        verified = _check_signatures(anchor, _load_ca(ca_pem_path),
                                     now or datetime.datetime.now(datetime.timezone.utc))
    return ProofResult(district=proof.district, height=header.height, header_hash=header_hash,
                       anchor_from=anchor.from_height, anchor_to=anchor.to_height,
                       main_chain=main.chain_id, main_height=main.height,
                       main_index=proof.main_index, main_block_hash=hm(proof.main_header),
                       signatures_verified=verified)
