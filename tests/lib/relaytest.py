"""Shared helpers for the relay64 integration tests (Python 3 standard library only).

A test script lists its cases and hands them to main():

    from relaytest import *

    def case_example():
        "what this case checks"
        be = Backend(sink_source(1000))
        r = Relay(args=["[::1]:0", be.addr])
        res, cport = exchange(r.port(), 500)
        ...

    main([case_example])

Every case runs with a fresh list of resources: Relay processes, Backend
servers and client sockets created during the case are closed when it ends.
A relay still running at the end of a case must come back to its descriptor
baseline, stop on SIGTERM with status 0, and leave no sanitizer report.

Environment:
  RELAY64            path of the relay64 binary (required)
  RELAY64_WRAPPER    optional command prepended to it (split on spaces), e.g. "valgrind -q"
  RELAY64_SANITIZED  "1" in sanitizer builds: memory (RSS) bounds are not checked
  RELAY64_TIME_SCALE optional factor for every deadline (default 1, larger under a wrapper)
  RELAY64_KEEP_TMP   "1": keep the per-test temporary directory
Exit status of a script: 0 pass, 1 fail, 77 skip, 99 hard error.
"""

import ctypes
import hashlib
import os
import random
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

__all__ = [
    "EXIT_PASS", "EXIT_FAIL", "EXIT_SKIP", "EXIT_HARD",
    "Fail", "Skip", "HardError",
    "SANITIZED", "WRAPPER", "bound", "note",
    "expect", "expect_eq", "expect_match",
    "Source", "DuplexResult", "duplex", "duplex_thread",
    "Backend", "ConnRecord",
    "sink_source", "echo", "sized", "hold", "banner_echo", "reset_after", "stream_forever",
    "connect6", "connect4", "track", "exchange", "sized_exchange", "verify_exchange", "refused",
    "wait_closed", "wait_until", "wait_stall",
    "RefusedPort", "FullBacklog",
    "Relay", "run_relay", "checked_exchange", "served_or_refused", "tmpdir", "write_file", "listen_line_re", "NotifySocket",
    "MiB", "KiB", "main",
]

EXIT_PASS, EXIT_FAIL, EXIT_SKIP, EXIT_HARD = 0, 1, 77, 99

KiB = 1024
MiB = 1024 * 1024


class Fail(Exception):
    """The relay did not behave as expected: the case fails."""


class Skip(Exception):
    """The case cannot run here (missing facility): the case is skipped."""


class HardError(Exception):
    """The test itself cannot run (bad environment): exit 99."""


SANITIZED = os.environ.get("RELAY64_SANITIZED", "") not in ("", "0")
WRAPPER = os.environ.get("RELAY64_WRAPPER", "").split()


def _time_scale():
    env = os.environ.get("RELAY64_TIME_SCALE")
    if env:
        try:
            return max(1.0, float(env))
        except ValueError:
            pass
    scale = 1.0
    if SANITIZED:
        scale *= 2
    if WRAPPER:
        scale *= 10
    return scale


TIME_SCALE = _time_scale()


def bound(seconds):
    """A failure bound: generous, scaled for slow builds (sanitizers, valgrind)."""
    return seconds * TIME_SCALE


