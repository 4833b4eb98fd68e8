"""Issue 5 and 6 calls of the client and the CLI against the fake node (tests/fakechain.py):
ProveBlock, main-chain submissions (district registration, parameters, payments), command
acks, FeeControl queries, the Control and Notices streams (Docs/anchoring.md;
Proto/gridledger/contracts.proto)."""

import json
import threading

import pytest

from fakechain import FakeChain
from fakenode import FakeNode
from gridledger import Client, RpcError, Signer, StatusCode, chain_pb2, contracts_pb2
from gridledger import parameters
from gridledger.__main__ import main as cli_main
from gridledger.proof import verify_proof
from pki import CA
from proofkit import Built, load_signer


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("anchor-pki")
    ca = CA(str(d / "ca"))
    return {
        "ca": ca.ca_path,
        "node": ca.issue("node1", "node"),
        "dn1": ca.issue("dn1", "node", "d1"),
        "dn2": ca.issue("dn2", "node", "d1"),
        "admin": ca.issue("admin1", "admin"),
        "mkt": ca.issue("mkt1", "marketing"),
        "dev": ca.issue("dev1", "device", "d1"),
        "col": ca.issue("col1", "collector", "d1"),
        "ops": ca.issue("ops1", "ops"),
    }




@pytest.fixture()
def main_chain(pki):
    return FakeChain(pki["ca"], chain_id="main")


@pytest.fixture()
def district(pki):
    return FakeChain(pki["ca"], chain_id="d1", district="d1")


def serve(pki, chain):
    return FakeNode(pki["ca"], *pki["node"], chain=chain)


def connect(node, pki, who):
    cert, key = pki[who]
    return Client(node.address, cert=cert, key=key, ca=pki["ca"], timeout=5)


def cli(node, pki, who, *args):
    cert, key = pki[who]
    return cli_main(["--addr", node.address, "--cert", cert, "--key", key, "--ca", pki["ca"],
                     "--timeout", "5", *args])


def lines(capsys):
    return [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.strip()]


# ---- ProveBlock ------------------------------------------------------------------------------


def test_prove_block_and_cli(pki, district, tmp_path, capsys):
    built = Built(signers=[load_signer(*pki["dn1"]), load_signer(*pki["dn2"])])
    district.proofs = {h: built.proof(h) for h in built.heights}
    node = serve(pki, district)
    try:
        with connect(node, pki, "ops") as c:
            proof = c.prove_block(3, chain_id="d1")
            assert proof == built.proof(3)
            assert verify_proof(proof, pki["ca"]).signatures_verified == 2
            with pytest.raises(RpcError) as e:
                c.prove_block(9, chain_id="d1")
            assert e.value.code == StatusCode.NOT_FOUND
        assert \
            district.requests[0][1].height == 3 and district.requests[0][1].chain_id == "d1"

        out = tmp_path / "p.bin"
        assert cli(node, pki, "ops", "prove", "--chain", "d1", "4", "-o", str(out)) == 0
        assert capsys.readouterr().out == ""
        assert out.read_bytes() == built.proof(4).SerializeToString()
        assert cli_main(["verify-proof", str(out), "--ca", pki["ca"]]) == 0
        assert json.loads(capsys.readouterr().out)["signatures_verified"] == 2

        assert cli(node, pki, "ops", "prove", "5", "--chain", "d1", "--verify") == 0
        doc = json.loads(capsys.readouterr().out)  # only the JSON: no proof bytes
        assert doc["height"] == 5 and doc["signatures_verified"] == 2  # with the connection CA

        assert cli(node, pki, "ops", "prove", "2", "--chain", "d1", "--verify", "-o",
                   str(out)) == 0
        assert json.loads(capsys.readouterr().out)["height"] == 2
        assert out.read_bytes() == built.proof(2).SerializeToString()

        assert cli(node, pki, "ops", "prove", "9", "--chain", "d1") == 2
        assert "error: NOT_FOUND: block 9 is not anchored" in capsys.readouterr().err
    finally:
        node.close()


def test_prove_verify_failure_exits_1(pki, district, capsys):
    built = Built()  # no signatures: fails the CA check of --verify
    district.proofs = {1: built.proof(1)}
    node = serve(pki, district)
    try:
        assert cli(node, pki, "ops", "prove", "1", "--verify") == 1
        assert "proof does not verify: anchor carries no signature" in capsys.readouterr().err
    finally:
        node.close()


