#!/usr/bin/env bash
# gridctl against a real gridnode over loopback (Docs/wire-protocol.md).
# usage: tests/integration.sh PATH/TO/gridnode [BUILD_DIR]
# Makes a CA and node1 / ops1 / mkt1 (marketing: reads blocks and transactions, which ops
# may not, Docs/permissions.md) / col1 (collector, d1) / col2 (collector, d2) certificates
# with `gridnode ca`, starts the node on a free port serving chain d1 (--chain-id d1), runs
# gridctl (connection and Ops/Health checks, then tests/chain_checks.sh: ingest, block, tx,
# watch), stops the node with SIGTERM. Then a node serving two chains (--chain); then
# tests/anchoring_checks.sh (a main chain and an anchoring district d1: registration,
# parameters, fee control, commands, notices, proofs; its counts are added here). Then a
# 3-node Raft group (node1..node3, chain d1):
# status Raft fields, admin transfer-leader (and PERMISSION_DENIED as ops), a linearizable
# state read on a follower right after an ingest through the leader, and admin add-member /
# promote / remove (skipped while the node answers UNIMPLEMENTED for Admin/AddMember).
# Prints "N passed, N failed" last.
set -u
gridnode=${1:?usage: integration.sh PATH/TO/gridnode [BUILD_DIR]}
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${2:-$here/../build}" && pwd)
gridctl=$build/gridctl
tmp=$(mktemp -d)
# Node ports: below the ephemeral range, never the same twice in a run (tests/ports.sh).
export GRIDTEST_PORTS_FILE=${GRIDTEST_PORTS_FILE:-$tmp/ports.used}
. "$here/ports.sh"
node_pid=""
raft_pids=()
pass=0 fail=0

cleanup() {
  for p in "$node_pid" "${raft_pids[@]}"; do
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
      kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
    fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ $# -gt 1 ] && echo "$2" | sed 's/^/     /'; }
finish() {
  if [ "$fail" -ne 0 ] && [ -f "$tmp/node.log" ]; then echo "--- node log (tail)"; tail -40 "$tmp/node.log"; fi
  if [ "$fail" -ne 0 ]; then
    for f in "$tmp"/raft*.log; do [ -f "$f" ] && { echo "--- $f (tail)"; tail -15 "$f"; }; done
  fi
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]; exit $?
}
[ -x "$gridnode" ] || { bad "gridnode executable at $gridnode"; finish; }
[ -x "$gridctl" ] || { bad "gridctl built at $gridctl (run make)"; finish; }

# ---- certificates -----------------------------------------------------------------------
if "$gridnode" ca init --out "$tmp/ca" > "$tmp/ca.log" 2>&1 \
   && "$gridnode" ca issue --ca "$tmp/ca" --role node --name node1 --out "$tmp/certs" >> "$tmp/ca.log" 2>&1 \
   && "$gridnode" ca issue --ca "$tmp/ca" --role ops --name ops1 --out "$tmp/certs" >> "$tmp/ca.log" 2>&1 \
   && "$gridnode" ca issue --ca "$tmp/ca" --role marketing --name mkt1 --out "$tmp/certs" >> "$tmp/ca.log" 2>&1 \
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
port=$(free_port)
[ -n "$port" ] || { bad "a free port for the node"; finish; }
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
deadline=$((SECONDS + 30))
while [ "$SECONDS" -le "$deadline" ]; do
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
if [ "$rc" -eq 2 ] && [ -z "$out" ] && [ "$err" = "error: cannot connect to 127.0.0.1:$port: TLS handshake failed: the node's certificate is not signed by the CA in $tmp/otherca/ca.crt (wrong --ca, or a node of another deployment?)" ]; then
  ok "wrong CA file: exit 2, one sentence (not signed by the CA in FILE)"
else
  bad "wrong CA file: exit 2, one sentence (not signed by the CA in FILE)" "rc=$rc stdout: $out stderr: $err"
fi
# Nothing listens: one sentence too.
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$gridctl" --addr "127.0.0.1:$closed" --cert "$c/ops1.crt" --key "$c/ops1.key" --ca "$c/ca.crt" status \
  > "$tmp/out" 2> "$tmp/err"
rc=$?; err=$(cat "$tmp/err")
if [ "$rc" -eq 2 ] && [ "$err" = "error: cannot connect to 127.0.0.1:$closed: connection refused (is the node running?)" ]; then
  ok "closed port: exit 2, connection refused (is the node running?)"
