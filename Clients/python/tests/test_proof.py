"""Offline BlockProof verification (gridledger.proof, ``verify-proof``), against proofs
built here (tests/proofkit.py) with their own Merkle trees (Docs/anchoring.md, "Proofs")."""

import datetime
import json

import pytest

from gridledger import anchor_pb2, chain_pb2
from gridledger.__main__ import main as cli_main
from gridledger.proof import ProofError, anchor_digest, fold_path, hash_function, \
    merkle_path, merkle_root, path_fits, path_shape, verify_proof
from pki import CA
from proofkit import Built, digest, flip, load_signer, path, root


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("proof-pki")
    ca = CA(str(d / "ca"))
    other = CA(str(d / "other"), "Other CA")
    return {
        "ca": ca.ca_path,
        "n1": load_signer(*ca.issue("dn1", "node", "d1")),
        "n2": load_signer(*ca.issue("dn2", "node", "d1")),
        "n3": load_signer(*ca.issue("dn3", "node", "d1")),
        "d2node": load_signer(*ca.issue("d2n1", "node", "d2")),
        "collector": load_signer(*ca.issue("col1", "collector", "d1")),
        "foreign": load_signer(*other.issue("fn1", "node", "d1")),
    }


def test_every_height_of_the_range_verifies():
    # Five headers and five main transactions: paths with promoted steps on both sides.
    b = Built()
    for h in b.heights:
        r = verify_proof(b.proof(h).SerializeToString())
        assert (r.district, r.height, r.header_hash) == ("d1", h, b.header_hash(h))
        assert (r.anchor_from, r.anchor_to) == (1, 5)
        assert (r.main_chain, r.main_height, r.main_index) == ("main", 42, 2)
        assert r.main_block_hash == b.main_hash()
        assert r.signatures_verified == 0
    assert any(s.promoted for s in b.proof(5).header_path)
    assert any(s.promoted for s in b.proof(1).tx_path) or \
        any(s.promoted for s in Built(anchor_index=4).proof(1).tx_path)


def test_anchor_at_the_last_odd_position_of_the_main_block():
    b = Built(main_txs=7, anchor_index=6, heights=range(10, 13))
    assert b.proof(11).tx_path[0].promoted
    assert verify_proof(b.proof(11)).main_index == 6


def test_flipped_district_header_fails():
    b = Built()
    p = b.proof(3)
    p.header = flip(p.header, len(p.header) - 3)  # inside proposer / hash_suite region
    with pytest.raises(ProofError):
        verify_proof(p)
    p = b.proof(3)
    p.header = flip(p.header, 10)  # within previous_hash: still decodes
    with pytest.raises(ProofError, match="does not fold to the anchored headers root"):
        verify_proof(p)


def test_wrong_paths_fail():
    b = Built()
    p = b.proof(2)
    del p.header_path[:]
    p.header_path.extend(b.proof(3).header_path)  # another leaf's path: another shape
    with pytest.raises(ProofError, match="header path is not the path of block 2"):
        verify_proof(p)
    p = b.proof(2)
    p.header_path[0].sibling_left = not p.header_path[0].sibling_left
    with pytest.raises(ProofError, match="header path is not the path"):
        verify_proof(p)
    p = b.proof(2)
    p.header_path[1].sibling = flip(p.header_path[1].sibling)  # right shape, wrong hash
    with pytest.raises(ProofError, match="headers root"):
        verify_proof(p)
    p = b.proof(2)
    p.tx_path[1].sibling = flip(p.tx_path[1].sibling)
    with pytest.raises(ProofError, match="transaction root"):
        verify_proof(p)
    p = b.proof(2)
    del p.tx_path[-1]
    with pytest.raises(ProofError, match="transaction path is not the path of index 2"):
        verify_proof(p)


def test_path_shape_binds_the_leaf_index():
    assert path_shape(4, 5) == [None, None, True]
    assert path_shape(0, 1) == []
    assert path_shape(5, 5) is None and path_shape(0, 0) is None
    h = hash_function("sha256")
    import hashlib
    for n in range(1, 18):
        ids = [hashlib.sha256(bytes([i])).digest() for i in range(n)]
        for i in range(n):
            steps = path("sha256", ids, i)
            assert [None if s.promoted else s.sibling_left for s in steps] == path_shape(i, n)
            assert path_fits(steps, i, n, 32)
            assert not any(path_fits(steps, j, n, 32) for j in range(n) if j != i)
            assert n == 1 or not path_fits(steps, i, n, 20)  # siblings of another length
            assert fold_path(h, ids[i], steps) == merkle_root(h, ids)


