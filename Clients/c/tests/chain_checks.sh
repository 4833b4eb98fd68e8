# gridctl's chain commands (chain, ingest, block, tx, watch) against a node serving the
# chain "d1" (Docs/wire-protocol.md, "Chain services"). Sourced by fake_test.sh (scripted
# fake node) and integration.sh (real gridnode); both define:
#   ctl WHO ARGS...   runs gridctl as certificate WHO (sets $rc, $out, $err; stdout is in
#                     $tmp/out), ok DESC, bad DESC [DETAIL], $tmp, $gridctl
# and issue the certificates ops1, col1 (collector, L=d1) and col2 (collector, L=d2).
# Checks hold for any conforming node: heights are only required to grow, not to be 1, 2, 3.

# gen_readings_csv FILE METERS STEPS [T0_MS]: METERS x STEPS readings, 15 min apart; every
# third meter single-phase.
gen_readings_csv() {
  python3 - "$@" <<'PY'
import sys
path, meters, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = int(sys.argv[4]) if len(sys.argv) > 4 else 1767225600000
cols = ("meter_id,timestamp_ms,energy_total,energy_sharp,energy_peak,energy_flat,energy_valley,"
        "energy_reverse,voltage_a_dv,voltage_b_dv,voltage_c_dv,current_a_ma,current_b_ma,"
        "current_c_ma,active_power_w,reactive_power_var,events")
with open(path, "w") as f:
    f.write(cols + "\n")
    for step in range(steps):
        for m in range(meters):
            e = 100000 + m * 1000 + step * 7
            sharp, peak, flat = e // 10, e // 4, e // 3
            valley = e - sharp - peak - flat
            if m % 3 == 2:
                v, i = "2301,,", "5120,,"
            else:
                v, i = "2295,2301,2310", "5100,5150,-4990"
            f.write("m-%03d,%d,%d,%d,%d,%d,%d,0,%s,%s,%d,%d,%d\n" % (
                m + 1, t0 + step * 900000, e, sharp, peak, flat, valley, v, i, 1100 + m, -50 - m,
                2 if step == 0 else 0))
PY
}

# pycheck DESC CODE: passes when gridctl exited 0 and the Python CODE runs without an
# exception. CODE sees: text (stdout), doc (stdout as one JSON document, or None),
# lines (each stdout line parsed, None where not JSON), state (a dict kept across checks
# in $tmp/state.json). A JSON object with a repeated key fails the check.
pycheck() {
  local desc=$1
  if [ "$rc" -eq 0 ] && CODE="$2" python3 - "$tmp/out" "$tmp/state.json" > "$tmp/pyerr" 2>&1 <<'PY'
import json, os, sys
def no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), "duplicate JSON keys in %r" % keys
    return dict(pairs)
def loads(t):
    return json.loads(t, object_pairs_hook=no_duplicate_keys)
text = open(sys.argv[1]).read()
try:
    doc = loads(text)
except ValueError:
    doc = None
lines = []
for l in text.splitlines():
    try:
        lines.append(loads(l))
    except ValueError:
        lines.append(None)
state = json.load(open(sys.argv[2])) if os.path.exists(sys.argv[2]) else {}
exec(os.environ["CODE"])
json.dump(state, open(sys.argv[2], "w"))
PY
  then ok "$desc"
  else bad "$desc" "rc=$rc stdout: $(head -c 2000 "$tmp/out") stderr: $err $(tail -5 "$tmp/pyerr")"
  fi
}

# state EXPR: prints a Python expression over the saved state.
state() {
  python3 -c 'import json,sys; state=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$tmp/state.json" "$1" 2>/dev/null
}

chain_height() { # prints the chain height seen by GetChainInfo
  ctl ops1 chain
  [ "$rc" -eq 0 ] && python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])' < "$tmp/out"
}