else bad "closed port: exit 2, connection refused (is the node running?)" "rc=$rc stderr: $err"; fi

# The node names 127.0.0.1 and localhost, not other names.
"$gridctl" --addr "127.0.0.1:$port" --server-name node9.example --cert "$c/ops1.crt" --key "$c/ops1.key" \
  --ca "$c/ca.crt" health > "$tmp/out" 2> "$tmp/err"
rc=$?; err=$(cat "$tmp/err")
if [ "$rc" -eq 2 ] && echo "$err" | grep -q "the node's certificate does not name node9.example"; then ok "server name not in the node certificate: does not name node9.example"
else bad "server name not in the node certificate: does not name node9.example" "rc=$rc stderr: $err"; fi
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
  # Reads are permissioned (Docs/permissions.md): ops reads no blocks; a collector of d2
  # reads nothing of d1.
  for who_args in "ops1 block 0" "col2 chain"; do
    # shellcheck disable=SC2086
    ctl $who_args
    if [ "$rc" -eq 2 ] && echo "$err" | grep -q '^error: PERMISSION_DENIED: '; then ok "read refused ($who_args): PERMISSION_DENIED"
    else bad "read refused ($who_args): PERMISSION_DENIED" "rc=$rc stdout: $out stderr: $err"; fi
  done
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

# ---- one node serving two chains (d1, d2): --chain ---------------------------------------
mport=$(free_port)
[ -n "$mport" ] || { bad "a free port for the two-chain node"; finish; }
mkdir -p "$tmp/multi"
cat > "$tmp/multi.yaml" <<YAML
listen: 127.0.0.1:$mport
data_dir: $tmp/multi
tls: {cert: $c/node1.crt, key: $c/node1.key, ca: $c/ca.crt}
chains:
  - {id: d1, max_block_delay_ms: 5}
  - {id: d2, max_block_delay_ms: 5}
YAML
"$gridnode" start --config "$tmp/multi.yaml" > "$tmp/node.log" 2>&1 &
node_pid=$!
port=$mport
up=0
deadline=$((SECONDS + 30))
while [ "$SECONDS" -le "$deadline" ]; do
  kill -0 "$node_pid" 2>/dev/null || break
  ctl ops1 chain --chain d1
  if [ "$rc" -eq 0 ]; then up=1; break; fi
  sleep 0.1
done
if [ "$up" = 1 ]; then
  ok "two-chain node (--config, chains d1 and d2) answers chain --chain d1"
  gen_readings_csv "$tmp/m1.csv" 2 2 1768000000000
  gen_readings_csv "$tmp/m2.csv" 3 1 1768000000000
  ctl col2 ingest --csv "$tmp/m2.csv" --chain d2
  if [ "$rc" -eq 0 ] && python3 -c 'import json,sys; l=[json.loads(x) for x in open(sys.argv[1])]; assert len(l)==1 and l[0]["accepted"]==3' "$tmp/out" 2>/dev/null
  then ok "multi: ingest --chain d2 as the d2 collector commits"; else bad "multi: ingest --chain d2 as the d2 collector commits" "rc=$rc out=$out err=$err"; fi
  ctl col1 ingest --csv "$tmp/m1.csv" --chain d1
  if [ "$rc" -eq 0 ]; then ok "multi: ingest --chain d1 as the d1 collector commits"; else bad "multi: ingest --chain d1 as the d1 collector commits" "rc=$rc $err"; fi
  ctl col1 ingest --csv "$tmp/m1.csv" --chain d2
  if [ "$rc" -eq 2 ] && echo "$err" | grep -q '^error: PERMISSION_DENIED: '; then ok "multi: d1 collector on --chain d2: PERMISSION_DENIED"
  else bad "multi: d1 collector on --chain d2: PERMISSION_DENIED" "rc=$rc $err"; fi
  ctl mkt1 block 1 --chain d1; b1=$out; rc1=$rc
  ctl mkt1 block 1 --chain d2; b2=$out
  if [ "$rc1" -eq 0 ] && [ "$rc" -eq 0 ] && python3 - "$b1" "$b2" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert a["hash"] != b["hash"], (a["hash"], b["hash"])
