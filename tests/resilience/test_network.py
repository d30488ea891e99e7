"""No network at run time: ingest and an answer with the real model contact nothing but loopback.

Two independent observers watch the child processes:

- ``strace -f --seccomp-bpf -e trace=connect,sendto,sendmsg`` (every thread and child, native code
  included), when strace works on this machine;
- the ``sitecustomize`` guard (tests/resilience/inject) that logs every Python-level connect/sendto
  and refuses anything that is not loopback or a Unix socket.

A positive control proves the strace parser flags a non-loopback address: a UDP ``connect`` to
192.0.2.1 (TEST-NET-1; a UDP connect sends no packet).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.resilience.conftest import (
    FIGURES,
    QUESTION,
    TracedIndex,
    bin_path,
    check_answer,
    child_env,
    settings_env,
    traced,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

_FAMILY = re.compile(r"sa_family=(AF_[A-Z0-9]+)")
_INET = re.compile(r'inet_addr\("([^"]+)"\)')
_INET6 = re.compile(r'inet_pton\(AF_INET6, "([^"]+)"')
LOCAL_FAMILIES = {"AF_UNIX", "AF_LOCAL", "AF_NETLINK", "AF_UNSPEC"}


def outside_contacts(strace_text: str) -> list[str]:
    """strace lines that address anything but loopback, a Unix socket or the kernel (netlink)."""
    bad = []
    for line in strace_text.splitlines():
        family = _FAMILY.search(line)
        if family is None or family.group(1) in LOCAL_FAMILIES:
            continue  # no address (a connected socket) or a local family
        v4, v6 = _INET.search(line), _INET6.search(line)
        if family.group(1) == "AF_INET" and v4 and v4.group(1).startswith("127."):
            continue
        if family.group(1) == "AF_INET6" and v6 and v6.group(1) in ("::1", "::ffff:127.0.0.1"):
            continue
        bad.append(line.strip())
    return bad


def refused(net_log: Path) -> list[str]:
    if not net_log.exists():
        return []
    return [line for line in net_log.read_text(encoding="utf-8").splitlines() if "REFUSED" in line]


def test_observers_catch_a_non_loopback_contact(tmp_path: Path, strace_available: str | None) -> None:
    """The control: both observers see (and the guard refuses) a connect to 192.0.2.1."""
    probe = ("import socket\n"
             "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
             "try:\n    s.connect(('192.0.2.1', 9))\nexcept OSError as e:\n    print('refused', e)\n")
    net_log = tmp_path / "probe.netlog"
    guarded = subprocess.run([sys.executable, "-c", probe], env=child_env(RESILIENCE_NET_LOG=net_log),
                             capture_output=True, text=True, timeout=60)
    assert "refused" in guarded.stdout and refused(net_log), (guarded.stdout, guarded.stderr)
    if strace_available is None:
        pytest.skip("strace is not usable here; the sitecustomize guard was checked")
    trace = tmp_path / "probe.strace"
    subprocess.run(traced([sys.executable, "-c", probe], trace, strace_available), env=child_env(),
                   capture_output=True, text=True, timeout=60, check=True)
    flagged = outside_contacts(trace.read_text())
    assert flagged and "192.0.2.1" in flagged[0]


def test_ingest_and_answer_contact_nothing_but_loopback(real_index_traced: TracedIndex, tmp_path: Path,
                                                        strace_available: str | None) -> None:
    settings = real_index_traced.settings
    net_log = tmp_path / "ask.netlog"
    strace_file = tmp_path / "ask.strace"
    t0 = time.monotonic()
    result = subprocess.run(traced([bin_path("peer-assist"), "ask", "--json", QUESTION], strace_file,
                                   strace_available),
                            env=child_env(RESILIENCE_NET_LOG=net_log, **settings_env(settings)),
                            capture_output=True, text=True, timeout=300)
    ask_s = time.monotonic() - t0
    assert result.returncode == 0, result.stderr[-3000:]
    check_answer(json.loads(result.stdout), settings)

    observed = {"ingest_s": round(real_index_traced.seconds, 1), "ask_s": round(ask_s, 1),
                "observer": "strace + sitecustomize guard" if strace_available else "sitecustomize guard only"}
    problems = refused(real_index_traced.net_log) + refused(net_log)
    if strace_available:
        assert real_index_traced.strace_file is not None
        ingest_trace = real_index_traced.strace_file.read_text()
        ask_trace = strace_file.read_text()
        observed["strace_lines"] = {"ingest": len(ingest_trace.splitlines()), "ask": len(ask_trace.splitlines())}
        problems += outside_contacts(ingest_trace) + outside_contacts(ask_trace)
    observed["non_loopback_contacts"] = len(problems)
    FIGURES["no_network"] = observed
    print(f"\nno-network check (real model): {observed}")
    assert problems == [], problems[:10]
