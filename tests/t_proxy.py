#!/usr/bin/env python3
"""PROXY protocol v1/v2: the IPv4 upstream learns the real client.

An independent parser decodes relay64's headers: HAProxy with accept-proxy
(it also verifies the v2 CRC32C), logging the client and destination it
decoded, which are compared with what the test client really used.  A raw
backend checks that the header comes first, whole, before any client byte,
and as soon as the upstream connection is up."""

import hashlib
import os
import re
import shutil
import socket
import subprocess

from relaytest import *

HAPROXY = shutil.which("haproxy")


class HAProxy:
    """haproxy in TCP mode on an inherited 127.0.0.1 listening socket (no port race),
    accept-proxy, forwarding to backend; one log line per connection on stdout."""

    def __init__(self, backend):
        if HAPROXY is None:
            raise Skip("haproxy is not installed (Debian package haproxy)")
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        fd = self.lsock.fileno()
        cfg = write_file("haproxy%d.cfg" % fd, """
global
    log stdout format raw local0
defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind fd@%d accept-proxy
    log-format "PP src=%%ci:%%cp dst=%%fi:%%fp id=%%[fc_pp_unique_id]"
    default_backend be
backend be
    server s %s
""" % (fd, backend.addr))
        self.logpath = os.path.join(tmpdir(), "haproxy%d.log" % fd)
        with open(self.logpath, "wb") as out:
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         pass_fds=(fd,))
        track(self)

    def log_text(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def decoded(self, n=1):
        """The PP lines (src, dst, id) haproxy logged, waiting for n of them."""
        rx = re.compile(r"^PP src=(\S+) dst=(\S+) id=(\S*)$", re.M)
        lines = wait_until(lambda: len(rx.findall(self.log_text())) >= n and rx.findall(self.log_text()),
                           bound(10))
        if not lines:
            raise Fail("haproxy logged no decoded PROXY header\n  haproxy log:\n%s" % self.log_text())
        return lines

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.lsock.close()


def through_haproxy(relay_args=None, config=None, client_host="::1", client_src=None,
                    listener="cmdline", up=256 * KiB, down=128 * KiB):
    """One exchange client -> relay64 -> haproxy(accept-proxy) -> backend.
    Returns (decoded (src, dst, id), client (addr, port), relay port, relay)."""
    be = Backend(sink_source(down))
    hp = HAProxy(be)
    if relay_args is not None:
        r = Relay(args=relay_args[:-1] + [relay_args[-1] % hp.addr])
    else:
        r = Relay(config=config % hp.addr)
    rport = r.port(listener)
    fam = socket.AF_INET6 if ":" in client_host else socket.AF_INET
    s = track(socket.socket(fam, socket.SOCK_STREAM))
    if client_src:
        s.bind((client_src, 0))
    s.settimeout(bound(10))
    s.connect((client_host, rport))
    caddr = s.getsockname()
    res = duplex(s, Source(up, 7))
    s.close()
    rec = be.wait_conns(1)
    verify_exchange("payload after the header", res, rec.wait(), up, down)
    return hp.decoded(1)[0], caddr, rport, r


def case_v2_ipv6():
    "v2, IPv6 client: haproxy decodes TCP6 with the client's address and port and the relay's"
    (src, dst, _), caddr, rport, r = through_haproxy(["-p", "v2", "[::1]:0", "%s"])
    expect_eq(src, "::1:%d" % caddr[1], "v2 source = client address and port")
    expect_eq(dst, "::1:%d" % rport, "v2 destination = the address the client connected to")


def case_v1_ipv6():
    "v1, IPv6 client: haproxy decodes TCP6 with the client's address and port and the relay's"
    (src, dst, _), caddr, rport, r = through_haproxy(["-p", "v1", "[::1]:0", "%s"])
    expect_eq(src, "::1:%d" % caddr[1], "v1 source")
    expect_eq(dst, "::1:%d" % rport, "v1 destination")


DUAL = """
listen dual {
    bind = "[::]:0"
    v6only = false
    upstream = "%%s"
    proxy-protocol = %s
}
"""


def case_v2_dualstack_ipv4():
    "v2, IPv4 client on a dual-stack listener: TCP4 with plain a.b.c.d, never ::ffff:"
    (src, dst, _), caddr, rport, r = through_haproxy(
        config=DUAL % "v2", client_host="127.0.0.1", client_src="127.0.0.5", listener="dual")
    expect_eq(src, "127.0.0.5:%d" % caddr[1], "v2 source (IPv4 client, unmapped)")
    expect_eq(dst, "127.0.0.1:%d" % rport, "v2 destination (unmapped)")


def case_v1_dualstack_ipv4():
    "v1, IPv4 client on a dual-stack listener: TCP4 with plain a.b.c.d, never ::ffff:"
    (src, dst, _), caddr, rport, r = through_haproxy(
        config=DUAL % "v1", client_host="127.0.0.1", client_src="127.0.0.5", listener="dual")
    expect_eq(src, "127.0.0.5:%d" % caddr[1], "v1 source (IPv4 client, unmapped)")
    expect_eq(dst, "127.0.0.1:%d" % rport, "v1 destination (unmapped)")


MAPPED = """
listen mapped {
    bind = "[::ffff:127.0.0.1]:0"
    v6only = false
    upstream = "%s"
    proxy-protocol = v2
}
"""


V4ANY = """
listen v4any {
    bind = "[::ffff:0.0.0.0]:0"
    v6only = false
    upstream = "%s"
    proxy-protocol = v2
}
"""


def case_v2_destination_of_each_bind():
    "v2 destination for each kind of bind: the wildcards [::] and [::ffff:0.0.0.0] (asked of the socket), an IPv4-mapped one (the listener's own, unmapped)"
    (src, dst, _), caddr, rport, r = through_haproxy(config=DUAL % "v2", listener="dual")
    expect_eq(src, "::1:%d" % caddr[1], "wildcard bind, IPv6 client: v2 source")
    expect_eq(dst, "::1:%d" % rport, "wildcard bind, IPv6 client: v2 destination = ::1")
    (src, dst, _), caddr, rport, r = through_haproxy(
        config=MAPPED, client_host="127.0.0.1", client_src="127.0.0.6", listener="mapped")
    expect_eq(src, "127.0.0.6:%d" % caddr[1], "mapped bind: v2 source (unmapped)")
    expect_eq(dst, "127.0.0.1:%d" % rport, "mapped bind: v2 destination (unmapped)")
    (src, dst, _), caddr, rport, r = through_haproxy(
        config=V4ANY, client_host="127.0.0.7", client_src="127.0.0.6", listener="v4any")
    expect_eq(src, "127.0.0.6:%d" % caddr[1], "[::ffff:0.0.0.0] bind: v2 source")
    expect_eq(dst, "127.0.0.7:%d" % rport, "[::ffff:0.0.0.0] bind: v2 destination = the address connected to")


def case_v2_tlvs():
    "v2 TLVs: haproxy accepts the CRC32C and reads the unique id the session's log line shows"
    conf = """
listen tlv {
    bind = "[::1]:0"
    upstream = "%s"
    proxy-protocol = v2
    proxy-protocol-tlvs = { unique-id, crc32c }
}
"""
    (src, dst, uid), caddr, rport, r = through_haproxy(config=conf, listener="tlv")
    expect_eq(src, "::1:%d" % caddr[1], "source with TLVs")
    sess = r.session_for(caddr[1])
    expect_eq(uid, sess.id, "unique id TLV = the session id in the log line")
    expect_eq(sess.up, 256 * KiB, "bytes up in the log exclude the header")


def raw_header_backend(nbytes_expected):
    """Handler: read everything to EOF, recording what arrived before the client wrote
    (the banner is sent only after the header arrived)."""
    def handler(rec):
        rec.sock.settimeout(bound(10))
        first = b""
        while not first.endswith(b"\r\n") and len(first) < 200:
            b = rec.sock.recv(1)
            if not b:
                break
            first += b
        rec.info["header"] = first
        rec.sock.sendall(b"HELLO\r\n")      # the upstream speaks first
        rest = hashlib.sha256()
        n = 0
        while True:
            b = rec.sock.recv(65536)
            if not b:
                break
            rest.update(b)
            n += len(b)
        rec.info["rest_len"] = n
        rec.info["rest_sha"] = rest.hexdigest()
        rec.sock.shutdown(socket.SHUT_WR)
    return handler


def case_v1_header_first_upstream_speaks_first():
    "v1 header arrives whole as soon as the upstream is up, before any client byte; payload intact"
    be = Backend(raw_header_backend(0))
    r = Relay(args=["-p", "v1", "[::1]:0", be.addr])
    s = connect6(r.port())
    cport = s.getsockname()[1]
    banner = s.recv(7)       # the client sends nothing until the upstream spoke
    expect_eq(banner, b"HELLO\r\n", "the upstream's banner reaches the client (it speaks first)")
    rec = be.wait_conns(1)
    expect_eq(rec.info.get("header"),
              ("PROXY TCP6 ::1 ::1 %d %d\r\n" % (cport, r.port())).encode(),
              "v1 line, sent before the client wrote anything")
    payload = os.urandom(100 * KiB)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    expect_eq(s.recv(10), b"", "EOF after the upstream finished")
    s.close()
    rec.wait()
    expect_eq(rec.info["rest_len"], len(payload), "payload length after the header")
    expect_eq(rec.info["rest_sha"], hashlib.sha256(payload).hexdigest(), "payload SHA-256")
    r.check_session("v1", cport, len(payload), 7)


def case_header_then_waiting_bytes():
    "client bytes sent before the upstream is up follow the v2 header directly, in order"
    be = Backend(sink_source(0))
    payload = os.urandom(3000)
    r = Relay(args=["-p", "v2", "[::1]:0", be.addr])
    s = connect6(r.port())
    cport = s.getsockname()[1]
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    expect_eq(s.recv(10), b"", "EOF")
    s.close()
    res = be.wait_conns(1).wait()
    lo = socket.inet_pton(socket.AF_INET6, "::1")
    header = (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x21, 0x00, 36]) + lo + lo
              + cport.to_bytes(2, "big") + r.port().to_bytes(2, "big"))
    expect_eq(res.rx_len, len(header) + len(payload), "header (52 bytes for TCP6) + payload")
    expect_eq(res.rx_sha, hashlib.sha256(header + payload).hexdigest(),
              "SHA-256 of what the upstream got = v2 header, then the payload")


