#!/usr/bin/env python3
"""The service manager's notification protocol, with a harness NOTIFY_SOCKET:
READY=1 only once the listener accepts, RELOADING=1 then READY=1 around a reload,
STOPPING=1 on SIGTERM, WATCHDOG=1 when WATCHDOG_USEC asks for it."""

import os
import signal
import socket

from relaytest import *


def case_ready_reload_stop():
    "READY=1 after the listener accepts; RELOADING=1/READY=1 on SIGHUP; STOPPING=1 on SIGTERM"
    ns = NotifySocket()
    be = Backend(sink_source(100))
    env = dict(os.environ, NOTIFY_SOCKET=ns.path)
    config = 'listen web {\n    bind = "[::1]:0"\n    upstream = "%s"\n}\n' % be.addr
    r = Relay(config=config, env=env, wait=False)
    msgs = ns.wait_for("READY=1")
    # READY=1 came: the listener must accept right now, without waiting.
    r.wait_ready(timeout=1)
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(1)
    s.connect(("::1", r.port("web")))
    s.close()
    expect(any("STATUS=relaying on 1 listeners" in m for m in msgs), "STATUS with the listener count",
           "STATUS=relaying on 1 listeners", msgs)
    expect(not any("READY=1" in m for m in msgs[:-1]), "READY=1 sent once", "once", msgs)
    r.send_signal(signal.SIGHUP)
    msgs = ns.wait_for("READY=1")
    expect("RELOADING=1" in "".join(msgs), "RELOADING=1 before READY=1", "RELOADING=1", msgs)
    expect("MONOTONIC_USEC=" in "".join(msgs), "RELOADING=1 carries MONOTONIC_USEC", "present", msgs)
    r.send_signal(signal.SIGTERM)
    ns.wait_for("STOPPING=1")
    r.check_exit(r.wait_exit(), 0)


def case_watchdog():
    "WATCHDOG_USEC=200000: WATCHDOG=1 keeps coming from the event loop"
    ns = NotifySocket()
    be = Backend(sink_source(0))
    env = dict(os.environ, NOTIFY_SOCKET=ns.path, WATCHDOG_USEC="200000")
    r = Relay(args=["[::1]:0", be.addr], env=env)
    ns.wait_for("WATCHDOG=1")
    ns.wait_for("WATCHDOG=1")


def case_no_socket():
    "without NOTIFY_SOCKET nothing is sent and the relay runs as usual"
    be = Backend(sink_source(10))
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    r = Relay(args=["[::1]:0", be.addr], env=env)
    res, cport = exchange(r.port(), 10)
    expect_eq(res.rx_len, 10, "bytes relayed")


if __name__ == "__main__":
    main([case_ready_reload_stop, case_watchdog, case_no_socket])