# ---- submissions -----------------------------------------------------------------------------


def test_register_district(pki, main_chain, capsys):
    node = serve(pki, main_chain)
    try:
        admin = Signer(*pki["admin"])
        ders = parameters.certificates_der([pki["dn1"][0], pki["dn2"][0]])
        with connect(node, pki, "admin") as c:
            r = c.register_district(admin, "d1", ders, chain_id="main")
            assert r.location.height == 1 and r.outcome.code == 0
        ((payload, tx),) = main_chain.payloads("district_registration")
        assert payload.chain_id == "main" and payload.created_ms > 0 and len(payload.nonce) == 32
        assert payload.district_registration.district == "d1"
        assert list(payload.district_registration.member_certificates) == ders
        # CLI: several certificates in one PEM file too.
        both = pki["dn1"][0] + ".both"
        with open(both, "w") as f:
            f.write(open(pki["dn1"][0]).read() + open(pki["dn2"][0]).read())
        assert cli(node, pki, "admin", "register-district", "--chain", "main", "d1", both,
                   pki["dn1"][0]) == 0
        (line,) = lines(capsys)
        assert set(line) == {"tx_id", "height", "index"} and line["height"] == 2
        p = main_chain.payloads("district_registration")[1][0]
        assert list(p.district_registration.member_certificates) == ders + ders[:1]
        assert ("Submit", "main") in main_chain.chain_ids
        # Marketing may not register districts.
        assert cli(node, pki, "mkt", "register-district", "--chain", "main", "d1", both) == 2
        assert "PERMISSION_DENIED" in capsys.readouterr().err
    finally:
        node.close()


def test_parameter_builders():
    c = parameters.customer_parameter("d1", "acc1", "m1", "T1", phase="ABC",
                                      protected_supply=True, contact="138", thresholds_id="th",
                                      opening_balance_fen=-5, cycle_start=(7, 15))
    assert c.WhichOneof("body") == "customer" and c.customer.cycle_start_month == 7
    assert c.customer.opening_balance_fen == -5 and c.customer.protected_supply
    with pytest.raises(ValueError):
        parameters.customer_parameter("d1", "acc1", "m1", "T1", phase="D")
    with pytest.raises(ValueError):
        parameters.customer_parameter("d1", "", "m1", "T1")
    assert parameters.parse_cycle_start("01-31") == (1, 31)
    with pytest.raises(ValueError):
        parameters.parse_cycle_start("13-01")
    with pytest.raises(ValueError):
        parameters.payment_parameter("d1", "acc1", 0, "s")
    pay = parameters.payment_parameter("d1", "acc1", 100, "s", paid_ms=7)
    assert (pay.payment.amount_fen, pay.payment.paid_ms) == (100, 7)
    t = parameters.tariff_from_json(TARIFF)
    assert t.weekday_schedule == bytes(TARIFF["weekday_schedule"]) and t.weekend_schedule == t.weekday_schedule
    assert t.cycle == contracts_pb2.BILLING_CYCLE_ANNUAL and list(t.tier_limits) == [200, 400]
    for broken, why in (({"weekday_schedule": [0] * 287}, "287 entries"),
                        ({"weekday_schedule": [2] + [0] * 287}, "period index"),
                        ({"cycle": "weekly"}, "monthly or annual"),
                        ({"tier_surcharges": [1]}, "one entry each"),
                        ({"colour": "red"}, "unknown tariff fields"),
                        ({"periods": []}, "at least one period")):
        with pytest.raises(ValueError, match=why):
            parameters.tariff_from_json({**TARIFF, **broken})
    with pytest.raises(ValueError):
        parameters.tx_payload("main", parameter=pay, command_ack=parameters.command_ack("c"))


TARIFF = {"tariff_id": "T1", "utc_offset_minutes": 480,
          "periods": [{"name": "peak", "base_price": 12000}, {"name": "valley", "base_price": 4000}],
          "weekday_schedule": ([1] * 8 + [0] * 16) * 12, "cycle": "annual",
          "tier_limits": [200, 400], "tier_surcharges": [500, 3000], "fixed_charge_fen": 100}