def case_config_errors():
    "bad proxy-protocol settings are refused with file:line and exit 2"
    base = 'listen a {\n  bind = "[::1]:0"\n  upstream = "127.0.0.1:9"\n%s}\n'
    for body, line, msg in [
            ('  proxy-protocol = v3\n', 4, 'proxy-protocol "v3": not one of off, v1, v2'),
            ('  proxy-protocol = v2\n  proxy-protocol-tlvs = { crc32c, bogus }\n', 5,
             'proxy-protocol-tlvs "bogus": not one of unique-id, crc32c'),
            ('  proxy-protocol = v1\n  proxy-protocol-tlvs = { crc32c }\n', 6,
             'listen a: proxy-protocol-tlvs needs proxy-protocol = v2')]:
        path = write_file("bad.conf", base % body)
        st, out, err = run_relay(["-t", "-c", path])
        expect_eq(st, 2, "exit status for %r" % body)
        expect_eq(err.strip(), "relay64: %s:%d: %s" % (path, line, msg), "message for %r" % body)
    st, out, err = run_relay(["-t", "-p", "v9", "[::1]:0", "127.0.0.1:9"])
    expect_eq(st, 2, "exit status for -p v9")
    expect_match(r'--proxy-protocol "v9": not one of off, v1, v2', err, "message for -p v9")
    path = write_file("good.conf", base % "")
    st, out, err = run_relay(["-t", "-p", "v1", "-c", path])
    expect_eq(st, 2, "exit status for -p with a configuration file")
    expect_match(r"--proxy-protocol applies to the ad-hoc form", err, "message for -p with -c")
    st, out, err = run_relay(["-t", "-p", "v2", "[::1]:0", "127.0.0.1:9"])
    expect_eq(st, 0, "-t -p v2 ad hoc")
    expect_match(r"proxy-protocol v2", out, "-t shows the PROXY setting")


main([case_config_errors, case_v2_ipv6, case_v1_ipv6, case_v2_dualstack_ipv4, case_v1_dualstack_ipv4,
      case_v2_destination_of_each_bind, case_v2_tlvs,
      case_v1_header_first_upstream_speaks_first, case_header_then_waiting_bytes])