def note(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------
# assertions

def expect(cond, what, expected=None, got=None):
    if cond:
        return
    msg = what
    if expected is not None or got is not None:
        msg += "\n      expected: %s\n      got:      %s" % (expected, got)
    raise Fail(msg)


def expect_eq(got, expected, what):
    if got != expected:
        raise Fail("%s\n      expected: %r\n      got:      %r" % (what, expected, got))


def expect_match(regex, text, what):
    m = re.search(regex, text, re.M)
    if not m:
        raise Fail("%s\n      expected to match: %s\n      got: %r" % (what, regex, text))
    return m


# --------------------------------------------------------------------------
# deterministic data

_BASE_LEN = 1048573          # a prime: no power-of-two buffer shift maps the stream onto itself
_CHUNK = 256 * KiB
_BASE = random.Random(0x72656C61793634).randbytes(_BASE_LEN)
_BASE2 = memoryview(_BASE + _BASE[:_CHUNK])


class Source:
    """A deterministic byte stream of `size` bytes (None: endless), hashed as it is sent.

    Streams with different seeds start at different offsets of a random base, so
    bytes of one session delivered to another never hash right."""

    def __init__(self, size, seed=0):
        self.size = size
        self.pos = 0
        self.off = (seed * 7919 + 1) % _BASE_LEN
        self.sha = hashlib.sha256()

    @property
    def done(self):
        return self.size is not None and self.pos >= self.size

    def peek(self):
        n = _CHUNK if self.size is None else min(_CHUNK, self.size - self.pos)
        start = (self.off + self.pos) % _BASE_LEN
        return _BASE2[start:start + n]

    def consume(self, view, n):
        self.sha.update(view[:n])
        self.pos += n

    def read(self, n):
        """Take the next n bytes as a bytes object (for blocking sends)."""
        out = bytearray()
        while len(out) < n and not self.done:
            v = self.peek()
            k = min(len(v), n - len(out))
            out += v[:k]
            self.consume(v, k)
        return bytes(out)


class DuplexResult:
    """What one side of a connection sent and received; updated live by duplex()."""

    def __init__(self):
        self.tx_len = 0
        self.rx_len = 0
        self.tx_sha = None
        self.rx_sha = None
        self.rx_end = None      # "eof" | "reset" | "error: ..."
        self.tx_end = None      # "done" | "none" | "reset" | "epipe" | "error: ..."
        self.timed_out = False
        self.stopped = False
        self.t_start = time.monotonic()
        self.t_rx_end = None
        self.t_tx_end = None
        self.first_rx = b""     # the first bytes received (up to 64), for diagnostics

    def __repr__(self):
        return ("<sent %d (%s) received %d (%s)%s%s>"
                % (self.tx_len, self.tx_end, self.rx_len, self.rx_end,
                   " TIMED OUT" if self.timed_out else "", " stopped" if self.stopped else ""))


def duplex(sock, tx, *, timeout=None, res=None, tx_after_eof=False, shut_wr=True,
           rx_gate=None, tx_gate=None, until=None, stop=None, rx_prefix_sha=None, rx_limit=None):
    """Send `tx` (a Source, or None to send nothing and never shut down) while reading
    to EOF, both at once, in this thread. Returns a DuplexResult.

    tx_after_eof: start sending only after EOF was read (half-close tests).
    shut_wr:      shutdown(SHUT_WR) once everything is sent.
    rx_gate/tx_gate: threading.Event; do not read / send before it is set.
    until:        "tx" to return as soon as the send side is done.
    stop:         threading.Event; return as soon as it is set.
    rx_limit:     return at once when more than this many bytes arrive (a failure).
    timeout:      failure bound; on expiry res.timed_out is set and it returns."""
    if timeout is None:
        timeout = bound(30)
    if res is None:
        res = DuplexResult()
    deadline = time.monotonic() + timeout
    sock.setblocking(False)
    sink = rx_prefix_sha.copy() if rx_prefix_sha is not None else hashlib.sha256()
    buf = bytearray(_CHUNK)
    bview = memoryview(buf)
    if tx is None:
        res.tx_end = "none"
        res.t_tx_end = time.monotonic()
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)

    def end_tx(reason):
        if res.tx_end is None:
            res.tx_end = reason
            res.t_tx_end = time.monotonic()

    def end_rx(reason):
        if res.rx_end is None:
            res.rx_end = reason
            res.t_rx_end = time.monotonic()

    try:
        while True:
            if tx is not None:
                res.tx_len = tx.pos
            if stop is not None and stop.is_set():
                res.stopped = True
                break
            if res.rx_end is not None and res.tx_end is not None:
                break
            if until == "tx" and res.tx_end is not None:
                break
            now = time.monotonic()
            if now >= deadline:
                res.timed_out = True
                break
            if res.tx_end is None and tx.done:
                if shut_wr:
                    try:
                        sock.shutdown(socket.SHUT_WR)
                    except OSError as e:
                        end_tx("error: shutdown: %s" % e)
                        continue
                end_tx("done")
                continue
            want = 0
            if res.rx_end is None and (rx_gate is None or rx_gate.is_set()):
                want |= selectors.EVENT_READ
            if (res.tx_end is None and (tx_gate is None or tx_gate.is_set())
                    and (not tx_after_eof or res.rx_end is not None)):
                want |= selectors.EVENT_WRITE
            if want == 0:
                time.sleep(0.02)
                continue
            sel.modify(sock, want)
            ready = sel.select(min(0.1, max(0.0, deadline - now)))
            if not ready:
                continue
            events = ready[0][1]
            if events & selectors.EVENT_READ:
                try:
                    n = sock.recv_into(buf)
                except (BlockingIOError, InterruptedError):
                    n = None
                except ConnectionResetError:
                    end_rx("reset")
                    n = None
                except OSError as e:
                    end_rx("error: %s" % e)
                    n = None
                if n == 0:
                    end_rx("eof")
                elif n:
                    if res.rx_len < 64:
                        res.first_rx += bytes(bview[:min(n, 64 - res.rx_len)])
                    sink.update(bview[:n])
                    res.rx_len += n
                    if rx_limit is not None and res.rx_len > rx_limit:
                        end_rx("more than the %d bytes expected" % rx_limit)
                        end_tx("abandoned")
                        break
            if events & selectors.EVENT_WRITE and res.tx_end is None:
                view = tx.peek()
                try:
                    n = sock.send(view)
                    tx.consume(view, n)
                except (BlockingIOError, InterruptedError):
                    pass
                except BrokenPipeError:
                    end_tx("epipe")
                except ConnectionResetError:
                    end_tx("reset")
                except OSError as e:
                    end_tx("error: %s" % e)
            if res.rx_end == "reset" and res.tx_end is None:
                end_tx("reset")
    finally:
        sel.close()
        if tx is not None:
            res.tx_len = tx.pos
            res.tx_sha = tx.sha.hexdigest()
        res.rx_sha = sink.hexdigest()
    return res


def duplex_thread(sock, tx, **kw):
    """Run duplex(sock, tx, **kw) in a thread that closes sock when it returns.
    Returns (thread, live DuplexResult)."""
    res = kw.pop("res", None) or DuplexResult()

    def run():
        try:
            duplex(sock, tx, res=res, **kw)
        finally:
            _close_quietly(sock)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, res


