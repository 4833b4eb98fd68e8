"""Readings CSV parsing and validation (gridledger.readings_csv)."""

import pytest

from gridledger import ReadingsCsvError, parse_readings_csv, read_readings_csv
from gridledger.readings_csv import COLUMNS

HEADER = ",".join(COLUMNS)
THREE = "m1,1700000000000,1000,100,200,300,400,5,2200,2210,2190,1500,1400,-1300,3300,-120,0"
SINGLE = "m2,1700000000001,1,0,0,0,0,0,2301,,,-42,,,10,0,0x11"
NO_PHASE = "m3,1700000000002,7,1,2,3,1,0,,,,,,,0,0,"


def parse(*rows, header=HEADER):
    return parse_readings_csv([header + "\n"] + [r + "\n" for r in rows], "in.csv")


def errors(*rows, header=HEADER):
    with pytest.raises(ReadingsCsvError) as ei:
        parse(*rows, header=header)
    return str(ei.value).splitlines()


def test_header_matches_the_documented_columns():
    assert HEADER == ("meter_id,timestamp_ms,energy_total,energy_sharp,energy_peak,"
                      "energy_flat,energy_valley,energy_reverse,voltage_a_dv,voltage_b_dv,"
                      "voltage_c_dv,current_a_ma,current_b_ma,current_c_ma,active_power_w,"
                      "reactive_power_var,events")


def test_valid_rows():
    r3, r1, r0 = parse(THREE, SINGLE, NO_PHASE)
    assert r3.meter_id == "m1" and r3.timestamp_ms == 1_700_000_000_000
    assert (r3.energy_total, r3.energy_sharp, r3.energy_peak, r3.energy_flat,
            r3.energy_valley, r3.energy_reverse) == (1000, 100, 200, 300, 400, 5)
    assert list(r3.voltage_dv) == [2200, 2210, 2190]
    assert list(r3.current_ma) == [1500, 1400, -1300]
    assert (r3.active_power_w, r3.reactive_power_var, r3.events) == (3300, -120, 0)
    assert list(r1.voltage_dv) == [2301] and list(r1.current_ma) == [-42]
    assert r1.events == 0x11
    assert list(r0.voltage_dv) == [] and list(r0.current_ma) == [] and r0.events == 0


def test_column_order_blanks_and_blank_lines():
    cols = list(COLUMNS)
    reordered = [cols[-1]] + cols[:-1]
    values = THREE.split(",")
    row = ",".join([values[-1]] + [f" {v} " if i else v for i, v in enumerate(values[:-1])])
    [r] = parse_readings_csv([" , ".join(reordered) + "\n", "\n", row + "\n", "\n"])
    assert r.meter_id == "m1" and list(r.current_ma) == [1500, 1400, -1300]


