#!/usr/bin/env python3
"""Logging: -l LEVEL shows exactly the messages of that level and more severe ones;
-l stays in force across a reload whatever the file's log-level says, while without
-l a reload takes the file's new level; -s sends the log to syslog (a /dev/log the
test provides, in a private mount namespace) with the daemon facility and each
message's priority, and nothing to stderr."""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading

from relaytest import *

LEVELS = ["error", "warning", "notice", "info", "debug"]

# One message of each level that the case below makes the relay log.
KINDS = [
    ("error", r"^relay64: reload failed: .*; the running configuration stays$"),
    ("warning", r"^relay64: reload: a change of workers takes effect at the next start$"),
    ("notice", r"^relay64: listen web: listening on \[::1\]:\d+, upstream "),
    ("notice", r"^relay64: stopped$"),
    ("info", r"^relay64: listen web: session [0-9a-f]{16} \S+ -> \S+ ended after "),
    ("info", r"^relay64: 1 worker started$"),
    ("debug", r"^relay64: listen web: session [0-9a-f]{16} from \S+ on worker 0$"),
]

CONF = """\
log-level = %s
workers = %d
listen web {
    bind = "[::1]:0"
    upstream = "%s"
}
"""


def start(config, extra=()):
    """A relay whose log may not show its listening line: READY=1 on a notify socket
    says it is up, the kernel says on which port. Returns (relay, notify socket, port)."""
    ns = NotifySocket()
    r = Relay(config=config, extra=list(extra), env=ns.env(), wait=False)
    ns.wait_for("READY=1")
    ports = r.listen_ports()
    expect(len(ports) == 1, "the relay listens on one port", "one port", ports)
    r.rebaseline()
    return r, ns, ports.pop()


def reload_with(r, ns, text):
    """Write the file anew, SIGHUP, wait until the reload is over (READY=1 again)."""
    with open(r.confpath, "w") as f:
        f.write(text)
    r.send_signal(signal.SIGHUP)
    msgs = ns.wait_for("READY=1")
    expect(any("RELOADING=1" in m for m in msgs), "the relay reloaded", "RELOADING=1, READY=1", msgs)


def session(r, port, be, n, seed):
    """One checksummed session; returns the client's port."""
    res, cport = exchange(port, 1000 + n, seed=seed, rx_limit=700)
    verify_exchange("session %d" % n, res, be.wait_conns(n).wait(), 1000 + n, 700)
    return cport


def case_levels():
    "-l LEVEL, for each level: a message of every level is logged exactly when it is that level or more severe"
    be = Backend(sink_source(700))
    for level in LEVELS:
        note("  -l %s" % level)
        r, ns, port = start(CONF % ("info", 1, be.addr), ["-l", level])
        session(r, port, be, be.count() + 1, 10 + LEVELS.index(level))
        reload_with(r, ns, CONF % ("info", 2, be.addr))     # a warning: workers changed
        reload_with(r, ns, CONF % ("info", 2, be.addr) + "bogus = 1\n")      # an error
        r.stop()
        text = r.log_text()
        for kind, regex in KINDS:
            shown = LEVELS.index(kind) <= LEVELS.index(level)
            found = re.search(regex, text, re.M) is not None
            expect(found == shown, "-l %s: a %s message is %s" % (level, kind, "logged" if shown else "not logged"),
                   regex if shown else "no line matching %s" % regex, text)


def case_cmdline_level_survives_reload():
    "-l warning with log-level = info in the file: after a reload of that file, info and notice messages stay out"
    be = Backend(sink_source(700))
    r, ns, port = start(CONF % ("info", 1, be.addr), ["-l", "warning"])
    session(r, port, be, 1, 20)
    reload_with(r, ns, CONF % ("info", 2, be.addr))
    c2 = session(r, port, be, 2, 21)
    r.stop()
    text = r.log_text()
    expect_match(KINDS[1][1], text, "the reload's warning")
    expect(r.sessions() == [], "no session line (info) before or after the reload", "none", text)
    expect("reloaded" not in text and "stopped" not in text, "no notice line after the reload",
           "none", text)
    note("  session from port %d after the reload: not logged, as -l warning says" % c2)


