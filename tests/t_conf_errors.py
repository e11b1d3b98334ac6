#!/usr/bin/env python3
"""Configuration errors: each bad file exits 2 with one line `relay64: FILE:LINE: message`
naming the culprit; a file using every key (at its limits) is accepted."""

import pwd
import os
import re
import socket

from relaytest import *

GOOD_LISTEN = """\
listen good {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
}
"""

# (name, config, line marker (text on the line(s) to report; "a..b" = any line from the
#  first marker to the second), words the message must contain)
CASES = [
    ("error after comments (their lines counted once)", """\
# a comment line
// another
/* a block
   comment */
log-level = loud   # trailing comment
""" + GOOD_LISTEN, "log-level = loud", ["log-level", "loud"]),
    ("comment marks inside strings are not comments", """\
user = "x#y"
listen a {
    bind = "[::1]:0"
    upstream = "10.0.0.300:80"  // {
}
""", "10.0.0.300", [re.escape("10.0.0.300:80")]),
    ("file ends inside a section", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
""", "listen a {", [r"never closed"]),
    ("syntax error", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    = "oops"
}
""", '= "oops"', [r"syntax|unexpected|parse"]),
    ("unknown global key", """\
log-level = info
frobnicate = 1
""" + GOOD_LISTEN, "frobnicate", ["frobnicate"]),
    ("unknown listen key", """\
listen a {
    bind = "[::1]:0"
    colour = "blue"
    upstream = "127.0.0.1:80"
}
""", "colour", ["colour"]),
    ("bad bind address", """\
listen a {
    upstream = "127.0.0.1:80"
    bind = "[::zz]:80"
}
""", "bind =", [re.escape("[::zz]:80")]),
    ("IPv4 bind address", """\
listen a {
    upstream = "127.0.0.1:80"
    bind = "[127.0.0.1]:80"
}
""", "bind =", [re.escape("[127.0.0.1]:80")]),
    ("bind without brackets", """\
listen a {
    upstream = "127.0.0.1:80"
    bind = "::1:80"
}
""", "bind =", [re.escape("::1:80")]),
    ("bind port 65536", """\
listen a {
    upstream = "127.0.0.1:80"
    bind = "[::1]:65536"
}
""", "bind =", ["65536"]),
    ("bind port junk", """\
listen a {
    upstream = "127.0.0.1:80"
    bind = "[::1]:junk"
}
""", "bind =", [re.escape("[::1]:junk")]),
    ("bad upstream address", """\
listen a {
    bind = "[::1]:0"
    upstream = "10.0.0.300:80"
}
""", "upstream =", [re.escape("10.0.0.300:80")]),
    ("bad upstream address in a list", """\
listen a {
    bind = "[::1]:0"
    upstream = { "127.0.0.1:80", "10.0.0.300:80" }
}
""", "upstream =", [re.escape("10.0.0.300:80")]),
    ("upstream port 0", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:0"
}
""", "upstream =", [re.escape("127.0.0.1:0")]),
    ("IPv6 upstream", """\
listen a {
    bind = "[::1]:0"
    upstream = "[::1]:80"
}
""", "upstream =", [re.escape("[::1]:80")]),
    ("empty upstream list", """\
listen a {
    bind = "[::1]:0"
    upstream = {}
}
""", "listen a..}", ["upstream"]),
    ("duplicate listen title", """\
listen alpha {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
}

listen alpha {
    bind = "[::1]:0"
    upstream = "127.0.0.1:81"
}
""", "#2 listen alpha..#2 }", ["alpha"]),
    ("two listeners on one bind", """\
listen one {
    bind = "[::1]:8064"
    upstream = "127.0.0.1:80"
}

listen two {
    upstream = "127.0.0.1:81"
    bind = "[::1]:8064"
}
""", "listen two..#2 }", [re.escape("[::1]:8064")]),
    ("listen without bind", """\
listen nobind {
    upstream = "127.0.0.1:80"
}
""", "listen nobind..}", ["bind"]),
    ("listen without upstream", """\
listen noup {
    bind = "[::1]:0"
}
""", "listen noup..}", ["upstream"]),
    ("connect-timeout 0", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    connect-timeout = 0
}
""", "connect-timeout", ["connect-timeout"]),
    ("connect-timeout 3601", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    connect-timeout = 3601
}
""", "connect-timeout", ["connect-timeout", "3601"]),
    ("negative idle-timeout", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    idle-timeout = -1
}
""", "idle-timeout", ["idle-timeout"]),
    ("idle-timeout 604801", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    idle-timeout = 604801
}
""", "idle-timeout", ["idle-timeout", "604801"]),
    ("drain-timeout 3601", """\
