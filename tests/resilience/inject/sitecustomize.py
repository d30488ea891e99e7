"""Test instrumentation for the resilience suite's child processes (never used by the product).

The suite starts ``peer-assist`` and the UI with ``PYTHONPATH`` pointing here, so Python imports this
module at start-up. Every feature is off unless its environment variable is set:

``RESILIENCE_NET_LOG=FILE``
    Log every socket connect/sendto to FILE and refuse any that is not loopback or a Unix socket.
``RESILIENCE_TRACE=FILE``
    Append one line per ingest step (embed, upsert, record update, delete, manifest write) to FILE,
    so a test that SIGKILLs the process knows which step it interrupted.
``RESILIENCE_SLOW_EMBED_S=SECONDS``
    Sleep this long in each embedding batch (makes the embedding window wide enough to hit).
``RESILIENCE_SLOW_ASK_S=SECONDS``
    Sleep this long at the start of every ``Assistant.ask`` whose question contains "[slow]" (holds
    answers so a test can fill the concurrency limit and the queue of a real server).
``RESILIENCE_CRASH_AT=STEP:N``
    SIGKILL this process right after the N-th ``STEP`` (embed, upsert, records, delete) or, for
    ``manifest:complete``, just before the final manifest is written: a kill at an exact point.
"""

from __future__ import annotations

import os


def _install_network_guard(log_path: str) -> None:
    import ipaddress
    import socket

    def loopback(address: object) -> bool:
        if isinstance(address, (str, bytes)):
            return True  # AF_UNIX
        host = address[0] if isinstance(address, tuple) else address
        if host in ("localhost", "", None):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    def guard(kind: str, address: object) -> None:
        ok = loopback(address)
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {kind} {address!r} {'allowed' if ok else 'REFUSED'}\n")
        if not ok:
            raise ConnectionRefusedError(f"resilience test: non-loopback {kind} to {address!r} refused")

    real_connect, real_connect_ex, real_sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto

    def connect(self: socket.socket, address: object) -> object:
        guard("connect", address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> object:
        guard("connect_ex", address)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: bytes, *args: object) -> object:
        guard("sendto", args[-1])
        return real_sendto(self, data, *args)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[method-assign]


def _install_ingest_hooks(trace: str | None, slow: float, crash: str | None) -> None:
    import signal
    import time

    step, _, nth = (crash or "").partition(":")
    counts: dict[str, int] = {}

    def event(name: str, detail: str = "") -> None:
        if trace:
            with open(trace, "a", encoding="utf-8") as fh:
                fh.write(f"{time.time():.3f} {name} {detail}\n")
                fh.flush()
                os.fsync(fh.fileno())

    def after(name: str) -> None:
        counts[name] = counts.get(name, 0) + 1
        event(f"{name}-done", str(counts[name]))
        if step == name and nth.isdigit() and counts[name] == int(nth):
            event("self-kill", f"after {name} #{counts[name]}")
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(cls: type, method: str, name: str, before_hook: bool = False) -> None:
        real = getattr(cls, method)

        def patched(self: object, *args: object, **kwargs: object) -> object:
            if before_hook:
                event(f"{name}-start", str(counts.get(name, 0) + 1))
                if slow:
                    time.sleep(slow)
            result = real(self, *args, **kwargs)
            after(name)
            return result

        setattr(cls, method, patched)

    from ingest import embedding

    wrap(embedding.HashEmbedder, "embed_documents", "embed", before_hook=True)
    from chromadb.api.models.Collection import Collection

    wrap(Collection, "upsert", "upsert")
    wrap(Collection, "delete", "delete")
    from langchain_classic.indexes import SQLRecordManager

    wrap(SQLRecordManager, "update", "records")
    from ingest import pipeline

    real_write = pipeline.write_manifest

    def write_manifest(index_dir: object, data: dict) -> None:
        state = data.get("state")
        if crash == f"manifest:{state}":
            event("self-kill", f"before manifest {state}")
            os.kill(os.getpid(), signal.SIGKILL)
        real_write(index_dir, data)  # type: ignore[arg-type]
        event("manifest", str(state))

    pipeline.write_manifest = write_manifest  # type: ignore[assignment]


if os.environ.get("RESILIENCE_NET_LOG"):
    _install_network_guard(os.environ["RESILIENCE_NET_LOG"])
if any(os.environ.get(k) for k in ("RESILIENCE_TRACE", "RESILIENCE_SLOW_EMBED_S", "RESILIENCE_CRASH_AT")):
    _install_ingest_hooks(os.environ.get("RESILIENCE_TRACE"), float(os.environ.get("RESILIENCE_SLOW_EMBED_S") or 0),
                          os.environ.get("RESILIENCE_CRASH_AT"))


def _install_slow_ask(seconds: float) -> None:
    import time

    from assistant.chat import Assistant

    real = Assistant.ask

    def ask(self: Assistant, question: str, *args: object, **kwargs: object) -> object:
        if isinstance(question, str) and "[slow]" in question:
            time.sleep(seconds)
        return real(self, question, *args, **kwargs)  # type: ignore[arg-type]

    Assistant.ask = ask  # type: ignore[assignment,method-assign]


if os.environ.get("RESILIENCE_SLOW_ASK_S"):
    _install_slow_ask(float(os.environ["RESILIENCE_SLOW_ASK_S"]))