def test_cli_params_and_payment(pki, main_chain, tmp_path, capsys):
    node = serve(pki, main_chain)
    tariff = tmp_path / "tariff.json"
    tariff.write_text(json.dumps(TARIFF))
    try:
        assert cli(node, pki, "mkt", "param", "customer", "--chain", "main", "--district", "d1",
                   "--account", "acc1", "--meter", "m1", "--phase", "ABC", "--tariff", "T1",
                   "--protected", "--contact", "13800000000", "--thresholds", "th1",
                   "--opening-balance", "-500", "--cycle-start", "07-15") == 0
        assert cli(node, pki, "mkt", "param", "tariff", "--chain", "main", "--district", "d1",
                   "--file", str(tariff)) == 0
        assert cli(node, pki, "mkt", "param", "thresholds", "--chain", "main", "--district",
                   "d1", "--id", "th1", "--alarm1", "2000", "--alarm2", "500", "--overdraft",
                   "0", "--reconnect", "100", "--direct-close", "--valid-ms", "600000",
                   "--grid-worker", "13900000000") == 0
        assert cli(node, pki, "mkt", "pay", "--chain", "main", "--district", "d1", "--account",
                   "acc1", "--amount", "10000", "--serial", "pay-1") == 0
        out = lines(capsys)
        assert [l["height"] for l in out] == [1, 2, 3, 4]
        params = [p.parameter for p, _ in main_chain.payloads("parameter")]
        assert [p.district for p in params] == ["d1"] * 4
        assert [p.WhichOneof("body") for p in params] == ["customer", "tariff", "thresholds",
                                                           "payment"]
        assert params[0].customer == contracts_pb2.CustomerArchive(
            account="acc1", meter_id="m1", phase="ABC", tariff_id="T1", protected_supply=True,
            contact="13800000000", cycle_start_month=7, cycle_start_day=15,
            thresholds_id="th1", opening_balance_fen=-500)
        assert params[1].tariff == parameters.tariff_from_json(TARIFF)
        assert params[2].thresholds == contracts_pb2.FeeControlThresholds(
            thresholds_id="th1", alarm1_fen=2000, alarm2_fen=500, overdraft_limit_fen=0,
            reconnect_allowed_fen=100, direct_close=True, command_valid_ms=600000,
            grid_worker_contact="13900000000")
        pay = params[3].payment
        assert (pay.account, pay.amount_fen, pay.serial) == ("acc1", 10000, "pay-1")
        assert pay.paid_ms > 1_600_000_000_000
        # Without --chain the payload names the node's only chain (GetChainInfo).
        assert cli(node, pki, "mkt", "pay", "--district", "d1", "--account", "acc1",
                   "--amount", "1", "--serial", "pay-2") == 0
        assert main_chain.payloads("parameter")[-1][0].chain_id == "main"
        assert ("Submit", "") in main_chain.chain_ids
        capsys.readouterr()
        # Bad local input submits nothing.
        before = len(main_chain.blocks)
        tariff.write_text(json.dumps({**TARIFF, "weekday_schedule": [0] * 5}))
        assert cli(node, pki, "mkt", "param", "tariff", "--district", "d1", "--file",
                   str(tariff)) == 2
        assert "288" in capsys.readouterr().err
        assert cli(node, pki, "mkt", "param", "tariff", "--district", "d1", "--file",
                   str(tmp_path / "none.json")) == 2
        assert "cannot read" in capsys.readouterr().err
        assert len(main_chain.blocks) == before
        with pytest.raises(SystemExit):
            cli(node, pki, "mkt", "pay", "--district", "d1", "--account", "a", "--amount", "0",
                "--serial", "s")
        with pytest.raises(SystemExit):
            cli(node, pki, "mkt", "param", "customer", "--district", "d1", "--account", "a",
                "--meter", "m")  # no --tariff
    finally:
        node.close()