def test_wrong_main_index_fails():
    # The path of index 0 presented as index 3: folds to the roots, but is not index 3's.
    b = Built(anchor_index=0)
    assert verify_proof(b.proof(2)).main_index == 0
    p = b.proof(2)
    p.main_index = 3
    with pytest.raises(ProofError, match="transaction path is not the path of index 3"):
        verify_proof(p)
    p.main_index = 5  # beyond tx_count
    with pytest.raises(ProofError, match="transaction path is not the path of index 5"):
        verify_proof(p)


def test_extra_or_missing_promoted_step_fails():
    # Promoted steps do not change the fold: only the shape check catches them.
    b = Built()
    p = b.proof(5)
    assert [s.promoted for s in p.header_path] == [True, True, False]
    del p.header_path[0]
    assert fold_path(hash_function("sha256"), b.header_hash(5), p.header_path) == \
        b.anchor.headers_root
    with pytest.raises(ProofError, match="header path is not the path of block 5"):
        verify_proof(p)
    p = b.proof(5)
    p.header_path.add(promoted=True)
    with pytest.raises(ProofError, match="header path is not the path of block 5"):
        verify_proof(p)
    p = b.proof(2)
    p.tx_path.add(promoted=True)
    with pytest.raises(ProofError, match="transaction path is not the path"):
        verify_proof(p)
    p = b.proof(2)
    p.outcome_path.insert(0, anchor_pb2.MerkleStep(promoted=True))
    with pytest.raises(ProofError, match="outcome path is not the path"):
        verify_proof(p)
    # A promoted step with a sibling, a sibling of the wrong length.
    p = b.proof(5)
    p.header_path[0].sibling = b"\x00" * 32
    with pytest.raises(ProofError, match="header path is not the path"):
        verify_proof(p)
    p = b.proof(2)
    p.tx_path[0].sibling += b"\x00"
    with pytest.raises(ProofError, match="transaction path is not the path"):
        verify_proof(p)


def test_refused_anchor_fails():
    b = Built(anchor_outcome=chain_pb2.TxOutcome(code=9, message="range does not follow"))
    p = b.proof(3)
    # The outcome is proven (its path folds to the outcomes root) but says refused.
    assert fold_path(hash_function("sha256"), hash_function("sha256")(p.anchor_outcome),
                     p.outcome_path) == chain_pb2.BlockHeader.FromString(p.main_header).outcomes_root
    with pytest.raises(ProofError, match="the main chain refused this anchor \\(outcome code 9"):
        verify_proof(p)


def test_wrong_outcome_path_or_outcome_fails():
    b = Built()
    p = b.proof(3)
    p.outcome_path[0].sibling = flip(p.outcome_path[0].sibling)
    with pytest.raises(ProofError, match="anchor outcome does not fold to main block 42's "
                                         "outcomes root"):
        verify_proof(p)
    p = b.proof(3)
    del p.outcome_path[:]
    p.outcome_path.extend(path("sha256", b.outcome_leaves(), 1))  # another index's path
    with pytest.raises(ProofError, match="outcome path is not the path of index 2"):
        verify_proof(p)
    p = b.proof(3)
    del p.outcome_path[:]  # no outcome path at all
    with pytest.raises(ProofError, match="outcome path is not the path"):
        verify_proof(p)
    # Another accepted outcome than the one the block holds.
    p = b.proof(3)
    p.anchor_outcome = chain_pb2.TxOutcome(code=0, accounts=["acc9"]).SerializeToString()
    with pytest.raises(ProofError, match="outcomes root"):
        verify_proof(p)
    # The outcome of another transaction of the block, with that transaction's path.
    p = b.proof(3)
    p.anchor_outcome = b.outcomes[1]
    with pytest.raises(ProofError, match="outcomes root"):
        verify_proof(p)
    p = b.proof(3)
    p.anchor_outcome = b"\xff\xff"
    with pytest.raises(ProofError, match="anchor outcome does not decode"):
        verify_proof(p)
    # A main header without an outcomes root (and the tx root still right).
    p = b.proof(3)
    main = chain_pb2.BlockHeader.FromString(p.main_header)
    main.outcomes_root = b""
    p.main_header = main.SerializeToString()
    with pytest.raises(ProofError, match="has no outcomes root"):
        verify_proof(p)
    # The old proof shape: no anchor outcome, no outcome path.
    p = b.proof(3)
    p.ClearField("anchor_outcome")
    del p.outcome_path[:]
    with pytest.raises(ProofError):
        verify_proof(p)


def test_outcomes_on_an_sm3_main_chain_and_odd_positions():
    b = Built(main_suite="sm3", main_txs=7, anchor_index=6)
    p = b.proof(4)
    assert p.outcome_path[0].promoted and len(p.outcome_path) == 3
    assert verify_proof(p).main_index == 6
    p.anchor_outcome = chain_pb2.TxOutcome(code=0, accounts=["acc1"]).SerializeToString()
    with pytest.raises(ProofError, match="outcomes root"):
        verify_proof(p)
    assert verify_proof(Built(main_txs=1, anchor_index=0).proof(1)).main_index == 0


