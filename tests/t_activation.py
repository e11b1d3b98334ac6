#!/usr/bin/env python3
"""Socket activation (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES): a listener whose title
names a passed socket uses it instead of binding, never binds twice, and only when
LISTEN_PID is its own pid; with the real systemd-socket-activate where installed."""

import os
import shutil
import socket
import subprocess

from relaytest import *

RELAY_CONF = """
listen web {
    bind = "[::1]:%d"
    upstream = "%s"
}
"""


def passed_socket():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    track(s)
    s.bind(("::1", 0))
    s.listen(16)
    return s


def launcher(sock, names, pid_ok=True):
    """A relay command line that starts with `sock` as fd 3 and LISTEN_* set the way a
    service manager would (LISTEN_PID is the relay's own pid: the shell execs it)."""
    pid = "$$" if pid_ok else "1"
    fd = sock.fileno()
    return ["sh", "-c", 'exec 3<&%d %d<&-; LISTEN_PID=%s LISTEN_FDS=1 LISTEN_FDNAMES=%s exec "$@"'
            % (fd, fd, pid, names), "sh"]


def run_with(sock, names, conf_text, pid_ok=True):
    path = write_file("act.conf", conf_text)
    # Relay() runs WRAPPER + binary + extra + ...; put the launcher in front.
    old = list(WRAPPER)
    WRAPPER[:] = launcher(sock, names, pid_ok) + old
    try:
        r = Relay(args=["-c", path], listeners=["web"], env=None, pass_fds=(sock.fileno(),))
    finally:
        WRAPPER[:] = old
    return r


def case_passed_socket_used():
    "the passed socket named 'web' serves listener web; its configured bind is never bound"
    be = Backend(sink_source(3000))
    sock = passed_socket()
    port = sock.getsockname()[1]
    blocker = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    track(blocker)
    blocker.bind(("::1", 0))
    blocker.listen(1)
    # The configured bind is busy: binding it would fail, so success proves it was not.
    r = run_with(sock, "web", RELAY_CONF % (blocker.getsockname()[1], be.addr))
    expect_eq(r.port("web"), port, "the listener reports the passed socket's port")
    sock.close()   # only the relay holds it now
    res, cport = exchange(port, 5000)
    expect_eq(res.rx_len, 3000, "bytes through the passed socket")
    expect_eq(be.wait_conns(1).wait().rx_len, 5000, "bytes up")


def case_passed_socket_shared_by_workers():
    "workers = 3: every worker watches the one passed socket (3 descriptors of it, none bound anew); 30 sessions through it"
    be = Backend(sink_source(2000))
    sock = passed_socket()
    port = sock.getsockname()[1]
    inode = os.readlink("/proc/self/fd/%d" % sock.fileno())
    r = run_with(sock, "web", "workers = 3\n" + RELAY_CONF % (port, be.addr))
    expect_eq(r.port("web"), port, "the listener reports the passed socket's port")
    sock.close()
    fds = r.fd_list()
    mine = sorted(fd for fd, v in fds.items() if v == inode)
    expect_eq(len(mine), 3, "descriptors of the passed socket in the relay (one per worker); fds %s" % fds)
    expect(0 not in mine and all(v != inode for fd, v in fds.items() if fd < 3),
           "no worker took a standard descriptor for the socket", "fds >= 3", mine)
    for i in range(30):
        res, cport = exchange(port, 1000 + i, seed=900 + i, rx_limit=2000)
        verify_exchange("session %d through the shared socket" % i, res,
                        be.wait_conns(i + 1).wait(), 1000 + i, 2000)


def case_wrong_pid_ignored():
    "LISTEN_PID of another process: the passed socket is ignored and the listener binds itself"
    be = Backend(sink_source(10))
    sock = passed_socket()
    r = run_with(sock, "web", RELAY_CONF % (0, be.addr), pid_ok=False)
    expect(r.port("web") != sock.getsockname()[1], "the relay bound its own socket",
           "a port other than %d" % sock.getsockname()[1], r.port("web"))
    res, cport = exchange(r.port("web"), 10)
    expect_eq(res.rx_len, 10, "bytes through the relay's own socket")


def case_unnamed_socket_closed():
    "a passed socket named after no listener is closed with a warning"
    be = Backend(sink_source(10))
    sock = passed_socket()
    r = run_with(sock, "other", RELAY_CONF % (0, be.addr))
    r.wait_log(r'socket 3 passed as "other": no listener of that title; closed')
    expect(3 not in r.fd_list() or "socket" not in r.fd_list().get(3, ""),
           "descriptor 3 is closed in the relay", "closed", r.fd_list())


def case_systemd_socket_activate():
    "systemd-socket-activate -l [::1]:PORT --fdname=web starts relay64 on its socket"
    tool = shutil.which("systemd-socket-activate")
    if tool is None:
        raise Skip("systemd-socket-activate is not installed")
    be = Backend(sink_source(2000))
    # The tool takes no port 0: reserve one for it, bound (never listening) with
    # SO_REUSEADDR for the whole case, which lets the tool's SO_REUSEADDR socket bind
    # and listen on it while nothing else can take it meanwhile.
    reserve = track(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserve.bind(("::1", 0))
    port = reserve.getsockname()[1]
    path = write_file("sa.conf", RELAY_CONF % (port, be.addr))
    old = list(WRAPPER)
    WRAPPER[:] = [tool, "-l", "[::1]:%d" % port, "--fdname=web"] + old
    try:
        r = Relay(args=["-c", path], listeners=["web"], wait=False)
    finally:
        WRAPPER[:] = old
    # The tool holds the socket and starts relay64 (same process, exec) on the
    # first connection, which waits in the backlog meanwhile and must be served.
    r.wait_log(r"Listening on \[::1\]:%d" % port)
    s = connect6(port)
    th, res = duplex_thread(s, Source(100, 3))
    r.wait_ready()
    expect_eq(r.port("web"), port, "listening on the activated socket")
    th.join(bound(10))
    expect_eq(res.rx_len, 2000, "the first connection, made before relay64 ran, is served")
    expect_eq(be.wait_conns(1).wait().rx_len, 100, "bytes up")
    wait_until(lambda: len(r.sessions()) == 1, bound(10))
    r.rebaseline()   # the baseline was taken while the first session was open


if __name__ == "__main__":
    main([case_passed_socket_used, case_passed_socket_shared_by_workers, case_wrong_pid_ignored, case_unnamed_socket_closed,
          case_systemd_socket_activate])