# --------------------------------------------------------------------------
# resources of the running case, released when it ends

_case_resources = []
_all_relays = []
_tmp_root = None


def tmpdir():
    """The per-test temporary directory."""
    return _tmp_root


def write_file(name, text):
    path = os.path.join(_tmp_root, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def track(obj):
    """Register a socket (or anything with close()) to be closed when the case ends."""
    _case_resources.append(obj)
    return obj


def _close_quietly(obj):
    try:
        obj.close()
    except Exception:
        pass


def _release_case(check):
    """Close the case's sockets and backends, then check and stop its relays.
    Returns a list of failure messages (when check is true)."""
    problems = []
    relays = [o for o in _case_resources if isinstance(o, Relay)]
    others = [o for o in _case_resources if not isinstance(o, Relay)]
    for o in reversed(others):
        _close_quietly(o)
    for r in relays:
        if r.proc.poll() is None:
            if check:
                try:
                    r.check_fds("at the end of the case")
                    r.stop()
                except Fail as e:
                    problems.append(str(e))
            r.kill()
        elif check and not r.stopped_checked:
            try:
                r.check_sanitizer()
            except Fail as e:
                problems.append(str(e))
    _case_resources.clear()
    return problems


# --------------------------------------------------------------------------
# backends (IPv4 servers on 127.0.0.1:0)

class ConnRecord:
    """One connection accepted by a Backend."""

    def __init__(self, sock, peer, index):
        self.sock = sock
        self.peer = peer
        self.index = index
        self.result = None
        self.info = {}
        self.gate = threading.Event()      # handlers that hold wait for it
        self.stop = threading.Event()
        self.finished = threading.Event()
        self.exc = None
        self.t_accept = time.monotonic()

    def wait(self, timeout=None):
        if not self.finished.wait(bound(30) if timeout is None else timeout):
            raise Fail("backend connection %d (from %s:%d) still running after the bound; result so far %r"
                       % (self.index, self.peer[0], self.peer[1], self.result))
        if self.exc is not None:
            raise Fail("backend handler for connection %d failed: %s" % (self.index, self.exc))
        return self.result


class Backend:
    """A threaded TCP server on 127.0.0.1:0 (or another 127/8 address, or a given port);
    one thread per connection runs handler(rec). Connections are recorded in .conns in
    accept order."""

    def __init__(self, handler, host="127.0.0.1", rcvbuf=None, sndbuf=None, backlog=128, port=0):
        self.handler = handler
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        try:
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.listen(backlog)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.addr = "%s:%d" % (host, self.port)
        self.conns = []
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()
        _case_resources.append(self)

    def _accept_loop(self):
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        while not self.closed:
            if not sel.select(0.1):
                continue
            try:
                s, peer = self.sock.accept()
            except OSError:
                continue
            with self.cond:
                rec = ConnRecord(s, peer, len(self.conns))
                self.conns.append(rec)
                self.cond.notify_all()
            threading.Thread(target=self._run, args=(rec,), daemon=True).start()
        sel.close()

    def _run(self, rec):
        try:
            self.handler(rec)
        except Exception as e:
            rec.exc = "%s: %s" % (type(e).__name__, e)
        finally:
            _close_quietly(rec.sock)
            rec.finished.set()

    def count(self):
        with self.cond:
            return len(self.conns)

    def wait_conns(self, n, timeout=None):
        """Wait until at least n connections were accepted; returns the n-th record."""
        timeout = bound(10) if timeout is None else timeout
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.conns) >= n, timeout)
            if not ok:
                raise Fail("backend %s: expected %d connection(s) within %.0f s, got %d"
                           % (self.addr, n, timeout, len(self.conns)))
            return self.conns[n - 1]

    def close(self):
        self.closed = True
        self.thread.join(2)
        _close_quietly(self.sock)
        for rec in self.conns:
            rec.stop.set()
            rec.gate.set()
            _close_quietly(rec.sock)


def _seed_of(rec):
    return 1000 + rec.peer[1] * 31 + rec.index


def sink_source(down_size, after_eof=False, banner=b"", hold_rx=False, shut_wr=True, timeout=None,
                rx_limit=None):
    """Handler: read to EOF (hashing) while sending down_size deterministic bytes.
    after_eof: send only after EOF was read. banner: sent first, before anything is read
    (not part of the hashed stream). hold_rx: do not read before rec.gate is set.
    rx_limit: give up at once when more than this many bytes arrive."""
    def handler(rec):
        if banner:
            rec.sock.sendall(banner)
        rec.result = DuplexResult()
        rec.info["seed"] = _seed_of(rec)
        duplex(rec.sock, Source(down_size, rec.info["seed"]), res=rec.result,
               tx_after_eof=after_eof, shut_wr=shut_wr, timeout=timeout,
               rx_gate=rec.gate if hold_rx else None, stop=rec.stop, rx_limit=rx_limit)
    return handler


def hold():
    """Handler: send nothing, read nothing until rec.gate is set, then read to EOF."""
    def handler(rec):
        rec.result = duplex(rec.sock, None, rx_gate=rec.gate, stop=rec.stop, timeout=bound(60))
    return handler