drain-timeout = 3601
""" + GOOD_LISTEN, "drain-timeout", ["drain-timeout", "3601"]),
    ("global max-connections -1", """\
max-connections = -1
""" + GOOD_LISTEN, "max-connections", ["max-connections"]),
    ("workers 257", """\
workers = 257
""" + GOOD_LISTEN, "workers", ["workers", "257"]),
    ("negative workers", """\
workers = -2
""" + GOOD_LISTEN, "workers", ["workers"]),
    ("splice not a boolean", """\
splice = sometimes
""" + GOOD_LISTEN, "splice", ["splice"]),
    ("listen max-connections 1000001", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    max-connections = 1000001
}
""", "max-connections", ["max-connections", "1000001"]),
    ("bad balance", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    balance = random
}
""", "balance", ["random"]),
    ("bad log-level", """\
log-level = loud
""" + GOOD_LISTEN, "log-level", ["loud"]),
    ("bad v6only", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    v6only = maybe
}
""", "v6only", ["maybe|v6only"]),
    ("IPv6 source", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    source = "::1"
}
""", "source", [re.escape("::1")]),
    ("junk source", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    source = "junk"
}
""", "source", ["junk"]),
    ("[::] and [::1] on one port (they cannot both be bound)", """\
listen one {
    bind = "[::]:8065"
    upstream = "127.0.0.1:80"
}

listen two {
    upstream = "127.0.0.1:81"
    bind = "[::1]:8065"
}
""", 'bind = "[::1]:8065"', [re.escape("listen two: bind [::1]:8065 overlaps [::]:8065 of listen one (line 2)"),
                            "every IPv6 address"]),
    ("an address, then [::] with v6only = false on its port", """\
listen one {
    bind = "[::1]:8066"
    upstream = "127.0.0.1:80"
}

listen two {
    bind = "[::]:8066"
    v6only = false
    upstream = "127.0.0.1:81"
}
""", 'bind = "[::]:8066"', [re.escape("listen two: bind [::]:8066 overlaps [::1]:8066 of listen one (line 2)")]),
    ("[::] with v6only = false, then an IPv4-mapped bind on its port", """\
listen one {
    bind = "[::]:8067"
    v6only = false
    upstream = "127.0.0.1:80"
}
listen two {
    bind = "[::ffff:127.0.0.1]:8067"
    v6only = false
    upstream = "127.0.0.1:81"
}
""", "::ffff:127.0.0.1", [re.escape("listen two: bind [::ffff:127.0.0.1]:8067 overlaps [::]:8067 of listen one (line 2)"),
                          "IPv4"]),
    ("::ffff:0.0.0.0 and an IPv4-mapped address on one port", """\
listen one {
    bind = "[::ffff:0.0.0.0]:8068"
    v6only = false
    upstream = "127.0.0.1:80"
}
listen two {
    bind = "[::ffff:127.0.0.1]:8068"
    v6only = false
    upstream = "127.0.0.1:81"
}
""", "::ffff:127.0.0.1", [re.escape("listen two: bind [::ffff:127.0.0.1]:8068 overlaps [::ffff:0.0.0.0]:8068 of listen one (line 2)")]),
    ("the same address twice, v6only differing", """\
listen one {
    bind = "[::1]:8069"
    upstream = "127.0.0.1:80"
}
listen two {
    bind = "[0::1]:8069"
    v6only = false
    upstream = "127.0.0.1:81"
}
""", "[0::1]:8069", [re.escape("listen two: bind [::1]:8069 is already used by listen one (line 2)")]),
    ("a NUL byte inside a value of a list (it cut the value)", """\
listen a {
    bind = "[::1]:0"
    upstream = { "127.0.0.1:21\0003" }
}
""", "upstream =", ["NUL byte at column 31"]),
    ("a NUL byte after a bind value", """\
listen a {
    bind = "[::1]:21001\0 junk"
    upstream = "127.0.0.1:80"
}
""", "bind =", ["NUL byte at column 24"]),
    ("a NUL byte in a comment", """\
# a comment \0 with a NUL
""" + GOOD_LISTEN, "a comment", ["NUL byte at column 13"]),
    ("a NUL byte outside quotes", """\
log-level = info\0
""" + GOOD_LISTEN, "log-level", ["NUL byte at column 17"]),
    ("a NUL byte written as a hex escape", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:21\\x003"
}
""", "upstream =", [re.escape(r"escape \x00 at column 29 makes a NUL byte")]),
    ("a NUL byte written as an octal escape", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:21\\0"
}
""", "upstream =", [re.escape(r"escape \0 at column 29 makes a NUL byte")]),
    ("a control character inside a quoted value", """\
listen a {
    bind = "[::1]:80\x01"
    upstream = "127.0.0.1:80"
}
""", "bind =", [re.escape(r"control character \x01 at column 21 inside a quoted value")]),
    ("a CR inside a quoted value", """\
listen a {
    bind = "[::1]:80\r"
    upstream = "127.0.0.1:80"
}
""", "bind =", [re.escape(r"control character \r at column 21 inside a quoted value")]),
    ("a quoted value over two lines", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:
80"
}
""", "upstream =", [re.escape(r"control character \n at column 27 inside a quoted value")]),
    ("a LF written as an escape", """\