def test_header_and_anchor_consistency_checks():
    b = Built()
    p = b.proof(2)
    p.height = 3
    with pytest.raises(ProofError, match="the proof says 3"):
        verify_proof(p)
    p = b.proof(2)
    p.district = "d9"
    with pytest.raises(ProofError):
        verify_proof(p)
    # An anchor whose range does not cover the block.
    b2 = Built(heights=range(1, 4))
    p = b2.proof(2)
    tx = chain_pb2.SignedTransaction.FromString(p.anchor_transaction)
    payload = chain_pb2.TxPayload.FromString(tx.payload)
    payload.anchor.from_height = 3
    tx.payload = payload.SerializeToString()
    p.anchor_transaction = tx.SerializeToString()
    with pytest.raises(ProofError, match="anchor covers d1|anchor covers 'd1'"):
        verify_proof(p)
    # Not an anchor at all.
    p = b.proof(2)
    p.anchor_transaction = chain_pb2.SignedTransaction(
        payload=chain_pb2.TxPayload(chain_id="main", readings=chain_pb2.ReadingBatch()).SerializeToString()
    ).SerializeToString()
    with pytest.raises(ProofError, match="does not hold an anchor"):
        verify_proof(p)
    # Main header of another chain than the anchor payload names.
    b3 = Built(main_chain="main")
    p = b3.proof(2)
    main = chain_pb2.BlockHeader.FromString(p.main_header)
    main.chain_id = "other"
    p.main_header = main.SerializeToString()
    with pytest.raises(ProofError, match="the main header is of 'other'"):
        verify_proof(p)
    with pytest.raises(ProofError, match="does not decode"):
        verify_proof(b"\xff\xff")


def test_last_header_hash_is_checked_for_the_last_block():
    b = Built()
    b.anchor.last_header_hash = b"\x00" * 32
    # rebuild the anchor transaction and main block around the altered anchor
    b2 = Built()
    tx = chain_pb2.SignedTransaction.FromString(b2.proof(5).anchor_transaction)
    payload = chain_pb2.TxPayload.FromString(tx.payload)
    payload.anchor.last_header_hash = b"\x00" * 32
    tx.payload = payload.SerializeToString()
    import hashlib
    ids = list(b2.tx_ids)
    ids[b2.anchor_index] = hashlib.sha256(tx.payload).digest()
    main = chain_pb2.BlockHeader.FromString(b2.main_header)
    main.tx_root = root("sha256", ids)
    p = b2.proof(5)
    p.anchor_transaction = tx.SerializeToString()
    del p.tx_path[:]
    p.tx_path.extend(path("sha256", ids, b2.anchor_index))
    p.main_header = main.SerializeToString()
    with pytest.raises(ProofError, match="last header hash"):
        verify_proof(p)
    p.height = 4
    p.header = b2.headers[4]
    del p.header_path[:]
    p.header_path.extend(path("sha256", b2.hashes, 3))
    assert verify_proof(p).height == 4  # only the last block is compared with it


def test_sm3_district_suite():
    b = Built(suite="sm3", heights=range(7, 10))
    r = verify_proof(b.proof(8))
    assert r.header_hash == b.header_hash(8) and len(r.header_hash) == 32
    assert r.header_hash != Built(suite="sha256", heights=range(7, 10)).header_hash(8)
    p = b.proof(8)
    p.header = flip(p.header, 4)
    with pytest.raises(ProofError):
        verify_proof(p)
    # The main chain may use sm3 as well; the anchor id stays SHA-256.
    assert verify_proof(Built(main_suite="sm3").proof(2)).main_block_hash == \
        Built(main_suite="sm3").main_hash()


def test_unknown_suite_fails():
    b = Built(suite="md5")
    with pytest.raises(ProofError, match="unknown hash suite"):
        verify_proof(b.proof(1))


def test_library_merkle_helpers_agree_with_the_tests_tree():
    import hashlib
    ids = [hashlib.sha256(bytes([i])).digest() for i in range(7)]
    h = hash_function("sha256")
    assert merkle_root(h, ids) == root("sha256", ids)
    for i in range(7):
        assert list(merkle_path(h, ids, i)) == path("sha256", ids, i)
        assert fold_path(h, ids[i], path("sha256", ids, i)) == root("sha256", ids)
    assert merkle_root(h, []) == hashlib.sha256(b"").digest()


