"""Anchoring and fee control against two real gridnode processes (Docs/anchoring.md,
Docs/contracts.md): a solo main chain and a solo district d1 that anchors on it.

Set GRIDNODE to the gridnode executable; skipped when it is unset or its `start` has no
`--main-endpoint`.  The tests share one main node and one district node and run in file
order, each building on the previous one (the scenario of
Tests/NodeTests/FeeControlEndToEndTests.swift, through the Python client and CLI):

  admin registers d1 on main; marketing sends the tariff (JSON), thresholds and customer c1
  (meter m1, 2000 fen); the downlink brings them to d1; a collector's readings (500 fen per
  15 min) drain c1 through WARNING1, WARNING2 to DISCONNECTED; the device sees ALARM_ON and
  TRIP and acknowledges the TRIP; marketing sees the SMS notices; a payment on main closes
  the supply again (DIRECT_CLOSE); the district anchors every block, and a ProveBlock proof
  verifies offline against the CA (and fails with a byte of the header flipped).
"""

import json
import time

import pytest

from gridledger import (Client, ProofError, RpcError, Signer, StatusCode, anchor_pb2,
                        chain_pb2, contracts_pb2, parameters, verify_proof)
from nodeharness import (GRIDNODE, SKIP_REASON, Node, StreamCollector, cli, cli_offline,
                         gridnode, identity, start_help, wait_until)

if not GRIDNODE:
    pytest.skip(SKIP_REASON, allow_module_level=True)
if "--main-endpoint" not in start_help():
    pytest.skip(f"{GRIDNODE} predates anchoring: `gridnode start --help` has no "
                "--main-endpoint", allow_module_level=True)

C = contracts_pb2
INTERVAL_MS = 900_000
# The readings: 15 minutes apart on the 15-minute grid, from a fixed start in the past,
# mid-month: never in the future (VEE flags readings after block time + 5 min) and all in
# one monthly billing cycle (which starts at local midnight on the 1st, UTC+8), whenever
# the test runs. Command expiry goes by block time, not by reading time.
START_MS = 1_749_960_000_000  # 2025-06-15T04:00:00Z, 12:00 UTC+8

FLAT_TARIFF = {"tariff_id": "flat", "utc_offset_minutes": 480,
               "periods": [{"name": "flat", "base_price": 5000}],
               "weekday_schedule": [0] * 288, "cycle": "monthly",
               "tier_limits": [], "tier_surcharges": [], "fixed_charge_fen": 0}

NAMES = ("mainnode", "dnode", "admin1", "mkt1", "dev1", "col1", "ops1")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("anchor-pki")
    ca, certs = str(root / "ca"), str(root / "certs")
    gridnode("ca", "init", "--out", ca)
    for args in (["--role", "node", "--name", "mainnode"],            # no district
                 ["--role", "node", "--name", "dnode", "--district", "d1"],
                 ["--role", "admin", "--name", "admin1"],
                 ["--role", "marketing", "--name", "mkt1"],
                 ["--role", "device", "--name", "dev1", "--district", "d1"],
                 ["--role", "collector", "--name", "col1", "--district", "d1"],
                 ["--role", "ops", "--name", "ops1"]):
        gridnode("ca", "issue", "--ca", ca, *args, "--out", certs)
    return {name: identity(certs, name) for name in NAMES}


@pytest.fixture(scope="module")
def nodes(pki, tmp_path_factory):
    main = Node(pki["mainnode"], tmp_path_factory.mktemp("anchor-main"),
                ["--chain-id", "main", "--chain-kind", "main", "--max-block-delay-ms", "5"])
    try:
        district = Node(pki["dnode"], tmp_path_factory.mktemp("anchor-d1"),
                        ["--chain-id", "d1", "--main-endpoint", main.address,
                         "--anchor-every-blocks", "2", "--anchor-every-ms", "200",
                         "--max-block-delay-ms", "5"])
    except BaseException:
        main.terminate()
        raise
    try:
        yield {"main": main, "d1": district}
    finally:
        try:
            district.terminate()
        finally:
            main.terminate()


