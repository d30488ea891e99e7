"""``POST /api/ask``: the answer contract as plain HTTP JSON, served by ``peer-assist serve`` beside the page.

Gradio's ``/gradio_api/call/ask`` takes two requests (the call, then its event stream) and its queue,
session and event machinery cost the server about 17 ms of CPU per request, more than the answer
itself (about 7 ms). This route answers in one request/response and keeps the same safety, in this
order, each refusal answered at once as JSON ``{"error": code, "detail": sentence}``:

1. **login** (401, ``WWW-Authenticate: Basic``): when ``auth_user``/``auth_password`` are set, HTTP
   Basic with those credentials or the login cookie of Gradio's own ``/login`` is required; a failed
   attempt takes a rate-limit token (429 once they are spent), so passwords cannot be guessed fast;
2. **media type and size** (415, 413): a JSON body of at most ``MAX_BODY_BYTES`` (a browser form on
   another site cannot send ``application/json`` without a CORS preflight, which Gradio refuses);
3. **shape** (400): a JSON object with ``question``, optional ``history`` and ``theme``;
4. **rate limit** (429 with ``Retry-After``): the same per-client token buckets as ``/ask``, the chat
   and feedback (one ``RateLimiter``, so they count together); then the question's own checks (400:
   text, not empty, at most ``max_question_chars``; the same checks and sentences as ``/ask``);
5. **admission** (503 with ``Retry-After``): at most ``concurrency_limit`` answers of this route are
   computed at once and at most ``queue_max_size`` more wait; past that the request is refused at once;
6. **answer**: ``Assistant.ask`` (thread-safe; each request reads one index generation, so a live
   reindex switches between requests) in a worker thread, or in an answer worker process with
   ``answer_workers`` (``PooledAssistant``). A bad theme is 400, an unavailable index or store 503,
   anything else 500 with a sentence (the traceback goes to the log only).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from assistant.ui import texts
from assistant.ui.handlers import RequestError, api_answer, api_check

if TYPE_CHECKING:  # pragma: no cover
    from starlette.requests import Request
    from starlette.responses import Response

    from assistant.ui.handlers import PageContext

#: The route's path (Gradio's own routes live under /gradio_api/, so nothing else is there).
PATH = "/api/ask"
#: Largest request body accepted: a 2,000-character question and a history of earlier questions fit
#: many times over (docs/OPERATIONS.md's nginx example caps bodies at 64k too).
MAX_BODY_BYTES = 64_000
#: Seconds a client told "busy" is asked to wait.
BUSY_RETRY_S = 2
UNAUTHORIZED = "Sign in first: send the user name and password (HTTP Basic) or the cookie of /login."
BAD_MEDIA = 'Send the question as JSON: Content-Type: application/json, {"question": "..."}.'
TOO_BIG = f"The request is larger than {MAX_BODY_BYTES:,} bytes; ask one short question at a time."
BAD_JSON = 'The body must be a JSON object such as {"question": "Who should supervise peer workers?"}.'


class Admission:
    """Requests in this route: at most ``running + waiting`` at once; thread-safe counters."""

    def __init__(self, running: int, waiting: int) -> None:
        if running < 1 or waiting < 0:
            raise ValueError(f"running must be >= 1 and waiting >= 0, not {running} and {waiting}")
        self.running, self.capacity = running, running + waiting
        self._in = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in

    def enter(self) -> bool:
        """Admit one request (False: the route is full, refuse it)."""
        with self._lock:
            if self._in >= self.capacity:
                return False
            self._in += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._in = max(0, self._in - 1)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an ``Authorization: Basic ...`` header; None for anything else."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two strings."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def authorized(request: Any, login: tuple[str, str] | None) -> bool:
    """True when no login is configured, or the request carries the right HTTP Basic credentials or the
    login cookie that Gradio's ``/login`` set (looked up in that Gradio app's sessions)."""
    if login is None:
        return True
    sent = basic_credentials(request.headers.get("authorization"))
    if sent is not None:
        return same(sent[0], login[0]) & same(sent[1], login[1])
    app = request.scope.get("app")
    tokens, cookie_id = getattr(app, "tokens", None), getattr(app, "cookie_id", None)
    if not isinstance(tokens, dict) or not cookie_id:
        return False
    token = (request.cookies.get(f"access-token-{cookie_id}")
             or request.cookies.get(f"access-token-unsecure-{cookie_id}"))
    return bool(token) and tokens.get(token) == login[0]


def parse_body(body: bytes) -> tuple[Any, Any, Any]:
    """(question, history, theme) of a request body; RequestError (400) when it is not a JSON object."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RequestError(BAD_JSON) from None
    if not isinstance(data, dict) or "question" not in data:
        raise RequestError(BAD_JSON)
    theme = data.get("theme")
    if theme is not None and not isinstance(theme, str):
        raise RequestError("theme must be a theme id (text), \"all\" or null.")
    return data["question"], data.get("history"), theme


