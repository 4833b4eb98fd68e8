#!/usr/bin/env bash
# gridctl against a real gridnode over loopback (Docs/wire-protocol.md).
# usage: tests/integration.sh PATH/TO/gridnode [BUILD_DIR]
# Makes a CA and node1 / ops1 / col1 (collector, d1) / col2 (collector, d2) certificates
# with `gridnode ca`, starts the node on a free port serving chain d1 (--chain-id d1), runs
# gridctl (connection and Ops/Health checks, then tests/chain_checks.sh: ingest, block, tx,
# watch), stops the node with SIGTERM. Prints "N passed, N failed" last.
set -u
gridnode=${1:?usage: integration.sh PATH/TO/gridnode [BUILD_DIR]}
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${2:-$here/../build}" && pwd)
gridctl=$build/gridctl
tmp=$(mktemp -d)
node_pid=""
pass=0 fail=0

cleanup() {
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -KILL "$node_pid" 2>/dev/null; wait "$node_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ $# -gt 1 ] && echo "$2" | sed 's/^/     /'; }
finish() {
  if [ "$fail" -ne 0 ] && [ -f "$tmp/node.log" ]; then echo "--- node log (tail)"; tail -40 "$tmp/node.log"; fi
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]; exit $?
}
[ -x "$gridnode" ] || { bad "gridnode executable at $gridnode"; finish; }
[ -x "$gridctl" ] || { bad "gridctl built at $gridctl (run make)"; finish; }

# ---- certificates -----------------------------------------------------------------------
if "$gridnode" ca init --out "$tmp/ca" > "$tmp/ca.log" 2>&1 \
   && "$gridnode" ca issue --ca "$tmp/ca" --role node --name node1 --out "$tmp/certs" >> "$tmp/ca.log" 2>&1 \
   && "$gridnode" ca issue --ca "$tmp/ca" --role ops --name ops1 --out "$tmp/certs" >> "$tmp/ca.log" 2>&1 \
   && "$gridnode" ca issue --ca "$tmp/ca" --role collector --name col1 --district d1 --out "$tmp/certs" >> "$tmp/ca.log" 2>&1 \
   && "$gridnode" ca issue --ca "$tmp/ca" --role collector --name col2 --district d2 --out "$tmp/certs" >> "$tmp/ca.log" 2>&1 \
   && "$gridnode" ca init --out "$tmp/otherca" >> "$tmp/ca.log" 2>&1 \
   && [ -s "$tmp/certs/node1.crt" ] && [ -s "$tmp/certs/node1.key" ] && [ -s "$tmp/certs/ops1.crt" ] \
   && [ -s "$tmp/certs/col1.key" ] && [ -s "$tmp/certs/col2.key" ] && [ -s "$tmp/certs/ca.crt" ] \
   && [ -s "$tmp/otherca/ca.crt" ]; then
  ok "gridnode ca init / ca issue (node1, ops1, col1, col2)"
else
  bad "gridnode ca init / ca issue (node1, ops1, col1, col2)" "$(cat "$tmp/ca.log"; ls -R "$tmp")"
  finish
fi
c=$tmp/certs

# ---- node -----------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null)
[ -n "$port" ] || port=$((20000 + RANDOM % 20000))
mkdir -p "$tmp/data"
chain_args=()
if "$gridnode" start --help 2>&1 | grep -q -- '--chain-id'; then chain_args=(--chain-id d1); fi
"$gridnode" start --listen "127.0.0.1:$port" --data-dir "$tmp/data" \
  --cert "$c/node1.crt" --key "$c/node1.key" --ca "$c/ca.crt" "${chain_args[@]}" > "$tmp/node.log" 2>&1 &
node_pid=$!
ctl_addr=127.0.0.1:$port

ctl() { # as-who args...  -> stdout in $out, stderr in $err, exit code in $rc
  local who=$1; shift
  "$gridctl" --addr "127.0.0.1:$port" --cert "$c/$who.crt" --key "$c/$who.key" --ca "$c/ca.crt" "$@" \
    > "$tmp/out" 2> "$tmp/err"
  rc=$?; out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
}

up=0
for _ in $(seq 150); do
  kill -0 "$node_pid" 2>/dev/null || break
  ctl ops1 --timeout 1000 health
  [ "$rc" -eq 0 ] && { up=1; break; }
  sleep 0.1
done
if [ "$up" = 1 ]; then ok "node started on 127.0.0.1:$port and answers"; else
  bad "node started on 127.0.0.1:$port and answers" "last gridctl: rc=$rc $err"; finish; fi

# ---- calls ------------------------------------------------------------------------------
# Ops/GetStatus allows ops and admin.
ctl ops1 status
if [ "$rc" -eq 0 ] && echo "$out" | grep -q '"node_id": "node1"' && echo "$out" | grep -q '"role": "ops"'; then
  ok "status as ops: exit 0, JSON has node_id node1 and caller role ops"
else
  bad "status as ops: exit 0, JSON has node_id node1 and caller role ops" "rc=$rc stdout: $out stderr: $err"
fi
if [ "$rc" -eq 0 ] && python3 -c 'import json,sys; json.load(sys.stdin)' < "$tmp/out" 2>/dev/null; then
  ok "status output is valid JSON"
elif ! command -v python3 >/dev/null; then ok "status output is valid JSON (not checked: no python3)"
else bad "status output is valid JSON" "$out"; fi