def connect(node, ident):
    return Client(node.address, cert=ident["cert"], key=ident["key"], ca=ident["ca"],
                  timeout=30)


def signer(pki, name):
    return Signer(pki[name]["cert"], pki[name]["key"])


@pytest.fixture(scope="module")
def scenario(nodes, pki):
    """Clients and what the tests learn along the way; the subscriptions are closed at
    the end of the module."""
    # Reads of accounts, lists, blocks and proofs go through "mkt": a collector reads only
    # its own submissions' outcomes, ops status and aggregates (Docs/permissions.md).
    s = {"main": connect(nodes["main"], pki["mkt1"]),
         "ops": connect(nodes["d1"], pki["ops1"]),
         "col": connect(nodes["d1"], pki["col1"]),
         "dev": connect(nodes["d1"], pki["dev1"]),
         "mkt": connect(nodes["d1"], pki["mkt1"]),
         "nodes": (nodes["main"], nodes["d1"])}
    try:
        yield s
    finally:
        for key in ("commands", "notices"):
            if key in s:
                s[key].close()
        for key in ("main", "ops", "col", "dev", "mkt"):
            s[key].close()


def d1_status(s):
    chains = [c for c in s["ops"].status().chains if c.chain_id == "d1"]
    assert chains, "status lists no chain d1"
    return chains[0]


def on_main(s, pki, parameter, who="mkt1"):
    r = s["main"].submit_parameter(signer(pki, who), parameter, chain_id="main")
    return r


def reading(i, meter="m1"):
    return chain_pb2.Reading(meter_id=meter, timestamp_ms=START_MS + i * INTERVAL_MS,
                             energy_total=100_000 + i * 1000, voltage_dv=[2200],
                             current_ma=[5000])


# ---- before the district is registered ---------------------------------------------------

def test_unregistered_district_unanchored_and_parameter_refused(scenario, pki):
    s = scenario
    # A district block (a reading of a meter no customer has): nothing can be anchored
    # while the main chain does not know d1.
    r = s["col"].submit_readings(signer(pki, "col1"), [reading(0, meter="m0")],
                                 chain_id="d1")
    assert r.outcome.code == 0 and r.outcome.readings_accepted == 1, r
    s["first_height"] = r.location.height
    time.sleep(0.6)   # three anchoring periods (--anchor-every-ms 200)
    st = d1_status(s)
    assert st.anchored_height == 0, st
    with pytest.raises(RpcError) as e:
        s["mkt"].prove_block(r.location.height, chain_id="d1")
    assert e.value.code == StatusCode.NOT_FOUND, e.value
    # The main chain refuses parameters for a district it does not know (outcome 9).
    refused = on_main(s, pki, parameters.thresholds_parameter("d1", 1000, 500, 0, 100))
    assert refused.outcome.code == 9, refused.outcome


def test_prove_block_beyond_head_not_found(scenario):
    s = scenario
    head = s["ops"].chain_info(chain_id="d1").height
    with pytest.raises(RpcError) as e:
        s["mkt"].prove_block(head + 1000, chain_id="d1")
    assert e.value.code == StatusCode.NOT_FOUND, e.value
    with pytest.raises(RpcError) as e:
        s["mkt"].prove_block(0, chain_id="d1")            # genesis is never anchored
    assert e.value.code in (StatusCode.INVALID_ARGUMENT, StatusCode.NOT_FOUND), e.value


# ---- registration and parameters ------------------------------------------------------------