def test_ack_and_already_existed(pki, district, capsys):
    node = serve(pki, district)
    try:
        dev = Signer(*pki["dev"])
        with connect(node, pki, "dev") as c:
            r = c.ack_command(dev, "cmd-7", success=False, detail="relay stuck", chain_id="d1")
            assert r.location.height == 1
            signed = c.sign_payload(dev, "d1", command_ack=parameters.command_ack("cmd-8"))
            c.submit(signed, chain_id="d1")
            with pytest.raises(RpcError) as e:
                c.submit(signed, chain_id="d1")
            assert e.value.code == StatusCode.ALREADY_EXISTS and e.value.location.height == 2
        acks = [p.command_ack for p, _ in district.payloads("command_ack")]
        assert acks[0] == contracts_pb2.CommandAck(command_id="cmd-7", success=False,
                                                    detail="relay stuck")
        assert acks[1].success
        assert cli(node, pki, "dev", "ack", "--chain", "d1", "c9", "--failed", "--detail",
                   "no answer") == 0
        assert lines(capsys)[0]["height"] == 3
        ack = district.payloads("command_ack")[-1][0].command_ack
        assert (ack.command_id, ack.success, ack.detail) == ("c9", False, "no answer")
        # A collector may not acknowledge commands.
        assert cli(node, pki, "col", "ack", "--chain", "d1", "c9") == 2
        assert "PERMISSION_DENIED" in capsys.readouterr().err
    finally:
        node.close()


# ---- fee control -----------------------------------------------------------------------------


def account(name, state, balance):
    return contracts_pb2.GetAccountResponse(
        account=contracts_pb2.Account(
            account=name, meter_id="m-" + name, balance_fen=balance, state=state,
            last_reading_ms=1_700_000_000_000, last_total=5000, cycle_energy=300,
            periods=[contracts_pb2.PeriodUsage(period="peak", energy=100, charge_fen=120),
                     contracts_pb2.PeriodUsage(period="valley", energy=200, charge_fen=80)],
            tiers=[contracts_pb2.TierUsage(tier=1, energy=300)], cycle_charged_fen=200,
            total_charged_fen=900, total_paid_fen=2134),
        customer=contracts_pb2.CustomerArchive(account=name, meter_id="m-" + name,
                                               tariff_id="T1", phase="A"))


def command(cid, status=contracts_pb2.COMMAND_STATUS_ISSUED, kind=contracts_pb2.COMMAND_KIND_TRIP):
    return contracts_pb2.ControlCommand(command_id=cid, district="d1", account="acc1",
                                        meter_id="m1", kind=kind, status=status,
                                        issued_ms=1, valid_until_ms=2, issued_height=4)


@pytest.fixture()
def fee(pki, district):
    district.accounts = {
        "acc1": account("acc1", contracts_pb2.ACCOUNT_STATE_WARNING1, 1234),
        "acc2": account("acc2", contracts_pb2.ACCOUNT_STATE_DISCONNECTED, -250),
        "acc3": account("acc3", contracts_pb2.ACCOUNT_STATE_WARNING2, 10),
        "acc4": account("acc4", contracts_pb2.ACCOUNT_STATE_NORMAL, 99999),
    }
    district.commands = [command("c1"), command("c2", contracts_pb2.COMMAND_STATUS_FAILED),
                         command("c3", contracts_pb2.COMMAND_STATUS_ACKNOWLEDGED)]
    district.notices = [contracts_pb2.Notice(notice_id=f"n{h}", district="d1", account="acc1",
                                             kind=contracts_pb2.NOTICE_KIND_WARNING1,
                                             recipient="customer", text="余额不足", height=h)
                        for h in (3, 5, 8)]
    node = serve(pki, district)
    yield node
    node.close()


def test_fee_control_queries(pki, district, fee):
    with connect(fee, pki, "ops") as c:
        r = c.get_account("acc1", chain_id="d1")
        assert r.account.balance_fen == 1234 and r.customer.tariff_id == "T1"
        with pytest.raises(RpcError) as e:
            c.get_account("nobody", chain_id="d1")
        assert e.value.code == StatusCode.NOT_FOUND
        assert [a.account for a in c.warning_accounts("d1")] == ["acc1", "acc3"]
        assert [a.account for a in c.disconnected_accounts("d1")] == ["acc2"]
        assert [a.account for a in c.warning_accounts("d1", limit=1)] == ["acc1"]
        assert [x.command_id for x in c.list_commands("d1").commands] == ["c1", "c2", "c3"]
        assert [x.command_id for x in c.list_commands(
            "d1", status=contracts_pb2.COMMAND_STATUS_FAILED).commands] == ["c2"]
    reqs = [r for m, r in district.requests if m.endswith("/ListAccounts")]
    assert [(r.chain_id, r.any_warning, r.state, r.limit) for r in reqs] == [
        ("d1", True, 0, 0), ("d1", False, contracts_pb2.ACCOUNT_STATE_DISCONNECTED, 0),
        ("d1", True, 0, 1)]