def test_bom_and_crlf(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(("\ufeff" + HEADER + "\r\n" + THREE + "\r\n").encode("utf-8"))
    [r] = read_readings_csv(str(path))
    assert r.meter_id == "m1"


def test_quoted_cells():
    [r] = parse('"m-1.A_9"' + THREE[2:].replace(",1000,", ',"1000",'))
    assert r.meter_id == "m-1.A_9" and r.energy_total == 1000


def test_header_only_is_empty():
    assert parse() == []


@pytest.mark.parametrize("row, reason", [
    (",1700000000000,1,0,0,0,0,0,,,,,,,0,0,0", "meter_id is empty"),
    (" m1,1700000000000,1,0,0,0,0,0,,,,,,,0,0,0", "leading or trailing blanks"),
    ('"m,1",1700000000000,1,0,0,0,0,0,,,,,,,0,0,0', "meter_id 'm,1' is not 1 to 64 of"),
    ("m/1,1700000000000,1,0,0,0,0,0,,,,,,,0,0,0", "meter_id 'm/1' is not"),
    ("\u00e9,1700000000000,1,0,0,0,0,0,,,,,,,0,0,0", "is not 1 to 64"),
    ("m" * 65 + ",1700000000000,1,0,0,0,0,0,,,,,,,0,0,0", "is not 1 to 64"),
    ("m1,100000000000000,1,0,0,0,0,0,,,,,,,0,0,0",
     "timestamp_ms 100000000000000 is beyond 99999999999999"),
    ("m1,,1,0,0,0,0,0,,,,,,,0,0,0", "timestamp_ms is empty"),
    ("m1,abc,1,0,0,0,0,0,,,,,,,0,0,0", "timestamp_ms 'abc' is not an integer"),
    ("m1,0,1,0,0,0,0,0,,,,,,,0,0,0", "timestamp_ms 0 is not a positive"),
    ("m1,-5,1,0,0,0,0,0,,,,,,,0,0,0", "timestamp_ms -5 is not a positive"),
    ("m1,1700000000000,-1,0,0,0,0,0,,,,,,,0,0,0", "energy_total -1 is out of range"),
    ("m1,1700000000000,1.5,0,0,0,0,0,,,,,,,0,0,0", "energy_total '1.5' is not an integer"),
    ("m1,1700000000000,18446744073709551616,0,0,0,0,0,,,,,,,0,0,0",
     "energy_total 18446744073709551616 is out of range"),
    ("m1,1700000000000,1,,0,0,0,0,,,,,,,0,0,0", "energy_sharp is empty"),
    ("m1,1700000000000,1,0,0,0,0,0,2200,,,,,,0,0,0",
     "phase A: voltage_a_dv given but current_a_ma is empty"),
    ("m1,1700000000000,1,0,0,0,0,0,,,,,5,,0,0,0",
     "phase B: current_b_ma given but voltage_b_dv is empty"),
    ("m1,1700000000000,1,0,0,0,0,0,2200,2200,,1,1,,0,0,0",
     "phases A, B given: a reading has phase A only or phases A, B and C"),
    ("m1,1700000000000,1,0,0,0,0,0,,2200,,,1,,0,0,0", "phases B given"),
    ("m1,1700000000000,1,0,0,0,0,0,-1,,,1,,,0,0,0", "voltage_a_dv -1 is out of range"),
    ("m1,1700000000000,1,0,0,0,0,0,1,,,2147483648,,,0,0,0",
     "current_a_ma 2147483648 is out of range"),
    ("m1,1700000000000,1,0,0,0,0,0,,,,,,,x,0,0", "active_power_w 'x' is not an integer"),
    ("m1,1700000000000,1,0,0,0,0,0,,,,,,,0,0,0x1G", "events '0x1G' is not an integer"),
    ("m1,1700000000000,1,0,0,0,0,0,,,,,,,0,0,4294967296", "events '4294967296' is out of range"),
    ("m1,1700000000000,1,0,0,0,0,0,,,,,,,0,0", "expected 17 fields, got 16"),
    ("m1,1700000000000,1,0,0,0,0,0,,,,,,,0,0,0,9", "expected 17 fields, got 18"),
])
def test_bad_rows(row, reason):
    lines = errors(THREE, row)
    assert len(lines) >= 1
    assert all(line.startswith("in.csv:3: ") for line in lines), lines
    assert any(reason in line for line in lines), lines


def test_every_bad_row_is_reported_with_its_line():
    lines = errors(THREE, "m1,x,1,0,0,0,0,0,,,,,,,0,0,0", SINGLE,
                   ",1,1,0,0,0,0,0,,,,,,,0,0,y")
    assert lines == [
        "in.csv:3: timestamp_ms 'x' is not an integer",
        "in.csv:5: meter_id is empty",
        "in.csv:5: events 'y' is not an integer (decimal or 0x hex)",
    ]


@pytest.mark.parametrize("header, reason", [
    (HEADER.replace(",events", ""), "missing column(s) events"),
    (HEADER + ",extra", "unknown column(s) 'extra'"),
    (HEADER + ",events", "repeated column(s) events"),
])
def test_bad_header(header, reason):
    [line] = errors(THREE, header=header)
    assert line.startswith("in.csv:1: bad header: ")
    assert reason in line


def test_empty_file():
    with pytest.raises(ReadingsCsvError) as ei:
        parse_readings_csv([], "e.csv")
    assert str(ei.value) == "e.csv:1: empty file: expected a header line"


def test_malformed_csv_quote():
    lines = errors('"m1' + THREE[2:] + '"x",1')
    assert lines and "malformed CSV" in lines[-1] and lines[-1].startswith("in.csv:")


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "\n" + THREE + "\n").encode() + b"m\xe9,1,1,0,0,0,0,0,,,,,,,0,0,0\n")
    with pytest.raises(ReadingsCsvError) as ei:
        read_readings_csv(str(path))
    assert str(ei.value) == f"{path}:3: not UTF-8 text (byte offset {len(HEADER) + len(THREE) + 3})"


def test_error_lines_limit():
    bad = ["m1,x,1,0,0,0,0,0,,,,,,,0,0,0"] * 5
    with pytest.raises(ReadingsCsvError) as ei:
        parse(*bad)
    assert ei.value.lines(2) == ["in.csv:2: timestamp_ms 'x' is not an integer",
                                 "in.csv:3: timestamp_ms 'x' is not an integer",
                                 "in.csv: 3 more errors not shown"]