assert a["header"]["chain_id"] == "d1" and b["header"]["chain_id"] == "d2", (a["header"], b["header"])
PY
  then ok "multi: block 1 of d1 and of d2 differ (chain_id d1 / d2)"; else bad "multi: block 1 of d1 and of d2 differ" "rc=$rc1/$rc d1=$(echo "$b1" | head -c 400) d2=$(echo "$b2" | head -c 400)"; fi
  ctl ops1 chain --chain d2
  if [ "$rc" -eq 0 ] && echo "$out" | grep -q '"chain_id": "d2"'; then ok "multi: chain --chain d2 names d2"; else bad "multi: chain --chain d2 names d2" "rc=$rc $out $err"; fi
  inv_ok=1
  for args in "chain" "block 1" "state k" "watch --count 1"; do
    # shellcheck disable=SC2086
    ctl ops1 $args
    if [ "$rc" -ne 2 ] || ! echo "$err" | grep -q '^error: INVALID_ARGUMENT: '; then inv_ok=0; echo "     $args: rc=$rc $err"; fi
  done
  ctl col2 ingest --csv "$tmp/m2.csv"
  if [ "$rc" -ne 2 ] || ! echo "$err" | grep -q '^error: INVALID_ARGUMENT: '; then inv_ok=0; echo "     ingest: rc=$rc $err"; fi
  if [ "$inv_ok" = 1 ]; then ok "multi: without --chain: INVALID_ARGUMENT, exit 2"; else bad "multi: without --chain: INVALID_ARGUMENT, exit 2"; fi
  ctl ops1 block 0 --chain d9
  if [ "$rc" -eq 2 ] && echo "$err" | grep -q '^error: NOT_FOUND: '; then ok "multi: --chain d9 (not served): NOT_FOUND"; else bad "multi: --chain d9 (not served): NOT_FOUND" "rc=$rc $err"; fi
else
  bad "two-chain node (--config, chains d1 and d2) answers chain --chain d1" "rc=$rc $err $(tail -5 "$tmp/node.log")"
fi
kill -TERM "$node_pid" 2>/dev/null
for _ in $(seq 200); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$node_pid" 2>/dev/null; then bad "multi: SIGTERM: node exited"; else wait "$node_pid"; node_pid=""; fi

# ---- main chain + anchoring district (tests/anchoring_checks.sh) ---------------------------
# Its own two nodes; its ok/FAIL lines are shown and its counts added here (its
# "N passed, N failed" line is not repeated, so scripts/test counts them once).
anchoring=$(bash "$here/anchoring_checks.sh" "$gridnode" "$build" 2>&1); anchoring_rc=$?
echo "$anchoring" | sed '$d'
last=$(echo "$anchoring" | tail -1)
n_ok=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
n_bad=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
if [ -z "$n_ok" ]; then bad "anchoring_checks.sh ran to the end (rc=$anchoring_rc)" "$last"; else
  pass=$((pass + n_ok)); fail=$((fail + n_bad)); fi

# ---- 3-node Raft group -----------------------------------------------------------------
if ! "$gridnode" start --help 2>&1 | grep -q -- '--raft-id'; then
  bad "gridnode start accepts --raft-id" "no --raft-id in 'gridnode start --help': Raft checks not run"
  finish
fi
# Raft members are bound to district d1 and their keys (Docs/security.md, "Raft membership"):
# node1..node3 of d1 in their own directory (the node1 above names no district).
for n in node1 node2 node3; do
  "$gridnode" ca issue --ca "$tmp/ca" --role node --name "$n" --district d1 --out "$c/raft" >> "$tmp/ca.log" 2>&1
done
"$gridnode" ca issue --ca "$tmp/ca" --role admin --name admin1 --out "$c" >> "$tmp/ca.log" 2>&1
type gen_readings_csv > /dev/null 2>&1 || . "$here/chain_checks.sh"
rports=("" "$(free_port)" "$(free_port)" "$(free_port)")
if [ -z "${rports[1]}" ] || [ -z "${rports[2]}" ] || [ -z "${rports[3]}" ]; then
  bad "free ports for the Raft group" "${rports[*]}"; finish
fi
members=()
for i in 1 2 3; do members+=(--member "$i=node$i@127.0.0.1:${rports[$i]}#cert:$c/raft/node$i.crt"); done
for i in 1 2 3; do
  "$gridnode" start --listen "127.0.0.1:${rports[$i]}" --data-dir "$tmp/raft$i" \
    --cert "$c/raft/node$i.crt" --key "$c/raft/node$i.key" --ca "$c/ca.crt" --chain-id d1 --raft-id "$i" \
    "${members[@]}" > "$tmp/raft$i.log" 2>&1 &
  raft_pids+=($!)