run_chain_checks() {
  rm -f "$tmp/state.json"
  gen_readings_csv "$tmp/readings.csv" 4 300   # 1200 readings

  # Query/GetChainInfo, any role.
  ctl col1 chain
  pycheck "chain: chain_id d1, hash suite sha256" '
assert doc["chain_id"] == "d1" and doc["hash_suite"] == "sha256", doc
state["h0"] = doc["height"]'

  # Submitting: 1200 readings in batches of 500, signed by col1 for its district d1.
  ctl col1 ingest --csv "$tmp/readings.csv"
  pycheck "ingest 1200 readings: 3 batch lines with tx ids and growing heights, 500/500/200 accepted" '
assert len(lines) == 3, lines
assert [l["batch"] for l in lines] == [0, 1, 2]
assert [l["accepted"] for l in lines] == [500, 500, 200] and all(l["duplicate"] == 0 for l in lines)
hs = [l["height"] for l in lines]
assert hs[0] > state["h0"] and hs == sorted(hs), hs
assert all(len(l["tx_id"]) == 64 and "already_existed" not in l for l in lines)
assert len({l["tx_id"] for l in lines}) == 3
state["first"] = lines'

  # The same CSV again: new transactions (nonce, created_ms), every reading a duplicate.
  ctl col1 ingest --csv "$tmp/readings.csv"
  pycheck "re-ingest: new tx ids, accepted=0 duplicate=500/500/200" '
assert len(lines) == 3, lines
assert [l["accepted"] for l in lines] == [0, 0, 0] and [l["duplicate"] for l in lines] == [500, 500, 200]
assert not {l["tx_id"] for l in lines} & {l["tx_id"] for l in state["first"]}
assert lines[0]["height"] >= state["first"][2]["height"]'

  local h1 tx1
  h1=$(state 'state["first"][0]["height"]')
  tx1=$(state 'state["first"][0]["tx_id"]')

  # Query/GetBlock by height: header, hash, tx ids, outcomes; the hashes check out.
  ctl mkt1 block "$h1"
  pycheck "block $h1: header, hash, transactions with outcomes, verified" '
h, tx1 = state["first"][0]["height"], state["first"][0]["tx_id"]
assert doc["header"]["height"] == h and doc["header"]["chain_id"] == "d1", doc["header"]
assert len(doc["hash"]) == 64 and doc["verified"] is True, doc.get("verify_error")
txs = {t["tx_id"]: t for t in doc["transactions"]}
assert tx1 in txs, txs.keys()
t = txs[tx1]
assert t["outcome"]["code"] == 0 and t["outcome"]["readings_accepted"] == 500, t
assert t["signer"]["name"] == "col1" and t["signer"]["district"] == "d1"
assert t["payload"]["batch_id"] == "readings.csv-0" and t["payload"]["readings_count"] == 500
state["hash1"] = doc["hash"]'

  ctl mkt1 block --hash "$(state 'state["hash1"]')"
  pycheck "block --hash: the same block" '
assert doc["hash"] == state["hash1"] and doc["header"]["height"] == state["first"][0]["height"]'

  ctl mkt1 block 0
  pycheck "block 0 (genesis): no previous hash" '
assert doc["header"]["height"] == 0 and doc["header"]["previous_hash"] == "", doc'

  # Query/GetTransaction: payload decoded, signature checked, location, outcome.
  ctl mkt1 tx "$tx1"
  pycheck "tx: payload (chain, nonce, 500 readings, first reading), signer, location, outcome" '
f = state["first"][0]
assert doc["tx_id"] == f["tx_id"] and doc["location"]["height"] == f["height"]
assert doc["location"]["index"] == f["index"] and doc["location"]["block_hash"] == state["hash1"]
assert doc["outcome"]["readings_accepted"] == 500 and doc["signature_valid"] is True
p = doc["payload"]
assert p["chain_id"] == "d1" and p["kind"] == "readings" and p["district"] == "d1"
assert p["readings_count"] == 500 and len(p["nonce"]) == 32 and p["created_ms"] > 1700000000000
r = p["first_reading"]
assert r["meter_id"] == "m-001" and r["timestamp_ms"] == 1767225600000 and r["voltage_dv"] == [2295, 2301, 2310]
assert r["current_ma"] == [5100, 5150, -4990] and r["events"] == 2 and r["energy_total"] == 100000
assert doc["signer"] == {"name": "col1", "role": "collector", "district": "d1"}'

  ctl mkt1 tx 00000000000000000000000000000000000000000000000000000000000000ff
  if [ "$rc" -eq 2 ] && echo "$err" | grep -q '^error: NOT_FOUND: '; then ok "tx unknown id: NOT_FOUND"
  else bad "tx unknown id: NOT_FOUND" "rc=$rc stdout: $out stderr: $err"; fi

  # Query/SubscribeBlocks from 0: the stored blocks first.
  ctl mkt1 --timeout 60000 watch --from 0 --count 2
  pycheck "watch --from 0 --count 2: blocks 0 and 1, one JSON line each" '
assert len(lines) == 2 and [l["height"] for l in lines] == [0, 1], lines
assert all(len(l["hash"]) == 64 and l["chain_id"] == "d1" for l in lines)
assert lines[1]["previous_hash"] == lines[0]["hash"]'

  # ... then each new block as it becomes durable.
  local head
  head=$(chain_height)
  "$gridctl" --addr "$ctl_addr" --cert "$c/mkt1.crt" --key "$c/mkt1.key" --ca "$c/ca.crt" \
    --timeout 60000 watch --from $((head + 1)) --count 1 > "$tmp/watch.out" 2> "$tmp/watch.err" &
  local watch_pid=$!
  sleep 0.5
  gen_readings_csv "$tmp/late.csv" 2 3 1767600000000
  ctl col1 ingest --csv "$tmp/late.csv"
  local late_h
  late_h=$(python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["height"])' < "$tmp/out" 2>/dev/null)
  wait "$watch_pid"; local wrc=$?
  if [ "$wrc" -eq 0 ] && [ -n "$late_h" ] && python3 -c '
import json, sys
l = [json.loads(x) for x in open(sys.argv[1])]
assert len(l) == 1 and l[0]["height"] == int(sys.argv[2]), l' "$tmp/watch.out" "$((head + 1))" 2>/dev/null \
     && [ "$late_h" -eq $((head + 1)) ]; then
    ok "watch from the head: the next block arrives when it is committed"
  else
    bad "watch from the head: the next block arrives when it is committed" \
      "watch rc=$wrc out: $(cat "$tmp/watch.out") err: $(cat "$tmp/watch.err") ingest: $out $err head=$head"
  fi

  # A collector of another district is refused, nothing is committed.
  local before after
  before=$(chain_height)
  ctl col2 ingest --csv "$tmp/readings.csv"
  if [ "$rc" -eq 2 ] && [ -z "$out" ] && echo "$err" | grep -q '^error: PERMISSION_DENIED: '; then
    ok "ingest as a collector of district d2: exit 2, PERMISSION_DENIED"
  else
    bad "ingest as a collector of district d2: exit 2, PERMISSION_DENIED" "rc=$rc stdout: $out stderr: $err"
  fi

  # Bad input: every field validated first; file:line: reason; exit 65; nothing submitted.
  { head -5 "$tmp/readings.csv"; echo "m-009,1767225600000,12,0,0,0,0,0,,2200,,,,,0,0,0"; tail -3 "$tmp/readings.csv"; } > "$tmp/bad.csv"
  ctl col1 ingest --csv "$tmp/bad.csv"
  after=$(chain_height)
  if [ "$rc" -eq 65 ] && [ -z "$out" ] && echo "$err" | head -1 | grep -q "^$tmp/bad.csv:6: voltage_a_dv, voltage_b_dv, voltage_c_dv: " \
     && [ -n "$before" ] && [ "$before" = "$after" ]; then
    ok "ingest of a bad CSV: exit 65, \"file:6: reason\", chain height unchanged"
  else
    bad "ingest of a bad CSV: exit 65, \"file:6: reason\", chain height unchanged" \
      "rc=$rc stdout: $out stderr: $err height $before -> $after"
  fi
}