def echo():
    """Handler: send back what arrives; at EOF shut down writing."""
    def handler(rec):
        rec.result = _echo_loop(rec)
    return handler


def banner_echo(banner=b"HELLO relay64\r\n"):
    """Handler: send a banner at once, then echo."""
    def handler(rec):
        rec.sock.sendall(banner)
        rec.result = _echo_loop(rec)
    return handler


def _echo_loop(rec):
    res = DuplexResult()
    rec.sock.settimeout(bound(30))
    sha = hashlib.sha256()
    try:
        while not rec.stop.is_set():
            data = rec.sock.recv(64 * KiB)
            if not data:
                res.rx_end = "eof"
                break
            sha.update(data)
            res.rx_len += len(data)
            rec.sock.sendall(data)
            res.tx_len += len(data)
        rec.sock.shutdown(socket.SHUT_WR)
        res.tx_end = "done"
    except ConnectionResetError:
        res.rx_end = res.rx_end or "reset"
    except OSError as e:
        res.rx_end = res.rx_end or "error: %s" % e
    res.rx_sha = res.tx_sha = sha.hexdigest()
    return res


_HDR = struct.Struct("!QQQ")


def sized(timeout=None):
    """Handler: read a 24-byte header (id, down_size, down_seed), then send down_size bytes
    of Source(down_size, down_seed) while reading the rest to EOF."""
    def handler(rec):
        rec.sock.settimeout(bound(30))
        hdr = b""
        while len(hdr) < _HDR.size:
            chunk = rec.sock.recv(_HDR.size - len(hdr))
            if not chunk:
                raise Fail("EOF inside the header after %d bytes" % len(hdr))
            hdr += chunk
        ident, down, seed = _HDR.unpack(hdr)
        rec.info.update(id=ident, down=down, seed=seed)
        rec.result = DuplexResult()
        duplex(rec.sock, Source(down, seed), res=rec.result, timeout=timeout, stop=rec.stop)
    return handler


def reset_after(nbytes, read_first=0):
    """Handler: read read_first bytes, send nbytes (reading meanwhile), then reset
    (SO_LINGER 0 and close)."""
    def handler(rec):
        got = 0
        rec.sock.settimeout(bound(30))
        while got < read_first:
            data = rec.sock.recv(min(64 * KiB, read_first - got))
            if not data:
                break
            got += len(data)
        rec.result = duplex(rec.sock, Source(nbytes, _seed_of(rec)), shut_wr=False, until="tx",
                            stop=rec.stop)
        rec.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        rec.info["t_reset"] = time.monotonic()
        rec.sock.close()
    return handler


def stream_forever(timeout=None):
    """Handler: send an endless stream while reading; ends when the connection is dead
    both ways (or rec.stop, or the bound)."""
    def handler(rec):
        rec.result = DuplexResult()
        duplex(rec.sock, Source(None, _seed_of(rec)), res=rec.result, stop=rec.stop,
               timeout=bound(30) if timeout is None else timeout)
    return handler


# --------------------------------------------------------------------------
# clients

def connect6(port, host="::1", timeout=None, rcvbuf=None, sndbuf=None):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    track(s)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.settimeout(bound(10) if timeout is None else timeout)
    s.connect((host, port))
    return s


