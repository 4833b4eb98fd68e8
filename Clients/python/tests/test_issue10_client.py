"""Issue 10, the clients' part: contract activation with VEE parameters, payment reversals
(冲正), notice templates, a district's results on the main chain as decoded records, state
values decoded, and connection errors as sentences (Proto/gridledger/contracts.proto,
anchor.proto GetDistrictResults; DOMAIN.md "Validation, estimation, editing" and "Prepaid
fee control").  Against the fake node (tests/fakechain.py) and offline."""

import errno
import json
import socket
import ssl
import threading

import pytest

from fakechain import FakeChain
from fakenode import FakeNode
from gridledger import Client, RpcError, StatusCode, anchor_pb2, contracts_pb2, parameters
from gridledger.__main__ import main as cli_main
from gridledger.connect_errors import describe_connect_error
from gridledger.render import _width, decode_state_value, district_results_text, yuan
from pki import CA

C = contracts_pb2


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("issue10-pki")
    ca = CA(str(d / "ca"))
    other = CA(str(d / "other"), name="Another CA")
    return {
        "ca": ca.ca_path,
        "other_ca": other.ca_path,
        "node": ca.issue("node1", "node"),
        "other_node": other.issue("onode", "node"),
        "other_mkt": other.issue("omkt", "marketing"),
        "admin": ca.issue("admin1", "admin"),
        "mkt": ca.issue("mkt1", "marketing"),
        "ops": ca.issue("ops1", "ops"),
    }


@pytest.fixture()
def main_chain(pki):
    return FakeChain(pki["ca"], chain_id="main")


@pytest.fixture()
def node(pki, main_chain):
    n = FakeNode(pki["ca"], *pki["node"], chain=main_chain)
    yield n
    n.close()


def cli(address, pki, who, *args, ca=None):
    cert, key = pki[who]
    return cli_main(["--addr", address, "--cert", cert, "--key", key, "--ca", ca or pki["ca"],
                     "--timeout", "5", *args])


def lines(capsys):
    return [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.strip()]


# ---- contract activation and VEE parameters ---------------------------------------------


def test_activation_builder_checks_every_vee_value():
    # DOMAIN.md VEE: the sum tolerance, spike factor, future tolerance, interpolation limit
    # and the spike check's minimum history are configurable; 0 = the default of each.
    p = parameters.activation_parameter("d1", 1, 500, sum_tolerance=3, spike_factor=6,
                                        future_tolerance_ms=600_000,
                                        max_interpolation_ms=3_600_000, spike_min_history=8)
    assert p.WhichOneof("body") == "activation"
    assert p.activation == C.ContractActivation(
        contract="fee-control", version=1, activate_at_height=500,
        vee=C.VeeParameters(sum_tolerance=3, spike_factor=6, future_tolerance_ms=600_000,
                            max_interpolation_ms=3_600_000, spike_min_history=8))
    assert parameters.activation_parameter("d1", 1, 1).activation.vee == C.VeeParameters()
    bad = [({"spike_factor": 1}, "spike_factor 1 is out of range: 2..1000"),
           ({"spike_factor": 1001}, "out of range"),
           ({"sum_tolerance": -1}, "must not be negative"),
           ({"future_tolerance_ms": -300}, "must not be negative .* 0 means the default"),
           ({"future_tolerance_ms": 86_400_001}, "more than a day"),
           ({"max_interpolation_ms": 604_800_001}, "out of range"),
           ({"spike_min_history": 11_521}, "8-day trailing window"),
           ({"spike_min_history": "4"}, "whole number"),
           ({"spike_factor": 2.5}, "whole number")]
    for values, why in bad:
        with pytest.raises(ValueError, match=why):
            parameters.activation_parameter("d1", 1, 10, **values)
    with pytest.raises(ValueError, match="contract version"):
        parameters.activation_parameter("d1", 0, 10)
    with pytest.raises(ValueError, match="block height"):
        parameters.activation_parameter("d1", 1, 0)
    with pytest.raises(ValueError, match="unknown contract"):
        parameters.activation_parameter("d1", 1, 10, contract="billing")
    with pytest.raises(ValueError, match="district"):
        parameters.activation_parameter("", 1, 10)


