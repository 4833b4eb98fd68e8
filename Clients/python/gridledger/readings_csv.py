"""Meter readings from CSV files (the ``ingest`` command).

Header (every column required, in any order; no others)::

    meter_id,timestamp_ms,energy_total,energy_sharp,energy_peak,energy_flat,energy_valley,
    energy_reverse,voltage_a_dv,voltage_b_dv,voltage_c_dv,current_a_ma,current_b_ma,
    current_c_ma,active_power_w,reactive_power_var,events

Units as in chain.proto: energy in 0.01 kWh, voltage in 0.1 V, current in mA, power in W /
var, time in UTC ms.  Cells are decimal integers (surrounding blanks ignored).  As the
node requires, ``meter_id`` is 1 to 64 of ``A-Z a-z 0-9 . _ -`` and ``timestamp_ms`` is in
``1 .. 10^14 - 1``.  A phase is
absent when both its voltage and current cells are empty; a reading has phase A only, or A,
B and C, or (no electrical values) none.  ``events`` is a MeterEvent bit set, decimal or
``0x`` hex; empty means 0.

:func:`read_readings_csv` checks every row before returning and raises
:class:`ReadingsCsvError` listing every problem as ``file:line: reason``.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Iterable, List, Optional, Sequence, Tuple

from . import chain_pb2

__all__ = ["COLUMNS", "ReadingsCsvError", "read_readings_csv", "parse_readings_csv"]

COLUMNS: Tuple[str, ...] = (
    "meter_id", "timestamp_ms", "energy_total", "energy_sharp", "energy_peak", "energy_flat",
    "energy_valley", "energy_reverse", "voltage_a_dv", "voltage_b_dv", "voltage_c_dv",
    "current_a_ma", "current_b_ma", "current_c_ma", "active_power_w", "reactive_power_var",
    "events",
)

_U32 = (0, 2**32 - 1)
_I32 = (-(2**31), 2**31 - 1)
_U64 = (0, 2**64 - 1)
_I64 = (-(2**63), 2**63 - 1)
_ENERGY = ("energy_total", "energy_sharp", "energy_peak", "energy_flat", "energy_valley",
           "energy_reverse")
_PHASES = ("a", "b", "c")
_METER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # the node's TransactionValidator rule
_MAX_TIMESTAMP_MS = 10**14 - 1  # the node's limit (state keys hold 15 digits)


class ReadingsCsvError(ValueError):
    """Bad CSV input.  ``errors`` is a list of ``(line, reason)``; ``str()`` is one
    ``file:line: reason`` line per error."""

    def __init__(self, filename: str, errors: Sequence[Tuple[int, str]]) -> None:
        self.filename = filename
        self.errors = list(errors)
        super().__init__("\n".join(self.lines()))

    def lines(self, limit: Optional[int] = None) -> List[str]:
        shown = self.errors if limit is None else self.errors[:limit]
        out = [f"{self.filename}:{line}: {reason}" for line, reason in shown]
        if limit is not None and len(self.errors) > limit:
            out.append(f"{self.filename}: {len(self.errors) - limit} more errors not shown")
        return out


class _CellError(Exception):
    pass


def _integer(row: dict, column: str, bounds: Tuple[int, int]) -> int:
    text = row[column].strip()
    if not text:
        raise _CellError(f"{column} is empty")
    try:
        value = int(text, 10)
    except ValueError:
        raise _CellError(f"{column} {text!r} is not an integer") from None
    if not bounds[0] <= value <= bounds[1]:
        lo, hi = bounds
        raise _CellError(f"{column} {value} is out of range [{lo}, {hi}]")
    return value


def _events(row: dict) -> int:
    text = row["events"].strip()
    if not text:
        return 0
    try:
        value = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        raise _CellError(f"events {text!r} is not an integer (decimal or 0x hex)") from None
    if not _U32[0] <= value <= _U32[1]:
        raise _CellError(f"events {text!r} is out of range for 32 bits")
    return value


def _phases(row: dict, errors: List[str]) -> Tuple[List[int], List[int]]:
    present = []
    voltages: List[int] = []
    currents: List[int] = []
    for p in _PHASES:
        v_col, c_col = f"voltage_{p}_dv", f"current_{p}_ma"
        v_text, c_text = row[v_col].strip(), row[c_col].strip()
        if not v_text and not c_text:
            continue
        if not v_text or not c_text:
            given, missing = (v_col, c_col) if v_text else (c_col, v_col)
            errors.append(f"phase {p.upper()}: {given} given but {missing} is empty")
            continue
        try:
            voltages.append(_integer(row, v_col, _U32))
            currents.append(_integer(row, c_col, _I32))
            present.append(p)
        except _CellError as exc:
            errors.append(str(exc))
    if present and present not in (["a"], ["a", "b", "c"]):
        names = ", ".join(p.upper() for p in present)
        errors.append(f"phases {names} given: a reading has phase A only or phases A, B and C")
    return voltages, currents


def _reading(row: dict) -> Tuple[Optional[chain_pb2.Reading], List[str]]:
    errors: List[str] = []
    meter_id = row["meter_id"]
    if not meter_id.strip():
        errors.append("meter_id is empty")
    elif meter_id != meter_id.strip():
        errors.append(f"meter_id {meter_id!r} has leading or trailing blanks")
    elif not _METER_ID.fullmatch(meter_id):
        errors.append(f"meter_id {meter_id!r} is not 1 to 64 of A-Z a-z 0-9 . _ -")
    values = {}
    for column, bounds in [("timestamp_ms", _I64)] + [(c, _U64) for c in _ENERGY] + \
            [("active_power_w", _I64), ("reactive_power_var", _I64)]:
        try:
            values[column] = _integer(row, column, bounds)
        except _CellError as exc:
            errors.append(str(exc))
    timestamp = values.get("timestamp_ms", 1)
    if timestamp <= 0:
        errors.append(f"timestamp_ms {timestamp} is not a positive UTC ms time")
    elif timestamp > _MAX_TIMESTAMP_MS:
        errors.append(f"timestamp_ms {timestamp} is beyond {_MAX_TIMESTAMP_MS}")
    try:
        values["events"] = _events(row)
    except _CellError as exc:
        errors.append(str(exc))
    voltages, currents = _phases(row, errors)
    if errors:
        return None, errors
    return chain_pb2.Reading(meter_id=meter_id, voltage_dv=voltages, current_ma=currents,
                             **values), []


def parse_readings_csv(lines: Iterable[str], filename: str = "<input>") -> List[chain_pb2.Reading]:
    """Parse CSV text (an iterable of lines, e.g. an open text file); every row is checked
    before anything is returned.  Raises :class:`ReadingsCsvError`."""
    errors: List[Tuple[int, str]] = []
    readings: List[chain_pb2.Reading] = []
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise ReadingsCsvError(filename, [(1, "empty file: expected a header line")])
        header = [h.strip() for h in header]
        if header and header[0].startswith("\ufeff"):
            header[0] = header[0][1:]
        missing = [c for c in COLUMNS if c not in header]
        unknown = [h for h in header if h not in COLUMNS]
        repeated = sorted({h for h in header if header.count(h) > 1})
        problems = []
        if missing:
            problems.append("missing column(s) " + ", ".join(missing))
        if unknown:
            problems.append("unknown column(s) " + ", ".join(repr(u) for u in unknown))
        if repeated:
            problems.append("repeated column(s) " + ", ".join(repeated))
        if problems:
            raise ReadingsCsvError(filename, [(reader.line_num, "bad header: " +
                                               "; ".join(problems))])
        width = len(header)
        for cells in reader:
            line = reader.line_num
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # blank line
            if len(cells) != width:
                errors.append((line, f"expected {width} fields, got {len(cells)}"))
                continue
            reading, problems = _reading(dict(zip(header, cells)))
            if reading is None:
                errors.extend((line, p) for p in problems)
            else:
                readings.append(reading)
    except csv.Error as exc:
        errors.append((reader.line_num, f"malformed CSV: {exc}"))
    if errors:
        raise ReadingsCsvError(filename, errors)
    return readings


def read_readings_csv(path: str) -> List[chain_pb2.Reading]:
    """Read and check a readings CSV file (UTF-8, optional BOM).  Raises
    :class:`ReadingsCsvError` for bad content and ``OSError`` if it cannot be read."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ReadingsCsvError(path, [(line, f"not UTF-8 text (byte offset {exc.start})")]) \
            from None
    return parse_readings_csv(io.StringIO(text, newline=""), path)