# Any other role gets PERMISSION_DENIED.
ctl col1 status
if [ "$rc" -eq 2 ] && [ -z "$out" ] && echo "$err" | grep -q '^error: PERMISSION_DENIED: '; then
  ok "status as collector: exit 2, error: PERMISSION_DENIED"
else
  bad "status as collector: exit 2, error: PERMISSION_DENIED" "rc=$rc stdout: $out stderr: $err"
fi

# Health/Check "" is the node itself.
ctl col1 health
if [ "$rc" -eq 0 ] && [ "$out" = '{"status": "SERVING"}' ]; then ok 'health: {"status": "SERVING"}'
else bad 'health: {"status": "SERVING"}' "rc=$rc stdout: $out stderr: $err"; fi

# Health/Check for an unknown service answers NOT_FOUND.
ctl ops1 health no.such.Service
if [ "$rc" -eq 2 ] && echo "$err" | grep -q '^error: NOT_FOUND: '; then ok "health unknown service: NOT_FOUND"
else bad "health unknown service: NOT_FOUND" "rc=$rc stdout: $out stderr: $err"; fi

# Health/Watch sends the current status at once; the deadline then ends it.
ctl ops1 --timeout 1500 watch-health
first=$(echo "$out" | head -1)
if [ "$first" = '{"status": "SERVING"}' ] && [ "$rc" -eq 2 ] && echo "$err" | grep -q '^error: DEADLINE_EXCEEDED: '; then
  ok "watch-health: first update SERVING, ends DEADLINE_EXCEEDED at --timeout"
else
  bad "watch-health: first update SERVING, ends DEADLINE_EXCEEDED at --timeout" "rc=$rc stdout: $out stderr: $err"
fi

# A CA the node's certificate does not chain to: clean failure, no crash.
"$gridctl" --addr "127.0.0.1:$port" --cert "$c/ops1.crt" --key "$c/ops1.key" --ca "$tmp/otherca/ca.crt" status \
  > "$tmp/out" 2> "$tmp/err"
rc=$?; out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
if [ "$rc" -eq 2 ] && [ -z "$out" ] && echo "$err" | grep -q '^error: UNAVAILABLE: .*verify'; then
  ok "wrong CA file: exit 2, error: UNAVAILABLE (certificate verify failed)"
else
  bad "wrong CA file: exit 2, error: UNAVAILABLE (certificate verify failed)" "rc=$rc stdout: $out stderr: $err"
fi

# The node names 127.0.0.1 and localhost, not other names.
"$gridctl" --addr "127.0.0.1:$port" --server-name node9.example --cert "$c/ops1.crt" --key "$c/ops1.key" \
  --ca "$c/ca.crt" health > "$tmp/out" 2> "$tmp/err"
rc=$?; err=$(cat "$tmp/err")
if [ "$rc" -eq 2 ] && echo "$err" | grep -q 'hostname mismatch'; then ok "server name not in the node certificate: hostname mismatch"
else bad "server name not in the node certificate: hostname mismatch" "rc=$rc stderr: $err"; fi
"$gridctl" --addr "localhost:$port" --cert "$c/ops1.crt" --key "$c/ops1.key" --ca "$c/ca.crt" health \
  > "$tmp/out" 2> "$tmp/err"
rc=$?
if [ "$rc" -eq 0 ]; then ok "dial by name localhost (SAN DNS:localhost)"
else bad "dial by name localhost (SAN DNS:localhost)" "rc=$rc stderr: $(cat "$tmp/err")"; fi

# Still serving after the failed handshakes.
ctl ops1 health
if [ "$rc" -eq 0 ]; then ok "node still serving after failed handshakes"
else bad "node still serving after failed handshakes" "rc=$rc stderr: $err"; fi

# ---- chain services (tests/chain_checks.sh) ----------------------------------------------
if [ ${#chain_args[@]} -gt 0 ]; then
  ok "gridnode start accepts --chain-id d1"
  . "$here/chain_checks.sh"
  run_chain_checks
  # The library where gridctl cannot reach: ALREADY_EXISTS trailer, END frame, cancel.
  [ -x "$build/test_live" ] || make -s -C "$here/.." BUILD="$build" "$build/test_live" > /dev/null 2>&1
  if [ -x "$build/test_live" ]; then
    live=$("$build/test_live" 127.0.0.1 "$port" "$c" 2>&1); live_rc=$?
    echo "$live" | sed '$d'
    last=$(echo "$live" | tail -1)
    n_ok=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    n_bad=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    if [ -z "$n_ok" ]; then bad "test_live ran to the end (rc=$live_rc)" "$last"; else
      pass=$((pass + n_ok)); fail=$((fail + n_bad)); fi
  else
    bad "test_live built at $build/test_live (make integration builds it)"
  fi
else
  bad "gridnode start accepts --chain-id d1" "no --chain-id in 'gridnode start --help': chain checks not run"
fi

# ---- shutdown ---------------------------------------------------------------------------
kill -TERM "$node_pid"
exited=0
for _ in $(seq 200); do kill -0 "$node_pid" 2>/dev/null || { exited=1; break; }; sleep 0.1; done
if [ "$exited" = 1 ]; then
  wait "$node_pid"; node_rc=$?; node_pid=""
  if [ "$node_rc" -eq 0 ]; then ok "SIGTERM: node exited 0"
  else bad "SIGTERM: node exited 0" "exit status $node_rc"; fi
else
  bad "SIGTERM: node exited 0" "still running 20 s after SIGTERM"
fi
finish