listen a {
    bind = "[::1]:80\\n"
    upstream = "127.0.0.1:80"
}
""", "bind =", [re.escape(r"escape \n at column 21 makes control character \n inside a quoted value")]),
    ("a control character in a single-quoted value", """\
user = 'relay\x1b[2J'
""" + GOOD_LISTEN, "user =", [re.escape(r"control character \x1b at column 14 inside a quoted value")]),
    ("a control character outside quotes", """\
log-level = info\x0c
""" + GOOD_LISTEN, "log-level", [re.escape(r"control character \x0c at column 17"), "outside quotes"]),
    ("a tab in a value is shown as \\t", """\
listen a {
    bind = "[::1]:80\t"
    upstream = "127.0.0.1:80"
}
""", "bind =", [re.escape(r'bind "[::1]:80\t": port is not a number')]),
    ("a file that ends inside a quoted value", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
}
user = "relay64""", 'user =', [re.escape("the quoted value at column 8 is never closed")]),
    ("a file that ends inside a quoted value, after a backslash (nothing echoed)", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
}
user = 'relay64\\""", 'user =', [re.escape("the quoted value at column 8 is never closed")]),
    ("a file that is only an open quote and a backslash", '"\\', '"', ["quoted value at column 1 is never closed"]),
    ("a file that ends inside a quoted value inside a section", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80""", 'upstream =', [re.escape("the quoted value at column 16 is never closed")]),
    ("a listener's key set from the top level through a path", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
}
listen|connect-timeout = 0
""", "listen|connect-timeout", [re.escape("no such option here: connect-timeout is set inside its own section")]),
    ("a listener's bind set from the top level through a quoted path", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
}
"listen=a|bind" = "[::1]:80"
""", "listen=a|bind", [re.escape("no such option here: bind is set inside its own section")]),
    ("a listener's v6only set from the top level through a path", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
}
listen|v6only = false
""", "listen|v6only", [re.escape("no such option here: v6only")]),
    ("an empty key at the top level", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
}

"" = 5
""", '"" = 5', [re.escape("cannot parse this (an empty key?)")]),
    ("an empty key in a section", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    '' = 5
}
""", "'' = 5", [re.escape("cannot parse this (an empty key?)")]),
    ("keepalive -1", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    keepalive = -1
}
""", "keepalive", [re.escape("keepalive = -1: out of range (0-86400)")]),
    ("keepalive 86401", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    keepalive = 86401
}
""", "keepalive", [re.escape("keepalive = 86401: out of range (0-86400)")]),
    ("keepalive not a number", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    keepalive = 1m
}
""", "keepalive", ["keepalive|1m"]),
    ("max-per-source -1", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    max-per-source = -1
}
""", "max-per-source", [re.escape("max-per-source = -1: out of range (0-1000000)")]),
    ("max-per-source 1000001", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    max-per-source = 1000001
}
""", "max-per-source", [re.escape("max-per-source = 1000001: out of range (0-1000000)")]),
    ("max-per-source is not global", """\