def test_signatures_with_a_ca(pki):
    b = Built(signers=[pki["n1"], pki["n2"]])
    assert anchor_digest(b.anchor) == digest(b.anchor)
    r = verify_proof(b.proof(3), ca_pem_path=pki["ca"])
    assert r.signatures_verified == 2
    assert verify_proof(b.proof(3)).signatures_verified == 0  # without a CA: not checked


@pytest.mark.parametrize("who,why", [
    ("foreign", "not issued by the CA"),
    ("d2node", "district"),
    ("collector", "role"),
])
def test_signature_from_a_wrong_certificate_fails(pki, who, why):
    b = Built(signers=[pki["n1"], pki[who]])
    with pytest.raises(ProofError, match=why):
        verify_proof(b.proof(3), ca_pem_path=pki["ca"])


def test_signature_checks(pki):
    b = Built(signers=[pki["n1"], pki["n1"]])
    with pytest.raises(ProofError, match="signed twice"):
        verify_proof(b.proof(3), ca_pem_path=pki["ca"])
    with pytest.raises(ProofError, match="no signature"):
        verify_proof(Built().proof(3), ca_pem_path=pki["ca"])
    # A signature over something else.
    b = Built(signers=[pki["n1"]])
    other = Built(signers=[pki["n2"]], heights=range(1, 4))
    tx = chain_pb2.SignedTransaction.FromString(b.anchor_tx.SerializeToString())
    payload = chain_pb2.TxPayload.FromString(tx.payload)
    payload.anchor.signatures[0].signature = other.anchor.signatures[0].signature
    payload.anchor.signatures[0].certificate = other.anchor.signatures[0].certificate
    b.anchor_tx.payload = payload.SerializeToString()
    import hashlib
    b.tx_ids[b.anchor_index] = hashlib.sha256(b.anchor_tx.payload).digest()
    main = chain_pb2.BlockHeader.FromString(b.main_header)
    main.tx_root = root("sha256", b.tx_ids)
    b.main_header = main.SerializeToString()
    verify_proof(b.proof(3))  # the hashes are right
    with pytest.raises(ProofError, match="anchor digest"):
        verify_proof(b.proof(3), ca_pem_path=pki["ca"])
    # An expired certificate (checked at a later time).
    late = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3)
    with pytest.raises(ProofError, match="not valid now"):
        verify_proof(Built(signers=[pki["n3"]]).proof(2), ca_pem_path=pki["ca"], now=late)


# ---- CLI ---------------------------------------------------------------------------------


def test_cli_verify_proof(tmp_path, pki, capsys):
    b = Built(signers=[pki["n1"], pki["n2"], pki["n3"]])
    f = tmp_path / "p.bin"
    f.write_bytes(b.proof(4).SerializeToString())
    assert cli_main(["verify-proof", str(f)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"verified": True, "district": "d1", "height": 4,
                   "header_hash": b.header_hash(4).hex(), "anchor_from": 1, "anchor_to": 5,
                   "main_chain": "main", "main_height": 42, "main_index": 2,
                   "main_block_hash": b.main_hash().hex(), "signatures_verified": 0}
    assert cli_main(["verify-proof", str(f), "--ca", pki["ca"]]) == 0
    assert json.loads(capsys.readouterr().out)["signatures_verified"] == 3
    # --ca before the command works as well (the global option).
    assert cli_main(["--ca", pki["ca"], "verify-proof", str(f)]) == 0
    assert json.loads(capsys.readouterr().out)["signatures_verified"] == 3


def test_cli_verify_proof_failures(tmp_path, pki, capsys, monkeypatch):
    b = Built()
    p = b.proof(4)
    p.header = flip(p.header, 10)  # within previous_hash
    f = tmp_path / "bad.bin"
    f.write_bytes(p.SerializeToString())
    assert cli_main(["verify-proof", str(f)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "proof does not verify: district block 4 does not fold" in captured.err
    assert cli_main(["verify-proof", str(tmp_path / "missing.bin")]) == 66
    assert "cannot read" in capsys.readouterr().err
    good = tmp_path / "good.bin"
    good.write_bytes(b.proof(4).SerializeToString())
    assert cli_main(["verify-proof", str(good), "--ca", pki["ca"]]) == 1  # no signatures
    assert "no signature" in capsys.readouterr().err


def test_cli_verify_proof_from_stdin(pki, capsys, monkeypatch):
    import io
    import sys
    b = Built(suite="sm3")
    raw = b.proof(2).SerializeToString()

    class In:
        buffer = io.BytesIO(raw)
    monkeypatch.setattr(sys, "stdin", In())
    assert cli_main(["verify-proof", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["header_hash"] == b.header_hash(2).hex()


def test_cli_connection_options_still_required_for_node_commands(capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["status"])
    assert e.value.code == 2
    assert "--addr" in capsys.readouterr().err