def test_register_district_and_send_parameters(scenario, nodes, pki, tmp_path):
    s = scenario
    # Admin registers d1 with the district node's certificate (library).
    with connect(nodes["main"], pki["admin1"]) as admin:
        r = admin.register_district(signer(pki, "admin1"), "d1",
                                    parameters.certificates_der([pki["dnode"]["cert"]]),
                                    chain_id="main")
        assert r.outcome.code == 0, r.outcome
        reg = admin.get_state("district/d1", chain_id="main")
        assert reg.found
    # Marketing without the admin role cannot register a district.
    with pytest.raises(RpcError) as e:
        s["main"].register_district(signer(pki, "mkt1"), "d1",
                                    parameters.certificates_der([pki["dnode"]["cert"]]),
                                    chain_id="main")
    assert e.value.code == StatusCode.PERMISSION_DENIED, e.value

    # The tariff in its JSON form, through the CLI.
    tariff = tmp_path / "flat.json"
    tariff.write_text(json.dumps(FLAT_TARIFF))
    out = cli(nodes["main"], pki["mkt1"], "param", "tariff", "--chain", "main",
              "--district", "d1", "--file", str(tariff))
    assert out.returncode == 0, out.stderr
    line = json.loads(out.stdout)
    assert line["height"] >= 1 and "code" not in line, line

    r = on_main(s, pki, parameters.thresholds_parameter(
        "d1", alarm1_fen=1000, alarm2_fen=500, overdraft_limit_fen=0,
        reconnect_allowed_fen=100, direct_close=True, command_valid_ms=3_600_000,
        grid_worker_contact="13900000000"))
    assert r.outcome.code == 0, r.outcome
    r = on_main(s, pki, parameters.customer_parameter(
        "d1", "c1", "m1", "flat", phase="A", contact="13800000000", opening_balance_fen=2000))
    assert r.outcome.code == 0, r.outcome
    onboarded = r.location.height

    # The downlink brings the archive to d1.
    got = wait_until("account c1 on d1", lambda: s["mkt"].get_account("c1", chain_id="d1"),
                     nodes=s["nodes"])
    assert got.account.balance_fen == 2000
    assert got.account.state == C.ACCOUNT_STATE_NORMAL
    assert got.account.meter_id == "m1"
    assert got.customer.tariff_id == "flat" and got.customer.contact == "13800000000"
    assert d1_status(s).downlink_main_height >= onboarded
    # The thresholds and tariff arrived before the archive (main order).
    assert s["mkt"].get_state("tariff/flat", chain_id="d1").found
    assert s["mkt"].get_state("thresholds/", chain_id="d1").found

    # The CLI's view of the account.
    out = cli(nodes["d1"], pki["mkt1"], "account", "--chain", "d1", "c1")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["account"]["account"] == "c1" and doc["account"]["balance_fen"] == 2000, doc


# ---- readings drain the account ----------------------------------------------------------------

def test_readings_drain_account(scenario, pki):
    s = scenario
    # The device and the marketing system listen before anything is issued.
    s["commands"] = StreamCollector(lambda: s["dev"].subscribe_commands(chain_id="d1"))
    s["notices"] = StreamCollector(lambda: s["mkt"].subscribe_notices(1, chain_id="d1"))
    col = signer(pki, "col1")
    balances, states, warnings, disconnected = [], [], [], []
    for i in range(5):
        r = s["col"].submit_readings(col, [reading(i)], batch_id=f"m1-{i}", chain_id="d1")
        assert r.outcome.code == 0, r.outcome
        assert r.outcome.readings_billed == 1, (i, r.outcome)
        assert r.outcome.charged_fen == (0 if i == 0 else 500), (i, r.outcome)
        a = s["mkt"].get_account("c1", chain_id="d1").account
        balances.append(a.balance_fen)
        states.append(a.state)
        warnings.append([(w.account, w.state) for w in s["mkt"].warning_accounts("d1")])
        disconnected.append([d.account for d in s["mkt"].disconnected_accounts("d1")])
    assert balances == [2000, 1500, 1000, 500, 0]
    assert states == [C.ACCOUNT_STATE_NORMAL, C.ACCOUNT_STATE_NORMAL,
                      C.ACCOUNT_STATE_WARNING1, C.ACCOUNT_STATE_WARNING2,
                      C.ACCOUNT_STATE_DISCONNECTED]
    assert warnings == [[], [], [("c1", C.ACCOUNT_STATE_WARNING1)],
                        [("c1", C.ACCOUNT_STATE_WARNING2)], []]
    assert disconnected == [[], [], [], [], ["c1"]]
    a = s["mkt"].get_account("c1", chain_id="d1").account
    assert a.total_charged_fen == 2000 and a.cycle_energy == 4000, a
    # The same reading again is a duplicate: never charged twice.
    dup = s["col"].submit_readings(col, [reading(4)], batch_id="m1-dup", chain_id="d1")
    assert dup.outcome.readings_duplicate == 1, dup.outcome
    assert s["mkt"].get_account("c1", chain_id="d1").account.balance_fen == 0