done

rctl() { # node-index as-who args...  (like ctl, against Raft member i)
  local i=$1 who=$2; shift 2
  "$gridctl" --addr "127.0.0.1:${rports[$i]}" --cert "$c/$who.crt" --key "$c/$who.key" --ca "$c/ca.crt" "$@" \
    > "$tmp/out" 2> "$tmp/err"
  rc=$?; out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
}
json_get() { # python expression over `doc` (stdout of the last command)
  python3 -c 'import json,sys; doc=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$tmp/out" "$1" 2>/dev/null
}
# find_leader [WANT] [SECONDS]: sets $leader to the group's leader (and returns 0) once the
# members agree on it: a member says role "leader" at term T, a majority of the members
# report raft_leader = it at term T, no other member says "leader" and none is at a later
# term. Right after an election or a leadership transfer the old leader can still say
# "leader" for a moment; that one is never returned. With WANT: only when the agreed leader
# is member WANT. Polls for SECONDS (default 60); $leader is empty on failure.
find_leader() {
  local want=${1:-} i got deadline=$((SECONDS + ${2:-60}))
  leader=""
  while :; do
    for i in 1 2 3; do
      rctl "$i" ops1 --timeout 2000 status
      if [ "$rc" -eq 0 ]; then cp "$tmp/out" "$tmp/status$i.json"; else : > "$tmp/status$i.json"; fi
    done
    got=$(python3 - "$tmp/status1.json" "$tmp/status2.json" "$tmp/status3.json" <<'PY' 2>/dev/null
import json, sys
views = {}
for i, path in enumerate(sys.argv[1:], 1):
    try:
        ch = json.load(open(path))["chains"][0]
        views[i] = (ch["role"], int(ch["raft_leader"]), int(ch["raft_term"]))
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        pass
leaders = [i for i, v in views.items() if v[0] == "leader"]
if len(leaders) == 1:
    top = leaders[0]
    term = views[top][2]
    agree = [i for i, v in views.items() if v[1] == top and v[2] == term]
    if 2 * len(agree) > len(sys.argv) - 1 and all(v[2] <= term for v in views.values()):
        print(top)
PY
)
    if [ -n "$got" ] && { [ -z "$want" ] || [ "$got" = "$want" ]; }; then leader=$got; return 0; fi
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

if find_leader; then ok "raft: a leader is elected (node$leader)"; else bad "raft: a leader is elected" "last: rc=$rc $out $err"; finish; fi
rctl "$leader" ops1 status
if [ "$rc" -eq 0 ] && [ "$(json_get '[doc["chains"][0][k] for k in ("raft_node_id", "raft_leader", "halted")]')" = "[$leader, $leader, '']" ] \
   && [ "$(json_get 'sorted(p["node_id"] for p in doc["chains"][0]["raft_peers"])')" = "[1, 2, 3]" ] \
   && [ "$(json_get 'all(isinstance(doc["chains"][0][k], int) for k in ("raft_term", "raft_commit", "raft_applied"))')" = True ]; then
  ok "raft: status has raft_node_id, raft_leader, raft_term/commit/applied, raft_peers, halted"
else bad "raft: status has the Raft fields" "rc=$rc $out $err"; fi

target=$(( leader % 3 + 1 ))
# ABORTED / UNAVAILABLE: an election racing the transfer; asked again for up to 30 s.
deadline=$((SECONDS + 30))
while :; do
  rctl "$leader" admin1 --timeout 30000 admin transfer-leader --chain d1 --node "$target"
  case "$err" in "error: ABORTED"*|"error: UNAVAILABLE"*) ;; *) break ;; esac
  [ "$SECONDS" -lt "$deadline" ] || break
  sleep 0.5
done
if [ "$rc" -eq 0 ] && [ "$(json_get 'doc["leader"]')" = "$target" ] \
   && [ "$(json_get 'sorted(doc) == ["leader", "learners", "voters"]')" = True ]; then
  ok "raft: admin transfer-leader --node $target answers {\"leader\": $target, ...}"
