#!/usr/bin/env python3
"""relay64 command line: version, help, usage errors, -t in ad-hoc and config mode, -c."""

import os
import re
import socket

from relaytest import *

LISTENER_LINE = (r"(?:relay64: )?listen %s: bind \[%s\]:%d v6only %s, upstream %s, balance %s, "
                 r"connect-timeout %d, idle-timeout %d, max-connections %d(?:, [^,]+)*")
# (settings of later issues, e.g. proxy-protocol, may follow the ones this round fixes)


def case_version():
    "-V prints 'relay64 VERSION' and exits 0; so does --version"
    for opt in ("-V", "--version"):
        st, out, err = run_relay([opt])
        expect_eq(st, 0, "exit status of relay64 %s" % opt)
        expect_match(r"^relay64 [0-9]+\.[0-9]+[0-9A-Za-z.~+-]*$", out.strip(),
                     "relay64 %s output on stdout" % opt)


def case_help():
    "-h and --help exit 0 and print a usage text that names the command"
    for opt in ("-h", "--help"):
        st, out, err = run_relay([opt])
        expect_eq(st, 0, "exit status of relay64 %s" % opt)
        expect("relay64" in out and len(out.strip().splitlines()) >= 3,
               "relay64 %s prints a usage text on stdout" % opt, "several lines naming relay64", out)


def _usage_error(args, culprit=None):
    st, out, err = run_relay(args)
    what = "relay64 %s" % " ".join(args)
    expect_eq(st, 2, "%s: exit status (usage error)" % what)
    expect(err.strip() != "", "%s: prints an error message on stderr" % what, "a message", repr(err))
    if culprit is not None:
        expect(culprit in err, "%s: the message names the culprit %r" % (what, culprit),
               "stderr containing %r" % culprit, err.strip())
    note("  ok: %s -> exit 2: %s" % (what, err.strip().splitlines()[0]))


def case_usage_errors():
    "unknown option, too many or too few positional arguments: exit 2 with a message"
    _usage_error(["--no-such-option", "[::1]:0", "127.0.0.1:80"], "no-such-option")
    _usage_error(["-Z", "[::1]:0", "127.0.0.1:80"], "Z")
    _usage_error(["[::1]:0"])
    _usage_error(["[::1]:0", "127.0.0.1:80", "127.0.0.1:81"])
    _usage_error(["-l", "loud", "[::1]:0", "127.0.0.1:80"], "loud")


def _usage_message(args, message):
    """relay64 ARGS exits 2 and its first line of stderr is exactly 'relay64: MESSAGE'."""
    st, out, err = run_relay(args)
    what = "relay64 %s" % " ".join(repr(a) if a == "" else a for a in args)
    expect_eq(st, 2, "%s: exit status (usage error)" % what)
    first = (err.splitlines() or [""])[0]
    expect_eq(first, "relay64: " + message, "%s: the message names the option as typed and what is wrong" % what)
    note("  ok: %s -> %s" % (what, first))


# The options that take no value, and those that take one (with what it is).
NO_VALUE = [("-t", "--test"), ("-1", "--once"), ("-s", "--syslog"), ("-d", "--daemon"),
            ("-V", "--version"), ("-h", "--help")]
VALUE = [("-c", "--config", "file name"), ("-u", "--user", "user name"),
         ("-l", "--log-level", "level (error, warning, notice, info or debug)"),
         ("-p", "--proxy-protocol", "PROXY protocol version (off, v1 or v2)"),
         (None, "--pidfile", "file name")]
ADHOC = ["[::1]:0", "127.0.0.1:9"]


def case_option_value_errors():
    "every option: a value given to one that takes none, an empty or a missing value: exit 2, the option named as typed"
    for short, long in NO_VALUE:
        for typed in (long + "=1", long + "=", long[:4] + "=yes"):
            _usage_message([typed] + ADHOC, "%s: %s takes no value" % (typed, long))
    for short, long, what in VALUE:
        forms = [([long, ""], long), ([long + "="], long)]
        if short is not None:
            forms.append(([short, ""], short))
        for args, typed in forms:
            _usage_message(args + ADHOC, "%s: empty %s" % (typed, what))
        _usage_message([long], "%s: missing %s" % (long, what))
        if short is not None:
            _usage_message([short], "%s: missing %s" % (short, what))
            _usage_message(["-t" + short[1]], "%s: missing %s" % (short, what))
    _usage_message(["-l", "loud"] + ADHOC, '-l "loud": not one of error, warning, notice, info, debug')
    _usage_message(["--log-level=loud"] + ADHOC,
                   '--log-level "loud": not one of error, warning, notice, info, debug')
    _usage_message(["--p", "v1"] + ADHOC, "--p: ambiguous, --proxy-protocol or --pidfile?")
    _usage_message(["--no-such-option=3"] + ADHOC, "unknown option --no-such-option")
    _usage_message(["", "127.0.0.1:9"], "LISTEN: empty; expected [IPV6]:PORT such as '[::]:2000'")
    _usage_message(["[::1]:0", ""], "UPSTREAM: empty; expected IPV4:PORT or HOST:PORT")