def test_device_gets_alarm_and_trip_and_acks(scenario, nodes, pki):
    s = scenario
    trip = s["commands"].wait_for("a TRIP command", lambda c: c.kind == C.COMMAND_KIND_TRIP,
                                  nodes=s["nodes"])
    kinds = [c.kind for c in s["commands"].all()]
    assert kinds == [C.COMMAND_KIND_ALARM_ON, C.COMMAND_KIND_TRIP], kinds
    assert trip.account == "c1" and trip.meter_id == "m1" and trip.district == "d1"
    assert trip.status == C.COMMAND_STATUS_ISSUED
    issued = s["mkt"].list_commands("d1", status=C.COMMAND_STATUS_ISSUED).commands
    assert trip.command_id in [c.command_id for c in issued]

    r = s["dev"].ack_command(signer(pki, "dev1"), trip.command_id, success=True,
                             detail="relay open", chain_id="d1")
    assert r.outcome.code == 0, r.outcome
    acked = s["mkt"].list_commands("d1", status=C.COMMAND_STATUS_ACKNOWLEDGED).commands
    assert [c.command_id for c in acked] == [trip.command_id]
    assert acked[0].detail == "relay open", acked[0]
    # A second ack of the same command: no longer ISSUED (outcome 9).
    again = s["dev"].ack_command(signer(pki, "dev1"), trip.command_id, chain_id="d1")
    assert again.outcome.code == 9, again.outcome
    # The CLI lists it too.
    out = cli(nodes["d1"], pki["mkt1"], "commands", "--district", "d1",
              "--status", "acknowledged")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines() if x.strip()]
    assert [x["command_id"] for x in lines] == [trip.command_id], lines


def test_marketing_sees_notices(scenario):
    s = scenario
    formal = s["notices"].wait_for(
        "a FORMAL_DISCONNECT notice", lambda n: n.kind == C.NOTICE_KIND_FORMAL_DISCONNECT,
        nodes=s["nodes"])
    assert formal.contact == "13900000000" and formal.recipient == "grid_worker", formal
    customer = [n.kind for n in s["notices"].all() if n.recipient == "customer"]
    assert customer == [C.NOTICE_KIND_WARNING1, C.NOTICE_KIND_WARNING2,
                        C.NOTICE_KIND_DISCONNECT], customer
    assert all(n.account == "c1" and n.district == "d1" for n in s["notices"].all())


