#!/usr/bin/env python3
"""The shipped systemd units: `systemd-analyze verify` accepts them, and
`systemd-analyze security --offline=yes` rates the service at most 2.0."""

import os
import re
import shutil
import subprocess

from relaytest import *

SRCDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANALYZE = shutil.which("systemd-analyze")


def units():
    """The units with this build's paths, in the test's directory."""
    with open(os.path.join(SRCDIR, "systemd", "relay64.service.in")) as f:
        text = f.read()
    relay = os.path.abspath(os.environ["RELAY64"])
    text = (text.replace("@sbindir@/relay64", relay)
            .replace("@sysconfdir@", os.path.join(SRCDIR, "etc")))
    expect(re.search(r"@[a-z]+@", text) is None, "every @placeholder@ is substituted", "none", text)
    service = write_file("relay64.service", text)
    shutil.copy(os.path.join(SRCDIR, "systemd", "relay64.socket"), tmpdir())
    return service, os.path.join(tmpdir(), "relay64.socket")


def analyze(*args):
    p = subprocess.run([ANALYZE] + list(args), capture_output=True, text=True, timeout=bound(60),
                       cwd=tmpdir())
    return p.returncode, p.stdout + p.stderr


def case_verify():
    "systemd-analyze verify accepts relay64.service and relay64.socket"
    if ANALYZE is None:
        raise Skip("systemd-analyze is not installed")
    service, socket_unit = units()
    st, out = analyze("verify", "--man=no", service, socket_unit)
    expect_eq(st, 0, "systemd-analyze verify status (output: %s)" % out.strip())
    expect(out.strip() == "", "no complaint from systemd-analyze verify", "", out)


def case_security():
    "systemd-analyze security --offline=yes rates relay64.service at most 2.0"
    if ANALYZE is None:
        raise Skip("systemd-analyze is not installed")
    service, _ = units()
    st, out = analyze("security", "--offline=yes", service)
    m = re.search(r"Overall exposure level for relay64\.service: ([0-9.]+)", out)
    expect(m is not None, "an exposure level is printed", "Overall exposure level ...", out[-2000:])
    note("  exposure level %s" % m.group(1))
    expect(float(m.group(1)) <= 2.0, "exposure level at most 2.0", "<= 2.0", m.group(1))


def case_reload_checks_first():
    "ExecReload checks the file with -t before it signals; a bad file exits 2, which must not restart"
    with open(os.path.join(SRCDIR, "systemd", "relay64.service.in")) as f:
        text = f.read()
    reloads = re.findall(r"^ExecReload=(.*)$", text, re.M)
    expect(len(reloads) == 2 and " -t " in reloads[0] and "-HUP" in reloads[1],
           "ExecReload runs relay64 -t, then sends SIGHUP", "two lines, -t then kill -HUP", reloads)
    expect(re.search(r"^RestartPreventExitStatus=2$", text, re.M) is not None,
           "exit status 2 (configuration error) prevents a restart loop", "RestartPreventExitStatus=2", "")
    expect(re.search(r"^Type=notify$", text, re.M) is not None, "Type=notify", "Type=notify", "")


if __name__ == "__main__":
    main([case_verify, case_security, case_reload_checks_first], needs_ipv6=False)
