#!/usr/bin/env bash
# Runs build/test_chain (no network), then build/test_client against tests/fake_node.py
# (python3, standard library only) and checks the fake node's log for what the client put
# on the wire; then gridctl's chain commands (tests/chain_checks.sh) against a fresh fake.
# usage: tests/fake_test.sh [BUILD_DIR]   (prints "N passed, N failed" last)
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ $# -gt 1 ] && echo "$2" | sed "s/^/     /"; }

# log_has FILE PATTERN [AFTER_LINE]: 0 once a line of FILE (after line AFTER_LINE) matches
# the grep PATTERN, polling for up to 15 s: the fake node logs some frames (CANCEL, END,
# PING acks) after the client has moved on, a moment later on a loaded machine.
log_has() {
  local deadline=$((SECONDS + 15))
  until tail -n +"$((${3:-0} + 1))" "$1" 2>/dev/null | grep -q -- "$2"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
# poll_eq WANT COMMAND...: 0 once COMMAND prints WANT (kept in $got), polling for up to 15 s.
poll_eq() {
  local want=$1 deadline=$((SECONDS + 15))
  shift
  while :; do
    got=$("$@")
    [ "$got" = "$want" ] && return 0
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

"$here/make_test_certs.sh" "$tmp/certs" || { echo "0 passed, 1 failed"; exit 1; }

# counts "N passed, N failed" of a test binary's output (last line) into pass/fail
add_counts() { # name output rc
  echo "$2" | sed '$d'
  local last n_ok n_bad
  last=$(echo "$2" | tail -1)
  n_ok=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
  n_bad=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
  if [ -z "$n_ok" ]; then echo "$last"; bad "$1 ran to the end (rc=$3)"; else
    pass=$((pass + n_ok)); fail=$((fail + n_bad)); fi
}

out=$("$build/test_chain" "$tmp/certs" 2>&1)
add_counts test_chain "$out" $?
out=$("$build/test_proof" "$tmp/certs" 2>&1)
add_counts test_proof "$out" $?
out=$("$build/test_params" 2>&1)
add_counts test_params "$out" $?

python3 "$here/fake_node.py" "$tmp/certs/node1.crt" "$tmp/certs/node1.key" "$tmp/certs/ca.crt" \
  "$tmp/port" > "$tmp/fake.log" 2>&1 &
pids+=($!)
python3 "$here/fake_node.py" "$tmp/certs/col1node.crt" "$tmp/certs/col1node.key" "$tmp/certs/ca.crt" \
  "$tmp/badport" > "$tmp/bad.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [ -s "$tmp/port" ] && [ -s "$tmp/badport" ] && break; sleep 0.1; done
if ! [ -s "$tmp/port" ] || ! [ -s "$tmp/badport" ]; then
  cat "$tmp/fake.log" "$tmp/bad.log"; echo "0 passed, 1 failed"; exit 1
fi

out=$("$build/test_client" "$tmp/certs" "$(cat "$tmp/port")" "$(cat "$tmp/badport")" 2>&1)
add_counts test_client "$out" $?

# What the client put on the wire, from the fake node's log (each expected line polled for:
# the fake node may log the last frames a moment after test_client exits).
# Deadline: CallHeaders.timeout_ms carries the deadline, and the client sends CANCEL when it passes.
if log_has "$tmp/fake.log" "method=/gridledger.Health/Check timeout_ms=300 "; then ok "timeout_ms sent in CallHeaders"; else bad "timeout_ms sent in CallHeaders"; fi
log_has "$tmp/fake.log" '^slow call on stream '
slow_sid=$(sed -n 's/^slow call on stream \([0-9]*\).*/\1/p' "$tmp/fake.log" | head -1)
if [ -n "$slow_sid" ] && log_has "$tmp/fake.log" "^CANCEL stream $slow_sid\$"; then ok "CANCEL sent when the deadline passed"; else bad "CANCEL sent when the deadline passed"; fi
log_has "$tmp/fake.log" '^sent big message on stream '
big_sid=$(sed -n 's/^sent big message on stream \([0-9]*\).*/\1/p' "$tmp/fake.log" | head -1)
if [ -n "$big_sid" ] && log_has "$tmp/fake.log" "^CANCEL stream $big_sid\$"; then ok "CANCEL sent after an oversized response"; else bad "CANCEL sent after an oversized response"; fi
if log_has "$tmp/fake.log" "^PING-ACK 69646c65706e6721\$"; then ok "PING between calls answered"; else bad "PING between calls answered"; fi
if log_has "$tmp/fake.log" "alpn=gridledger/1" && ! grep -q "framing:" "$tmp/fake.log"; then ok "ALPN gridledger/1, END_STREAM on the last MESSAGE"; else bad "ALPN gridledger/1, END_STREAM on the last MESSAGE"; fi
# Frames: END (type 7) half-closes the bidirectional call that read first; the other one
# carried END_STREAM on its last MESSAGE and sent no END.
if log_has "$tmp/fake.log" '^END stream ' && log_has "$tmp/fake.log" '^END_STREAM on MESSAGE stream ' \
   && [ "$(grep -c '^END stream ' "$tmp/fake.log")" = 1 ]; then
  ok "END frame only when nothing was left to carry END_STREAM"
else bad "END frame only when nothing was left to carry END_STREAM"; fi
log_has "$tmp/fake.log" '^HEADERS stream [0-9]* method=/gridledger.Query/SubscribeBlocks '
sub_sid=$(sed -n 's/^HEADERS stream \([0-9]*\) method=\/gridledger.Query\/SubscribeBlocks .*/\1/p' "$tmp/fake.log" | head -1)
if [ -n "$sub_sid" ] && log_has "$tmp/fake.log" "^CANCEL stream $sub_sid\$"; then ok "freeing a live subscription sends CANCEL"; else bad "freeing a live subscription sends CANCEL"; fi
fake_fail=$fail

# ---- gridctl chain commands, against a fresh fake chain ----------------------------------
python3 "$here/fake_node.py" "$tmp/certs/node1.crt" "$tmp/certs/node1.key" "$tmp/certs/ca.crt" \
  "$tmp/ctlport" > "$tmp/ctl.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [ -s "$tmp/ctlport" ] && break; sleep 0.1; done
gridctl=$build/gridctl
c=$tmp/certs
ctl_addr=127.0.0.1:$(cat "$tmp/ctlport")
ctl() { # as-who args...  -> stdout in $out ($tmp/out), stderr in $err, exit code in $rc
  local who=$1; shift
  "$gridctl" --addr "$ctl_addr" --cert "$c/$who.crt" --key "$c/$who.key" --ca "$c/ca.crt" "$@" \
    > "$tmp/out" 2> "$tmp/err"
  rc=$?; out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
}
. "$here/chain_checks.sh"
run_chain_checks

# Fake-only paths: RESOURCE_EXHAUSTED retried with backoff; ALREADY_EXISTS reported with
# the original location from the trailer, not as an error.
gen_readings_csv "$tmp/busy.csv" 2 3 1767700000000
ctl col1 ingest --csv "$tmp/busy.csv" --batch 4
pycheck "ingest: RESOURCE_EXHAUSTED retried with backoff, then committed" '
assert [l["accepted"] for l in lines] == [4, 2], lines'
if [ "$(grep -c 'RESOURCE_EXHAUSTED (ingestion queue is full); retry [12]/10 in' "$tmp/err")" = 4 ]; then
  ok "ingest: each retry reported on stderr"; else bad "ingest: each retry reported on stderr" "$err"; fi
gen_readings_csv "$tmp/exists.csv" 1 2 1767800000000
ctl col1 ingest --csv "$tmp/exists.csv"
pycheck "ingest: ALREADY_EXISTS is a line with already_existed and the original location" '
assert len(lines) == 1 and lines[0]["already_existed"] is True and lines[0]["height"] == 0, lines
assert lines[0]["index"] == 0 and len(lines[0]["tx_id"]) == 64 and "accepted" not in lines[0]'
ctl col1 ingest --csv "$tmp/busy.csv" --batch 0
if [ "$rc" -eq 64 ]; then ok "ingest --batch 0: usage error"; else bad "ingest --batch 0: usage error" "rc=$rc $err"; fi
ctl col1 ingest --csv "$tmp/nonexistent.csv"
if [ "$rc" -eq 66 ] && echo "$err" | grep -q "nonexistent.csv"; then ok "ingest of a missing file: exit 66"; else bad "ingest of a missing file: exit 66" "rc=$rc $err"; fi
ctl col1 block --hash abc
if [ "$rc" -eq 64 ]; then ok "block --hash with a short hash: usage error"; else bad "block --hash with a short hash: usage error" "rc=$rc $err"; fi
ctl col1 watch --csv x
if [ "$rc" -eq 64 ] && echo "$err" | grep -q -- "--csv is an option of ingest"; then ok "command options are checked per command"; else bad "command options are checked per command" "rc=$rc $err"; fi
# ---- status Raft fields, admin commands, linearizable reads ------------------------------
ctl ops1 status
pycheck "status: Raft fields (raft_*, raft_peers, halted) as numbers and strings" '
ch = doc["chains"][0]
assert [ch[k] for k in ("raft_node_id", "raft_term", "raft_leader", "raft_commit", "raft_applied")] == [1, 5, 1, 11, 10], ch
assert ch["raft_peers"] == [{"node_id": 1, "match_index": 11, "lag": 0}, {"node_id": 2, "match_index": 10, "lag": 1}, {"node_id": 3, "match_index": 9, "lag": 2}], ch
assert ch["halted"] == "halted \"why\"", ch'
ctl admin1 admin transfer-leader --chain d1 --node 2
if [ "$rc" -eq 0 ] && [ "$out" = '{"leader": 2, "voters": [1, 2, 3], "learners": []}' ] \
   && grep -q '^ADMIN TransferLeader chain=d1 node=2 address= name=$' "$tmp/ctl.log"; then
  ok "admin transfer-leader: MemberRequest{d1, 2}; {\"leader\": 2, \"voters\": [...], \"learners\": []}"
else bad "admin transfer-leader: MemberRequest{d1, 2}; JSON" "rc=$rc out=$out err=$err"; fi
ctl admin1 admin add-member --chain d1 --node 4 --name node4 --address 127.0.0.1:7404
if [ "$rc" -eq 0 ] && [ "$out" = '{"leader": 1, "voters": [1, 2, 3], "learners": [4]}' ] \
   && grep -q '^ADMIN AddMember chain=d1 node=4 address=127.0.0.1:7404 name=node4$' "$tmp/ctl.log"; then
  ok "admin add-member: name and address sent; learners [4]"
else bad "admin add-member: name and address sent; learners [4]" "rc=$rc out=$out err=$err"; fi
ctl admin1 admin promote --chain d1 --node 4
if [ "$rc" -eq 0 ] && [ "$out" = '{"leader": 1, "voters": [1, 2, 3, 4], "learners": []}' ] \
   && grep -q '^ADMIN PromoteMember chain=d1 node=4 address= name=$' "$tmp/ctl.log"; then ok "admin promote: PromoteMember"
else bad "admin promote: PromoteMember" "rc=$rc out=$out err=$err"; fi
ctl admin1 admin remove --chain d1 --node 3
if [ "$rc" -eq 0 ] && grep -q '^ADMIN RemoveMember chain=d1 node=3 address= name=$' "$tmp/ctl.log"; then ok "admin remove: RemoveMember"
else bad "admin remove: RemoveMember" "rc=$rc out=$out err=$err"; fi
ctl admin1 admin transfer-leader --chain d9 --node 2
if [ "$rc" -eq 2 ] && [ -z "$out" ] && echo "$err" | grep -q '^error: NOT_FOUND: '; then ok "admin on another chain: NOT_FOUND"
else bad "admin on another chain: NOT_FOUND" "rc=$rc out=$out err=$err"; fi
ctl ops1 admin transfer-leader --chain d1 --node 2
if [ "$rc" -eq 2 ] && [ -z "$out" ] && echo "$err" | grep -q '^error: PERMISSION_DENIED: '; then ok "admin as ops: PERMISSION_DENIED"
else bad "admin as ops: PERMISSION_DENIED" "rc=$rc out=$out err=$err"; fi
usage_ok=1
for args in "admin transfer-leader --chain d1" "admin transfer-leader --node 2" \
    "admin transfer-leader --chain d1 --node 0" "admin transfer-leader --chain d1 --node x" \
    "admin add-member --chain d1 --node 4 --name n4" "admin add-member --chain d1 --node 4 --name n4 --address nohost" \
    "admin promote --chain d1 --node 4 --address 1.2.3.4:5" "admin frob --chain d1 --node 4" "admin" \
    "watch --linearizable" "block 0 --linearizable=1" "state" "block 0 --node 2"; do
  # shellcheck disable=SC2086
  ctl admin1 $args
  if [ "$rc" -ne 64 ]; then usage_ok=0; echo "     $args: rc=$rc $err"; fi
done
if [ "$usage_ok" = 1 ]; then ok "admin / --linearizable usage errors exit 64"; else bad "admin / --linearizable usage errors exit 64"; fi
ctl col1 state reading/m1/000000000000005 --linearizable
pycheck "state KEY --linearizable: found, value hex, version; CONSISTENCY_LINEARIZABLE sent" '
assert doc == {"key": "reading/m1/000000000000005", "found": True, "value": "00000002", "version": {"height": 3, "tx_index": 1}}, doc'
if tail -3 "$tmp/ctl.log" | grep -q '^CONSISTENCY GetState 1$'; then ok "state --linearizable: consistency 1 on the wire"
else bad "state --linearizable: consistency 1 on the wire"; fi
ctl col1 state reading/none
pycheck "state of a missing key: found false, version null" '
assert doc == {"key": "reading/none", "found": False, "value": "", "version": None}, doc'
ctl col1 block 0 --linearizable
ctl col1 block 0
ctl col1 tx "$(printf '0%.0s' $(seq 64))" --linearizable
if [ "$(grep '^CONSISTENCY ' "$tmp/ctl.log" | tail -4 | tr '\n' ,)" = "CONSISTENCY GetState 0,CONSISTENCY GetBlock 1,CONSISTENCY GetBlock 0,CONSISTENCY GetTransaction 1," ]; then
  ok "block/tx --linearizable send CONSISTENCY_LINEARIZABLE, default LOCAL"
else bad "block/tx --linearizable send CONSISTENCY_LINEARIZABLE, default LOCAL" "$(grep '^CONSISTENCY ' "$tmp/ctl.log")"; fi

# ---- --chain: every chain command puts chain_id on the wire -----------------------------------
mark=$(wc -l < "$tmp/ctl.log")
ctl ops1 chain --chain d1
ctl ops1 block 0 --chain d1
ctl ops1 tx "$(printf '0%.0s' $(seq 64))" --chain d1
ctl ops1 state reading/none --chain d1
ctl ops1 watch --count 1 --chain d1
gen_readings_csv "$tmp/chain.csv" 1 1 1767900000000
ctl col1 ingest --csv "$tmp/chain.csv" --chain d1
ingest_rc=$rc
chain_lines() { tail -n +"$((mark + 1))" "$tmp/ctl.log" | sed -n 's/^CHAIN //p' | tr '\n' ,; }
if poll_eq "GetChainInfo d1,GetBlock d1,GetTransaction d1,GetState d1,SubscribeBlocks d1,SubmitReadings d1," chain_lines \
   && [ "$ingest_rc" -eq 0 ]; then
  ok "--chain d1: chain_id on the wire of chain, block, tx, state, watch, ingest (no GetChainInfo)"
else bad "--chain d1: chain_id on the wire of every chain command" "ingest rc=$ingest_rc got=$got"; fi
mark=$(wc -l < "$tmp/ctl.log")
ctl ops1 block 0
if [ "$rc" -eq 0 ] && log_has "$tmp/ctl.log" '^CHAIN GetBlock -$' "$mark"; then ok "without --chain: chain_id empty"
else bad "without --chain: chain_id empty" "rc=$rc $err"; fi
nf_ok=1
for args in "chain" "block 0" "state k" "watch --count 1" "tx $(printf '0%.0s' $(seq 64))"; do
  # shellcheck disable=SC2086
  ctl ops1 $args --chain d9
  if [ "$rc" -ne 2 ] || ! echo "$err" | grep -q '^error: NOT_FOUND: '; then nf_ok=0; echo "     $args: rc=$rc $err"; fi
done
ctl col1 ingest --csv "$tmp/chain.csv" --chain d9
if [ "$rc" -ne 2 ] || ! echo "$err" | grep -q '^error: NOT_FOUND: '; then nf_ok=0; echo "     ingest: rc=$rc $err"; fi
if [ "$nf_ok" = 1 ]; then ok "--chain d9 (not served): NOT_FOUND, exit 2"; else bad "--chain d9 (not served): NOT_FOUND, exit 2"; fi
ctl ops1 status --chain d1
rc1=$rc
ctl ops1 block 0 --chain ""
if [ "$rc1" -eq 64 ] && [ "$rc" -eq 64 ]; then ok "--chain: not an option of status; empty value is a usage error"
else bad "--chain: not an option of status; empty value is a usage error" "rc=$rc1/$rc"; fi

# ---- anchoring: prove, verify-proof (a proof built by the fake node in Python) ------------------
ctl ops1 prove 2 -o "$tmp/p2.bin"
prove_rc=$rc
"$gridctl" verify-proof "$tmp/p2.bin" > "$tmp/out" 2> "$tmp/err"; rc=$?
pycheck "prove -o FILE, then verify-proof FILE offline (no --addr): heights, hashes, main block" '
assert doc["verified"] is True and doc["district"] == "d1" and doc["height"] == 2, doc
assert doc["anchor_from"] == 1 and doc["main_chain"] == "main" and doc["main_height"] == 42, doc
assert doc["main_index"] == 3 and len(doc["header_hash"]) == 64 and doc["signatures_verified"] == 0, doc'
[ "$prove_rc" -eq 0 ] || bad "prove -o exit status" "rc=$prove_rc"
"$gridctl" verify-proof "$tmp/p2.bin" --ca "$c/ca.crt" > "$tmp/out" 2> "$tmp/err"; rc=$?
pycheck "verify-proof --ca: both anchor signatures (dn1, dn2) verified against the CA" '
assert doc["signatures_verified"] == 2, doc'
"$gridctl" verify-proof "$tmp/p2.bin" --ca "$c/other/ca.crt" > "$tmp/out" 2> "$tmp/err"; rc=$?
if [ "$rc" -eq 1 ] && [ ! -s "$tmp/out" ] && grep -q "^error: proof does not verify: anchor signature 0: certificate does not chain to the CA" "$tmp/err"; then
  ok "verify-proof against another CA: exit 1 and the reason"; else bad "verify-proof against another CA: exit 1 and the reason" "rc=$rc $(cat "$tmp/err")"; fi
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[12] ^= 1; open(sys.argv[2], "wb").write(b)' "$tmp/p2.bin" "$tmp/bad.bin"
"$gridctl" verify-proof - < "$tmp/bad.bin" > "$tmp/out" 2> "$tmp/err"; rc=$?
if [ "$rc" -eq 1 ] && grep -q "^error: proof does not verify: " "$tmp/err"; then ok "verify-proof - (stdin) of a flipped header byte: exit 1"
else bad "verify-proof - (stdin) of a flipped header byte: exit 1" "rc=$rc $(cat "$tmp/err")"; fi
ctl ops1 prove 3 --verify --chain d1
pycheck "prove --verify --chain d1: verified at once with the connection CA" '
assert doc["height"] == 3 and doc["signatures_verified"] == 2, doc'
"$gridctl" --addr "$ctl_addr" --cert "$c/ops1.crt" --key "$c/ops1.key" --ca "$c/ca.crt" prove 3 > "$tmp/p3.bin" 2> "$tmp/err"
rc=$?; err=$(cat "$tmp/err")
if [ "$rc" -eq 0 ] && "$gridctl" verify-proof - < "$tmp/p3.bin" > /dev/null 2>&1; then ok "prove without -o writes the proof bytes to stdout"
else bad "prove without -o writes the proof bytes to stdout" "rc=$rc $err"; fi
ctl ops1 prove 0
if [ "$rc" -eq 2 ] && echo "$err" | grep -q "^error: NOT_FOUND: block 0 is not anchored"; then ok "prove of an unanchored block: NOT_FOUND, exit 2"
else bad "prove of an unanchored block: NOT_FOUND, exit 2" "rc=$rc $err"; fi
"$gridctl" verify-proof "$tmp/none.bin" > "$tmp/out" 2> "$tmp/err"; rc=$?
if [ "$rc" -eq 66 ]; then ok "verify-proof of a missing file: exit 66"; else bad "verify-proof of a missing file: exit 66" "rc=$rc"; fi

# ---- main-chain submissions: register-district, param, pay; ack on the district ---------------
mark=$(wc -l < "$tmp/ctl.log")
ctl admin1 register-district d1 "$c/dn1.crt" "$c/dn2.crt" --chain main
pycheck "register-district: one JSON line with tx_id, height, index" '
assert set(lines[0]) == {"tx_id", "height", "index"} and lines[0]["height"] == 7 and len(lines[0]["tx_id"]) == 64, lines'
ctl mkt1 param customer --chain main --district d1 --account acc1 --meter m1 --phase ABC --tariff T1 \
  --protected --contact 13800000000 --thresholds th1 --opening-balance -500 --cycle-start 07-15
[ "$rc" -eq 0 ] || bad "param customer" "rc=$rc $err"
cat > "$tmp/tariff.txt" <<'TARIFF'
tariff_id T1
utc_offset_minutes 480
period peak 12000
period valley 4000
all 1-12 0-23 0
all 1-12 0-7 1
cycle monthly
TARIFF
ctl mkt1 param tariff --chain main --district d1 --file "$tmp/tariff.txt"
[ "$rc" -eq 0 ] || bad "param tariff" "rc=$rc $err"
ctl mkt1 param thresholds --chain main --district d1 --id th1 --alarm1 2000 --alarm2 500 --overdraft 0 \
  --reconnect 100 --direct-close --valid-ms 600000 --grid-worker 13900000000
[ "$rc" -eq 0 ] || bad "param thresholds" "rc=$rc $err"
ctl mkt1 pay --chain main --district d1 --account acc1 --amount 10000 --serial pay-1
[ "$rc" -eq 0 ] || bad "pay" "rc=$rc $err"
ctl dev1 ack c7 --chain d1 --failed --detail "relay stuck"
[ "$rc" -eq 0 ] || bad "ack" "rc=$rc $err"
ctl dev1 ack rejected-1 --chain d1
ack_rejected_rc=$rc
ack_rejected_out=$out
log_has "$tmp/ctl.log" '^SUBMIT chain=d1 signer=dev1 kind=command_ack .* 1=c7 ' "$mark"
log=$(tail -n +"$((mark + 1))" "$tmp/ctl.log" | grep '^SUBMIT ')
dn1=$(openssl x509 -in "$c/dn1.crt" -outform DER | sha256sum | cut -c1-16)
dn2=$(openssl x509 -in "$c/dn2.crt" -outform DER | sha256sum | cut -c1-16)
weekday=$(python3 -c 'print((bytes([1] * 8 + [0] * 16) * 12).hex())')
want_ok=1
for want in "chain=main signer=admin1 kind=district_registration nonce_len=32 created=1[0-9]* district=d1 certs=$dn1,$dn2" \
    "chain=main signer=mkt1 kind=parameter .* district=d1 customer: 1=acc1 2=m1 3=ABC 4=T1 5=1 6=13800000000 7=7 8=15 9=th1 13=18446744073709551116" \
    "chain=main signer=mkt1 kind=parameter .* district=d1 tariff: 1=T1 2=480 3=<[0-9]* bytes> 3=<[0-9]* bytes> 4=<288 bytes> 5=<288 bytes> weekday=$weekday" \
    "chain=main signer=mkt1 kind=parameter .* district=d1 thresholds: 1=th1 2=2000 3=500 5=100 6=1 7=600000 8=13900000000" \
    "chain=main signer=mkt1 kind=parameter .* district=d1 payment: 1=acc1 2=10000 3=pay-1 4=1[0-9]*" \
    "chain=d1 signer=dev1 kind=command_ack .* 1=c7 3=relay stuck"; do
  if ! echo "$log" | grep -q "SUBMIT $want\$"; then want_ok=0; echo "     missing: SUBMIT $want"; fi
done
if [ "$want_ok" = 1 ]; then ok "register-district, param customer/tariff/thresholds, pay, ack: signed payloads with every field"
else bad "register-district, param customer/tariff/thresholds, pay, ack: signed payloads with every field" "$log"; fi
if [ "$ack_rejected_rc" -eq 2 ] && echo "$ack_rejected_out" | grep -q '"code": 9, "message": "no such command"'; then
  ok "a submission rejected when applied: code and message in the line, exit 2"
else bad "a submission rejected when applied: code and message in the line, exit 2" "rc=$ack_rejected_rc $ack_rejected_out"; fi
usage_ok=1
for args in "param customer --district d1 --account a --meter m" "param customer --district d1 --account a --meter m --tariff T --phase D" \
    "param tariff --district d1" "param thresholds --district d1 --alarm1 1 --alarm2 1 --overdraft 1" \
    "param customer --district d1 --account a --meter m --tariff T --alarm1 5" "param frob --district d1" \
    "pay --district d1 --account a --amount 0 --serial s" "pay --district d1 --account a --amount 5" \
    "register-district d1" "ack" "commands" "commands --district d1 --status done" "prove x"; do
  # shellcheck disable=SC2086
  ctl mkt1 $args
  if [ "$rc" -ne 64 ]; then usage_ok=0; echo "     $args: rc=$rc $err"; fi
done
if [ "$usage_ok" = 1 ]; then ok "anchoring / fee-control usage errors exit 64"; else bad "anchoring / fee-control usage errors exit 64"; fi
printf 'tariff_id T\nperiod p 1\n' > "$tmp/badtariff.txt"
ctl mkt1 param tariff --district d1 --file "$tmp/badtariff.txt"
if [ "$rc" -eq 65 ] && echo "$err" | grep -q "badtariff.txt: weekday schedule: month 1 hour 0 is not set"; then ok "param tariff with an incomplete schedule: exit 65, nothing submitted"
else bad "param tariff with an incomplete schedule: exit 65, nothing submitted" "rc=$rc $err"; fi

# ---- fee-control queries and streams -----------------------------------------------------------
mark=$(wc -l < "$tmp/ctl.log")
ctl ops1 account acc1 --chain d1
pycheck "account: balance, state, last reading, cycle usage per period and tier, charges, customer" '
a = doc["account"]
assert a["balance_fen"] == 1234 and a["state"] == "ACCOUNT_STATE_WARNING1" and a["last_reading_ms"] == 1700000000000, a
line = {"line_price": 0, "line_energy": 0}
assert a["periods"] == [{"period": "peak", "energy": 100, "charge_fen": 120, **line}, {"period": "valley", "energy": 200, "charge_fen": 80, **line}], a
assert a["tiers"] == [{"tier": 1, "energy": 300, "charge_fen": 0, **line}] and a["cycle_charged_fen"] == 200, a
assert a["total_charged_fen"] == 900 and a["total_paid_fen"] == 2134, a
assert doc["customer"]["phase"] == "ABC" and doc["customer"]["tariff_id"] == "T1", doc'
ctl ops1 account nobody --chain d1
nf_rc=$rc
ctl ops1 warnings --chain d1 --limit 5
pycheck "warnings: one line per account (negative balance as a number)" '
assert [l["account"] for l in lines] == ["acc1", "acc2"] and lines[1]["balance_fen"] == -250, lines
assert lines[1]["state"] == "ACCOUNT_STATE_DISCONNECTED", lines'
ctl ops1 disconnected --chain d1
ctl ops1 commands --district d1 --status failed
pycheck "commands --district d1 --status failed: one line per command" '
assert [(l["command_id"], l["kind"], l["status"]) for l in lines] == [("c1", "COMMAND_KIND_TRIP", "COMMAND_STATUS_ISSUED"), ("c2", "COMMAND_KIND_ALLOW_CLOSE", "COMMAND_STATUS_ISSUED")], lines'
ctl dev1 watch-commands --chain d1 --count 2 --ack
pycheck "watch-commands --ack: each command line carries its CommandAck result" '
assert [l["command_id"] for l in lines] == ["c1", "c2"], lines
assert all(l["ack"]["height"] == 7 and len(l["ack"]["tx_id"]) == 64 for l in lines), lines'
ctl mkt1 watch-notices --chain d1 --from 4 --count 1
pycheck "watch-notices --from 4: notices from that height (UTF-8 text kept)" '
assert len(lines) == 1 and lines[0]["height"] == 5 and lines[0]["kind"] == "NOTICE_KIND_WARNING1", lines
assert lines[0]["text"] == "余额不足 balance low", lines'
fee_lines() {
  tail -n +"$((mark + 1))" "$tmp/ctl.log" | grep -E '^(CHAIN (GetAccount|ListAccounts|ListCommands|SubscribeCommands|Subscribe|Submit)|LIST_|ACCOUNT |SUBMIT )' | sed 's/ nonce_len.*//' | tr '\n' ,
}
want="CHAIN GetAccount d1,ACCOUNT acc1,CHAIN GetAccount d1,ACCOUNT nobody,CHAIN ListAccounts d1,LIST_ACCOUNTS state=0 any_warning=1 limit=5,CHAIN ListAccounts d1,LIST_ACCOUNTS state=3 any_warning=0 limit=0,CHAIN ListCommands d1,LIST_COMMANDS status=3 limit=0,CHAIN SubscribeCommands d1,CHAIN Submit d1,SUBMIT chain=d1 signer=dev1 kind=command_ack,CHAIN Submit d1,SUBMIT chain=d1 signer=dev1 kind=command_ack,CHAIN Subscribe d1,"
if poll_eq "$want" fee_lines && [ "$nf_rc" -eq 2 ]; then ok "fee control on the wire: chain ids, filters (warnings any_warning, disconnected state 3, status), acks"
else bad "fee control on the wire: chain ids, filters (warnings any_warning, disconnected state 3, status), acks" "got=$got nf_rc=$nf_rc"; fi

# ---- issue 10: activation, reversal, notice templates, district results, decoded state -------
mark=$(wc -l < "$tmp/ctl.log")
ctl admin1 param activation --chain main --district d1 --version 1 --at-height 120 --sum-tolerance 4 \
  --spike-factor 7 --future-tolerance-ms 120000 --max-interpolation-ms 3600000 --spike-min-history 12
act_rc=$rc
ctl admin1 param activation --chain main --district d1 --version 1 --at-height 200
act2_rc=$rc
ctl mkt1 pay --chain main --district d1 --account acc1 --amount 10000 --serial rev-1 --reverses pay-1
rev_rc=$rc
zh='尊敬的客户，户号{account}（表号{meter}）余额{balance}元，状态：{state}。'
printf '# 短信模板\n\nwarning1:customer:%s\r\nformal-disconnect:grid_worker:户号{account}已停电\n' "$zh" > "$tmp/zh.txt"
ctl mkt1 param notice-templates --chain main --district d1 --language zh-CN --file "$tmp/zh.txt" \
  --template "reconnect:customer:{account} 已恢复供电: 余额 {balance}" --template "reconnect:grid_worker:复电 {meter}"
nt_rc=$rc
log_has "$tmp/ctl.log" 'kind=parameter .* notice_templates: ' "$mark"
log=$(tail -n +"$((mark + 1))" "$tmp/ctl.log" | grep '^SUBMIT ')
want_ok=1
for want in "signer=admin1 kind=parameter .* district=d1 activation: 1=fee-control 2=1 3=120 4=<[0-9]* bytes> vee: 1=4 2=7 3=120000 4=3600000 5=12" \
    "signer=admin1 kind=parameter .* district=d1 activation: 1=fee-control 2=1 3=200 4= vee: \$" \
    "signer=mkt1 kind=parameter .* district=d1 payment: 1=acc1 2=18446744073709541616 3=rev-1 4=1[0-9]* 5=pay-1" \
    "signer=mkt1 kind=parameter .* notice_templates: 1=zh-CN .* | template kind=1 recipient=customer text=$zh | template kind=4 recipient=grid_worker text=户号{account}已停电 | template kind=5 recipient=customer text={account} 已恢复供电: 余额 {balance} | template kind=5 recipient=grid_worker text=复电 {meter}"; do
  if ! echo "$log" | grep -q -- "$want"; then want_ok=0; echo "     missing: $want"; fi
done
if [ "$want_ok" = 1 ] && [ "$act_rc$act2_rc$rev_rc$nt_rc" = 0000 ]; then
  ok "param activation (VEE values, defaults), pay --reverses (amount negative, reverses_serial), param notice-templates (UTF-8 file and --template): signed payloads"
else bad "param activation, pay --reverses, param notice-templates: signed payloads" "rc=$act_rc/$act2_rc/$rev_rc/$nt_rc $log"; fi
usage_ok=1
while IFS='|' read -r args want; do
  # shellcheck disable=SC2086
  eval "ctl admin1 $args"
  if [ "$rc" -ne 64 ] || ! echo "$err" | grep -qF -- "$want"; then usage_ok=0; echo "     $args: rc=$rc $err"; fi
done <<'CASES'
param activation --district d1 --version 1 --at-height 5 --spike-factor 1|spike_factor 1 is out of range: 2..1000
param activation --district d1 --version 1 --at-height 5 --spike-factor x|--spike-factor x is not a whole number
param activation --district d1 --version 1 --at-height 5 --sum-tolerance -2|sum_tolerance must not be negative (-2); 0 means the default (2)
param activation --district d1 --version 1 --at-height 5 --spike-min-history 11521|8-day trailing window
param activation --district d1 --version 1 --at-height 5 --future-tolerance-ms 86400001|more than a day
param activation --district d1 --version 0 --at-height 5|is not a contract version
param activation --district d1 --version 1 --at-height 0|is not a district block height
param activation --district d1 --at-height 5|needs --district D, --version N and --at-height H
param customer --district d1 --account a --meter m --tariff T --version 1|--version is not an option of param customer
param notice-templates --district d1 --language fr|language must be zh-CN or en
param notice-templates --district d1|needs --district D and --language
param notice-templates --district d1 --language en --template "warning1:customer:{acct}"|unknown placeholder {acct}
param notice-templates --district d1 --language en --template "warning1:grid_worker:x"|no warning1 notice goes to the grid_worker
param notice-templates --district d1 --language en --template "warn:customer:x"|unknown notice kind
param notice-templates --district d1 --language en --template "reconnect:customer:pay {balance"|unmatched brace
param notice-templates --district d1 --language en --template "reconnect:customer:a" --template "reconnect:customer:b"|two templates for reconnect to the customer
pay --district d1 --account acc1 --amount 5 --serial pay-1 --reverses pay-1|a reversal needs its own serial
pay --district d1 --account acc1 --amount -5 --serial rev-2 --reverses pay-1|give the amount positive
pay --district d1 --account acc1 --serial rev-2 --reverses pay-1|--amount FEN is required
pay --district d1 --account acc1 --amount 5 --reverses pay-1|(--serial: the reversal's own serial)
district-results|district-results needs --district D
CASES
if [ "$usage_ok" = 1 ]; then ok "activation / notice templates / reversal: bad values are usage errors with a clear reason"
else bad "activation / notice templates / reversal: bad values are usage errors with a clear reason"; fi
printf 'warning1:customer:ok\nwarning9:customer:x\n' > "$tmp/badnt.txt"
ctl mkt1 param notice-templates --district d1 --language en --file "$tmp/badnt.txt"
if [ "$rc" -eq 65 ] && [ "$err" = "$tmp/badnt.txt:2: unknown notice kind \"warning9\" (known: warning1, warning2, disconnect, formal_disconnect, reconnect)" ]; then
  ok "param notice-templates with a bad file line: exit 65, file:line: reason"
else bad "param notice-templates with a bad file line: exit 65, file:line: reason" "rc=$rc $err"; fi
if [ "$(tail -n +"$((mark + 1))" "$tmp/ctl.log" | grep -c '^SUBMIT ')" = 4 ]; then ok "bad parameters submit nothing"
else bad "bad parameters submit nothing"; fi

mark=$(wc -l < "$tmp/ctl.log")
ctl ops1 district-results --chain main --district d1
cat > "$tmp/want1" <<'REPORT'
district d1 (main chain main)
totals: 40 transactions, 96 readings accepted, 95 billed, charged 123.45 yuan, 3 commands, 5 notices, 7 parameters taken
warning: acc1
disconnected: acc2
amounts in yuan
ACCOUNT  BALANCE  STATE         CYCLE CHARGED  TOTAL CHARGED  TOTAL PAID  CYCLE START (UTC)
acc1       12.34  WARNING1               2.50           9.00       21.34  2025-11-30 16:00
acc2       -2.50  DISCONNECTED           1.00          22.50       20.00  2025-11-30 16:00
more accounts after acc2 (--after acc2, or --all)
REPORT
if [ "$rc" -eq 0 ] && diff "$tmp/want1" "$tmp/out" > "$tmp/diff"; then ok "district-results: totals, warning and disconnect lists, a row per account in yuan, the next page"
else bad "district-results: totals, lists, rows in yuan" "rc=$rc $err $(cat "$tmp/diff")"; fi
ctl ops1 district-results --chain main --district d1 --all
if [ "$rc" -eq 0 ] && echo "$out" | grep -qx "warning: acc1, 用户4" && ! echo "$out" | grep -q "more accounts" \
   && echo "$out" | grep -qx "用户4      -0.05  WARNING2               0.00           0.95        1.00  2025-11-30 16:00" \
   && echo "$out" | grep -qx "acc3      999.99  NORMAL                 0.01           0.01     1000.00  2025-11-30 16:00"; then
  ok "district-results --all: every page, lists merged, wide characters aligned"
else bad "district-results --all: every page, lists merged, wide characters aligned" "rc=$rc $out $err"; fi
ctl ops1 district-results --chain main --district d1 --after acc2 --limit 1 --json
pycheck "district-results --after acc2 --limit 1 --json: one page, states by name, amounts in fen" '
assert len(lines) == 1 and [a["account"] for a in lines[0]["accounts"]] == ["acc3"], lines
assert lines[0]["accounts"][0]["state"] == "NORMAL" and lines[0]["accounts"][0]["balance_fen"] == 99999, lines
assert lines[0]["next_after"] == "acc3" and lines[0]["totals"]["charged_fen"] == 12345, lines
assert lines[0]["warning"] == [] and lines[0]["disconnected"] == [], lines'
ctl ops1 district-results --chain main --district d9
if [ "$rc" -eq 2 ] && [ "$err" = "error: NOT_FOUND: no district 'd9' is registered" ]; then ok "district-results of an unknown district: NOT_FOUND, exit 2"
else bad "district-results of an unknown district: NOT_FOUND, exit 2" "rc=$rc $err"; fi
dr_lines() { tail -n +"$((mark + 1))" "$tmp/ctl.log" | grep '^DISTRICT_RESULTS' | tr '\n' ,; }
if poll_eq "DISTRICT_RESULTS chain=main district=d1 after=- limit=0,DISTRICT_RESULTS chain=main district=d1 after=- limit=0,DISTRICT_RESULTS chain=main district=d1 after=acc2 limit=0,DISTRICT_RESULTS chain=main district=d1 after=acc2 limit=1,DISTRICT_RESULTS chain=main district=d9 after=- limit=0," dr_lines; then
  ok "district-results on the wire: main chain id, district, after_account paging, limit"
else bad "district-results on the wire" "$got"; fi
ctl ops1 state uplink/d1/account/acc2
pycheck "state uplink/d1/account/acc2: value hex and decoded AccountResult" '
assert doc["decoded_as"] == "gridledger.AccountResult" and doc["value"] != "", doc
d = doc["decoded"]
assert (d["account"], d["balance_fen"], d["state"], d["total_charged_fen"], d["total_paid_fen"]) == ("acc2", -250, 3, 2250, 2000), d'
ctl ops1 state uplink/d1/totals
pycheck "state uplink/d1/totals: decoded UplinkSummary (bytes as hex)" '
assert doc["decoded_as"] == "gridledger.UplinkSummary", doc
assert doc["decoded"]["charged_fen"] == 12345 and doc["decoded"]["accounts"] == [] and doc["decoded"]["downlink_digest"] == "09" * 32, doc'
ctl ops1 state reading/m1/000000000000005
if [ "$rc" -eq 0 ] && ! echo "$out" | grep -q decoded; then ok "state of a key of no message kind: hex only"
else bad "state of a key of no message kind: hex only" "$out"; fi

# ---- connection errors read as sentences ------------------------------------------------------
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$gridctl" --addr "127.0.0.1:$closed" --cert "$c/ops1.crt" --key "$c/ops1.key" --ca "$c/ca.crt" status > "$tmp/out" 2> "$tmp/err"
rc=$?; err=$(cat "$tmp/err")
if [ "$rc" -eq 2 ] && [ "$err" = "error: cannot connect to 127.0.0.1:$closed: connection refused (is the node running?)" ]; then
  ok "closed port: error: cannot connect to H:P: connection refused (is the node running?)"
else bad "closed port: one sentence" "rc=$rc $err"; fi
"$gridctl" --addr "$ctl_addr" --cert "$c/ops1.crt" --key "$c/ops1.key" --ca "$c/other/ca.crt" status > "$tmp/out" 2> "$tmp/err"
rc=$?; err=$(cat "$tmp/err")
if [ "$rc" -eq 2 ] && [ "$err" = "error: cannot connect to $ctl_addr: TLS handshake failed: the node's certificate is not signed by the CA in $c/other/ca.crt (wrong --ca, or a node of another deployment?)" ]; then
  ok "wrong CA: the node's certificate is not signed by the CA in FILE"
else bad "wrong CA: one sentence" "rc=$rc $err"; fi
"$gridctl" --addr "$ctl_addr" --cert "$c/other/fn1.crt" --key "$c/other/fn1.key" --ca "$c/ca.crt" status > "$tmp/out" 2> "$tmp/err"
rc=$?; err=$(cat "$tmp/err")
if [ "$rc" -eq 2 ] && [ "$(echo "$err" | wc -l)" = 1 ] && echo "$err" | grep -q "^error: .*$ctl_addr.*reject.* certificate"; then
  ok "client certificate of another CA: one line, the node rejected this client's certificate"
else bad "client certificate of another CA: one sentence" "rc=$rc $err"; fi
"$gridctl" --addr "$ctl_addr" --server-name node9.example --cert "$c/ops1.crt" --key "$c/ops1.key" --ca "$c/ca.crt" status > "$tmp/out" 2> "$tmp/err"
rc=$?; err=$(cat "$tmp/err")
if [ "$rc" -eq 2 ] && echo "$err" | grep -q "^error: cannot connect to $ctl_addr: TLS handshake failed: the node's certificate does not name node9.example (use --server-name"; then
  ok "server name not in the node certificate: does not name NAME"
else bad "server name not in the node certificate: one sentence" "rc=$rc $err"; fi
python3 -c '
import socket, sys, time
s = socket.create_server(("127.0.0.1", 0)); open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
conns = []
while True:
    conns.append(s.accept()[0])
' "$tmp/silentport" &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/silentport" ] && break; sleep 0.1; done
silent=$(cat "$tmp/silentport")
"$gridctl" --addr "127.0.0.1:$silent" --timeout 500 --cert "$c/ops1.crt" --key "$c/ops1.key" --ca "$c/ca.crt" status > "$tmp/out" 2> "$tmp/err"
rc=$?; err=$(cat "$tmp/err")
if [ "$rc" -eq 2 ] && [ "$err" = "error: cannot connect to 127.0.0.1:$silent: no answer to the TLS handshake within 500 ms (is this a GridLedger node's port?)" ]; then
  ok "a port that never answers the handshake: no answer within the timeout"
else bad "a port that never answers the handshake: one sentence" "rc=$rc $err"; fi
"$gridctl" --addr "127.0.0.1:$closed" --cert "$tmp/none.crt" --key "$c/ops1.key" --ca "$c/ca.crt" status > "$tmp/out" 2> "$tmp/err"
rc=$?; err=$(cat "$tmp/err")
if [ "$rc" -eq 2 ] && [ "$err" = "error: cannot read the client certificate $tmp/none.crt: No such file or directory" ]; then
  ok "missing certificate file: cannot read the client certificate FILE"
else bad "missing certificate file: one sentence" "rc=$rc $err"; fi

if ! grep -q "bad signature\|framing:" "$tmp/ctl.log"; then ok "fake node: every gridctl signature verified by openssl, framing right"
else bad "fake node: every gridctl signature verified by openssl, framing right" "$(grep "bad signature\|framing:" "$tmp/ctl.log")"; fi

if [ "$fake_fail" -ne 0 ]; then echo "--- fake node log"; cat "$tmp/fake.log"; fi
if [ "$fail" -ne "$fake_fail" ]; then echo "--- fake node (gridctl) log"; tail -40 "$tmp/ctl.log"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