def case_file_level_follows_reload():
    "without -l, a reload takes the file's new log-level: warning, then info"
    be = Backend(sink_source(700))
    r, ns, port = start(CONF % ("warning", 1, be.addr))
    c1 = session(r, port, be, 1, 30)
    reload_with(r, ns, CONF % ("info", 1, be.addr))
    c2 = session(r, port, be, 2, 31)
    r.session_for(c2)
    r.stop()
    clients = [s.client.rsplit(":", 1)[-1] for s in r.sessions()]
    expect_eq(clients, [str(c2)], "client ports of the session lines (only the one after the reload)")
    expect_match(r"^relay64: stopped$", r.log_text(), "notice lines after the reload")


class SyslogSocket:
    """A datagram socket that stands in for /dev/log; a thread collects what arrives."""

    line_re = re.compile(r"^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d relay64\[(\d+)\]: (.*)$")

    def __init__(self):
        self.path = os.path.join(tmpdir(), "log.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.lines = []
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        track(self)

    def _read(self):
        while not self.closed:
            try:
                self.lines.append(self.sock.recv(65536).decode(errors="replace").rstrip("\n"))
            except socket.timeout:
                continue
            except OSError:
                break

    def wait_for(self, regex):
        """The (priority, pid, message) of the first message matching regex (waits)."""
        rx = re.compile(regex)

        def find():
            for line in list(self.lines):
                m = self.line_re.match(line)
                if m and rx.search(m.group(3)):
                    return int(m.group(1)), int(m.group(2)), m.group(3)
            return None
        got = wait_until(find, bound(10))
        if got is None:
            raise Fail("no syslog message matching %s; got:\n%s" % (regex, "\n".join(self.lines)))
        return got

    def close(self):
        self.closed = True
        self.thread.join(2)
        self.sock.close()


# Runs relay64 in a private mount namespace whose /dev is a tmpfs holding null, zero,
# random and urandom from the real /dev and log, a link to the test's socket.
PRIVATE_DEVLOG = r"""set -e
old=$1 sock=$2
shift 2
mount --rbind /dev "$old"
mount -t tmpfs -o mode=0755 relay64-test /dev
for n in null zero random urandom; do
	touch "/dev/$n"
	mount --bind "$old/$n" "/dev/$n"
done
ln -s "$sock" /dev/log
exec "$@"
"""

DAEMON, NOTICE, INFO = 3 << 3, 5, 6


def case_syslog():
    "-s: messages go to /dev/log with facility daemon and their priority, tagged relay64[PID]; stderr stays empty"
    if os.geteuid() != 0:
        raise Skip("needs root for a private mount namespace")
    unshare = shutil.which("unshare")
    if unshare is None or shutil.which("mount") is None:
        raise Skip("unshare(1) or mount(8) is missing")
    log = SyslogSocket()
    olddev = os.path.join(tmpdir(), "dev")
    os.mkdir(olddev)
    prefix = [unshare, "-m", "sh", "-c", PRIVATE_DEVLOG, "sh", olddev, log.path]
    probe = subprocess.run(prefix + ["test", "-S", "/dev/log"], capture_output=True, text=True,
                           timeout=bound(10))
    if probe.returncode != 0:
        raise Skip("cannot make a private /dev/log here: %s" % probe.stderr.strip())
    be = Backend(sink_source(4000))
    r = Relay(args=["-s", "[::1]:0", be.addr], prefix=prefix, wait=False)
    pri, pid, msg = log.wait_for(r"^listen cmdline: listening on \[::1\]:\d+, upstream ")
    expect_eq(pri, DAEMON | NOTICE, "priority of the listening line (daemon.notice)")
    expect_eq(pid, r.pid, "the pid in the syslog tag")
    port = int(re.search(r"\]:(\d+),", msg).group(1))
    r.rebaseline()
    res, cport = exchange(port, 3000, seed=40, rx_limit=4000)
    verify_exchange("a session logged to syslog", res, be.wait_conns(1).wait(), 3000, 4000)
    pri, pid, msg = log.wait_for(r"^listen cmdline: session [0-9a-f]{16} \[::1\]:%d -> %s ended after "
                                 r"[0-9.]+s, 3000 bytes up, 4000 bytes down: done$" % (cport, re.escape(be.addr)))
    expect_eq(pri, DAEMON | INFO, "priority of the session line (daemon.info)")
    r.stop()
    pri, pid, msg = log.wait_for(r"^stopped$")
    expect_eq(pri, DAEMON | NOTICE, "priority of the last line (daemon.notice)")
    expect_eq(r.log_text(), "", "what relay64 -s wrote to stderr")


if __name__ == "__main__":
    main([case_levels, case_cmdline_level_survives_reload, case_file_level_follows_reload, case_syslog])