def connect4(port, host="127.0.0.1", timeout=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    track(s)
    s.settimeout(bound(10) if timeout is None else timeout)
    s.connect((host, port))
    return s


def refused(port, host="::1", timeout=None):
    """Does a connect to [host]:port get refused (or reset at once)?  False when it
    is accepted (or queued: the SYN is answered)."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(bound(5) if timeout is None else timeout)
    try:
        s.connect((host, port))
        return False
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    except OSError:
        return False
    finally:
        s.close()


def exchange(port, up_size, seed=1, host="::1", family=socket.AF_INET6, timeout=None, **kw):
    """Connect to the relay, send up_size bytes while reading to EOF.
    Returns (DuplexResult, client port)."""
    if family == socket.AF_INET6:
        s = connect6(port, host)
    else:
        s = connect4(port, host)
    cport = s.getsockname()[1]
    res = duplex(s, Source(up_size, seed), timeout=timeout, **kw)
    s.close()
    return res, cport


def sized_exchange(port, ident, up_size, down_size, up_seed, down_seed, timeout=None):
    """Client side of the sized() handler. Returns (DuplexResult, client port); the
    header is not counted in the result."""
    s = connect6(port)
    cport = s.getsockname()[1]
    s.sendall(_HDR.pack(ident, down_size, down_seed))
    res = duplex(s, Source(up_size, up_seed), timeout=timeout)
    s.close()
    return res, cport


def verify_exchange(what, client, upstream, up_size, down_size):
    """Both directions arrived whole: sizes and SHA-256 of sent vs received."""
    for side, r in (("client", client), ("upstream", upstream)):
        expect(not (r.rx_end or "").startswith("more than"),
               "%s: the %s received no more than the other side sends" % (what, side),
               "at most the bytes sent", repr(r))
    expect(not client.timed_out, "%s: client side finished within the bound" % what,
           "both directions complete", repr(client))
    expect(not upstream.timed_out, "%s: upstream side finished within the bound" % what,
           "both directions complete", repr(upstream))
    expect_eq(client.tx_len, up_size, "%s: bytes the client sent" % what)
    expect_eq(upstream.rx_len, up_size, "%s: bytes the upstream received" % what)
    expect_eq(upstream.rx_sha, client.tx_sha, "%s: SHA-256 client->upstream" % what)
    expect_eq(upstream.tx_len, down_size, "%s: bytes the upstream sent" % what)
    expect_eq(client.rx_len, down_size, "%s: bytes the client received" % what)
    expect_eq(client.rx_sha, upstream.tx_sha, "%s: SHA-256 upstream->client" % what)
    expect_eq(client.rx_end, "eof", "%s: client read ends with EOF" % what)
    expect_eq(upstream.rx_end, "eof", "%s: upstream read ends with EOF" % what)


def checked_exchange(what, port, backend, up_size, down_size, seed=1, **kw):
    """exchange() with the relay, then verify_exchange() against the backend's
    next connection (the first accepted after this call began: no other client
    may be under way). Returns (DuplexResult, client port)."""
    before = backend.count()
    client, cport = exchange(port, up_size, seed=seed, rx_limit=down_size, **kw)
    verify_exchange(what, client, backend.wait_conns(before + 1).wait(), up_size, down_size)
    return client, cport


def served_or_refused(port, host="::1", source=None, timeout=None):
    """Connect and see what happens: "served" when the first bytes of the upstream's
    banner arrive, "refused" when the relay closes or resets the client without a
    byte (its reset may come before connect() returns)."""
    s = track(socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                            socket.SOCK_STREAM))
    if source is not None:
        s.bind((source, 0))
    s.settimeout(bound(10) if timeout is None else timeout)
    try:
        s.connect((host, port))
        data = s.recv(100)
    except ConnectionResetError:
        data = b""
    s.close()
    return "served" if data else "refused"


def wait_closed(sock, timeout=None, drain=True):
    """Wait until sock's read side ends (EOF or reset). Returns (how, bytes read, seconds).
    how is "eof", "reset" or "timeout"."""
    timeout = bound(10) if timeout is None else timeout
    t0 = time.monotonic()
    deadline = t0 + timeout
    got = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", got, time.monotonic() - t0
        sock.settimeout(left)
        try:
            data = sock.recv(64 * KiB)
        except socket.timeout:
            return "timeout", got, time.monotonic() - t0
        except ConnectionResetError:
            return "reset", got, time.monotonic() - t0
        if not data:
            return "eof", got, time.monotonic() - t0
        got += len(data)
        if not drain:
            return "data", got, time.monotonic() - t0


def wait_until(cond, timeout, interval=0.05):
    """Poll cond() until true or the bound passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def wait_stall(value, limit, quiet=1.0, timeout=None):
    """Wait until value() stops growing for `quiet` seconds, or reaches limit, or the
    bound passes. Returns the value."""
    timeout = bound(30) if timeout is None else timeout
    deadline = time.monotonic() + timeout
    last = value()
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        v = value()
        if v >= limit:
            return v
        if v != last:
            last, since = v, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return v
    return value()


# --------------------------------------------------------------------------
# upstreams that fail, on loopback only

class RefusedPort:
    """A 127.0.0.1 port that is bound but not listening: connects are refused, and no
    other program can take the port while this object lives."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        _case_resources.append(self)

    def close(self):
        _close_quietly(self.sock)


class FullBacklog:
    """A 127.0.0.1 listener with backlog 0 whose queue is filled by connections that are
    never accepted: further connects get no answer (their SYNs are dropped), so they
    hang until the connector gives up."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.fillers = []
        _case_resources.append(self)
        for _ in range(3):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(s)
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", self.port))
            hangs = False
        except socket.timeout:
            hangs = True
        except OSError:
            hangs = False
        finally:
            probe.close()
        if not hangs:
            self.close()
            raise Skip("cannot make a loopback listener whose connects hang (full backlog)")

    def close(self):
        for s in self.fillers:
            _close_quietly(s)
        _close_quietly(self.sock)


# --------------------------------------------------------------------------
# the service manager's side of sd_notify(3)

class NotifySocket:
    """A NOTIFY_SOCKET (a datagram socket in the test's directory) that collects what
    the relay notifies; closed when the case ends."""
    count = 0

    def __init__(self):
        NotifySocket.count += 1
        self.path = os.path.join(_tmp_root, "notify%d.sock" % NotifySocket.count)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        _case_resources.append(self)

    def env(self, **more):
        """os.environ with NOTIFY_SOCKET set to this socket (and more)."""
        return dict(os.environ, NOTIFY_SOCKET=self.path, **more)

    def wait_for(self, key, timeout=None):
        """Messages until one has a line starting with key; returns them all."""
        deadline = time.monotonic() + (bound(10) if timeout is None else timeout)
        got = []
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            got.append(msg)
            if any(line.startswith(key) for line in msg.split("\n")):
                return got
        raise Fail("no %s notification within the bound; got %r" % (key, got))

    def close(self):
        _close_quietly(self.sock)


# --------------------------------------------------------------------------
# the relay process

listen_line_re = re.compile(
    r"^relay64: listen (\S+): listening on \[([0-9A-Fa-f:.]+)\]:(\d+), upstream ([^;]+?)(?:; .*)?$", re.M)
_session_re = re.compile(
    r"^relay64: listen (?P<listener>\S+): session (?P<id>\S+) (?P<client>\S+) -> (?P<upstream>\S+)"
    r" ended after (?P<secs>[0-9.]+)s, (?P<up>\d+) bytes up, (?P<down>\d+) bytes down: (?P<reason>.*)$",
    re.M)
_sanitizer_re = re.compile(
    r"AddressSanitizer|LeakSanitizer|ThreadSanitizer|MemorySanitizer|runtime error:"
    r"|ERROR SUMMARY: [1-9]|definitely lost: [1-9]")


def _relay_binary():
    path = os.environ.get("RELAY64")
    if not path:
        raise HardError("RELAY64 is not set (path of the relay64 binary)")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise HardError("RELAY64=%s is not an executable file" % path)
    return path


_PR_SET_PDEATHSIG = 1


def _child_setup(rlimit_nofile=None, preexec=None):
    def setup():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except Exception:
            pass
        if rlimit_nofile is not None:
            import resource
            resource.setrlimit(resource.RLIMIT_NOFILE, rlimit_nofile)
        if preexec is not None:
            preexec()
    return setup


def run_relay(args, timeout=None, env=None):
    """Run relay64 with args to completion. Returns (status, stdout, stderr).
    Fails on a hang or a sanitizer report."""
    cmd = WRAPPER + [_relay_binary()] + list(args)
    timeout = bound(10) if timeout is None else timeout
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout, env=env, preexec_fn=_child_setup(),
                           errors="replace")
    except subprocess.TimeoutExpired as e:
        raise Fail("relay64 %s did not exit within %.0f s (stdout %r, stderr %r)"
                   % (" ".join(args), timeout, e.stdout, e.stderr))
    m = _sanitizer_re.search(p.stderr)
    if m:
        raise Fail("sanitizer/valgrind report from relay64 %s:\n%s" % (" ".join(args), p.stderr))
    return p.returncode, p.stdout, p.stderr