max-per-source = 10
""" + GOOD_LISTEN, "max-per-source", ["max-per-source"]),
    ("allow: not an address", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    allow = "2001:db8::zz/32"
}
""", "allow", [re.escape('allow "2001:db8::zz/32": not an IPv6 or IPv4 address')]),
    ("allow: a host name", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    allow = { "example.org" }
}
""", "allow", [re.escape('allow "example.org": not an IPv6 or IPv4 address')]),
    ("allow: IPv6 prefix 129", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    allow = "2001:db8::/129"
}
""", "allow", [re.escape('allow "2001:db8::/129": prefix length out of range (0-128)')]),
    ("deny: IPv4 prefix 33", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    deny = { "192.0.2.0/33" }
}
""", "deny", [re.escape('deny "192.0.2.0/33": prefix length out of range (0-32)')]),
    ("allow: prefix not a number", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    allow = "192.0.2.0/x"
}
""", "allow", [re.escape('allow "192.0.2.0/x": prefix length is not a number')]),
    ("deny: a netmask", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    deny = "192.0.2.0/255.255.255.0"
}
""", "deny", [re.escape('deny "192.0.2.0/255.255.255.0": a prefix length in bits, not a netmask')]),
    ("allow: an empty entry", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    allow = { "2001:db8::/32", "" }
}
""", "allow", [re.escape('allow "": empty')]),
    ("allow: brackets", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    allow = "[2001:db8::]/32"
}
""", "allow", [re.escape('allow "[2001:db8::]/32": no brackets here')]),
    ("allow: IPv6 host bits set", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    allow = "2001:db8::1/32"
}
""", "allow", [re.escape('allow "2001:db8::1/32": host bits set past the /32 prefix (::1): '
                         'write the network, 2001:db8::/32')]),
    ("deny: IPv4 host bits set", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    deny = "192.0.2.1/24"
}
""", "deny", [re.escape('deny "192.0.2.1/24": host bits set past the /24 prefix (0.0.0.1): '
                        'write the network, 192.0.2.0/24')]),
    ("deny: IPv4-mapped host bits set", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    deny = "::ffff:192.0.2.1/120"
}
""", "deny", [re.escape('deny "::ffff:192.0.2.1/120": host bits set past the /120 prefix (0.0.0.1): '
                        'write the network, 192.0.2.0/24')]),
    ("allow: the bad entry of a list over several lines", """\
listen a {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
    allow = {
        "2001:db8::/32",
        "192.0.2.0/24",
        "198.51.101.0/23",
        "203.0.113.0/24"
    }
}
""", "198.51.101.0/23", [re.escape('allow "198.51.101.0/23": host bits set past the /23 prefix (0.0.1.0): '
                                   'write the network, 198.51.100.0/23')]),
    ("allow is not global", """\
allow = "2001:db8::/32"
""" + GOOD_LISTEN, "allow", ["allow"]),
    ("a tab in a title is shown as \\t", """\
listen "a\tb" {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
}
""", "listen..}", [re.escape(r'listen "a\tb": a title')]),
]


def _lines(config, marker):
    """Acceptable line numbers for a marker: "text" (every line containing it),
    "a..b" (any line from the first line with a to the first line with b after it);
    "#2 text" means the second line containing text."""
    lines = config.split("\n")

    def find(m, start=0):
        nth = 1
        if m.startswith("#"):
            nth, m = int(m[1:m.index(" ")]), m[m.index(" ") + 1:]
        for i in range(start, len(lines)):
            if (lines[i].strip() == m) if m == "}" else (m in lines[i]):
                nth -= 1
                if nth == 0:
                    return i
        raise HardError("marker %r not in the test config" % m)
    if ".." in marker:
        a, b = marker.split("..")
        i = find(a)
        j = find(b, i + 1) if not b.startswith("#") else find(b)
        return set(range(i + 1, j + 2))
    return {i + 1 for i, l in enumerate(lines) if marker in l} if not marker.startswith("#") \
        else {find(marker) + 1}