def test_payment_on_main_closes_again(scenario, nodes, pki):
    s = scenario
    # The payment through the CLI, on the main chain.
    out = cli(nodes["main"], pki["mkt1"], "pay", "--chain", "main", "--district", "d1",
              "--account", "c1", "--amount", "3000", "--serial", "bank-0001")
    assert out.returncode == 0, out.stderr
    paid = json.loads(out.stdout)["height"]
    close = s["commands"].wait_for(
        "a DIRECT_CLOSE command", lambda c: c.kind == C.COMMAND_KIND_DIRECT_CLOSE,
        nodes=s["nodes"])
    assert close.account == "c1", close
    assert d1_status(s).downlink_main_height >= paid
    a = s["mkt"].get_account("c1", chain_id="d1").account
    assert a.balance_fen == 3000 and a.state == C.ACCOUNT_STATE_NORMAL, a
    assert a.total_paid_fen == 3000, a
    s["notices"].wait_for("a RECONNECT notice",
                          lambda n: n.kind == C.NOTICE_KIND_RECONNECT, nodes=s["nodes"])
    s["commands"].wait_for("an ALARM_OFF command",
                           lambda c: c.kind == C.COMMAND_KIND_ALARM_OFF, nodes=s["nodes"])
    assert s["mkt"].disconnected_accounts("d1") == []
    assert s["mkt"].warning_accounts("d1") == []
    # The same payment serial again: ALREADY_EXISTS at apply time, balance unchanged.
    again = on_main(s, pki, parameters.payment_parameter("d1", "c1", 3000, "bank-0001"))
    assert again.outcome.code == 0, again.outcome   # accepted on main: applied on d1
    wait_until("the repeated payment carried to d1",
               lambda: d1_status(s).downlink_main_height >= again.location.height,
               nodes=s["nodes"])
    assert s["mkt"].get_account("c1", chain_id="d1").account.balance_fen == 3000
    # The CLI lists.
    for cmd in ("warnings", "disconnected"):
        out = cli(nodes["d1"], pki["mkt1"], cmd, "--chain", "d1")
        assert out.returncode == 0 and out.stdout.strip() == "", (cmd, out.stdout, out.stderr)


# ---- anchoring and proofs ------------------------------------------------------------------------

def receipts_only(client, height):
    """Whether district block ``height`` holds nothing but AnchorReceipt transactions."""
    block = client.get_block(height=height, chain_id="d1").block
    return all(chain_pb2.TxPayload.FromString(t.payload).WhichOneof("body") == "anchor_receipt"
               for t in block.transactions)


def anchored_to_head(s):
    """The d1 status once every block up to the head is anchored, except trailing blocks
    that hold only anchor receipts (an idle district does not anchor its own receipts:
    Docs/anchoring.md, "Anchor"); None before."""
    st = d1_status(s)
    if st.anchored_height == 0:
        return None
    for h in range(st.anchored_height + 1, st.height + 1):
        if not receipts_only(s["mkt"], h):
            return None
    return st


def test_anchored_to_head_and_proof_verifies(scenario, nodes, pki, tmp_path):
    s = scenario
    # The last block with content (the payment's downlink and later) at this point.
    content_head = d1_status(s).height
    while content_head > 0 and receipts_only(s["mkt"], content_head):
        content_head -= 1
    # Polled together with sync_error: a sync round that failed on the way (and is retried)
    # may have left one that the next successful round clears.
    def settled():
        st = anchored_to_head(s)
        return st if st is not None and st.sync_error == "" else None
    st = wait_until(f"d1 anchored up to its head (content up to {content_head}), no sync_error",
                    settled, timeout=60, nodes=s["nodes"])
    assert st.anchored_height >= content_head, (st.anchored_height, content_head)
    assert st.sync_error == "", st.sync_error
    head = st.anchored_height
    ca = pki["ops1"]["ca"]
    for height in sorted({s["first_height"], head}):
        proof = s["mkt"].prove_block(height, chain_id="d1")
        assert proof.district == "d1" and proof.height == height
        result = verify_proof(proof.SerializeToString(), ca_pem_path=ca)
        assert result.district == "d1" and result.height == height
        assert result.main_chain == "main" and result.main_height >= 1
        assert result.anchor_from <= height <= result.anchor_to
        assert result.signatures_verified >= 1, result
        # The district block's hash is the one the proof names.
        block = s["mkt"].get_block(height=height, chain_id="d1")
        assert block.block.header.SerializeToString() == proof.header
        # The main block named is the main chain's.
        main_block = s["main"].get_block(height=result.main_height, chain_id="main")
        assert main_block.block.header.SerializeToString() == proof.main_header
        # Without a CA nothing is counted.
        assert verify_proof(proof.SerializeToString()).signatures_verified == 0
    s["proof_height"] = head

    # CLI: prove --verify, prove -o, then verify-proof offline.
    out = cli(nodes["d1"], pki["mkt1"], "prove", "--chain", "d1", str(head), "--verify")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["verified"] is True and doc["height"] == head
    assert doc["signatures_verified"] >= 1, doc
    path = tmp_path / "proof.bin"
    out = cli(nodes["d1"], pki["mkt1"], "prove", "--chain", "d1", str(head), "-o", str(path))
    assert out.returncode == 0, out.stderr
    off = cli_offline("verify-proof", str(path), "--ca", ca)
    assert off.returncode == 0, off.stderr
    doc = json.loads(off.stdout)
    assert doc["verified"] is True and doc["district"] == "d1" and doc["height"] == head
    assert doc["signatures_verified"] >= 1, doc
    s["proof_file"] = path


