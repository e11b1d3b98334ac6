#!/usr/bin/env python3
"""What arrives while the relay is not looking is relayed all the same.

Each case stops the relay (SIGSTOP), lets bytes pile up in one of its sockets
until the kernel shows them queued there (/proc/net/tcp*: the receive queue,
and CLOSE_WAIT once a FIN is in), then lets it run (SIGCONT): everything must
come out the other side, checksummed, without the peer sending anything more.
A relay that took a short read for a drained socket (as an edge-triggered
reader may: a FIN behind the bytes, the bytes after a TCP urgent mark, a splice
cut short by the pipe's slots) would stall here; the cases were written for
such a design, which relay64 tried and dropped (PERFORMANCE.md).  Each case
runs with splice on and off."""

import hashlib
import os
import signal
import socket
import threading

from relaytest import *

CONFIG = """\
log-level = info
workers = 1
splice = %s
listen edge {
    bind = "[::1]:0"
    upstream = "%s"
}
"""

TCP_CLOSE_WAIT = 8


def _queued(proto, local_port, remote_port):
    """(receive queue bytes, state) of the socket local_port -> remote_port, or None."""
    with open("/proc/net/" + proto) as f:
        next(f)
        for line in f:
            cols = line.split()
            lport = int(cols[1].rsplit(":", 1)[1], 16)
            rport = int(cols[2].rsplit(":", 1)[1], 16)
            if lport == local_port and rport == remote_port:
                return int(cols[4].split(":")[1], 16), int(cols[3], 16)
    return None


def _wait_queued(what, proto, local_port, remote_port, nbytes, fin):
    """Wait until the relay's socket holds nbytes (and the FIN, when fin: its
    sequence number counts as one more byte in the queue)."""
    def ready():
        q = _queued(proto, local_port, remote_port)
        return q is not None and q[0] == nbytes + (1 if fin else 0) and \
            (not fin or q[1] == TCP_CLOSE_WAIT)
    if not wait_until(ready, bound(10)):
        raise Fail("%s: the relay's socket never held %d bytes%s: %r"
                   % (what, nbytes, " and the FIN" if fin else "",
                      _queued(proto, local_port, remote_port)))


class Stopped:
    """The relay stopped (SIGSTOP) inside the with block, running again after it."""

    def __init__(self, relay):
        self.relay = relay

    def __enter__(self):
        os.kill(self.relay.pid, signal.SIGSTOP)
        # the stop is asynchronous: wait until every thread has stopped
        task = "/proc/%d/task" % self.relay.pid

        def stopped():
            for tid in os.listdir(task):
                with open("%s/%s/stat" % (task, tid)) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] not in "tT":
                        return False
            return True
        if not wait_until(stopped, bound(10), interval=0.01):
            raise Fail("relay64 did not stop on SIGSTOP")
        return self

    def __exit__(self, *exc):
        os.kill(self.relay.pid, signal.SIGCONT)
        return False


def _recv_exactly(sock, n, what):
    got = bytearray()
    sock.settimeout(bound(10))
    try:
        while len(got) < n:
            chunk = sock.recv(min(65536, n - len(got)))
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        pass
    if len(got) != n:
        raise Fail("%s: %d of %d bytes arrived" % (what, len(got), n))
    return bytes(got)


def _expect_eof(sock, what):
    sock.settimeout(bound(10))
    try:
        extra = sock.recv(1)
    except socket.timeout:
        raise Fail("%s: no EOF passed on" % what)
    expect_eq(extra, b"", "%s: EOF after the bytes" % what)


def _relay(splice, backend):
    return Relay(config=CONFIG % ("true" if splice else "false", backend.addr))


def _session(relay, backend, what):
    """A relaying session: client socket, its port, the backend's record."""
    before = backend.count()
    c = connect6(relay.port("edge"))
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.sendall(b"hello")
    expect_eq(_recv_exactly(c, 5, what + ": first echo"), b"hello", what + ": first echo")
    return c, c.getsockname()[1], backend.wait_conns(before + 1)


def _both(case):
    for splice in (True, False):
        case(splice, "splice %s" % ("on" if splice else "off"))


