"""Main-chain and district transactions other than readings (Docs/anchoring.md,
"Registry on the main chain", "Downlink and uplink"; Proto/gridledger/contracts.proto):
builders of the ``TxPayload`` bodies that the CLI and :class:`gridledger.Client` sign.

    district_registration("d1", [der1, der2])          # signer role admin, main chain
    customer_parameter("d1", "acc1", "m1", "T1")        # signer role marketing, main chain
    tariff_parameter("d1", tariff_from_json(json.load(f)))
    thresholds_parameter("d1", alarm1_fen=2000, alarm2_fen=500, overdraft_limit_fen=0,
                         reconnect_allowed_fen=100)
    payment_parameter("d1", "acc1", 10000, "pay-0001")
    reversal_parameter("d1", "acc1", 10000, "rev-0001", reverses="pay-0001")  # 冲正: -10000
    activation_parameter("d1", version=1, activate_at_height=500, spike_factor=6,
                         spike_min_history=8)               # signer role admin, main chain
    notice_templates_parameter("d1", "en", [("warning1", "customer",
                                            "Account {account}: balance {balance} yuan")])
    command_ack("cmd-7", success=True)                  # signer role device, district chain
    tx_payload("main", parameter=p)                     # TxPayload, created now, random nonce

Amounts are fen, prices 0.0001 CNY/kWh, energy 0.01 kWh, times UTC ms (DOMAIN.md).
Builders check what the node would otherwise refuse late (empty ids, schedule sizes) and
raise ``ValueError``.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import anchor_pb2, chain_pb2, contracts_pb2

__all__ = ["tx_payload", "district_registration", "certificates_der", "customer_parameter",
           "tariff_parameter", "tariff_from_json", "thresholds_parameter",
           "payment_parameter", "reversal_parameter", "activation_parameter",
           "vee_parameters", "notice_templates_parameter", "notice_template",
           "parse_notice_template", "notice_templates_from_file", "command_ack",
           "parse_cycle_start", "SCHEDULE_CELLS", "PHASES", "NOTICE_LANGUAGES",
           "NOTICE_PLACEHOLDERS", "VEE_LIMITS", "MAX_AMOUNT_FEN"]

# 12 months x 24 hours, month-major (contracts.proto, Tariff.weekday_schedule).
SCHEDULE_CELLS = 12 * 24
PHASES = ("A", "B", "C", "ABC")
_CYCLES = {"monthly": contracts_pb2.BILLING_CYCLE_MONTHLY,
           "annual": contracts_pb2.BILLING_CYCLE_ANNUAL}


def _required(value: str, what: str) -> str:
    if not value:
        raise ValueError(f"{what} is required")
    return value


def tx_payload(chain_id: str, created_ms: Optional[int] = None, nonce: Optional[str] = None,
               **body: Any) -> chain_pb2.TxPayload:
    """A ``TxPayload`` for ``chain_id`` with one body field (``parameter=``,
    ``district_registration=``, ``command_ack=`` ...): created now and a random nonce
    unless given."""
    if len(body) != 1:
        raise ValueError(f"exactly one body field, not {sorted(body)}")
    return chain_pb2.TxPayload(
        chain_id=_required(chain_id, "chain_id"),
        created_ms=int(time.time() * 1000) if created_ms is None else created_ms,
        nonce=secrets.token_hex(16) if nonce is None else nonce, **body)


def certificates_der(pem_paths: Iterable[str]) -> List[bytes]:
    """DER of every certificate in the PEM files, in order (a file may hold several)."""
    out: List[bytes] = []
    for path in pem_paths:
        with open(path, "rb") as f:
            data = f.read()
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise ValueError(f"{path}: no PEM certificate: {exc}") from None
        out.extend(c.public_bytes(serialization.Encoding.DER) for c in certs)
    return out


def district_registration(district: str, member_certificates: Sequence[bytes]
                          ) -> anchor_pb2.DistrictRegistration:
    """The registry entry of a district: its members' node certificates (DER)."""
    if not member_certificates:
        raise ValueError("at least one member certificate is required")
    return anchor_pb2.DistrictRegistration(district=_required(district, "district"),
                                           member_certificates=list(member_certificates))


def parse_cycle_start(text: str) -> Tuple[int, int]:
    """"MM-DD" -> (month, day) of an annual cycle start."""
    m = re.fullmatch(r"(\d{1,2})-(\d{1,2})", text)
    if not m or not 1 <= int(m.group(1)) <= 12 or not 1 <= int(m.group(2)) <= 31:
        raise ValueError(f"{text!r} is not MM-DD")
    return int(m.group(1)), int(m.group(2))


