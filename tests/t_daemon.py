#!/usr/bin/env python3
"""Process life: -d/--daemon detaches, returns once the daemon is ready (or with
its start-up failure's status) and keeps a pid file that every exit removes, also
after a drop to a user; -u drops to a user (uid, gid and supplementary groups read
from /proc) and the relay still works."""

import os
import pwd
import re
import signal
import socket
import subprocess

from relaytest import *

SRCDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def relays_with(arg):
    """Pids of running relay64 processes whose command line has arg."""
    binary = os.path.realpath(os.environ["RELAY64"])
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.path.realpath("/proc/%s/exe" % d) != binary:
                continue
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if arg in argv and pid_alive(int(d)):
            pids.append(int(d))
    return pids


class Daemons:
    """Kills, when the case ends, every relay64 still running with this pid file."""

    def __init__(self, pidfile):
        self.pidfile = pidfile
        track(self)

    def close(self):
        for pid in relays_with(self.pidfile):
            os.kill(pid, signal.SIGKILL)


def daemon(args, pidfile, preexec_fn=None, cwd=None, env=None):
    """Run relay64 -d --pidfile PIDFILE ARGS; returns (status, stderr) of the process
    started, once it has exited."""
    if WRAPPER:
        raise Skip("a detaching daemon cannot be followed under a wrapper")
    Daemons(pidfile)
    p = subprocess.run([os.environ["RELAY64"], "-d", "--pidfile", pidfile] + args,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=bound(20), preexec_fn=preexec_fn, cwd=cwd, env=env)
    note("  relay64 -d %s: exit %d, stderr:\n%s" % (" ".join(args), p.returncode,
                                                    p.stderr.rstrip()))
    return p.returncode, p.stderr


def reported_port(err, name="cmdline"):
    """The port of listener name from the 'listening on' line the daemon printed."""
    ports = {m[1]: int(m[3]) for m in listen_line_re.finditer(err)}
    expect(name in ports, "relay64 -d prints the 'listening on' line of %s before it returns" % name,
           "a 'listening on' line", err)
    return ports[name]


def stop_daemon(pid, pidfile):
    os.kill(pid, signal.SIGTERM)
    expect(wait_until(lambda: not pid_alive(pid), bound(10)), "the daemon exits on SIGTERM",
           "exited", "still running")
    expect(not os.path.exists(pidfile), "the pid file is removed at exit", "removed", "still there")


def become_nobody():
    nobody = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(nobody.pw_gid)
    os.setuid(nobody.pw_uid)


def case_daemon_pidfile():
    "-d returns 0 once the daemon is ready: its listening line printed, the pid file written, the port relaying; SIGTERM removes the pid file"
    be = Backend(sink_source(4096))
    pidfile = os.path.join(tmpdir(), "run", "relay64.pid")
    st, err = daemon(["[::1]:0", be.addr], pidfile)
    expect_eq(st, 0, "exit status of the process started with -d")
    port = reported_port(err)
    # No waiting from here on: the daemon said it was ready.
    expect(os.path.exists(pidfile), "the pid file exists when relay64 -d returns", pidfile, "missing")
    pid = int(open(pidfile).read().strip())
    expect(pid_alive(pid), "the daemon runs with the pid in the file", "running", "gone")
    with open("/proc/%d/stat" % pid) as f:
        sid = int(f.read().rsplit(")", 1)[1].split()[3])
    expect(sid != os.getsid(0), "the daemon is in a session of its own", "new session", sid)
    expect_eq(os.readlink("/proc/%d/fd/2" % pid), "/dev/null", "the daemon's stderr once ready")
    res, cport = exchange(port, 10000)
    expect_eq(res.rx_len, 4096, "bytes relayed by the daemon")
    expect_eq(be.wait_conns(1).wait().rx_len, 10000, "bytes the upstream received")
    stop_daemon(pid, pidfile)


def case_daemon_startup_failure():
    "-d whose daemon fails after detaching (the pid file cannot be written) exits 1 with the daemon's message"
    pidfile = os.path.join(tmpdir(), "a-directory")
    os.mkdir(pidfile)
    st, err = daemon(["[::1]:0", "127.0.0.1:9"], pidfile)
    expect_eq(st, 1, "exit status of the process started with -d")
    expect_match(r"^relay64: pid file %s: Is a directory$" % re.escape(pidfile), err,
                 "the daemon's error reaches the terminal")
    expect(wait_until(lambda: not relays_with(pidfile), bound(10)), "no daemon stays behind",
           "none", relays_with(pidfile))


