#!/usr/bin/env python3
"""Dead peers: TCP keepalive on both sockets of every session (keepalive = K: idle K s,
six probes K/6 s apart, a user timeout of the same length), on by default (60 s), off
with 0, changed by a reload for new sessions; and a client that vanishes without a FIN
or an upstream that does so are found by keepalive and their session ends (network
namespaces; root only)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys

from relaytest import *
from t_listen_opts import _their_socket

TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)


def _conf(upstream, keepalive=None, bind="[::1]:0"):
    return 'listen k {\n    bind = "%s"\n    upstream = "%s"\n%s}\n' % (
        bind, upstream, "    keepalive = %d\n" % keepalive if keepalive is not None else "")


def _session_sockets(r, before):
    wait_until(lambda: len([f for f in r.fd_list() if f not in before]) >= 2, bound(10))
    fresh = sorted(f for f, v in r.fd_list().items() if before.get(f) != v and v.startswith("socket:"))
    expect_eq(len(fresh), 2, "new sockets in the relay for one session")
    return [_their_socket(r.pid, fd) for fd in fresh]


def _opts(s):
    return (s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            s.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT))


def _check_session(r, be, want, what, upstream_after=None):
    """The keepalive options of a session's sockets: the client's at once (inherited
    from the listener), the upstream's once the session has lived upstream_after
    seconds (relay64 sets them then; None: not looked at)."""
    before = r.fd_list()
    c = connect6(r.port("k"))
    socks = _session_sockets(r, before)
    try:
        for s in sorted(socks, key=lambda s: s.family != socket.AF_INET6):
            side = "client" if s.family == socket.AF_INET6 else "upstream"
            if side == "upstream":
                if upstream_after is None:
                    continue
                if want[0]:
                    expect_eq(_opts(s)[0], 0, "%s: the upstream socket before %.0f s" % (what, upstream_after))
                wait_until(lambda: False, upstream_after + 0.5)
            got = _opts(s)
            exp = want
            if want[0] == 0:
                got, exp = got[:1], (0,)
            expect_eq(got, exp, "%s: keepalive options of the %s socket (on, idle, interval, probes, "
                      "user timeout ms)" % (what, side))
    finally:
        for s in socks:
            s.close()
    c.close()


def case_keepalive_options():
    "keepalive = 4: idle 4, 6 probes 1 s apart, user timeout 10 s, on the client socket at once and the upstream's after 1 s; default 60; 0 off; a reload changes new sessions"
    be = Backend(echo())
    r = Relay(config=_conf(be.addr, 4))
    _check_session(r, be, (1, 4, 1, 6, 10000), "keepalive = 4", upstream_after=1)
    with open(r.confpath, "w") as f:
        f.write(_conf(be.addr, 0))
    r.send_signal(signal.SIGHUP)
    r.wait_log(r"^relay64: reloaded ", what="the reload")
    _check_session(r, be, (0,), "keepalive = 0 after a reload", upstream_after=1)
    r2 = Relay(config=_conf(be.addr))
    _check_session(r2, be, (1, 60, 10, 6, 120000), "the default")


NS_HERE, NS_THERE = "2001:db8:6464::1", "2001:db8:6464::2"
NS4_HERE, NS4_THERE = "198.18.65.1", "198.18.65.2"


def _netns():
    """A host in a network namespace, joined by a veth pair: NS_HERE and NS4_HERE on
    this side, NS_THERE and NS4_THERE on that one. Returns (name, cleanup, run)."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        raise Skip("needs root and ip (network namespaces)")
    addrs = subprocess.run(["ip", "addr"], capture_output=True, text=True).stdout
    if "2001:db8:6464:" in addrs or "198.18.65." in addrs:
        raise Skip("the test's namespace addresses are in use on this host")
    name, veth = "r64ka%d" % os.getpid(), "r64k%d" % (os.getpid() % 100000)
    cleanup = Cleanup(name, veth)

    def run(*cmd):
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise Skip("%s: %s" % (" ".join(cmd), p.stderr.strip()))
    run("ip", "netns", "add", name)
    cleanup.ns = True
    run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
    run("ip", "-6", "addr", "add", NS_HERE + "/64", "dev", veth, "nodad")
    run("ip", "addr", "add", NS4_HERE + "/24", "dev", veth)
    run("ip", "link", "set", veth, "up")
    run("ip", "netns", "exec", name, "ip", "-6", "addr", "add", NS_THERE + "/64", "dev", "eth0", "nodad")
    run("ip", "netns", "exec", name, "ip", "addr", "add", NS4_THERE + "/24", "dev", "eth0")
    run("ip", "netns", "exec", name, "ip", "link", "set", "eth0", "up")
    return name, cleanup, run