def _one_case(idx, name, config, marker, words, test_flag=True):
    path = write_file("bad%02d.conf" % idx, config)
    args = (["-t"] if test_flag else []) + ["-c", path]
    st, out, err = run_relay(args)
    what = "%s (relay64 %s)" % (name, " ".join(a if a != path else "bad%02d.conf" % idx for a in args))
    expect_eq(st, 2, "%s: exit status (stderr %r)" % (what, err))
    lines = [l for l in err.split("\n") if l.strip()]
    expect_eq(len(lines), 1, "%s: number of stderr lines (stderr %r)" % (what, err))
    expect(not re.search(r"[\x00-\x1f\x7f]", lines[0]),
           "%s: the error holds no control character (they are escaped)" % what, "", repr(lines[0]))
    m = re.match(r"^relay64: (.+):(\d+): (.+)$", lines[0])
    expect(m is not None, "%s: the error has the form 'relay64: FILE:LINE: message'" % what,
           "relay64: %s:LINE: ..." % path, lines[0])
    expect_eq(m[1], path, "%s: the file named in the error (%s)" % (what, lines[0]))
    want = _lines(config, marker)
    expect(int(m[2]) in want, "%s: the line named in the error" % what,
           "line %s" % " or ".join(str(x) for x in sorted(want)), lines[0])
    for w in words:
        expect(re.search(w, m[3], re.I), "%s: the message names the culprit" % what,
               "a message matching %r" % w, m[3])
    expect(out == "", "%s: nothing on standard output" % what, "", out)
    note("  ok: %s -> %s" % (name, lines[0].replace(path, "FILE")))


def case_bad_configs():
    "every bad config of the table: relay64 -t -c FILE exits 2 with one 'FILE:LINE: message' line"
    failures = []
    for i, (name, config, marker, words) in enumerate(CASES):
        try:
            _one_case(i, name, config, marker, words)
        except Fail as e:
            note("  FAILED: %s" % e)
            failures.append(name)
    if failures:
        raise Fail("%d of %d bad configs not reported as expected: %s"
                   % (len(failures), len(CASES), ", ".join(failures)))


def case_bad_config_without_test():
    "without -t, a bad config also exits 2 with the one-line error (and binds nothing)"
    for i in (1, 8, 14):
        name, config, marker, words = CASES[i]
        _one_case(100 + i, name, config, marker, words, test_flag=False)


def case_good_config():
    "a config that uses every key, numbers at their limits, is accepted by -t"
    user = pwd.getpwuid(os.getuid()).pw_name
    path = write_file("every-key.conf", """\
# every key of this round
user            = "%s"
log-level       = debug
drain-timeout   = 3600
max-connections = 1000000

listen full {
    bind            = "[::1]:0"
    v6only          = true
    upstream        = { "127.0.0.1:8080", "localhost:8081", "[::ffff:127.0.0.1]:8082" }
    balance         = roundrobin
    source          = "127.0.0.1"
    connect-timeout = 3600
    idle-timeout    = 604800
    max-connections = 1000000
    keepalive       = 86400
    max-per-source  = 1000000
    allow           = { "2001:db8::/32", "192.0.2.0/24", "2001:db8::1", "192.0.2.7",
                        "::ffff:10.0.0.0/104", "2001:db8::/32", "::/0", "0.0.0.0/0" }
    deny            = { "2001:db8:bad::/48",
                        "::ffff:192.0.2.7" }
}

listen low {
    bind            = "[::]:0"
    v6only          = false
    upstream        = "127.0.0.1:1"
    balance         = first
    connect-timeout = 1
    idle-timeout    = 0
    max-connections = 0
    keepalive       = 0
    max-per-source  = 0
    allow           = {}
}

listen defaults {
    bind            = "[::1]:0"
    upstream        = "127.0.0.1:1"
    deny            = "0.0.0.0/0"
}
""" % user)
    st, out, err = run_relay(["-t", "-c", path])
    expect_eq(st, 0, "exit status of relay64 -t -c every-key.conf (stderr %r)" % err)
    text = out + err
    expect_match(r"^(relay64: )?configuration OK$", text, "-t says 'configuration OK'")
    expect_match(r"^(relay64: )?listen full: bind \[::1\]:0 v6only yes, upstream 127\.0\.0\.1:8080,"
                 r"\S*8081,\S*8082, balance roundrobin(, source 127\.0\.0\.1)?, connect-timeout 3600, idle-timeout 604800, "
                 r"max-connections 1000000, proxy-protocol off, keepalive 86400, max-per-source 1000000, "
                 r"allow \{2001:db8::/32, 192\.0\.2\.0/24, 2001:db8::1/128, 192\.0\.2\.7/32, 10\.0\.0\.0/8, "
                 r"2001:db8::/32, ::/0, 0\.0\.0\.0/0\}, deny \{2001:db8:bad::/48, 192\.0\.2\.7/32\}$",
                 text, "-t line of listener full")
    expect_match(r"^(relay64: )?listen low: bind \[::\]:0 v6only no, upstream 127\.0\.0\.1:1, "
                 r"balance first, connect-timeout 1, idle-timeout 0, max-connections 0, "
                 r"proxy-protocol off, keepalive 0, max-per-source 0$", text,
                 "-t line of listener low (an empty allow list is not shown)")
    expect_match(r"^(relay64: )?listen defaults: .*, max-connections 0, proxy-protocol off, "
                 r"keepalive 60, max-per-source 0, deny \{0\.0\.0\.0/0\}$", text,
                 "-t line of listener defaults: keepalive 60, no limit per source, no allow list")
    for log_level in ("error", "warning", "notice", "info", "debug"):
        p = write_file("level-%s.conf" % log_level, "log-level = %s\n%s" % (log_level, GOOD_LISTEN))
        st, out, err = run_relay(["-t", "-c", p])
        expect_eq(st, 0, "log-level = %s is accepted (stderr %r)" % (log_level, err))