else bad "raft: admin transfer-leader --node $target answers leader $target" "rc=$rc $out $err"; fi
if find_leader "$target" 30; then ok "raft: node$target reports role leader after the transfer (agreed by a majority)"
else
  bad "raft: node$target reports role leader after the transfer (agreed by a majority)" \
    "$(for i in 1 2 3; do echo "node$i: $(head -c 600 "$tmp/status$i.json")"; done)"
  find_leader "" 30 || { bad "raft: the group agrees on a leader after the transfer"; finish; }
fi

rctl "$leader" ops1 admin transfer-leader --chain d1 --node 1
if [ "$rc" -eq 2 ] && [ -z "$out" ] && echo "$err" | grep -q '^error: PERMISSION_DENIED: '; then
  ok "raft: admin transfer-leader as ops: PERMISSION_DENIED"
else bad "raft: admin transfer-leader as ops: PERMISSION_DENIED" "rc=$rc $out $err"; fi

# A linearizable read on a follower sees what was just committed through the leader.
follower=$(( leader % 3 + 1 ))
t0=1769000000000
gen_readings_csv "$tmp/lin.csv" 2 1 "$t0"
rctl "$leader" col1 ingest --csv "$tmp/lin.csv"
ingest_rc=$rc ingest_err=$err
rctl "$follower" admin1 --timeout 30000 state "reading/m-002/$(printf '%015d' "$t0")" --linearizable
if [ "$ingest_rc" -eq 0 ] && [ "$rc" -eq 0 ] && [ "$(json_get 'doc["found"]')" = True ] \
   && [ "$(json_get 'doc["version"]["height"] >= 1')" = True ]; then
  ok "raft: state --linearizable on follower node$follower finds the reading just submitted"
else bad "raft: state --linearizable on a follower finds the reading just submitted" "ingest rc=$ingest_rc $ingest_err; state rc=$rc $out $err"; fi
height=$(json_get 'doc["version"]["height"]')
rctl "$follower" admin1 --timeout 30000 block "${height:-1}" --linearizable
if [ "$rc" -eq 0 ] && [ "$(json_get 'doc["verified"]')" = True ]; then ok "raft: block --linearizable on a follower"
else bad "raft: block --linearizable on a follower" "rc=$rc $err"; fi

# Membership (Admin/AddMember, PromoteMember, RemoveMember).
spare=$(free_port)
rctl "$leader" admin1 --timeout 30000 admin add-member --chain d1 --node 4 --name node4 --address "127.0.0.1:$spare"
if [ "$rc" -eq 2 ] && echo "$err" | grep -q '^error: UNIMPLEMENTED: '; then
  echo "skip raft: admin add-member / promote / remove: the node answers UNIMPLEMENTED for /gridledger.Admin/AddMember"
elif [ "$rc" -eq 0 ] && [ "$(json_get '4 in doc["learners"] and 4 not in doc["voters"]')" = True ]; then
  ok "raft: admin add-member --node 4: a learner"
  # Nothing listens for node 4, so it never catches up: promotion is refused.
  rctl "$leader" admin1 --timeout 30000 admin promote --chain d1 --node 4
  if [ "$rc" -eq 2 ] && echo "$err" | grep -q '^error: FAILED_PRECONDITION: '; then ok "raft: admin promote of a learner that is not caught up: FAILED_PRECONDITION"
  else bad "raft: admin promote of a learner that is not caught up: FAILED_PRECONDITION" "rc=$rc $out $err"; fi
  rctl "$leader" admin1 --timeout 30000 admin remove --chain d1 --node 4
  if [ "$rc" -eq 0 ] && [ "$(json_get '4 not in doc["learners"] + doc["voters"] and sorted(doc["voters"]) == [1, 2, 3]')" = True ]; then
    ok "raft: admin remove --node 4"
  else bad "raft: admin remove --node 4" "rc=$rc $out $err"; fi
else
  bad "raft: admin add-member --node 4: a learner" "rc=$rc $out $err"
fi

stopped=1
for i in 1 2 3; do kill -TERM "${raft_pids[$((i - 1))]}" 2>/dev/null; done
for i in 1 2 3; do
  p=${raft_pids[$((i - 1))]}
  for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then stopped=0; else wait "$p" || stopped=0; fi
done
if [ "$stopped" = 1 ]; then ok "raft: SIGTERM: the three nodes exited 0"; else bad "raft: SIGTERM: the three nodes exited 0"; fi
finish