class Session:
    def __init__(self, m):
        self.listener = m["listener"]
        self.id = m["id"]
        self.client = m["client"]
        self.upstream = m["upstream"]
        self.secs = float(m["secs"])
        self.up = int(m["up"])
        self.down = int(m["down"])
        self.reason = m["reason"]
        self.line = m.group(0)

    def __repr__(self):
        return repr(self.line)


class Relay:
    """A running relay64.

    Relay(args=["[::1]:0", upstream]) runs it ad hoc; Relay(config=TEXT) writes TEXT to a
    file in the test's directory and runs it with -c. extra: options before the rest.
    It waits for the "listening on" line of each listener (those named in the config, or
    "cmdline"), then takes the descriptor baseline.  prefix: a command that runs relay64
    (it must exec it, keeping its pid); preexec: called in the child before the exec,
    after the descriptor limit is set."""

    _count = 0

    def __init__(self, args=None, config=None, extra=(), listeners=None, env=None,
                 rlimit_nofile=None, wait=True, pass_fds=(), prefix=(), preexec=None):
        Relay._count += 1
        self.n = Relay._count
        self.logpath = os.path.join(_tmp_root, "relay%d.log" % self.n)
        self.outpath = os.path.join(_tmp_root, "relay%d.out" % self.n)
        self.confpath = None
        cmd = list(prefix) + WRAPPER + [_relay_binary()] + list(extra)
        if config is not None:
            self.confpath = os.path.join(_tmp_root, "relay%d.conf" % self.n)
            with open(self.confpath, "w") as f:
                f.write(config)
            cmd += ["-c", self.confpath]
            if listeners is None:
                listeners = re.findall(r'^\s*listen\s+"?([^"\s{]+)"?\s*\{', config, re.M)
        if args is not None:
            cmd += list(args)
            if listeners is None:
                listeners = ["cmdline"]
        self.cmd = cmd
        self.listener_names = listeners or []
        self.stopped_checked = False
        self.baseline = None
        self.baseline_fds = None
        with open(self.logpath, "wb") as log, open(self.outpath, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=log,
                                         env=env, preexec_fn=_child_setup(rlimit_nofile, preexec),
                                         pass_fds=pass_fds)
        self.pid = self.proc.pid
        _case_resources.append(self)
        _all_relays.append(self)
        self.listeners = {}
        if wait:
            self.wait_ready()

    def __repr__(self):
        return "<relay64 pid %d: %s>" % (self.pid, " ".join(self.cmd))

    # start-up

    def wait_ready(self, timeout=None):
        timeout = bound(20) if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            self.listeners = {m[1]: (m[2], int(m[3]), m[4]) for m in listen_line_re.finditer(text)}
            if all(n in self.listeners for n in self.listener_names) and self.listeners:
                break
            if self.proc.poll() is not None:
                raise Fail("relay64 exited with status %s before listening\n  command: %s\n  log:\n%s"
                           % (self.proc.returncode, " ".join(self.cmd), _indent(text)))
            if time.monotonic() >= deadline:
                raise Fail("relay64 printed no 'listening on' line for %s within %.0f s\n  log:\n%s"
                           % (", ".join(self.listener_names), timeout, _indent(text)))
            time.sleep(0.05)
        self.pid = self._find_relay_pid()
        self.rebaseline()

    def _find_relay_pid(self):
        if not WRAPPER:
            return self.proc.pid
        target = os.path.realpath(_relay_binary())
        todo = [self.proc.pid]
        seen = set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            try:
                if os.path.realpath("/proc/%d/exe" % pid) == target:
                    return pid
            except OSError:
                pass
            try:
                for tid in os.listdir("/proc/%d/task" % pid):
                    with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                        todo += [int(x) for x in f.read().split()]
            except OSError:
                pass
        return self.proc.pid

    def rebaseline(self):
        """Take the descriptor baseline now (once the count holds still)."""
        last = self.fd_count()
        for _ in range(20):
            time.sleep(0.05)
            cur = self.fd_count()
            if cur == last:
                break
            last = cur
        self.baseline = last
        self.baseline_fds = self.fd_list()
        return last

    # what the tests look at

    def port(self, name="cmdline"):
        if name not in self.listeners:
            raise Fail("no listening line for listener %r (have %s)" % (name, sorted(self.listeners)))
        return self.listeners[name][1]

    def listen_ports(self):
        """Ports of the TCP sockets the relay listens on, from the kernel (/proc): for a
        relay whose log does not show its 'listening on' lines."""
        inodes = set()
        for target in self.fd_list().values():
            m = re.fullmatch(r"socket:\[(\d+)\]", target)
            if m:
                inodes.add(m.group(1))
        ports = set()
        for table in ("/proc/net/tcp6", "/proc/net/tcp"):
            try:
                with open(table) as f:
                    next(f)
                    for line in f:
                        cols = line.split()
                        if cols[3] == "0A" and cols[9] in inodes:    # TCP_LISTEN
                            ports.add(int(cols[1].rsplit(":", 1)[1], 16))
            except OSError:
                pass
        return ports

    def fd_list(self):
        out = {}
        try:
            for fd in os.listdir("/proc/%d/fd" % self.pid):
                try:
                    out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (self.pid, fd))
                except OSError:
                    out[int(fd)] = "?"
        except OSError:
            pass
        return out

    def fd_count(self):
        try:
            return len(os.listdir("/proc/%d/fd" % self.pid))
        except OSError:
            return -1

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is state (field 3); utime and stime are fields 14 and 15
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_text(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, regex, timeout=None, what=None):
        """Wait until the log matches regex; returns the match."""
        timeout = bound(10) if timeout is None else timeout
        rx = re.compile(regex, re.M)
        m = wait_until(lambda: rx.search(self.log_text()), timeout)
        if not m:
            raise Fail("%s: no log line matching %s within %.0f s\n  log:\n%s"
                       % (what or "relay log", regex, timeout, _indent(self.log_text())))
        return m

    def sessions(self):
        return [Session(m) for m in _session_re.finditer(self.log_text())]

    def session_for(self, cport, timeout=None):
        """The session line of the client whose local port is cport (waits for it)."""
        timeout = bound(10) if timeout is None else timeout

        def find():
            for s in self.sessions():
                if s.client.rsplit(":", 1)[-1] == str(cport):
                    return s
            return None
        s = wait_until(find, timeout)
        if s is None:
            raise Fail("no session line for client port %d within %.0f s\n  log:\n%s"
                       % (cport, timeout, _indent(self.log_text())))
        return s

    def check_session(self, what, cport, up, down, reason="done"):
        s = self.session_for(cport)
        expect(s.up == up and s.down == down and s.reason == reason,
               "%s: session log line" % what,
               "%d bytes up, %d bytes down: %s" % (up, down, reason), s.line)
        return s

    def workers(self):
        """How many workers (event loops) the relay started, from its log."""
        return int(self.wait_log(r"^relay64: (\d+) workers? started$", what="workers").group(1))

    fd_slack = 0    # descriptors the relay may keep above the baseline (see check_fds)

    def check_fds(self, what="", slack=None):
        """The descriptor count comes back to the baseline (polled with a bound); with
        slack (default: self.fd_slack), it may stay up to slack above it."""
        slack = self.fd_slack if slack is None else slack
        ok = wait_until(lambda: self.baseline <= self.fd_count() <= self.baseline + slack, bound(10))
        if not ok:
            now = self.fd_list()
            extra = {k: v for k, v in now.items() if self.baseline_fds.get(k) != v}
            gone = {k: v for k, v in self.baseline_fds.items() if k not in now}
            raise Fail("relay descriptors %s: expected the baseline %d (+%d), got %d\n"
                       "      new or changed: %s\n      gone: %s"
                       % (what, self.baseline, slack, len(now), extra, gone))

    # stopping

    def running(self):
        return self.proc.poll() is None

    def send_signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout=None, what="relay64 exit"):
        timeout = bound(20) if timeout is None else timeout
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Fail("%s: still running after %.0f s\n  log:\n%s"
                       % (what, timeout, _indent(self.log_text())))

    def check_sanitizer(self):
        self.stopped_checked = True
        text = self.log_text()
        m = _sanitizer_re.search(text)
        if m:
            raise Fail("sanitizer/valgrind report in the relay log (%r):\n%s" % (m.group(0), _indent(text)))

    def check_exit(self, status, expected=0, what="relay64 exit status"):
        self.check_sanitizer()
        if status != expected:
            raise Fail("%s\n      expected: %s\n      got:      %s\n  log:\n%s"
                       % (what, _status(expected), _status(status), _indent(self.log_text())))

    def stop(self, sig=signal.SIGTERM, expect_status=0, timeout=None):
        """Send sig, wait for the exit, check the status and the log for sanitizer reports."""
        self.send_signal(sig)
        st = self.wait_exit(timeout, "after %s" % signal.Signals(sig).name)
        self.check_exit(st, expect_status, "exit status after %s" % signal.Signals(sig).name)
        return st

    def kill(self):
        if self.proc.poll() is None:
            try:
                self.proc.kill()
                self.proc.wait(10)
            except Exception:
                pass


