#!/usr/bin/env bash
# Runs build/test_client against tests/fake_node.py (python3, standard library only) and
# checks the fake node's log for what the client put on the wire.
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
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

"$here/make_test_certs.sh" "$tmp/certs" || { echo "0 passed, 1 failed"; exit 1; }
python3 "$here/fake_node.py" "$tmp/certs/node1.crt" "$tmp/certs/node1.key" "$tmp/certs/ca.crt" \
  "$tmp/port" > "$tmp/fake.log" 2>&1 &
pids+=($!)
python3 "$here/fake_node.py" "$tmp/certs/col1node.crt" "$tmp/certs/col1node.key" "$tmp/certs/ca.crt" \
  "$tmp/badport" > "$tmp/bad.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/port" ] && [ -s "$tmp/badport" ] && break; sleep 0.1; done
if ! [ -s "$tmp/port" ] || ! [ -s "$tmp/badport" ]; then
  cat "$tmp/fake.log" "$tmp/bad.log"; echo "0 passed, 1 failed"; exit 1
fi

out=$("$build/test_client" "$tmp/certs" "$(cat "$tmp/port")" "$(cat "$tmp/badport")" 2>&1)
rc=$?
echo "$out" | sed '$d'
last=$(echo "$out" | tail -1)
n_ok=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
n_bad=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
if [ -z "$n_ok" ]; then echo "$last"; bad "test_client ran to the end (rc=$rc)"; else
  pass=$((pass + n_ok)); fail=$((fail + n_bad)); fi

sleep 0.3 # let the fake node log the last frames
# Deadline: CallHeaders.timeout_ms carries the deadline, and the client sends CANCEL when it passes.
if grep -q "method=/gridledger.Health/Check timeout_ms=300 " "$tmp/fake.log"; then ok "timeout_ms sent in CallHeaders"; else bad "timeout_ms sent in CallHeaders"; fi
slow_sid=$(sed -n 's/^slow call on stream \([0-9]*\).*/\1/p' "$tmp/fake.log" | head -1)
if [ -n "$slow_sid" ] && grep -q "^CANCEL stream $slow_sid\$" "$tmp/fake.log"; then ok "CANCEL sent when the deadline passed"; else bad "CANCEL sent when the deadline passed"; fi
big_sid=$(sed -n 's/^sent big message on stream \([0-9]*\).*/\1/p' "$tmp/fake.log" | head -1)
if [ -n "$big_sid" ] && grep -q "^CANCEL stream $big_sid\$" "$tmp/fake.log"; then ok "CANCEL sent after an oversized response"; else bad "CANCEL sent after an oversized response"; fi
if grep -q "^PING-ACK 69646c65706e6721\$" "$tmp/fake.log"; then ok "PING between calls answered"; else bad "PING between calls answered"; fi
if ! grep -q "framing:" "$tmp/fake.log" && grep -q "alpn=gridledger/1" "$tmp/fake.log"; then ok "ALPN gridledger/1, END_STREAM on the last MESSAGE"; else bad "ALPN gridledger/1, END_STREAM on the last MESSAGE"; fi
if [ "$fail" -ne 0 ]; then echo "--- fake node log"; cat "$tmp/fake.log"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
