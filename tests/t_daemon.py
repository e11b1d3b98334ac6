#!/usr/bin/env python3
"""Process life: -d/--daemon detaches and keeps a pid file; -u drops to a user
(uid, gid and supplementary groups read from /proc) and the relay still works."""

import os
import pwd
import signal
import socket

from relaytest import *


def free_port6():
    """A port on [::1] that the kernel says is free now (for a daemon whose log we
    cannot read: with -d it logs to syslog)."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.bind(("::1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def case_daemon_pidfile():
    "-d detaches (the command returns 0), writes the pid file, relays, and SIGTERM removes the pid file"
    if WRAPPER:
        raise Skip("a detaching daemon cannot be followed under a wrapper")
    be = Backend(sink_source(4096))
    port = free_port6()
    pidfile = os.path.join(tmpdir(), "relay64.pid")
    st, out, err = run_relay(["-d", "--pidfile", pidfile, "[::1]:%d" % port, be.addr])
    expect_eq(st, 0, "exit status of the detaching parent")
    ok = wait_until(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(), bound(10))
    expect(ok, "the pid file appears", pidfile, "missing")
    pid = int(open(pidfile).read().strip())
    try:
        expect(pid_alive(pid), "the daemon runs with the pid in the file", "running", "gone")
        with open("/proc/%d/stat" % pid) as f:
            sid = int(f.read().rsplit(")", 1)[1].split()[3])
        expect(sid != os.getsid(0), "the daemon is in a session of its own", "new session", sid)
        res, cport = exchange(port, 10000)
        expect_eq(res.rx_len, 4096, "bytes relayed by the daemon")
        expect_eq(be.wait_conns(1).wait().rx_len, 10000, "bytes the upstream received")
        os.kill(pid, signal.SIGTERM)
        expect(wait_until(lambda: not pid_alive(pid), bound(10)), "the daemon exits on SIGTERM",
               "exited", "still running")
        expect(not os.path.exists(pidfile), "the pid file is removed at exit", "removed", "still there")
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def case_user_drop():
    "-u nobody: after binding, uid/gid are nobody's everywhere, no supplementary groups, bytes flow"
    if os.geteuid() != 0:
        raise Skip("needs root to drop privileges")
    pw = pwd.getpwnam("nobody")
    be = Backend(sink_source(5000))
    r = Relay(args=["-u", "nobody", "[::1]:0", be.addr])
    status = {}
    with open("/proc/%d/status" % r.pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.split()
    expect_eq(status["Uid"], [str(pw.pw_uid)] * 4, "real, effective, saved and fs uid")
    expect_eq(status["Gid"], [str(pw.pw_gid)] * 4, "real, effective, saved and fs gid")
    expect_eq(status.get("Groups", []), [], "supplementary groups")
    expect_eq(status["CapEff"], ["0000000000000000"], "no effective capabilities")
    expect_eq(status["CapPrm"], ["0000000000000000"], "no permitted capabilities")
    res, cport = exchange(r.port(), 7000)
    expect_eq(res.rx_len, 5000, "bytes relayed after the drop")


def case_user_unknown():
    "-u with an unknown user is a usage error, before anything is bound"
    st, out, err = run_relay(["-u", "no-such-user-relay64", "[::1]:0", "127.0.0.1:9"])
    expect_eq(st, 2, "exit status")
    expect_match(r'--user: user "no-such-user-relay64": no such user', err, "message")


def case_user_drop_fails():
    "a drop that cannot be done (started unprivileged) is refused with exit 2, before relaying"
    if os.geteuid() != 0:
        raise Skip("needs root to start the relay as another user")
    import subprocess
    nobody = pwd.getpwnam("nobody")

    def become_nobody():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    p = subprocess.run(WRAPPER + [os.environ["RELAY64"], "-u", "root", "[::1]:0", "127.0.0.1:9"],
                       capture_output=True, text=True, timeout=bound(20), preexec_fn=become_nobody)
    expect_eq(p.returncode, 2, "exit status of a failed drop")
    expect_match(r"user root: setgroups: Operation not permitted: refusing to run on", p.stderr,
                 "the message says what failed")


main([case_daemon_pidfile, case_user_drop, case_user_unknown, case_user_drop_fails])