def case_daemon_user_pidfile():
    "-d -u nobody: the pid file's missing directory is made nobody's, so the daemon, now nobody, removes its pid file at exit"
    if os.geteuid() != 0:
        raise Skip("needs root to drop privileges")
    nobody = pwd.getpwnam("nobody")
    be = Backend(sink_source(3000))
    rundir = os.path.join(tmpdir(), "run-nobody")
    pidfile = os.path.join(rundir, "relay64.pid")
    st, err = daemon(["-u", "nobody", "[::1]:0", be.addr], pidfile)
    expect_eq(st, 0, "exit status of the process started with -d -u nobody")
    port = reported_port(err)
    dst = os.stat(rundir)
    expect_eq((dst.st_uid, dst.st_gid, dst.st_mode & 0o7777), (nobody.pw_uid, nobody.pw_gid, 0o755),
              "owner, group and mode of the directory relay64 made for its pid file")
    pst = os.stat(pidfile)
    expect_eq(pst.st_uid, nobody.pw_uid, "owner of the pid file")
    pid = int(open(pidfile).read().strip())
    with open("/proc/%d/status" % pid) as f:
        uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
    expect_eq(uids, [str(nobody.pw_uid)] * 4, "the daemon's uids")
    res, cport = exchange(port, 2000)
    expect_eq(res.rx_len, 3000, "bytes relayed by the daemon running as nobody")
    stop_daemon(pid, pidfile)