def _dumps(value: Any) -> bytes:
    try:
        import orjson  # Gradio's own JSON encoder: the same bytes as /ask, and fast

        return bytes(orjson.dumps(value))
    except ImportError:  # pragma: no cover - orjson comes with Gradio
        return json.dumps(value, ensure_ascii=False).encode("utf-8")


def refusal(status: int, code: str, detail: str, retry_after_s: float | None = None,
            headers: dict[str, str] | None = None) -> Response:
    from starlette.responses import Response

    out = dict(headers or {})
    if retry_after_s is not None:
        out["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return Response(_dumps({"error": code, "detail": detail}), status_code=status,
                    media_type="application/json", headers=out)


CODES = {400: "invalid_request", 429: "too_many_requests", 500: "internal_error", 503: "unavailable"}


async def _read_body(request: Request) -> bytes | None:
    """The body, or None once it is longer than MAX_BODY_BYTES (read no further)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def ask_endpoint(ctx: PageContext, login: tuple[str, str] | None) -> Callable[[Request], Awaitable[Response]]:
    """The ``POST /api/ask`` handler over the page's context (its assistant, settings and rate limiter)."""
    ui = ctx.settings.ui
    admission = Admission(ui.concurrency_limit, ui.queue_max_size)
    limiter: list[Any] = []  # anyio's CapacityLimiter, made in the server's event loop on first use

    async def ask(request: Request) -> Response:
        import anyio.to_thread
        from starlette.responses import Response

        if not authorized(request, login):
            guessing = ctx.too_many(request)  # failed logins take rate-limit tokens: no fast password guessing
            if guessing:
                return refusal(429, "too_many_requests", guessing, max(1.0, ctx.limiter.retry_after_s()))
            return refusal(401, "unauthorized", UNAUTHORIZED, headers={"WWW-Authenticate": f'Basic realm="{texts.TITLE}"'})
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            return refusal(415, "unsupported_media_type", BAD_MEDIA)
        body = await _read_body(request)
        if body is None:
            return refusal(413, "too_large", TOO_BIG)
        try:
            question, history, theme = parse_body(body)
            api_check(ctx, question, history, request)  # rate limit, then the question's own checks
        except RequestError as exc:
            return refusal(exc.status, CODES.get(exc.status, "error"), str(exc), exc.retry_after_s)
        if not admission.enter():
            return refusal(503, "busy", texts.BUSY, BUSY_RETRY_S)
        try:
            if not limiter:
                limiter.append(anyio.CapacityLimiter(admission.running))
            data = await anyio.to_thread.run_sync(api_answer, ctx, question, history, theme, limiter=limiter[0])
        except RequestError as exc:
            return refusal(exc.status, CODES.get(exc.status, "error"), str(exc), exc.retry_after_s)
        finally:
            admission.leave()
        return Response(_dumps(data), media_type="application/json")

    ask.admission = admission  # type: ignore[attr-defined]  # for tests and the bench's figures
    return ask


def routes(ctx: PageContext, login: tuple[str, str] | None) -> list[Any]:
    """Starlette routes to put in front of Gradio's (``launch(app_kwargs={"routes": ...})``)."""
    from starlette.routing import Route

    return [Route(PATH, ask_endpoint(ctx, login), methods=["POST"], name="api_ask")]
