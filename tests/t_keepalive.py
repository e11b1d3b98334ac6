#!/usr/bin/env python3
"""Dead peers: TCP keepalive on both sockets of every session (keepalive = K: idle K s,
six probes K/6 s apart, a user timeout of the same length), on by default (60 s), off
with 0, changed by a reload for new sessions; and a client that vanishes without a FIN
in a network namespace is found by keepalive and its session ends (root only)."""

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


def _check_session(r, be, want, what):
    before = r.fd_list()
    c = connect6(r.port("k"))
    socks = _session_sockets(r, before)
    try:
        for s in socks:
            side = "client" if s.family == socket.AF_INET6 else "upstream"
            got = _opts(s)
            if want[0] == 0:
                got = got[:1]
                exp = (0,)
            else:
                exp = want
            expect_eq(got, exp, "%s: keepalive options of the %s socket (on, idle, interval, probes, "
                      "user timeout ms)" % (what, side))
    finally:
        for s in socks:
            s.close()
    c.close()


def case_keepalive_options():
    "keepalive = 12 sets idle 12, 6 probes 2 s apart, user timeout 24 s on both sockets; default 60; 0 off; a reload changes new sessions"
    be = Backend(echo())
    r = Relay(config=_conf(be.addr, 12))
    _check_session(r, be, (1, 12, 2, 6, 24000), "keepalive = 12")
    with open(r.confpath, "w") as f:
        f.write(_conf(be.addr, 0))
    r.send_signal(signal.SIGHUP)
    r.wait_log(r"^relay64: reloaded ", what="the reload")
    _check_session(r, be, (0,), "keepalive = 0 after a reload")
    r2 = Relay(config=_conf(be.addr))
    _check_session(r2, be, (1, 60, 10, 6, 120000), "the default")


NS_HERE, NS_THERE = "2001:db8:6464::1", "2001:db8:6464::2"


def case_vanished_client():
    "a client in a network namespace vanishes without a FIN: keepalive ends its session, descriptors come back"
    if os.geteuid() != 0 or not shutil.which("ip"):
        raise Skip("needs root and ip (network namespaces)")
    if NS_HERE.rsplit(":", 1)[0] in subprocess.run(["ip", "-6", "addr"], capture_output=True,
                                                    text=True).stdout:
        raise Skip("2001:db8:6464::/64 is in use on this host")
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
    run("ip", "link", "set", veth, "up")
    run("ip", "netns", "exec", name, "ip", "-6", "addr", "add", NS_THERE + "/64", "dev", "eth0", "nodad")
    run("ip", "netns", "exec", name, "ip", "link", "set", "eth0", "up")
    be = Backend(hold())
    r = Relay(config=_conf(be.addr, 2, bind="[%s]:0" % NS_HERE))
    code = ("import socket,sys,time;s=socket.create_connection(('%s',%d));s.sendall(b'hello');"
            "print('up',flush=True);time.sleep(60)" % (NS_HERE, r.port("k")))
    p = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", code], stdout=subprocess.PIPE,
                         text=True)
    cleanup.procs.append(p)
    expect_eq(p.stdout.readline().strip(), "up", "the client in the namespace connected")
    be.wait_conns(1)
    # The client host loses its address: nothing it had answers any more, no FIN, no reset.
    run("ip", "netns", "exec", name, "ip", "-6", "addr", "flush", "dev", "eth0")
    m = r.wait_log(r"^relay64: listen k: session \S+ \[%s\]:\d+ -> \S+ ended after ([0-9.]+)s, 5 bytes up, "
                   r"0 bytes down: client gone \(keepalive\)$" % re.escape(NS_THERE), bound(30),
                   "the session of the vanished client")
    secs = float(m.group(1))
    expect(2.0 <= secs <= 14.0, "found by keepalive = 2 (2 s idle, six probes 1 s apart)", "about 8 s",
           "%.1f s" % secs)
    up = be.conns[0]
    up.gate.set()
    r.check_fds("after the vanished client")


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
    main([case_keepalive_options, case_vanished_client])