def test_cli_activation_signed_by_admin(pki, main_chain, node, capsys):
    assert cli(node.address, pki, "admin", "param", "activation", "--chain", "main",
               "--district", "d1", "--version", "1", "--at-height", "120",
               "--spike-factor", "7", "--spike-min-history", "12", "--sum-tolerance", "4",
               "--future-tolerance-ms", "120000", "--max-interpolation-ms", "3600000") == 0
    (line,) = lines(capsys)
    assert line["height"] == 1 and len(line["tx_id"]) == 64
    ((payload, tx),) = main_chain.payloads("parameter")
    assert payload.chain_id == "main" and payload.parameter.district == "d1"
    assert payload.parameter.activation == C.ContractActivation(
        contract="fee-control", version=1, activate_at_height=120,
        vee=C.VeeParameters(sum_tolerance=4, spike_factor=7, future_tolerance_ms=120_000,
                            max_interpolation_ms=3_600_000, spike_min_history=12))
    # Omitted values are 0: the defaults.
    assert cli(node.address, pki, "admin", "param", "activation", "--district", "d1",
               "--version", "1", "--at-height", "200") == 0
    capsys.readouterr()
    assert main_chain.payloads("parameter")[-1][0].parameter.activation.vee == C.VeeParameters()


@pytest.mark.parametrize("args, why", [
    (["--spike-factor", "x"], "'x' is not a whole number"),
    (["--spike-factor", "1"], "spike_factor 1 is out of range"),
    (["--sum-tolerance", "-2"], "must not be negative"),
    (["--spike-min-history", "1e3"], "not a whole number"),
    (["--max-interpolation-ms", "99999999999"], "out of range"),
])
def test_cli_activation_bad_values_submit_nothing(pki, main_chain, node, capsys, args, why):
    with pytest.raises(SystemExit) as e:
        cli(node.address, pki, "admin", "param", "activation", "--district", "d1",
            "--version", "1", "--at-height", "5", *args)
    assert e.value.code == 2
    assert why in capsys.readouterr().err
    assert main_chain.payloads("parameter") == []


def test_cli_activation_requires_version_and_height(pki, node, capsys):
    for args in (["--at-height", "5"], ["--version", "1"], ["--version", "0", "--at-height", "5"],
                 ["--version", "1", "--at-height", "0"]):
        with pytest.raises(SystemExit):
            cli(node.address, pki, "admin", "param", "activation", "--district", "d1", *args)
    err = capsys.readouterr().err
    assert "--version" in err and "--at-height" in err and "must be at least 1" in err