def case_adhoc_defaults():
    "the ad-hoc form: keepalive 60, no limit per source, no allow or deny list"
    st, out, err = run_relay(["-t", "[::1]:0", "127.0.0.1:80"])
    expect_eq(st, 0, "exit status of relay64 -t [::1]:0 127.0.0.1:80 (stderr %r)" % err)
    expect_match(r"^(relay64: )?listen cmdline: bind \[::1\]:0 .*, proxy-protocol off, keepalive 60, "
                 r"max-per-source 0$", out + err, "-t line of the ad-hoc listener")


def case_value_from_environment():
    "text from ${VAR} with a CR and a LF in it: the error stays one line, CR and LF escaped"
    os.environ["RELAY64_TEST_UPSTREAM"] = "192.0.2.1:80\r\nX"
    os.environ["RELAY64_TEST_KEY"] = "col\nour"
    try:
        _one_case(200, "upstream from the environment", """\
listen a {
    bind = "[::1]:0"
    upstream = "${RELAY64_TEST_UPSTREAM}"
}
""", "upstream =", [re.escape(r'upstream "192.0.2.1:80\r\nX"')])
        _one_case(201, "a key from the environment (libconfuse's own message)", """\
${RELAY64_TEST_KEY} = 1
""" + GOOD_LISTEN, "RELAY64_TEST_KEY", [re.escape(r"col\nour")])
    finally:
        del os.environ["RELAY64_TEST_UPSTREAM"]
        del os.environ["RELAY64_TEST_KEY"]


def case_text_that_is_fine():
    "tabs, CRLF line ends, control characters and UTF-8 in comments, a line continued in a value: accepted"
    path = write_file("fine.conf", "# relay64 \u2013 \x01\x7f in a comment are fine\r\n"
                      "/* so is \x1b[1m here */\r\n"
                      "log-level\t= info\r\n"
                      "listen fine {\r\n"
                      "\tbind = \"[::1]:0\"\t# \x02\r\n"
                      "\tupstream = { \"127.0.0.1:\\\n81\", '127.0.0.1:82' }\r\n"
                      "}\r\n")
    st, out, err = run_relay(["-t", "-c", path])
    expect_eq(st, 0, "exit status of relay64 -t -c fine.conf (stderr %r)" % err)
    expect_match(r"^(relay64: )?listen fine: bind \[::1\]:0 v6only yes, upstream 127\.0\.0\.1:81,127\.0\.0\.1:82,",
                 out + err, "-t line of listener fine")