def _flip_header_byte(data: bytes) -> bytes:
    """The proof with the first byte of the district header's tx_root flipped (the header
    still decodes; its hash changes)."""
    proof = anchor_pb2.BlockProof.FromString(data)
    header = chain_pb2.BlockHeader.FromString(proof.header)
    at = proof.header.find(header.tx_root)
    assert at > 0 and len(header.tx_root) == 32
    tampered = bytearray(proof.header)
    tampered[at] ^= 0x01
    proof.header = bytes(tampered)
    return proof.SerializeToString()


def test_tampered_proof_fails(scenario, pki):
    s = scenario
    data = s["mkt"].prove_block(s["proof_height"], chain_id="d1").SerializeToString()
    bad = _flip_header_byte(data)
    with pytest.raises(ProofError) as e:
        verify_proof(bad, ca_pem_path=pki["ops1"]["ca"])
    assert "headers root" in str(e.value) or "last header hash" in str(e.value), e.value
    with pytest.raises(ProofError):
        verify_proof(bad)
    path = s["proof_file"].with_name("tampered.bin")
    path.write_bytes(bad)
    off = cli_offline("verify-proof", str(path), "--ca", pki["ops1"]["ca"])
    assert off.returncode == 1, (off.returncode, off.stdout, off.stderr)
    assert b"proof does not verify" in off.stderr, off.stderr
    # stdin too.
    off = cli_offline("verify-proof", "-", input=bad)
    assert off.returncode == 1, off.stderr


def test_uplink_reached_main(scenario):
    """The anchors carried the account's results up to the main chain."""
    s = scenario
    totals = s["main"].get_state("uplink/d1/totals", chain_id="main")
    assert totals.found
    summary = anchor_pb2.UplinkSummary.FromString(totals.value)
    assert summary.charged_fen == 2000 and summary.readings_billed == 5, summary
    acct = s["main"].get_state("uplink/d1/account/c1", chain_id="main")
    assert acct.found
    assert anchor_pb2.AccountResult.FromString(acct.value).balance_fen == 3000


# ---- issue 10: the district's results on main, decoded; connection errors --------------------

def test_cli_state_decodes_uplink(scenario, nodes, pki):
    # An account result is customer data (marketing); the district's totals are an
    # aggregate that ops may read too (Docs/permissions.md).
    out = cli(nodes["main"], pki["mkt1"], "state", "--chain", "main", "uplink/d1/account/c1")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["decoded_as"] == "gridledger.AccountResult", doc
    assert doc["decoded"]["account"] == "c1" and doc["decoded"]["balance_fen"] == 3000, doc
    out = cli(nodes["main"], pki["ops1"], "state", "--chain", "main", "uplink/d1/totals")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["decoded_as"] == "gridledger.UplinkSummary"