def _in_ns(name, cleanup, code):
    p = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", code], stdout=subprocess.PIPE,
                         text=True)
    cleanup.procs.append(p)
    expect_eq(p.stdout.readline().strip(), "up", "the program in the namespace is up")
    return p


def case_vanished_client():
    "a client in a network namespace vanishes without a FIN: keepalive ends its session, descriptors come back"
    name, cleanup, run = _netns()
    be = Backend(hold())
    r = Relay(config=_conf(be.addr, 2, bind="[%s]:0" % NS_HERE))
    _in_ns(name, cleanup, "import socket,time;s=socket.create_connection(('%s',%d));s.sendall(b'hello');"
           "print('up',flush=True);time.sleep(60)" % (NS_HERE, r.port("k")))
    be.wait_conns(1)
    # The client host loses its address: nothing it had answers any more, no FIN, no reset.
    run("ip", "netns", "exec", name, "ip", "-6", "addr", "flush", "dev", "eth0")
    m = r.wait_log(r"^relay64: listen k: session \S+ \[%s\]:\d+ -> \S+ ended after ([0-9.]+)s, 5 bytes up, "
                   r"0 bytes down: client gone \(keepalive\)$" % re.escape(NS_THERE), bound(30),
                   "the session of the vanished client")
    secs = float(m.group(1))
    expect(2.0 <= secs <= 14.0, "found by keepalive = 2 (2 s idle, six probes 1 s apart)", "about 8 s",
           "%.1f s" % secs)
    be.conns[0].gate.set()
    r.check_fds("after the vanished client")


def case_vanished_upstream():
    "an upstream in a network namespace vanishes without a FIN: the keepalive relay64 set on it ends the session"
    name, cleanup, run = _netns()
    _in_ns(name, cleanup, "import socket,time;l=socket.socket();l.bind(('%s',7000));l.listen(4);"
           "print('up',flush=True);c,_=l.accept();c.sendall(b'banner');time.sleep(60)" % NS4_THERE)
    r = Relay(config=_conf("%s:7000" % NS4_THERE, 2))
    c = connect6(r.port("k"))
    cport = c.getsockname()[1]
    expect_eq(c.recv(6), b"banner", "the upstream's banner")
    run("ip", "netns", "exec", name, "ip", "addr", "flush", "dev", "eth0")
    s = r.session_for(cport, bound(30))
    expect_eq(s.reason, "upstream gone (keepalive)", "why the session ended (%s)" % s.line)
    expect(3.0 <= s.secs <= 16.0, "found by keepalive = 2 (set after 1 s; 2 s idle, six probes 1 s apart)",
           "about 9 s", "%.1f s" % s.secs)
    how, got, _ = wait_closed(c, bound(10))
    expect(how in ("eof", "reset"), "the client is closed too", "EOF or reset", how)
    r.check_fds("after the vanished upstream")


class Cleanup:
    def __init__(self, name, veth):
        self.name, self.veth, self.ns, self.procs = name, veth, False, []
        track(self)

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()
        if self.ns:
            subprocess.run(["ip", "link", "del", self.veth], capture_output=True)
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            self.ns = False


if __name__ == "__main__":
    main([case_keepalive_options, case_vanished_client, case_vanished_upstream])
