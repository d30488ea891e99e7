"""Per-client rate limit for ``/ask``, the chat and feedback: one token bucket per client address.

A bucket holds ``burst`` tokens and refills at ``per_minute / 60`` tokens a second; each request
takes one, and a request that finds the bucket empty is answered "too many requests" at once (no
answer is computed for it), so one client's flood cannot starve the others. Buckets live in memory
per process (each replica limits on its own) and the least recently seen are dropped past
``max_clients``, so memory stays bounded whoever calls.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class RateLimiter:
    """Token buckets keyed by client; thread-safe."""

    def __init__(self, per_minute: float, burst: int, *, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, last time)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self, key: str) -> bool:
        """Take a token for ``key``; False when its bucket is empty."""
        if not self.enabled:
            return True
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return allowed

    def retry_after_s(self) -> float:
        """Seconds until an empty bucket holds one token again."""
        return 1.0 / self.rate if self.rate > 0 else 0.0


def client_key(request: Any, trust_proxy_headers: bool = False) -> str:
    """The address a request comes from (a Gradio/Starlette request, or None for in-process calls).

    Behind a reverse proxy every request comes from the proxy, so with ``trust_proxy_headers`` the
    proxy's ``X-Real-IP`` is read, or else the last ``X-Forwarded-For`` hop (the one the proxy
    appended; earlier hops are whatever the client sent). Never trust them without such a proxy."""
    if request is None:
        return "in-process"
    headers = getattr(request, "headers", None) or {}
    if trust_proxy_headers:
        real = headers.get("x-real-ip")
        if real:
            return str(real).strip()
        forwarded = headers.get("x-forwarded-for")
        if forwarded:
            return str(forwarded).split(",")[-1].strip()
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    return str(host) if host else "unknown"