def customer_parameter(district: str, account: str, meter_id: str, tariff_id: str,
                       phase: str = "A", protected_supply: bool = False, contact: str = "",
                       thresholds_id: str = "", opening_balance_fen: int = 0,
                       cycle_start: Optional[Tuple[int, int]] = None, rollover: int = 0,
                       interval_minutes: int = 0, generating: bool = False
                       ) -> contracts_pb2.DistrictParameter:
    """A customer archive entry (``CustomerArchive``) for ``district``."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, not {phase!r}")
    month, day = cycle_start or (0, 0)
    return contracts_pb2.DistrictParameter(
        district=_required(district, "district"),
        customer=contracts_pb2.CustomerArchive(
            account=_required(account, "account"), meter_id=_required(meter_id, "meter_id"),
            phase=phase, tariff_id=_required(tariff_id, "tariff_id"),
            protected_supply=protected_supply, contact=contact,
            cycle_start_month=month, cycle_start_day=day, thresholds_id=thresholds_id,
            rollover=rollover, interval_minutes=interval_minutes, generating=generating,
            opening_balance_fen=opening_balance_fen))


def _schedule(value: Any, what: str, periods: int) -> bytes:
    cells = list(value)
    if len(cells) != SCHEDULE_CELLS:
        raise ValueError(f"{what} has {len(cells)} entries, not {SCHEDULE_CELLS} (12 x 24)")
    for i, c in enumerate(cells):
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < max(periods, 1):
            raise ValueError(f"{what}[{i}] = {c!r} is not a period index (0..{periods - 1})")
    return bytes(cells)


def tariff_from_json(doc: Mapping[str, Any]) -> contracts_pb2.Tariff:
    """A ``Tariff`` from its JSON form::

        {"tariff_id": "T1", "utc_offset_minutes": 480,
         "periods": [{"name": "sharp", "base_price": 15000}, ...],
         "weekday_schedule": [288 period indices], "weekend_schedule": [...],
         "cycle": "monthly" | "annual", "tier_limits": [..], "tier_surcharges": [..],
         "fixed_charge_fen": 0}

    A missing weekend_schedule is the weekday one."""
    known = {"tariff_id", "utc_offset_minutes", "periods", "weekday_schedule",
             "weekend_schedule", "cycle", "tier_limits", "tier_surcharges", "fixed_charge_fen"}
    unknown = set(doc) - known
    if unknown:
        raise ValueError(f"unknown tariff fields: {', '.join(sorted(unknown))}")
    periods = [contracts_pb2.TariffPeriod(name=str(p["name"]), base_price=int(p["base_price"]))
               for p in doc.get("periods", [])]
    if not periods:
        raise ValueError("a tariff needs at least one period")
    weekday = _schedule(doc.get("weekday_schedule", ()), "weekday_schedule", len(periods))
    weekend = _schedule(doc["weekend_schedule"], "weekend_schedule", len(periods)) \
        if "weekend_schedule" in doc else weekday
    cycle = doc.get("cycle", "monthly")
    if cycle not in _CYCLES:
        raise ValueError(f"cycle must be monthly or annual, not {cycle!r}")
    limits = [int(v) for v in doc.get("tier_limits", [])]
    surcharges = [int(v) for v in doc.get("tier_surcharges", [])]
    if len(limits) != len(surcharges):
        raise ValueError("tier_limits and tier_surcharges need one entry each per tier")
    if limits != sorted(set(limits)):
        raise ValueError("tier_limits must be strictly ascending")
    return contracts_pb2.Tariff(
        tariff_id=_required(str(doc.get("tariff_id", "")), "tariff_id"),
        utc_offset_minutes=int(doc.get("utc_offset_minutes", 0)), periods=periods,
        weekday_schedule=weekday, weekend_schedule=weekend, cycle=_CYCLES[cycle],
        tier_limits=limits, tier_surcharges=surcharges,
        fixed_charge_fen=int(doc.get("fixed_charge_fen", 0)))


def tariff_parameter(district: str, tariff: contracts_pb2.Tariff
                     ) -> contracts_pb2.DistrictParameter:
    return contracts_pb2.DistrictParameter(district=_required(district, "district"),
                                           tariff=tariff)


def thresholds_parameter(district: str, alarm1_fen: int, alarm2_fen: int,
                         overdraft_limit_fen: int, reconnect_allowed_fen: int,
                         thresholds_id: str = "", direct_close: bool = False,
                         command_valid_ms: int = 0, grid_worker_contact: str = ""
                         ) -> contracts_pb2.DistrictParameter:
    """Fee-control thresholds (``thresholds_id`` "" = the district default)."""
    return contracts_pb2.DistrictParameter(
        district=_required(district, "district"),
        thresholds=contracts_pb2.FeeControlThresholds(
            thresholds_id=thresholds_id, alarm1_fen=alarm1_fen, alarm2_fen=alarm2_fen,
            overdraft_limit_fen=overdraft_limit_fen,
            reconnect_allowed_fen=reconnect_allowed_fen, direct_close=direct_close,
            command_valid_ms=command_valid_ms, grid_worker_contact=grid_worker_contact))


# One payment (or reversal) at most, fen: the node refuses more (10^15 fen = 10^13 CNY).
MAX_AMOUNT_FEN = 10 ** 15


def _serial(value: str, what: str) -> str:
    _required(value, what)
    if "/" in value:
        raise ValueError(f"{what} {value!r} must not contain '/'")
    return value


def _amount(amount_fen: int) -> int:
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
        raise ValueError(f"amount must be a whole number of fen, not {amount_fen!r}")
    if amount_fen <= 0:
        raise ValueError(f"amount must be positive, not {amount_fen}")
    if amount_fen > MAX_AMOUNT_FEN:
        raise ValueError(f"amount {amount_fen} fen is above the limit of {MAX_AMOUNT_FEN} fen")
    return amount_fen


def payment_parameter(district: str, account: str, amount_fen: int, serial: str,
                      paid_ms: Optional[int] = None) -> contracts_pb2.DistrictParameter:
    """A payment (top-up) to ``account`` (``serial`` unique per payment; paid now unless
    given)."""
    return contracts_pb2.DistrictParameter(
        district=_required(district, "district"),
        payment=contracts_pb2.Payment(
            account=_required(account, "account"), amount_fen=_amount(amount_fen),
            serial=_serial(serial, "serial"),
            paid_ms=int(time.time() * 1000) if paid_ms is None else paid_ms))


def reversal_parameter(district: str, account: str, amount_fen: int, serial: str,
                       reverses: str, paid_ms: Optional[int] = None
                       ) -> contracts_pb2.DistrictParameter:
    """A reversal (冲正) of payment ``reverses``: its own ``serial`` and ``amount_fen`` =
    the reversed payment's amount, given positive and sent negative.  The node refuses a
    reversal of an unknown or already reversed serial, or of another amount."""
    _serial(reverses, "the serial of the payment to reverse")
    if serial == reverses:
        raise ValueError(f"a reversal needs its own serial, not the reversed one ({serial!r})")
    return contracts_pb2.DistrictParameter(
        district=_required(district, "district"),
        payment=contracts_pb2.Payment(
            account=_required(account, "account"), amount_fen=-_amount(amount_fen),
            serial=_serial(serial, "serial"), reverses_serial=reverses,
            paid_ms=int(time.time() * 1000) if paid_ms is None else paid_ms))


# ---- contract activation and VEE parameters (contracts.proto, VeeParameters) -------------

CONTRACTS = ("fee-control",)
# name: (lowest, highest, meaning, default); 0 always means "the default".
VEE_LIMITS = {
    "sum_tolerance": (1, 10_000, "0.01 kWh", "2"),
    "spike_factor": (2, 1000, "times the trailing average interval", "5"),
    "future_tolerance_ms": (1, 86_400_000, "ms", "300000"),
    "max_interpolation_ms": (1, 604_800_000, "ms", "7200000"),
    "spike_min_history": (1, 11_520, "intervals", "4"),
}
_VEE_WHY = {
    "spike_factor": "a factor of 1 would hold every reading above the average",
    "future_tolerance_ms": "more than a day would let a wrong meter clock through",
    "max_interpolation_ms": "longer gaps are estimated from the weekday profile",
    "spike_min_history": "the 8-day trailing window holds no more intervals, even at "
                         "1-minute readings",
}


def _check_vee(name: str, value: Any) -> int:
    low, high, unit, default = VEE_LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    if value == 0:
        return 0
    if value < 0:
        raise ValueError(f"{name} must not be negative ({value}); 0 means the default "
                         f"({default})")
    if not low <= value <= high:
        why = _VEE_WHY.get(name)
        raise ValueError(f"{name} {value} is out of range: {low}..{high} {unit}, or 0 for the "
                         f"default ({default})" + (f"; {why}" if why else ""))
    return value


def vee_parameters(sum_tolerance: int = 0, spike_factor: int = 0, future_tolerance_ms: int = 0,
                   max_interpolation_ms: int = 0, spike_min_history: int = 0
                   ) -> contracts_pb2.VeeParameters:
    """``VeeParameters`` checked against :data:`VEE_LIMITS` (0 = the default of each)."""
    return contracts_pb2.VeeParameters(
        sum_tolerance=_check_vee("sum_tolerance", sum_tolerance),
        spike_factor=_check_vee("spike_factor", spike_factor),
        future_tolerance_ms=_check_vee("future_tolerance_ms", future_tolerance_ms),
        max_interpolation_ms=_check_vee("max_interpolation_ms", max_interpolation_ms),
        spike_min_history=_check_vee("spike_min_history", spike_min_history))


def activation_parameter(district: str, version: int, activate_at_height: int,
                         vee: Optional[contracts_pb2.VeeParameters] = None,
                         contract: str = "fee-control", **vee_values: int
                         ) -> contracts_pb2.DistrictParameter:
    """A ``ContractActivation`` (signer role admin): contract ``version`` with its VEE
    parameters applies to ``district`` from district height ``activate_at_height`` on.
    VEE values come as ``vee`` or as keywords of :func:`vee_parameters`."""
    if contract not in CONTRACTS:
        raise ValueError(f"unknown contract {contract!r} (known: {', '.join(CONTRACTS)})")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2 ** 32:
        raise ValueError(f"version must be a contract version (1, 2, ...), not {version!r}")
    if isinstance(activate_at_height, bool) or not isinstance(activate_at_height, int) or \
            not 1 <= activate_at_height < 2 ** 64:
        raise ValueError(f"activation height must be a district block height (1 or more), "
                         f"not {activate_at_height!r}")
    if vee is not None and vee_values:
        raise ValueError("give the VEE parameters either as vee= or as keywords, not both")
    if vee is None:
        vee = vee_parameters(**vee_values)
    else:
        vee = vee_parameters(vee.sum_tolerance, vee.spike_factor, vee.future_tolerance_ms,
                             vee.max_interpolation_ms, vee.spike_min_history)
    return contracts_pb2.DistrictParameter(
        district=_required(district, "district"),
        activation=contracts_pb2.ContractActivation(
            contract=contract, version=version, activate_at_height=activate_at_height,
            vee=vee))


# ---- notice templates (contracts.proto, NoticeTemplates) ----------------------------------

NOTICE_LANGUAGES = ("zh-CN", "en")
NOTICE_PLACEHOLDERS = ("account", "meter", "balance", "state")
NOTICE_TEXT_MAX = 500  # characters; a long SMS is several messages already
_NOTICE_KINDS = {"warning1": contracts_pb2.NOTICE_KIND_WARNING1,
                 "warning2": contracts_pb2.NOTICE_KIND_WARNING2,
                 "disconnect": contracts_pb2.NOTICE_KIND_DISCONNECT,
                 "formal_disconnect": contracts_pb2.NOTICE_KIND_FORMAL_DISCONNECT,
                 "reconnect": contracts_pb2.NOTICE_KIND_RECONNECT}
# Who receives each kind (DOMAIN.md "Prepaid fee control").
_NOTICE_RECIPIENTS = {"warning1": ("customer",), "warning2": ("customer",),
                      "disconnect": ("customer",), "formal_disconnect": ("grid_worker",),
                      "reconnect": ("customer", "grid_worker")}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _name(text: str) -> str:
    return text.strip().lower().replace("-", "_")


def notice_template(kind: str, recipient: str, text: str) -> contracts_pb2.NoticeTemplate:
    """One template: ``kind`` warning1 | warning2 | disconnect | formal_disconnect |
    reconnect, ``recipient`` customer | grid_worker, ``text`` with placeholders
    {account} {meter} {balance} {state} only."""
    k = _name(kind)
    if k.startswith("notice_kind_"):
        k = k[len("notice_kind_"):]
    if k not in _NOTICE_KINDS:
        raise ValueError(f"unknown notice kind {kind!r} (known: {', '.join(_NOTICE_KINDS)})")
    r = _name(recipient)
    if r not in ("customer", "grid_worker"):
        raise ValueError(f"unknown recipient {recipient!r} (customer or grid_worker)")
    if r not in _NOTICE_RECIPIENTS[k]:
        raise ValueError(f"no {k} notice goes to the {r} (it goes to the "
                         f"{' and the '.join(_NOTICE_RECIPIENTS[k])})")
    if not text or not text.strip():
        raise ValueError(f"the {k} text for the {r} is empty")
    if len(text) > NOTICE_TEXT_MAX:
        raise ValueError(f"the {k} text for the {r} has {len(text)} characters, more than "
                         f"{NOTICE_TEXT_MAX}")
    for m in _PLACEHOLDER.finditer(text):
        if m.group(1) not in NOTICE_PLACEHOLDERS:
            raise ValueError(f"unknown placeholder {m.group(0)} in the {k} text for the {r} "
                             f"(known: {', '.join('{' + p + '}' for p in NOTICE_PLACEHOLDERS)})")
    rest = _PLACEHOLDER.sub("", text)
    if "{" in rest or "}" in rest:
        raise ValueError(f"unmatched brace in the {k} text for the {r}: placeholders are "
                         f"written {{account}}")
    return contracts_pb2.NoticeTemplate(kind=_NOTICE_KINDS[k], recipient=r, text=text)


def parse_notice_template(spec: str) -> contracts_pb2.NoticeTemplate:
    """``KIND:RECIPIENT:TEXT`` (the text may contain colons) -> a checked template."""
    parts = spec.split(":", 2)
    if len(parts) != 3:
        raise ValueError(f"{spec!r} is not KIND:RECIPIENT:TEXT")
    return notice_template(*parts)


def notice_templates_parameter(district: str, language: str,
                               templates: Iterable[Any] = ()
                               ) -> contracts_pb2.DistrictParameter:
    """``NoticeTemplates`` for ``district`` in ``language`` ("zh-CN" or "en"): each
    template a ``NoticeTemplate`` or a (kind, recipient, text) tuple; at most one per kind
    and recipient.  No template switches the language only."""
    if language not in NOTICE_LANGUAGES:
        raise ValueError(f"language must be {' or '.join(NOTICE_LANGUAGES)}, not {language!r}")
    checked: List[contracts_pb2.NoticeTemplate] = []
    seen = set()
    for t in templates:
        if isinstance(t, contracts_pb2.NoticeTemplate):
            kind = contracts_pb2.NoticeKind.Name(t.kind) if t.kind in \
                contracts_pb2.NoticeKind.values() else str(t.kind)
            t = notice_template(kind, t.recipient, t.text)
        else:
            t = notice_template(*t)
        key = (t.kind, t.recipient)
        if key in seen:
            raise ValueError(f"two templates for {contracts_pb2.NoticeKind.Name(t.kind)} to the "
                             f"{t.recipient}")
        seen.add(key)
        checked.append(t)
    return contracts_pb2.DistrictParameter(
        district=_required(district, "district"),
        notice_templates=contracts_pb2.NoticeTemplates(language=language, templates=checked))


def notice_templates_from_file(path: str) -> Tuple[Optional[str], List[contracts_pb2.NoticeTemplate]]:
    """(language or None, templates) from a UTF-8 file: either JSON
    ``{"language": "en", "templates": [{"kind": ..., "recipient": ..., "text": ...}]}`` or
    lines ``KIND:RECIPIENT:TEXT`` (blank lines and lines starting with # ignored; the same
    format as gridctl's).  Errors name the file and line."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if text.lstrip().startswith("{"):
        import json
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{path}: not JSON: {exc}") from None
        unknown = set(doc) - {"language", "templates"}
        if unknown:
            raise ValueError(f"{path}: unknown fields: {', '.join(sorted(unknown))}")
        language = doc.get("language")
        if language is not None and not isinstance(language, str):
            raise ValueError(f"{path}: language must be a string")
        out = []
        for i, t in enumerate(doc.get("templates", [])):
            if not isinstance(t, dict) or set(t) != {"kind", "recipient", "text"} or \
                    not all(isinstance(v, str) for v in t.values()):
                raise ValueError(f"{path}: templates[{i}] must be an object with the strings "
                                 f"kind, recipient and text")
            try:
                out.append(notice_template(t["kind"], t["recipient"], t["text"]))
            except ValueError as exc:
                raise ValueError(f"{path}: templates[{i}]: {exc}") from None
        return language, out
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            out.append(parse_notice_template(line))
        except ValueError as exc:
            raise ValueError(f"{path}:{n}: {exc}") from None
    return None, out


def command_ack(command_id: str, success: bool = True, detail: str = ""
                ) -> contracts_pb2.CommandAck:
    """A terminal's answer to a control command (district chain, signer role device)."""
    return contracts_pb2.CommandAck(command_id=_required(command_id, "command_id"),
                                    success=success, detail=detail)