def case_bad_listen():
    "a bad LISTEN argument exits 2 and the message quotes it"
    for bad in ("[::1]:65536", "::1:80", "[::1]:junk", "[::1]", "[::1]:", "[127.0.0.1]:80",
                "[::1]:-1", "[fe80::zz]:80"):
        _usage_error([bad, "127.0.0.1:80"], bad)


def case_bad_upstream():
    "a bad UPSTREAM argument exits 2 and the message quotes it"
    for bad in ("10.0.0.300:80", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1", "127.0.0.1:junk",
                "[::1]:80"):
        _usage_error(["[::1]:0", bad], bad)


def _held_port():
    """A [::1] port bound (not listening, no SO_REUSEADDR) by this test: a relay that binds
    it fails, so one that does not bind passes."""
    s = track(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    s.bind(("::1", 0))
    return s, s.getsockname()[1]


def _config_ok(out, err, lines):
    text = out + err
    got = [l for l in text.splitlines() if l.strip()]
    expect(got and got[-1].strip() in ("configuration OK", "relay64: configuration OK"),
           "-t ends with 'configuration OK'", "last line 'configuration OK'", text)
    listener_lines = [l for l in got if re.match(r"^(relay64: )?listen ", l)]
    expect_eq(len(listener_lines), len(lines), "number of listener lines printed by -t (output %r)" % text)
    for regex in lines:
        expect(any(re.fullmatch(regex, l) for l in listener_lines),
               "-t prints the effective listener", regex, "\n".join(listener_lines))


def case_test_adhoc():
    "-t in ad-hoc mode prints one listener line and 'configuration OK', exits 0, binds nothing"
    held, port = _held_port()
    st, out, err = run_relay(["-t", "[::1]:%d" % port, "127.0.0.1:8080"])
    expect_eq(st, 0, "exit status of relay64 -t [::1]:%d 127.0.0.1:8080 (stderr %r)" % (port, err))
    _config_ok(out, err, [LISTENER_LINE % ("cmdline", re.escape("::1"), port, "yes",
                                           re.escape("127.0.0.1:8080"), "first", 5, 0, 0)])
    held.close()
    # the port is still free for anybody
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        s.bind(("::1", port))
        s.listen(1)
    except OSError as e:
        raise Fail("after relay64 -t, port %d is still free: bind failed: %s" % (port, e))
    finally:
        s.close()
    # host name and IPv4-mapped forms are accepted as well
    st, out, err = run_relay(["-t", "[::1]:0", "localhost:80"])
    expect_eq(st, 0, "exit status of relay64 -t [::1]:0 localhost:80 (stderr %r)" % err)
    st, out, err = run_relay(["-t", "[::1]:0", "[::ffff:127.0.0.1]:80"])
    expect_eq(st, 0, "exit status of relay64 -t [::1]:0 [::ffff:127.0.0.1]:80 (stderr %r)" % err)


def case_test_config():
    "-t -c FILE prints one line per listener then 'configuration OK', exits 0, binds nothing"
    held, port = _held_port()
    path = write_file("good.conf", """\
# two listeners
log-level = notice
drain-timeout = 3

listen web {
    bind = "[::1]:%d"
    upstream = { "127.0.0.1:8080", "127.0.0.2:8081" }
    balance = roundrobin
    idle-timeout = 300
}

listen "mail" {
    bind = "[::]:0"
    v6only = false
    upstream = "127.0.0.1:25"
    connect-timeout = 7
    max-connections = 10
}
""" % port)
    st, out, err = run_relay(["-t", "-c", path])
    expect_eq(st, 0, "exit status of relay64 -t -c good.conf (stderr %r)" % err)
    _config_ok(out, err, [
        LISTENER_LINE % ("web", re.escape("::1"), port, "yes",
                         re.escape("127.0.0.1:8080,127.0.0.2:8081"), "roundrobin", 5, 300, 0),
        LISTENER_LINE % ("mail", re.escape("::"), 0, "no", re.escape("127.0.0.1:25"), "first", 7, 0, 10),
    ])
    held.close()
    # --test and --config long forms
    st, out, err = run_relay(["--test", "--config", path])
    expect_eq(st, 0, "exit status of relay64 --test --config good.conf (stderr %r)" % err)


def case_missing_config():
    "-c on a missing file exits 2 and names the file"
    path = os.path.join(tmpdir(), "no-such-dir", "relay64.conf")
    for args in (["-c", path], ["-t", "-c", path]):
        st, out, err = run_relay(args)
        expect_eq(st, 2, "exit status of relay64 %s" % " ".join(args))
        expect(path in err, "relay64 %s names the missing file" % " ".join(args), path, err.strip())


def case_bind_failure():
    "a LISTEN that cannot be bound (port in use) is a runtime failure: exit 1, names the address"
    s = track(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    s.bind(("::1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    st, out, err = run_relay(["[::1]:%d" % port, "127.0.0.1:80"])
    expect_eq(st, 1, "exit status of relay64 on a port in use (stderr %r)" % err)
    expect(str(port) in err, "the bind error names the address", "[::1]:%d" % port, err.strip())


if __name__ == "__main__":
    main([case_version, case_help, case_usage_errors, case_option_value_errors, case_bad_listen,
          case_bad_upstream,
          case_test_adhoc, case_test_config, case_missing_config, case_bind_failure])