def case_bytes_and_fin_together():
    "the client's bytes and its FIN arrive together: all bytes go up, then the FIN (echo back, SHA-256)"
    def run(splice, mode):
        be = Backend(echo())
        r = _relay(splice, be)
        for size in (1, 5000, 200000):
            what = "%s, %d bytes and FIN" % (mode, size)
            c, cport, rec = _session(r, be, what)
            data = Source(size, size).read(size)
            with Stopped(r):
                c.sendall(data)
                c.shutdown(socket.SHUT_WR)
                if size < 65536:
                    _wait_queued(what, "tcp6", r.port("edge"), cport, size, True)
            got = _recv_exactly(c, size, what)
            expect_eq(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest(),
                      what + ": SHA-256 of the echo")
            _expect_eof(c, what)
            c.close()
            r.check_session(what, cport, size + 5, size + 5)
        r.check_fds("after " + mode)
    _both(run)


def case_upstream_bytes_and_fin_together():
    "the upstream's bytes and its FIN arrive together: all come down, then the FIN"
    def run(splice, mode):
        size = 3000
        reply = Source(size, 9).read(size)

        def handler(rec):
            rec.sock.sendall(rec.sock.recv(5))     # the first echo
            rec.gate.wait(bound(20))
            rec.sock.sendall(reply)
            rec.sock.shutdown(socket.SHUT_WR)
            rec.sock.settimeout(bound(20))
            while rec.sock.recv(65536):
                pass
        be = Backend(handler)
        r = _relay(splice, be)
        what = "%s, upstream's %d bytes and FIN" % (mode, size)
        c, cport, rec = _session(r, be, what)
        with Stopped(r):
            rec.gate.set()
            _wait_queued(what, "tcp", rec.peer[1], be.port, size, True)
        got = _recv_exactly(c, size, what)
        expect_eq(got, reply, what + ": the bytes, in order")
        _expect_eof(c, what)
        c.close()
        rec.wait()
        r.check_session(what, cport, 5, size + 5)
        r.check_fds("after " + mode)
    _both(run)


def case_urgent_byte():
    "a TCP urgent byte in the middle: the bytes after it go up without more traffic"
    def run(splice, mode):
        be = Backend(echo())
        r = _relay(splice, be)
        what = "%s, urgent byte" % mode
        c, cport, rec = _session(r, be, what)
        with Stopped(r):
            c.sendall(b"a" * 500)
            c.send(b"U", socket.MSG_OOB)
            c.sendall(b"b" * 500)
            _wait_queued(what, "tcp6", r.port("edge"), cport, 1001, False)
        # the relay passes the stream on, not the out-of-band byte
        got = _recv_exactly(c, 1000, what)
        expect_eq(got, b"a" * 500 + b"b" * 500, what + ": the bytes around it, in order")
        c.shutdown(socket.SHUT_WR)
        _expect_eof(c, what)
        c.close()
        r.check_session(what, cport, 1005, 1005)
    _both(run)


def case_small_writes_after_bulk():
    "after 1 MiB (a bulk flow, a pipe with splice on), 100 small writes pile up: all go up"
    def run(splice, mode):
        be = Backend(echo())
        r = _relay(splice, be)
        what = "%s, small writes after bulk" % mode
        c, cport, rec = _session(r, be, what)
        bulk = Source(MiB, 3).read(MiB)
        echoed = []
        reader = threading.Thread(target=lambda: echoed.append(
            _recv_exactly(c, MiB, what + ": bulk echo")), daemon=True)
        reader.start()
        c.sendall(bulk)
        reader.join(bound(30))
        expect(echoed, what + ": the bulk echo arrived", "1 MiB", None)
        expect_eq(hashlib.sha256(echoed[0]).hexdigest(), hashlib.sha256(bulk).hexdigest(),
                  what + ": SHA-256 of the bulk echo")
        small = b"".join(bytes([65 + i % 26]) * 300 for i in range(100))
        with Stopped(r):
            for i in range(100):
                c.sendall(small[i * 300:(i + 1) * 300])
            _wait_queued(what, "tcp6", r.port("edge"), cport, len(small), False)
        got = _recv_exactly(c, len(small), what)
        expect_eq(hashlib.sha256(got).hexdigest(), hashlib.sha256(small).hexdigest(),
                  what + ": SHA-256 of the small writes' echo")
        c.shutdown(socket.SHUT_WR)
        _expect_eof(c, what)
        c.close()
        total = 5 + MiB + len(small)
        r.check_session(what, cport, total, total)
        r.check_fds("after " + mode)
    _both(run)


if __name__ == "__main__":
    main([case_bytes_and_fin_together, case_upstream_bytes_and_fin_together,
          case_urgent_byte, case_small_writes_after_bulk])
