# free_port: prints a TCP port for a gridnode to listen on. Sourced by integration.sh and
# anchoring_checks.sh.
#
# Not port 0 (bind to 0, read the port, close): that gives a port in Linux's ephemeral
# range (/proc/sys/net/ipv4/ip_local_port_range, usually 32768-60999), and since the ports
# of a group of nodes are all chosen before the nodes start, an outgoing connection (a node
# dialling a peer or the main chain, a gridctl) could be given one of them before its node
# listens on it. Instead: a random port in [20000, 32000) (below the ephemeral range), that
# can be bound on 127.0.0.1 right now and was not handed out before in this run. The ports
# handed out are listed in $GRIDTEST_PORTS_FILE (exported, so that anchoring_checks.sh run
# by integration.sh shares the list; each script sets it to a file in its $tmp unless set).
free_port() {
  python3 - "${GRIDTEST_PORTS_FILE:?free_port needs GRIDTEST_PORTS_FILE}" <<'PY'
import fcntl, random, socket, sys
low, high = 20000, 32000
try:
    ephemeral_low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    if ephemeral_low - low >= 1000:
        high = min(high, ephemeral_low)
except (OSError, ValueError, IndexError):
    pass
rng = random.SystemRandom()
with open(sys.argv[1], "a+") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    f.seek(0)
    used = {int(x) for x in f.read().split()}
    for _ in range(1000):
        port = rng.randrange(low, high)
        if port in used:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        f.write("%d\n" % port)
        print(port)
        break
    else:
        sys.exit("free_port: no bindable port in [%d, %d)" % (low, high))
PY
}
