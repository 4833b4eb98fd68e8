"""Builds BlockProofs for the tests, independently of gridledger.proof: a district chain
of a few headers, an anchor over a range of them (signed by node certificates when
signers are given), and a main block of several transactions holding the anchor, with
their outcomes (the anchor's accepted, code 0, unless told) under the header's
outcomes_root.

The Merkle tree is built level by level (Docs/chain.md, "Hashes": leaf H(0x00 || id),
node H(0x01 || left || right), an odd node promoted), and paths are read off the levels.
"""

from __future__ import annotations

import hashlib
import struct
from typing import List, Optional, Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from gridledger import anchor_pb2, chain_pb2


def H(suite: str, data: bytes) -> bytes:
    return hashlib.new("sm3" if suite == "sm3" else "sha256", data).digest()


def levels(suite: str, ids: Sequence[bytes]) -> List[List[bytes]]:
    level = [H(suite, b"\x00" + i) for i in ids]
    out = [level]
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            nxt.append(H(suite, b"\x01" + level[i] + level[i + 1]) if i + 1 < len(level)
                       else level[i])
        level = nxt
        out.append(level)
    return out


def root(suite: str, ids: Sequence[bytes]) -> bytes:
    return levels(suite, ids)[-1][0]


def path(suite: str, ids: Sequence[bytes], index: int) -> List[anchor_pb2.MerkleStep]:
    steps = []
    for level in levels(suite, ids)[:-1]:
        sib = index + 1 if index % 2 == 0 else index - 1
        if sib >= len(level):
            steps.append(anchor_pb2.MerkleStep(promoted=True))
        else:
            steps.append(anchor_pb2.MerkleStep(sibling=level[sib], sibling_left=sib < index))
        index //= 2
    return steps


def digest(anchor: anchor_pb2.Anchor) -> bytes:
    d = anchor.district.encode()
    raw = (b"gridledger-anchor/v1" + struct.pack(">H", len(d)) + d +
           struct.pack(">QQ", anchor.from_height, anchor.to_height) +
           struct.pack(">H", len(anchor.last_header_hash)) + anchor.last_header_hash +
           struct.pack(">H", len(anchor.headers_root)) + anchor.headers_root +
           hashlib.sha256(anchor.summary).digest())
    return hashlib.sha256(raw).digest()


class Built:
    """A district chain, its anchor and the main block; ``proof(height)`` proves one."""

    def __init__(self, district: str = "d1", suite: str = "sha256", main_suite: str = "sha256",
                 heights=range(1, 6), anchor_index: int = 2, main_txs: int = 5,
                 signers: Sequence = (), main_chain: str = "main",
                 anchor_outcome: Optional[chain_pb2.TxOutcome] = None):
        self.district, self.suite, self.main_suite = district, suite, main_suite
        self.main_chain = main_chain
        self.heights = list(heights)
        self.headers = {}
        prev = b""
        for h in self.heights:
            header = chain_pb2.BlockHeader(chain_id=district, height=h, previous_hash=prev,
                                           timestamp_ms=1_700_000_000_000 + h,
                                           tx_root=H(suite, b""), state_root=H(suite, b"s%d" % h),
                                           proposer="node1", tx_count=0, hash_suite=suite)
            self.headers[h] = header.SerializeToString()
            prev = H(suite, self.headers[h])
        self.hashes = [H(suite, self.headers[h]) for h in self.heights]
        self.anchor = anchor_pb2.Anchor(
            district=district, from_height=self.heights[0], to_height=self.heights[-1],
            last_header_hash=self.hashes[-1], headers_root=root(suite, self.hashes),
            hash_suite=suite, summary=anchor_pb2.UplinkSummary(transactions=3).SerializeToString())
        for sign_key, cert_der in signers:
            sig = sign_key.sign(digest(self.anchor), ec.ECDSA(hashes.SHA256()))
            self.anchor.signatures.add(certificate=cert_der, signature=sig)
        payload = chain_pb2.TxPayload(chain_id=main_chain, created_ms=5, nonce="n",
                                      anchor=self.anchor)
        self.anchor_tx = chain_pb2.SignedTransaction(payload=payload.SerializeToString(),
                                                     signature=b"sig", signer_certificate=b"cert")
        self.tx_ids = [hashlib.sha256(b"other%d" % i).digest() for i in range(main_txs)]
        self.anchor_index = anchor_index
        self.tx_ids[anchor_index] = hashlib.sha256(self.anchor_tx.payload).digest()
        # Outcomes: leaf H_main(serialized TxOutcome), block order.
        self.outcomes = [chain_pb2.TxOutcome(code=0, readings_accepted=i + 1).SerializeToString()
                         for i in range(main_txs)]
        if anchor_outcome is None:
            anchor_outcome = chain_pb2.TxOutcome(code=0, accounts=["acc1", "acc2"])
        self.outcomes[anchor_index] = anchor_outcome.SerializeToString()
        self.build_main()

    def outcome_leaves(self) -> List[bytes]:
        return [H(self.main_suite, o) for o in self.outcomes]

    def build_main(self) -> None:
        """(Re)builds the main header over tx_ids and outcomes."""
        self.main_header = chain_pb2.BlockHeader(
            chain_id=self.main_chain, height=42, previous_hash=b"\x07" * 32, timestamp_ms=9,
            tx_root=root(self.main_suite, self.tx_ids), state_root=b"\x01" * 32,
            proposer="cloud1", tx_count=len(self.tx_ids), hash_suite=self.main_suite,
            outcomes_root=root(self.main_suite, self.outcome_leaves())).SerializeToString()

    def proof(self, height: int) -> anchor_pb2.BlockProof:
        i = self.heights.index(height)
        return anchor_pb2.BlockProof(
            district=self.district, height=height, header=self.headers[height],
            header_path=path(self.suite, self.hashes, i),
            anchor_transaction=self.anchor_tx.SerializeToString(),
            tx_path=path(self.main_suite, self.tx_ids, self.anchor_index),
            main_header=self.main_header, main_index=self.anchor_index,
            anchor_outcome=self.outcomes[self.anchor_index],
            outcome_path=path(self.main_suite, self.outcome_leaves(), self.anchor_index))

    def header_hash(self, height: int) -> bytes:
        return H(self.suite, self.headers[height])

    def main_hash(self) -> bytes:
        return H(self.main_suite, self.main_header)


def load_signer(cert_path: str, key_path: str):
    """(private key, certificate DER) of PEM files, for ``Built(signers=...)``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return key, cert.public_bytes(serialization.Encoding.DER)


def flip(data: bytes, at: Optional[int] = None) -> bytes:
    b = bytearray(data)
    b[len(b) // 2 if at is None else at] ^= 0x01
    return bytes(b)