def test_cli_fee_control_queries(pki, district, fee, capsys):
    assert cli(fee, pki, "ops", "account", "--chain", "d1", "acc1") == 0
    doc = json.loads(capsys.readouterr().out)
    a = doc["account"]
    assert (a["balance_fen"], a["state"], a["last_reading_ms"]) == (
        1234, "ACCOUNT_STATE_WARNING1", 1_700_000_000_000)
    line = {"line_price": 0, "line_energy": 0}
    assert a["periods"] == [{"period": "peak", "energy": 100, "charge_fen": 120, **line},
                            {"period": "valley", "energy": 200, "charge_fen": 80, **line}]
    assert a["tiers"] == [{"tier": 1, "energy": 300, "charge_fen": 0, **line}]
    assert (a["cycle_charged_fen"], a["total_charged_fen"], a["total_paid_fen"]) == (200, 900, 2134)
    assert doc["customer"]["tariff_id"] == "T1"
    assert cli(fee, pki, "ops", "account", "--chain", "d1", "nobody") == 2
    assert "NOT_FOUND" in capsys.readouterr().err
    assert cli(fee, pki, "ops", "warnings", "--chain", "d1") == 0
    assert [l["account"] for l in lines(capsys)] == ["acc1", "acc3"]
    assert cli(fee, pki, "ops", "disconnected", "--chain", "d1") == 0
    out = lines(capsys)
    assert [(l["account"], l["balance_fen"], l["state"]) for l in out] == [
        ("acc2", -250, "ACCOUNT_STATE_DISCONNECTED")]
    assert cli(fee, pki, "ops", "commands", "--district", "d1", "--status", "acknowledged") == 0
    assert [(l["command_id"], l["status"], l["kind"]) for l in lines(capsys)] == [
        ("c3", "COMMAND_STATUS_ACKNOWLEDGED", "COMMAND_KIND_TRIP")]
    assert cli(fee, pki, "ops", "commands", "--district", "d1") == 0
    assert len(lines(capsys)) == 3
    assert [c for m, c in district.chain_ids if m == "ListCommands"] == ["d1", "d1"]


def test_subscribe_commands_backlog_then_live(pki, district, fee):
    with connect(fee, pki, "dev") as c:
        with c.subscribe_commands("d1") as stream:
            got = [next(stream).command_id for _ in range(3)]
            threading.Timer(0.1, district.issue_command, [command("c4")]).start()
            got.append(next(stream).command_id)
        assert got == ["c1", "c2", "c3", "c4"]
        with pytest.raises(RpcError) as e:
            with connect(fee, pki, "ops") as other:
                next(other.subscribe_commands("d1"))
        assert e.value.code == StatusCode.PERMISSION_DENIED


def test_cli_watch_commands_with_ack(pki, district, fee, capsys):
    assert cli(fee, pki, "dev", "watch-commands", "--chain", "d1", "--count", "2", "--ack") == 0
    out = lines(capsys)
    assert [l["command_id"] for l in out] == ["c1", "c2"]
    assert [l["ack"]["height"] for l in out] == [1, 2] and all(len(l["ack"]["tx_id"]) == 64
                                                              for l in out)
    acks = [p.command_ack for p, _ in district.payloads("command_ack")]
    assert [(a.command_id, a.success) for a in acks] == [("c1", True), ("c2", True)]
    assert cli(fee, pki, "dev", "watch-commands", "--chain", "d1", "--count", "1") == 0
    assert "ack" not in lines(capsys)[0]


def test_notices(pki, district, fee, capsys):
    with connect(fee, pki, "mkt") as c:
        with c.subscribe_notices(4, chain_id="d1") as stream:
            assert [next(stream).notice_id for _ in range(2)] == ["n5", "n8"]
    assert cli(fee, pki, "mkt", "watch-notices", "--chain", "d1", "--from", "5", "--count",
               "1") == 0
    (line,) = lines(capsys)
    assert (line["notice_id"], line["kind"], line["text"]) == ("n5", "NOTICE_KIND_WARNING1",
                                                              "余额不足")
    req = [r for m, r in district.requests if m.endswith("/Subscribe")][-1]
    assert (req.chain_id, req.from_height) == ("d1", 5)
