"""Main-chain and district transactions other than readings (Docs/anchoring.md,
"Registry on the main chain", "Downlink and uplink"; Proto/gridledger/contracts.proto):
builders of the ``TxPayload`` bodies that the CLI and :class:`gridledger.Client` sign.

    district_registration("d1", [der1, der2])          # signer role admin, main chain
    customer_parameter("d1", "acc1", "m1", "T1")        # signer role marketing, main chain
    tariff_parameter("d1", tariff_from_json(json.load(f)))
    thresholds_parameter("d1", alarm1_fen=2000, alarm2_fen=500, overdraft_limit_fen=0,
                         reconnect_allowed_fen=100)
    payment_parameter("d1", "acc1", 10000, "pay-0001")
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
           "payment_parameter", "command_ack", "parse_cycle_start", "SCHEDULE_CELLS",
           "PHASES"]

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


def payment_parameter(district: str, account: str, amount_fen: int, serial: str,
                      paid_ms: Optional[int] = None) -> contracts_pb2.DistrictParameter:
    """A payment to ``account`` (``serial`` unique per payment; paid now unless given)."""
    if amount_fen <= 0:
        raise ValueError(f"amount must be positive, not {amount_fen}")
    return contracts_pb2.DistrictParameter(
        district=_required(district, "district"),
        payment=contracts_pb2.Payment(
            account=_required(account, "account"), amount_fen=amount_fen,
            serial=_required(serial, "serial"),
            paid_ms=int(time.time() * 1000) if paid_ms is None else paid_ms))


def command_ack(command_id: str, success: bool = True, detail: str = ""
                ) -> contracts_pb2.CommandAck:
    """A terminal's answer to a control command (district chain, signer role device)."""
    return contracts_pb2.CommandAck(command_id=_required(command_id, "command_id"),
                                    success=success, detail=detail)