def _status(st):
    if st is None:
        return "running"
    if st < 0:
        return "killed by %s" % signal.Signals(-st).name
    return str(st)


def _indent(text, n=60):
    lines = text.rstrip("\n").split("\n")
    if len(lines) > n:
        lines = ["... (%d lines)" % (len(lines) - n)] + lines[-n:]
    return "\n".join("    | " + line for line in lines)


# --------------------------------------------------------------------------
# the runner

class _Watchdog(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Watchdog("the test script ran past its overall bound")


def _on_term(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def _have_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def main(cases, needs_ipv6=True, overall=120):
    """Run each case (a function whose docstring says what it checks) and exit with
    0 (all passed or skipped, at least one passed), 1 (a case failed), 77 (all skipped)
    or 99 (hard error)."""
    global _tmp_root
    name = os.path.basename(sys.argv[0])
    try:
        binary = _relay_binary()
    except HardError as e:
        note("ERROR: %s" % e)
        sys.exit(EXIT_HARD)
    if needs_ipv6 and not _have_ipv6_loopback():
        note("SKIP: no IPv6 loopback (cannot bind [::1])")
        sys.exit(EXIT_SKIP)
    _tmp_root = tempfile.mkdtemp(prefix="relay64-%s." % name.replace(".py", ""))
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(int(bound(overall)))
    note("%s: relay64 = %s%s%s" % (name, binary, (", wrapper = %s" % " ".join(WRAPPER)) if WRAPPER else "",
                                   ", sanitized build" if SANITIZED else ""))
    results = []
    hard = False
    try:
        for case in cases:
            doc = " ".join((case.__doc__ or "").split())
            note("\n--- %s: %s" % (case.__name__, doc))
            t0 = time.monotonic()
            outcome, detail = "PASS", ""
            try:
                case()
            except Fail as e:
                outcome, detail = "FAIL", str(e)
            except Skip as e:
                outcome, detail = "SKIP", str(e)
            except HardError as e:
                outcome, detail, hard = "ERROR", str(e), True
            except (_Watchdog, KeyboardInterrupt) as e:
                outcome, detail = "FAIL", "%s\n%s" % (e, traceback.format_exc())
                _release_case(False)
                results.append((case.__name__, outcome))
                note("FAIL %s: %s" % (case.__name__, detail))
                _dump_logs()
                break
            except Exception:
                outcome, detail = "FAIL", "unexpected exception:\n" + traceback.format_exc()
            relays = [o for o in _case_resources if isinstance(o, Relay)]
            problems = _release_case(outcome == "PASS")
            if problems and outcome == "PASS":
                outcome, detail = "FAIL", "\n".join(problems)
            dt = time.monotonic() - t0
            if outcome == "PASS":
                note("PASS %s (%.1f s)" % (case.__name__, dt))
            else:
                note("%s %s (%.1f s): %s" % (outcome, case.__name__, dt, detail))
                if outcome in ("FAIL", "ERROR"):
                    for r in relays:
                        note("  relay log (%s):\n%s" % (" ".join(r.cmd), _indent(r.log_text())))
            results.append((case.__name__, outcome))
    finally:
        signal.alarm(0)
        _release_case(False)
        for r in _all_relays:
            r.kill()
        if os.environ.get("RELAY64_KEEP_TMP") == "1":
            note("temporary files kept in %s" % _tmp_root)
        else:
            shutil.rmtree(_tmp_root, ignore_errors=True)
    counts = {}
    for _, o in results:
        counts[o] = counts.get(o, 0) + 1
    note("\n%s: %s" % (name, ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items()))))
    if hard:
        sys.exit(EXIT_HARD)
    if counts.get("FAIL"):
        sys.exit(EXIT_FAIL)
    if len(results) < len(cases):
        sys.exit(EXIT_FAIL)
    if not counts.get("PASS"):
        sys.exit(EXIT_SKIP)
    sys.exit(EXIT_PASS)


def _dump_logs():
    for r in _all_relays:
        try:
            note("  relay log (%s):\n%s" % (" ".join(r.cmd), _indent(r.log_text())))
        except OSError:
            pass