def case_daemon_user_pidfile_unwritable():
    "-d -u nobody with the pid file in a directory nobody cannot write: refused before binding, exit 1, nothing left"
    if os.geteuid() != 0:
        raise Skip("needs root to drop privileges")
    rootdir = os.path.join(tmpdir(), "run-root")
    os.mkdir(rootdir, 0o755)
    pidfile = os.path.join(rootdir, "relay64.pid")
    held = track(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    held.bind(("::1", 0))
    held.listen(1)
    # The listener's port is taken: a relay that got as far as binding would say so.
    st, err = daemon(["-u", "nobody", "[::1]:%d" % held.getsockname()[1], "127.0.0.1:9"], pidfile)
    expect_eq(st, 1, "exit status")
    expect_match(r"^relay64: pid file %s: user nobody cannot write its directory %s, so could not remove "
                 r"it at exit$" % (re.escape(pidfile), re.escape(rootdir)), err, "the message")
    expect("Address already in use" not in err, "refused before binding", "no bind error", err)
    expect_eq(os.listdir(rootdir), [], "what is left in the directory")


def case_daemon_drop_fails():
    "-d with a drop that fails after the pid file was written: the process started exits 2 and the pid file is gone"
    if os.geteuid() != 0:
        raise Skip("needs root to start the relay as another user")
    nobody = pwd.getpwnam("nobody")
    os.chmod(tmpdir(), 0o711)
    rundir = os.path.join(tmpdir(), "run-of-nobody")
    os.mkdir(rundir, 0o755)
    os.chown(rundir, nobody.pw_uid, nobody.pw_gid)
    pidfile = os.path.join(rundir, "relay64.pid")
    st, err = daemon(["-u", "root", "[::1]:0", "127.0.0.1:9"], pidfile, preexec_fn=become_nobody)
    expect_eq(st, 2, "exit status of a failed drop, passed on by the process started")
    expect_match(r"user root: setgroups: Operation not permitted: refusing to run on", err,
                 "the daemon's message reaches the terminal")
    expect(not os.path.exists(pidfile), "the pid file is removed", "removed", "still there")


def case_daemon_reload_relative_config():
    "-d -c FILE with FILE relative to where relay64 was started: SIGHUP reloads that file (new sessions reach the new upstream)"
    be1 = Backend(sink_source(1000))
    be2 = Backend(sink_source(2000))
    text = 'listen web {\n    bind = "[::1]:0"\n    upstream = "%s"\n}\n'
    write_file("relative.conf", text % be1.addr)
    ns = NotifySocket()
    pidfile = os.path.join(tmpdir(), "relative.pid")
    st, err = daemon(["-c", "relative.conf"], pidfile, cwd=tmpdir(), env=ns.env())
    expect_eq(st, 0, "exit status of relay64 -d -c relative.conf")
    port = reported_port(err, "web")
    ns.wait_for("READY=1")
    pid = int(open(pidfile).read().strip())
    res, cport = exchange(port, 100)
    expect_eq((res.rx_len, be1.count(), be2.count()), (1000, 1, 0), "bytes and upstream before the reload")
    write_file("relative.conf", text % be2.addr)
    os.kill(pid, signal.SIGHUP)
    msgs = ns.wait_for("READY=1")
    expect(any("RELOADING=1" in m for m in msgs), "the daemon reloaded", "RELOADING=1, then READY=1", msgs)
    res, cport = exchange(port, 200)
    expect_eq((res.rx_len, be1.count(), be2.count()), (2000, 1, 1),
              "bytes and upstream after the reload (the new file's upstream)")
    stop_daemon(pid, pidfile)


# seccomp: raising RLIMIT_NOFILE (setrlimit, or prlimit64 with a new limit: what glibc
# uses) fails with EPERM; every other system call (other limits too: sanitizers set
# RLIMIT_CORE) is allowed.
_SECCOMP_ARCH = {   # machine: (AUDIT_ARCH_*, setrlimit, prlimit64)
    "x86_64": (0xC000003E, 160, 302),
    "aarch64": (0xC00000B7, 164, 261),
}


def refuse_nofile_raise():
    import ctypes
    arch, nr_setrlimit, nr_prlimit64 = _SECCOMP_ARCH[os.uname().machine]
    LD, JEQ, RET = 0x20, 0x15, 0x06            # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_RET|K
    ALLOW, EPERM = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    NR, ARCH = 0, 4

    def arg(i, high=False):                    # seccomp_data.args[i], little-endian halves
        return 16 + 8 * i + (4 if high else 0)
    # (code, jump if true, jump if false, k); jumps are by labels below
    prog = [
        (LD, 0, 0, ARCH), (JEQ, 0, "allow", arch),
        (LD, 0, 0, NR), (JEQ, 0, "prlimit", nr_setrlimit),
        (LD, 0, 0, arg(0)), (JEQ, "deny", "allow", 7),                   # RLIMIT_NOFILE
        ("prlimit", JEQ, 0, "allow", nr_prlimit64),
        (LD, 0, 0, arg(1)), (JEQ, 0, "allow", 7),
        (LD, 0, 0, arg(2)), (JEQ, 0, "deny", 0),                          # new limit given?
        (LD, 0, 0, arg(2, True)), (JEQ, "allow", "deny", 0),
        ("allow", RET, 0, 0, ALLOW), ("deny", RET, 0, 0, EPERM),
    ]
    labels = {ins[0]: i for i, ins in enumerate(prog) if isinstance(ins[0], str)}
    prog = [ins[1:] if isinstance(ins[0], str) else ins for ins in prog]

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                    ("k", ctypes.c_uint32)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    def jump(i, to):
        return labels[to] - i - 1 if isinstance(to, str) else to
    filters = (SockFilter * len(prog))(*[SockFilter(code, jump(i, jt), jump(i, jf), k)
                                         for i, (code, jt, jf, k) in enumerate(prog)])
    fprog = SockFprog(len(prog), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0 or \
            libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:   # NO_NEW_PRIVS, SECCOMP filter
        os._exit(99)


def nofile_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise Fail("no 'Max open files' line in /proc/%d/limits" % pid)


def case_nofile_refused():
    "raising the descriptor limit refused (a seccomp filter): a warning names the limit kept, and the relay works with it"
    if WRAPPER:
        raise Skip("the wrapper does the process's system calls its own way")
    if os.uname().machine not in _SECCOMP_ARCH:
        raise Skip("no seccomp filter written for %s" % os.uname().machine)
    be = Backend(sink_source(5000))
    r = Relay(args=["[::1]:0", be.addr], rlimit_nofile=(200, 4096))
    expect_eq(nofile_limit(r.pid), 4096, "without the filter, the soft limit is raised to the hard one")
    expect("cannot raise the descriptor limit" not in r.log_text(), "no warning when the limit could be raised",
           "no warning", r.log_text())
    r.wait_log(r"^relay64: descriptor limit 4096: room for \d+ sessions$", what="the budget of the raised limit")
    r2 = Relay(args=["[::1]:0", be.addr], rlimit_nofile=(200, 4096), preexec=refuse_nofile_raise)
    r2.wait_log(r"^relay64: cannot raise the descriptor limit from 200 to 4096: Operation not permitted; "
                r"keeping 200$", what="the warning")
    expect_eq(nofile_limit(r2.pid), 200, "the soft limit kept")
    r2.wait_log(r"^relay64: descriptor limit 200: room for \d+ sessions$", what="the budget of the limit kept")
    res, cport = exchange(r2.port(), 3000)
    verify_exchange("a session under the limit kept", res, be.wait_conns(1).wait(), 3000, 5000)


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
    p = subprocess.run(WRAPPER + [os.environ["RELAY64"], "-u", "root", "[::1]:0", "127.0.0.1:9"],
                       capture_output=True, text=True, timeout=bound(20), preexec_fn=become_nobody)
    expect_eq(p.returncode, 2, "exit status of a failed drop")
    expect_match(r"user root: setgroups: Operation not permitted: refusing to run on", p.stderr,
                 "the message says what failed")
    # relay64(8) tells what a failed switch under the unit does: the status just seen.
    with open(os.path.join(SRCDIR, "man", "relay64.8")) as f:
        page = " ".join(f.read().split())
    m = expect_match(r"would fail to switch and exit (\d+)", page, "relay64(8) on a failed switch")
    expect_eq(int(m.group(1)), p.returncode, "the exit status relay64(8) gives for a failed switch")


main([case_daemon_pidfile, case_daemon_startup_failure, case_daemon_user_pidfile,
      case_daemon_user_pidfile_unwritable, case_daemon_drop_fails, case_daemon_reload_relative_config,
      case_nofile_refused, case_user_drop, case_user_unknown,
      case_user_drop_fails])