def test_district_results_on_main(scenario, nodes, pki):
    """FeeControl/GetDistrictResults (issue 10): each customer's charges and state as the
    anchors carried them up, decoded; customer data, so marketing reads them and ops not."""
    s = scenario
    page = s["main"].district_results("d1", chain_id="main")
    assert page.district == "d1" and page.next_after == ""
    (c1,) = [a for a in page.accounts if a.account == "c1"]
    assert (c1.balance_fen, c1.state, c1.total_paid_fen) == (3000, C.ACCOUNT_STATE_NORMAL, 3000)
    assert c1.total_charged_fen == page.totals.charged_fen > 0
    assert c1.cycle_charged_fen <= c1.total_charged_fen and c1.cycle_start_ms > 0
    assert "c1" not in page.warning and "c1" not in page.disconnected
    out = cli(nodes["main"], pki["mkt1"], "district-results", "--chain", "main", "--district",
              "d1", "--all")
    assert out.returncode == 0, out.stderr
    row = [l for l in out.stdout.splitlines() if l.startswith("c1 ")]
    assert row and row[0].split()[1:3] == ["30.00", "NORMAL"], out.stdout
    assert "disconnected: none" in out.stdout
    refused = cli(nodes["main"], pki["ops1"], "district-results", "--chain", "main", "--district", "d1")
    assert refused.returncode != 0 and "PERMISSION_DENIED" in refused.stderr, refused.stderr


def test_cli_connection_errors_real_node(nodes, pki, tmp_path):
    other = tmp_path / "otherca"
    gridnode("ca", "init", "--out", str(other))
    ident = dict(pki["ops1"], ca=str(other / "ca.crt"))
    out = cli(nodes["main"], ident, "status")
    assert out.returncode == 2
    assert out.stderr == (f"error: cannot connect to {nodes['main'].address}: TLS handshake "
                          f"failed: the node's certificate is not signed by the CA in "
                          f"{ident['ca']} (wrong --ca, or a node of another deployment?)\n")


# ---- issue 10 on a real node: reversal, activation, notice templates through the CLI ------------

def test_reversal_activation_and_templates_through_the_cli(scenario, nodes, pki):
    s = scenario

    def d1_account():
        return s["mkt"].get_account("c1", chain_id="d1").account

    def on_main_cli(who, *args):
        out = cli(nodes["main"], pki[who], *args)
        assert out.returncode == 0, out.stderr
        height = json.loads(out.stdout)["height"]
        wait_until(f"main height {height} carried to d1",
                   lambda: d1_status(s).downlink_main_height >= height, nodes=s["nodes"])

    before = d1_account()
    # DOMAIN.md: "a reversal (冲正) has a negative amount and names the serial it reverses".
    on_main_cli("mkt1", "pay", "--chain", "main", "--district", "d1", "--account", "c1",
                "--amount", "500", "--serial", "bank-0500")
    assert d1_account().balance_fen == before.balance_fen + 500
    on_main_cli("mkt1", "pay", "--chain", "main", "--district", "d1", "--account", "c1",
                "--amount", "500", "--serial", "rev-0500", "--reverses", "bank-0500")
    after = d1_account()
    assert (after.balance_fen, after.total_paid_fen) == (before.balance_fen, before.total_paid_fen)
    # A second reversal of the same payment is refused on the district: nothing moves.
    on_main_cli("mkt1", "pay", "--chain", "main", "--district", "d1", "--account", "c1",
                "--amount", "500", "--serial", "rev-0501", "--reverses", "bank-0500")
    assert d1_account().balance_fen == before.balance_fen
    # The admin's contract activation and marketing's notice templates are taken by d1.
    on_main_cli("admin1", "param", "activation", "--chain", "main", "--district", "d1",
                "--version", "1", "--at-height", "1", "--spike-min-history", "8")
    on_main_cli("mkt1", "param", "notice-templates", "--chain", "main", "--district", "d1",
                "--language", "en")
    # A value the contract would refuse is refused by the CLI before anything is sent.
    bad = cli(nodes["main"], pki["admin1"], "param", "activation", "--chain", "main",
              "--district", "d1", "--version", "1", "--at-height", "1", "--spike-factor", "1")
    assert bad.returncode != 0 and "spike" in bad.stderr, bad.stderr