def test_tariff_help_says_how_to_change_a_tariff(capsys):
    with pytest.raises(SystemExit):
        cli_main(["param", "tariff", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "same tariff_id: it replaces the old one" in out


# ---- payment reversals ------------------------------------------------------------------


def test_reversal_builder():
    # DOMAIN.md: a reversal (冲正) has a negative amount and names the serial it reverses.
    p = parameters.reversal_parameter("d1", "acc1", 10000, "rev-1", "pay-1", paid_ms=9)
    assert p.payment == C.Payment(account="acc1", amount_fen=-10000, serial="rev-1",
                                  reverses_serial="pay-1", paid_ms=9)
    with pytest.raises(ValueError, match="its own serial"):
        parameters.reversal_parameter("d1", "acc1", 1, "pay-1", "pay-1")
    with pytest.raises(ValueError, match="serial of the payment to reverse"):
        parameters.reversal_parameter("d1", "acc1", 1, "rev-1", "")
    with pytest.raises(ValueError, match="positive"):
        parameters.reversal_parameter("d1", "acc1", -1, "rev-1", "pay-1")
    with pytest.raises(ValueError, match="above the limit"):
        parameters.reversal_parameter("d1", "acc1", 10 ** 15 + 1, "rev-1", "pay-1")
    with pytest.raises(ValueError, match="'/'"):
        parameters.reversal_parameter("d1", "acc1", 1, "rev/1", "pay-1")
    # A top-up names nothing.
    assert parameters.payment_parameter("d1", "a", 5, "p", paid_ms=1).payment.reverses_serial == ""


def test_cli_pay_reverses(pki, main_chain, node, capsys):
    assert cli(node.address, pki, "mkt", "pay", "--chain", "main", "--district", "d1",
               "--account", "acc1", "--amount", "10000", "--serial", "pay-1") == 0
    assert cli(node.address, pki, "mkt", "pay", "--chain", "main", "--district", "d1",
               "--account", "acc1", "--amount", "10000", "--serial", "rev-1",
               "--reverses", "pay-1") == 0
    assert [l["height"] for l in lines(capsys)] == [1, 2]
    top_up, reversal = [p.parameter.payment for p, _ in main_chain.payloads("parameter")]
    assert (top_up.amount_fen, top_up.reverses_serial) == (10000, "")
    assert (reversal.account, reversal.amount_fen, reversal.serial, reversal.reverses_serial) == \
        ("acc1", -10000, "rev-1", "pay-1")
    assert reversal.paid_ms > 1_600_000_000_000
    # Missing or contradictory pieces: a clear error, nothing submitted.
    assert cli(node.address, pki, "mkt", "pay", "--district", "d1", "--account", "acc1",
               "--amount", "5", "--serial", "pay-1", "--reverses", "pay-1") == 2
    assert "a reversal needs its own serial" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(node.address, pki, "mkt", "pay", "--district", "d1", "--account", "acc1",
            "--amount", "-5", "--serial", "rev-2", "--reverses", "pay-1")
    assert "positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(node.address, pki, "mkt", "pay", "--district", "d1", "--account", "acc1",
            "--reverses", "pay-1", "--serial", "rev-2")
    assert "--amount" in capsys.readouterr().err
    assert len(main_chain.payloads("parameter")) == 2


# ---- notice templates -------------------------------------------------------------------

ZH = "尊敬的客户，户号{account}（表号{meter}）余额{balance}元，状态：{state}。请及时缴费。"


def test_notice_template_checks():
    t = parameters.notice_template("Warning1", "customer", ZH)
    assert (t.kind, t.recipient, t.text) == (C.NOTICE_KIND_WARNING1, "customer", ZH)
    assert parameters.parse_notice_template("formal-disconnect:grid-worker:a:b {account}") == \
        C.NoticeTemplate(kind=C.NOTICE_KIND_FORMAL_DISCONNECT, recipient="grid_worker",
                         text="a:b {account}")
    for spec, why in (("warn:customer:x", "unknown notice kind 'warn'"),
                      ("warning1:bank:x", "unknown recipient 'bank'"),
                      ("warning1:grid_worker:x", "no warning1 notice goes to the grid_worker"),
                      ("formal_disconnect:customer:x", "goes to the grid_worker"),
                      ("reconnect:customer:  ", "empty"),
                      ("reconnect:customer:{balance} {amount}", "unknown placeholder {amount}"),
                      ("reconnect:customer:{ account}", "unknown placeholder"),
                      ("reconnect:customer:pay {balance", "unmatched brace"),
                      ("reconnect:customer:x}", "unmatched brace"),
                      ("reconnect:customer:" + "x" * 501, "more than 500"),
                      ("reconnect", "KIND:RECIPIENT:TEXT")):
        with pytest.raises(ValueError, match=why):
            parameters.parse_notice_template(spec)
    # Both reconnect notices (DOMAIN.md: an SMS to the customer and one to the grid worker).
    p = parameters.notice_templates_parameter("d1", "en", [
        ("reconnect", "customer", "{account} reconnected"),
        ("reconnect", "grid_worker", "reconnect {meter}")])
    assert [t.recipient for t in p.notice_templates.templates] == ["customer", "grid_worker"]
    with pytest.raises(ValueError, match="two templates"):
        parameters.notice_templates_parameter("d1", "en", [("warning2", "customer", "a"),
                                                           ("warning2", "customer", "b")])
    with pytest.raises(ValueError, match="zh-CN or en"):
        parameters.notice_templates_parameter("d1", "fr", [])
    # The language alone (no template): allowed, it switches the district's language.
    assert parameters.notice_templates_parameter("d1", "zh-CN").notice_templates.language == "zh-CN"


def test_notice_templates_round_trip_utf8():
    p = parameters.notice_templates_parameter("d1", "zh-CN", [("warning2", "customer", ZH)])
    again = C.DistrictParameter.FromString(p.SerializeToString())
    assert again.notice_templates.templates[0].text == ZH
    assert ZH.encode("utf-8") in p.SerializeToString()


def test_notice_template_files(tmp_path):
    lines_file = tmp_path / "t.txt"
    lines_file.write_text("# 中文短信\n\nwarning1:customer:" + ZH + "\n"
                          "formal_disconnect:grid_worker:停电通知 {account}\n", encoding="utf-8")
    language, templates = parameters.notice_templates_from_file(str(lines_file))
    assert language is None and [t.text for t in templates] == [ZH, "停电通知 {account}"]
    js = tmp_path / "t.json"
    js.write_text(json.dumps({"language": "zh-CN", "templates": [
        {"kind": "disconnect", "recipient": "customer", "text": ZH}]}, ensure_ascii=False),
        encoding="utf-8")
    assert parameters.notice_templates_from_file(str(js)) == (
        "zh-CN", [C.NoticeTemplate(kind=C.NOTICE_KIND_DISCONNECT, recipient="customer", text=ZH)])
    bad = tmp_path / "bad.txt"
    bad.write_text("warning1:customer:ok\nwarning9:customer:x\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: unknown notice kind"):
        parameters.notice_templates_from_file(str(bad))
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes(("warning1:customer:" + ZH).encode("gbk"))
    with pytest.raises(ValueError, match="not UTF-8"):
        parameters.notice_templates_from_file(str(gbk))
    js.write_text('{"templates": [{"kind": "warning1", "recipient": "customer"}]}')
    with pytest.raises(ValueError, match=r"templates\[0\] must be an object"):
        parameters.notice_templates_from_file(str(js))


def test_cli_notice_templates(pki, main_chain, node, tmp_path, capsys):
    f = tmp_path / "zh.txt"
    f.write_text("warning1:customer:" + ZH + "\n", encoding="utf-8")
    assert cli(node.address, pki, "mkt", "param", "notice-templates", "--chain", "main",
               "--district", "d1", "--language", "zh-CN", "--file", str(f),
               "--template", "formal_disconnect:grid_worker:户号{account}已停电") == 0
    assert cli(node.address, pki, "mkt", "param", "notice-templates", "--district", "d1",
               "--language", "en", "--template",
               "warning2:customer:Account {account}: balance {balance} yuan, supply will be cut") == 0
    assert [l["height"] for l in lines(capsys)] == [1, 2]
    zh, en = [p.parameter.notice_templates for p, _ in main_chain.payloads("parameter")]
    assert zh.language == "zh-CN" and [(t.kind, t.recipient, t.text) for t in zh.templates] == [
        (C.NOTICE_KIND_WARNING1, "customer", ZH),
        (C.NOTICE_KIND_FORMAL_DISCONNECT, "grid_worker", "户号{account}已停电")]
    assert en.language == "en" and en.templates[0].kind == C.NOTICE_KIND_WARNING2
    # Bad input: a clear error, nothing submitted.
    assert cli(node.address, pki, "mkt", "param", "notice-templates", "--district", "d1",
               "--language", "en", "--template", "warning1:customer:{acct}") == 2
    assert "unknown placeholder {acct}" in capsys.readouterr().err
    js = tmp_path / "en.json"
    js.write_text(json.dumps({"language": "en", "templates": []}))
    assert cli(node.address, pki, "mkt", "param", "notice-templates", "--district", "d1",
               "--language", "zh-CN", "--file", str(js)) == 2
    assert "is in language 'en', not --language zh-CN" in capsys.readouterr().err
    assert cli(node.address, pki, "mkt", "param", "notice-templates", "--district", "d1",
               "--language", "en", "--file", str(tmp_path / "none.txt")) == 2
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(node.address, pki, "mkt", "param", "notice-templates", "--district", "d1",
            "--language", "fr")
    assert len(main_chain.payloads("parameter")) == 2


# ---- district results on the main chain -------------------------------------------------


def result(name, state, balance, cycle=0, total=0, paid=0):
    return anchor_pb2.AccountResult(account=name, balance_fen=balance, state=state,
                                    charged_fen=cycle, cycle_start_ms=1_764_518_400_000,
                                    cycle_charged_fen=cycle, total_charged_fen=total,
                                    total_paid_fen=paid)


TOTALS = anchor_pb2.UplinkSummary(transactions=40, readings_accepted=96, readings_billed=95,
                                  charged_fen=12345, commands_issued=3, notices_issued=5,
                                  downlink_count=7)


@pytest.fixture()
def results(main_chain):
    main_chain.district_results["d1"] = (TOTALS, {
        "acc1": result("acc1", C.ACCOUNT_STATE_WARNING1, 1234, 250, 900, 2134),
        "acc2": result("acc2", C.ACCOUNT_STATE_DISCONNECTED, -250, 100, 2250, 2000),
        "acc3": result("acc3", C.ACCOUNT_STATE_NORMAL, 99999, 1, 1, 100000),
        "用户4": result("用户4", C.ACCOUNT_STATE_WARNING2, 5, 0, 95, 100),
    })
    main_chain.district_page_size = 2
    return main_chain


def test_client_district_results_pages(pki, results, node):
    with Client(node.address, *pki["ops"], ca=pki["ca"], timeout=5) as c:
        first = c.district_results("d1", chain_id="main")
        assert [a.account for a in first.accounts] == ["acc1", "acc2"]
        assert first.next_after == "acc2" and first.totals == TOTALS
        assert (list(first.warning), list(first.disconnected)) == (["acc1"], ["acc2"])
        assert first.accounts[1].balance_fen == -250 and first.accounts[1].total_paid_fen == 2000
        pages = list(c.district_results_pages("d1", chain_id="main"))
        assert [[a.account for a in p.accounts] for p in pages] == [["acc1", "acc2"],
                                                                   ["acc3", "用户4"]]
        assert pages[-1].next_after == "" and list(pages[-1].warning) == ["用户4"]
        one = c.district_results("d1", chain_id="main", after_account="acc1", limit=1)
        assert [a.account for a in one.accounts] == ["acc2"]
        with pytest.raises(RpcError) as e:
            c.district_results("d9", chain_id="main")
        assert e.value.code == StatusCode.NOT_FOUND
        with pytest.raises(ValueError):
            c.district_results("", chain_id="main")
    reqs = [r for m, r in results.requests if m.endswith("/GetDistrictResults")]
    assert [(r.chain_id, r.district, r.after_account, r.limit) for r in reqs[:4]] == [
        ("main", "d1", "", 0), ("main", "d1", "", 0), ("main", "d1", "acc2", 0),
        ("main", "d1", "acc1", 1)]


def test_district_results_text_from_constructed_messages():
    page1 = anchor_pb2.GetDistrictResultsResponse(
        district="d1", totals=TOTALS, next_after="acc2", warning=["acc1"], disconnected=["acc2"],
        accounts=[result("acc1", C.ACCOUNT_STATE_WARNING1, 1234, 250, 900, 2134),
                  result("acc2", C.ACCOUNT_STATE_DISCONNECTED, -250, 100, 2250, 2000)])
    page2 = anchor_pb2.GetDistrictResultsResponse(
        district="d1", totals=TOTALS, warning=["用户4"],
        accounts=[result("用户4", C.ACCOUNT_STATE_WARNING2, -5, 0, 95, 100)])
    text = district_results_text([page1, page2], "main")
    rows = text.splitlines()
    assert rows[0] == "district d1 (main chain main)"
    assert rows[1] == ("totals: 40 transactions, 96 readings accepted, 95 billed, charged "
                       "123.45 yuan, 3 commands, 5 notices, 7 parameters taken")
    assert rows[2] == "warning: acc1, 用户4" and rows[3] == "disconnected: acc2"
    assert rows[5].split() == ["ACCOUNT", "BALANCE", "STATE", "CYCLE", "CHARGED", "TOTAL",
                               "CHARGED", "TOTAL", "PAID", "CYCLE", "START", "(UTC)"]
    assert rows[6].split() == ["acc1", "12.34", "WARNING1", "2.50", "9.00", "21.34",
                               "2025-11-30", "16:00"]
    assert rows[7].split()[:3] == ["acc2", "-2.50", "DISCONNECTED"]
    assert rows[8].split()[:3] == ["用户4", "-0.05", "WARNING2"]
    assert "more accounts" not in text
    # Columns line up (CJK characters are two columns wide).
    assert _width(rows[6][:rows[6].index("12.34")]) == _width(rows[8][:rows[8].index("-0.05")])
    assert "more accounts after acc2" in district_results_text([page1])
    assert yuan(-5) == "-0.05" and yuan(100) == "1.00" and yuan(0) == "0.00" and \
        yuan(-123456) == "-1234.56"
    empty = district_results_text([anchor_pb2.GetDistrictResultsResponse(district="d2")])
    assert "no accounts" in empty and "warning: none" in empty


def test_cli_district_results(pki, results, node, capsys):
    assert cli(node.address, pki, "ops", "district-results", "--chain", "main", "--district",
               "d1") == 0
    out = capsys.readouterr().out
    assert "warning: acc1\n" in out and "disconnected: acc2\n" in out
    assert "acc3" not in out and "more accounts after acc2 (--after acc2, or --all)" in out
    assert cli(node.address, pki, "ops", "district-results", "--chain", "main", "--district",
               "d1", "--all") == 0
    out = capsys.readouterr().out
    assert "warning: acc1, 用户4\n" in out and "more accounts" not in out
    row = [l for l in out.splitlines() if l.startswith("acc3")][0].split()
    assert row[:6] == ["acc3", "999.99", "NORMAL", "0.01", "0.01", "1000.00"]
    assert cli(node.address, pki, "ops", "district-results", "--chain", "main", "--district",
               "d1", "--after", "acc2", "--limit", "1", "--json") == 0
    (page,) = lines(capsys)
    assert [a["account"] for a in page["accounts"]] == ["acc3"]
    assert page["accounts"][0]["state"] == "NORMAL" and page["next_after"] == "acc3"
    assert page["totals"]["charged_fen"] == 12345
    assert cli(node.address, pki, "ops", "district-results", "--chain", "main", "--district",
               "d1", "--all", "--json") == 0
    assert [len(p["accounts"]) for p in lines(capsys)] == [2, 2]
    assert cli(node.address, pki, "ops", "district-results", "--chain", "main", "--district",
               "d9") == 2
    assert "error: NOT_FOUND: no district 'd9'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(node.address, pki, "ops", "district-results", "--chain", "main")


def test_cli_district_results_unimplemented_node(pki, capsys):
    # A node without the RPC: the status is reported, exit 2.
    bare = FakeNode(pki["ca"], *pki["node"])
    try:
        assert cli(bare.address, pki, "ops", "district-results", "--district", "d1") == 2
        assert "error: UNIMPLEMENTED:" in capsys.readouterr().err
    finally:
        bare.close()


def test_state_values_of_known_keys_are_decoded(pki, main_chain, node, capsys):
    acct = result("acc1", C.ACCOUNT_STATE_DISCONNECTED, -250, 100, 2250, 2000)
    version = __import__("gridledger").ingest_pb2.StateVersion(height=3, tx_index=1)
    main_chain._write("uplink/d1/account/acc1", version, acct.SerializeToString())
    main_chain._write("uplink/d1/totals", version, TOTALS.SerializeToString())
    main_chain._write("meter/m1", version, b"\x00\x01")
    assert cli(node.address, pki, "ops", "state", "--chain", "main", "uplink/d1/account/acc1") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["found"] and doc["value"] == acct.SerializeToString().hex()
    assert doc["decoded_as"] == "gridledger.AccountResult"
    assert doc["decoded"]["balance_fen"] == -250 and doc["decoded"]["total_charged_fen"] == 2250
    assert cli(node.address, pki, "ops", "history", "--chain", "main", "uplink/d1/totals") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["entries"][0]["decoded_as"] == "gridledger.UplinkSummary"
    assert doc["entries"][0]["decoded"]["charged_fen"] == 12345
    assert cli(node.address, pki, "ops", "state", "--chain", "main", "meter/m1") == 0
    doc = json.loads(capsys.readouterr().out)
    assert "decoded" not in doc and doc["value"] == "0001"
    # Offline: each prefix of Docs/anchoring.md and Docs/contracts.md that holds a message.
    assert decode_state_value("uplink/d1/totals", TOTALS.SerializeToString()) == TOTALS
    assert decode_state_value("account/acc1", C.Account(account="acc1").SerializeToString()) == \
        C.Account(account="acc1")
    assert decode_state_value("thresholds/", C.FeeControlThresholds(alarm1_fen=5)
                              .SerializeToString()).alarm1_fen == 5
    assert decode_state_value("command-status/1/c1", b"") is None
    assert decode_state_value("uplink/d1/totals", b"\xff\xff") is None


# ---- connection errors as sentences -----------------------------------------------------


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_connection_refused(pki, capsys):
    port = _closed_port()
    assert cli(f"127.0.0.1:{port}", pki, "ops", "status") == 2
    err = capsys.readouterr().err
    assert err == f"error: cannot connect to 127.0.0.1:{port}: connection refused (is the node " \
                  f"running?)\n"


def test_cli_unknown_host(pki, capsys):
    assert cli("no-such-host.invalid:7400", pki, "ops", "status") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot connect to no-such-host.invalid:7400: unknown host "
                          "no-such-host.invalid") and err.count("\n") == 1