def case_long_lists():
    "long lists of upstreams or networks are checked in linear time; the error in a long list names its line"
    # 30,000 values took minutes when each was checked again as the next was
    # read.  Under AddressSanitizer, libconfuse's growing a list by one value
    # at a time (a realloc each, always a copy there) is quadratic by itself:
    # shorter lists keep that build's run short.
    n = 6000 if SANITIZED else 30000
    ups = ['"10.%d.%d.%d:80"' % (i >> 16, (i >> 8) & 255, i & 255) for i in range(n)]
    path = write_file("long.conf", "listen long {\n    bind = \"[::1]:0\"\n    upstream = {\n        "
                      + ",\n        ".join(ups) + "\n    }\n}\n")
    st, out, err = run_relay(["-t", "-c", path], timeout=bound(10))
    expect_eq(st, 0, "exit status of relay64 -t -c long.conf (stderr %r)" % err[-300:])
    expect_match(r"^listen long: .*upstream 10\.0\.0\.0:80,10\.0\.0\.1:80,.*,%s, balance first,"
                 % re.escape(ups[-1].strip('"')), out, "-t line of listener long, with every upstream")
    nets = ['"2001:db8:%x::/48", "10.%d.%d.0/24"' % (i, i >> 8, i & 255) for i in range(n // 2)]
    path = write_file("long-acl.conf", "listen long {\n    bind = \"[::1]:0\"\n    upstream = \"127.0.0.1:80\"\n"
                      "    allow = {\n        " + ",\n        ".join(nets) + "\n    }\n"
                      "    deny = {\n        " + ",\n        ".join(nets) + "\n    }\n}\n")
    st, out, err = run_relay(["-t", "-c", path], timeout=bound(10))
    expect_eq(st, 0, "exit status of relay64 -t -c long-acl.conf (stderr %r)" % err[-300:])
    last = nets[-1].replace('"', "").split(", ")
    expect_match(r"^listen long: .*allow \{2001:db8::/48, 10\.0\.0\.0/24, .*, %s\}, "
                 r"deny \{2001:db8::/48, .*, %s, %s\}$" % (re.escape(last[1]), re.escape(last[0]),
                                                          re.escape(last[1])),
                 out, "-t line of listener long, with every network")
    bad = n * 2 // 3
    ups[bad] = '"10.0.0.300:80"'
    path = write_file("long-bad.conf", "listen long {\n    bind = \"[::1]:0\"\n    upstream = {\n        "
                      + ",\n        ".join(ups) + "\n    }\n}\n")
    st, out, err = run_relay(["-t", "-c", path], timeout=bound(10))
    expect_eq(st, 2, "exit status of relay64 -t -c long-bad.conf")
    expect_match(r'^relay64: .*long-bad\.conf:%d: upstream "10\.0\.0\.300:80": ' % (bad + 4), err,
                 "the error names the line of the bad upstream")


def _free_port():
    """A port free on every address now (IPv6 and IPv4)."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def case_binds_that_coexist():
    "binds that Linux can hold at once on one port are accepted by -t, and really run"
    path = write_file("coexist.conf", """\
listen v6all {
    bind = "[::]:8070"
    upstream = "127.0.0.1:80"
}
listen v4one {
    bind = "[::ffff:127.0.0.1]:8070"
    v6only = false
    upstream = "127.0.0.1:80"
}
listen loop6 {
    bind = "[::1]:8071"
    upstream = "127.0.0.1:80"
}
listen v4all {
    bind = "[::ffff:0.0.0.0]:8071"
    v6only = false
    upstream = "127.0.0.1:80"
}
listen any0 {
    bind = "[::]:0"
    v6only = false
    upstream = "127.0.0.1:80"
}
listen loop0 {
    bind = "[::1]:0"
    upstream = "127.0.0.1:80"
}
""")
    st, out, err = run_relay(["-t", "-c", path])
    expect_eq(st, 0, "exit status of relay64 -t -c coexist.conf (stderr %r)" % err)
    expect_match(r"^(relay64: )?configuration OK$", out + err, "-t says 'configuration OK'")
    port = _free_port()
    r = Relay(config="""\
listen v6all {
    bind = "[::]:%d"
    upstream = "127.0.0.1:80"
}
listen v4one {
    bind = "[::ffff:127.0.0.1]:%d"
    v6only = false
    upstream = "127.0.0.1:80"
}
""" % (port, port), listeners=["v6all"])
    r.wait_log(r"^relay64: listen v4one: listening on \[::ffff:127\.0\.0\.1\]:%d," % port,
               what="the IPv4-mapped listener next to a v6only [::] on one port")


if __name__ == "__main__":
    main([case_bad_configs, case_bad_config_without_test, case_good_config,
          case_binds_that_coexist, case_value_from_environment, case_text_that_is_fine,
          case_long_lists, case_adhoc_defaults])
