"""Transaction signing (gridledger.signing)."""

import hashlib

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from gridledger import RpcError, Signer, StatusCode, chain_pb2, readings_payload, tx_id, \
    verify_signature
from gridledger.status import TX_LOCATION_METADATA_KEY
from pki import CA


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CA(str(tmp_path_factory.mktemp("sign-pki")))


@pytest.fixture(scope="module")
def collector(ca):
    return Signer(*ca.issue("col1", "collector", "d1"))


def _payload(**kw):
    reading = chain_pb2.Reading(meter_id="m1", timestamp_ms=1_700_000_000_000,
                                energy_total=12345, voltage_dv=[2200], current_ma=[-5])
    return readings_payload("d1", "d1", [reading], batch_id="b1", created_ms=42,
                            nonce="00ff", **kw)


def test_signer_identity_from_certificate(ca, collector):
    assert (collector.name, collector.role, collector.district) == ("col1", "collector", "d1")
    ops = Signer(*ca.issue("ops1", "ops"))
    assert (ops.name, ops.role, ops.district) == ("ops1", "ops", None)


def test_sign_verifies_with_certificate_public_key(collector):
    payload = _payload()
    signed = collector.sign(payload)
    assert signed.payload == payload.SerializeToString()
    cert = x509.load_der_x509_certificate(signed.signer_certificate)
    assert cert == collector.certificate
    assert cert.subject.rfc4514_string() == "O=GridLedger,L=d1,OU=collector,CN=col1"
    # ECDSA P-256 with SHA-256 over the payload bytes, DER-encoded: verify both as the
    # node does (digest-verify of the bytes) and against the prehashed SHA-256.
    public = cert.public_key()
    assert isinstance(public.curve, ec.SECP256R1)
    public.verify(signed.signature, signed.payload, ec.ECDSA(hashes.SHA256()))
    digest = hashlib.sha256(signed.payload).digest()
    public.verify(signed.signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    r, s = utils.decode_dss_signature(signed.signature)  # parses as DER
    assert 0 < r and 0 < s
    assert verify_signature(signed)


def test_signatures_are_randomized_but_payload_stable(collector):
    a, b = collector.sign(_payload()), collector.sign(_payload())
    assert a.payload == b.payload and tx_id(a) == tx_id(b)
    assert verify_signature(a) and verify_signature(b)


def test_tamper_detection(collector, ca):
    signed = collector.sign(_payload())
    flipped = bytearray(signed.signature)
    flipped[-1] ^= 0x01
    bad = chain_pb2.SignedTransaction(payload=signed.payload, signature=bytes(flipped),
                                      signer_certificate=signed.signer_certificate)
    assert not verify_signature(bad)
    with pytest.raises(InvalidSignature):
        collector.certificate.public_key().verify(bad.signature, bad.payload,
                                                  ec.ECDSA(hashes.SHA256()))
    other_payload = chain_pb2.SignedTransaction(payload=signed.payload + b"\x00",
                                                signature=signed.signature,
                                                signer_certificate=signed.signer_certificate)
    assert not verify_signature(other_payload)
    other = Signer(*ca.issue("col2", "collector", "d1"))
    swapped = chain_pb2.SignedTransaction(payload=signed.payload, signature=signed.signature,
                                          signer_certificate=other.certificate_der)
    assert not verify_signature(swapped)


def test_tx_id_is_sha256_of_payload_bytes(collector):
    payload = _payload()
    signed = collector.sign(payload)
    expected = hashlib.sha256(payload.SerializeToString()).digest()
    assert tx_id(signed) == expected
    assert tx_id(payload) == expected
    assert tx_id(signed.payload) == expected
    assert len(expected) == 32
    # Any change to the payload (here only the nonce) is another transaction.
    renonced = _payload()
    renonced.nonce = "00fe"
    assert tx_id(collector.sign(renonced)) != expected


def test_sign_bytes_accepts_arbitrary_payload(collector):
    signed = collector.sign(b"\xff\xfe not a protobuf")
    assert signed.payload == b"\xff\xfe not a protobuf"
    assert verify_signature(signed)
    assert tx_id(signed) == hashlib.sha256(b"\xff\xfe not a protobuf").digest()


def test_readings_payload_defaults():
    p1 = readings_payload("d1", "d1", [])
    p2 = readings_payload("d1", "d1", [])
    assert p1.WhichOneof("body") == "readings"
    assert p1.nonce != p2.nonce and len(p1.nonce) == 16
    int(p1.nonce, 16)
    assert p1.readings.batch_id and p1.readings.batch_id != p2.readings.batch_id
    assert p1.created_ms > 1_600_000_000_000


def test_signer_rejects_mismatched_or_wrong_keys(ca, tmp_path):
    cert, _ = ca.issue("a", "collector", "d1")
    _, other_key = ca.issue("b", "collector", "d1")
    with pytest.raises(ValueError, match="does not belong"):
        Signer(cert, other_key)
    p384 = tmp_path / "p384.key"
    p384.write_bytes(ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with pytest.raises(ValueError, match="P-256"):
        Signer(cert, str(p384))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not pem")
    with pytest.raises(ValueError):
        Signer(str(garbage), str(p384))
    with pytest.raises(OSError):
        Signer(str(tmp_path / "missing.crt"), str(p384))


def test_rpc_error_location():
    loc = chain_pb2.TxLocation(height=7, index=2, tx_id=b"\x01" * 32, block_hash=b"\x02" * 32)
    err = RpcError(6, "already on the chain: height=7 index=2",
                   [("other", b"x"), (TX_LOCATION_METADATA_KEY, loc.SerializeToString())])
    assert err.code is StatusCode.ALREADY_EXISTS
    assert err.location == loc
    assert err.trailing_metadata == err.metadata
    assert err.metadata_value("other") == b"x"
    assert err.metadata_value("missing") is None
    # Without the trailer, the message still gives height and index.
    bare = RpcError(6, "transaction exists at height=9 index=4")
    assert (bare.location.height, bare.location.index, bare.location.tx_id) == (9, 4, b"")
    assert RpcError(7, "denied").location is None


def test_ack_error():
    from gridledger import ack_error, ingest_pb2
    assert ack_error(ingest_pb2.StreamAck(sequence=1, code=0)) is None
    denied = ack_error(ingest_pb2.StreamAck(code=7, message="other district"))
    assert denied.code is StatusCode.PERMISSION_DENIED and denied.location is None
    loc = chain_pb2.TxLocation(height=3, index=1, tx_id=b"\x07" * 32)
    filled = ingest_pb2.StreamAck(code=6, message="exists", response=ingest_pb2.SubmitResponse(
        location=loc, already_existed=True))
    assert ack_error(filled).location == loc
    bare = ack_error(ingest_pb2.StreamAck(code=6, message="... at height=3 index=1"))
    assert (bare.location.height, bare.location.index) == (3, 1)