def test_cli_wrong_ca(pki, node, capsys):
    # Trusting another CA: the node's certificate does not chain to it.
    assert cli(node.address, pki, "ops", "status", ca=pki["other_ca"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: cannot connect to {node.address}: TLS handshake failed: the node's "
                   f"certificate is not signed by the CA in {pki['other_ca']} (wrong --ca, or "
                   f"a node of another deployment?)\n")


def test_cli_client_certificate_rejected(pki, node, capsys):
    # A client certificate of another CA: the node refuses it, however the refusal arrives
    # (alert during the handshake, or the connection closed under the first PING).
    assert cli(node.address, pki, "other_mkt", "status") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot connect to {node.address}: ") and err.count("\n") == 1
    assert "reject" in err and "certificate" in err, err


def test_cli_server_name_mismatch(pki, node, capsys):
    assert cli_main(["--addr", node.address, "--server-name", "node9.example", "--cert",
                     pki["ops"][0], "--key", pki["ops"][1], "--ca", pki["ca"], "status"]) == 2
    err = capsys.readouterr().err
    assert "does not name node9.example (use --server-name" in err, err


def test_cli_not_a_gridledger_port(pki, capsys):
    other = FakeNode(pki["ca"], *pki["node"], alpn="h2")
    try:
        assert cli(other.address, pki, "ops", "status") == 2
        err = capsys.readouterr().err
        assert "does not speak gridledger/1 (ALPN)" in err and err.count("\n") == 1, err
    finally:
        other.close()


def test_cli_handshake_timeout(pki, capsys):
    # A port that accepts TCP but never speaks TLS: the deadline ends the attempt.
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    port = listener.getsockname()[1]
    try:
        assert cli_main(["--addr", f"127.0.0.1:{port}", "--timeout", "0.5", "--cert",
                         pki["ops"][0], "--key", pki["ops"][1], "--ca", pki["ca"],
                         "status"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: cannot connect to 127.0.0.1:{port}: no answer within "
                              f"0.5 s") and err.count("\n") == 1, err
    finally:
        listener.close()
        for conn, _ in accepted:
            conn.close()


def test_cli_missing_certificate_file(pki, tmp_path, capsys):
    missing = str(tmp_path / "nope.crt")
    assert cli_main(["--addr", "127.0.0.1:1", "--cert", missing, "--key", pki["ops"][1],
                     "--ca", pki["ca"], "status"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: cannot read --cert {missing}: no such file or directory\n", err


def test_describe_connect_error_sentences():
    a = "10.0.0.9:7400"
    for exc, want in (
            (OSError(errno.EHOSTUNREACH, "No route to host"),
             "host unreachable (check the address and the network)"),
            (OSError(errno.ENETUNREACH, "Network is unreachable"),
             "network unreachable (check the address and the network)"),
            (TimeoutError("timed out"), "no answer within 3 s (is the address right"),
            (OSError(errno.ETIMEDOUT, "Connection timed out"), "no answer within 3 s"),
            (ConnectionResetError(errno.ECONNRESET, "reset"), "closed the connection during "
                                                               "the TLS handshake"),
            (RpcError(StatusCode.UNAVAILABLE, "connection closed by the server"),
             "right after the TLS handshake: the node rejected this client's certificate"),
            (RpcError(StatusCode.DEADLINE_EXCEEDED, "no PING acknowledgement"),
             "did not answer within 3 s after the TLS handshake")):
        text = describe_connect_error(a, exc, timeout=3)
        assert text.startswith(f"cannot connect to {a}: ") and want in text, text
        assert "\n" not in text and "Errno" not in text
