"""``peer-assist serve``: build the index when there is none, warm the assistant up, launch the page."""

from __future__ import annotations

import ipaddress
import signal
import sys
from typing import TYPE_CHECKING, Any

from assistant.errors import ExposureError
from assistant.settings import Settings, enforce_offline, get_settings
from assistant.ui import http_api
from assistant.ui.app import CSS, app_theme, build_app, page_context
from assistant.ui.texts import TITLE
from ingest import pipeline

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr


def launch_app(demo: gr.Blocks, settings: Settings, *, port: int | None = None, host: str | None = None,
               prevent_thread_lock: bool = False, quiet: bool = False) -> tuple[Any, str, str]:
    """Launch ``demo`` locally: auth when configured, no share link, no server-side rendering, no analytics.
    An app from ``build_app`` also gets ``POST /api/ask`` (``assistant.ui.http_api``), in front of
    Gradio's own routes and under the same login."""
    auth = None
    if has_login(settings) and settings.ui.auth_user and settings.ui.auth_password is not None:
        auth = (settings.ui.auth_user, settings.ui.auth_password.get_secret_value())
    ctx = page_context(demo)
    app_kwargs = {"routes": http_api.routes(ctx, auth)} if ctx is not None else None
    return demo.launch(
        server_name=host or settings.ui.host, server_port=settings.ui.port if port is None else port,
        app_kwargs=app_kwargs,
        auth=auth, auth_message=f"Sign in to the {TITLE}." if auth else None,
        share=False, inbrowser=False, show_error=False, quiet=quiet, prevent_thread_lock=prevent_thread_lock,
        ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False, footer_links=["api"],
        theme=app_theme(), css=CSS,
    )


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def has_login(settings: Settings) -> bool:
    return bool(settings.ui.auth_user and settings.ui.auth_password is not None
                and settings.ui.auth_password.get_secret_value())


def check_exposure(settings: Settings) -> None:
    """Refuse to listen beyond this machine with no login, unless the operator said so (``--allow-no-login``)."""
    host = settings.ui.host
    if is_loopback(host) or has_login(settings):
        return
    if settings.ui.allow_no_login:
        print(f"Warning: serving {host} with no login (--allow-no-login): anyone who can reach it can ask and "
              "leave feedback.", file=sys.stderr, flush=True)
        return
    raise ExposureError(f"Refusing to serve on {host} with no login: anyone who can reach that address could use "
                        "the assistant and write to its feedback log.")


def serve(settings: Settings | None = None) -> None:
    """``peer-assist serve``: check exposure, build the index if needed, warm up, launch, print the URL, block."""
    enforce_offline()
    settings = settings or get_settings()
    check_exposure(settings)  # before anything loads
    from assistant.chat import Assistant

    if not pipeline.index_is_built(settings) and not is_replica(settings):
        build_index(settings)
    print("Loading the embedding model and the passages…", flush=True)
    assistant: Any = Assistant(settings)
    if settings.ui.answer_workers > 0:
        from assistant.ui.workers import PooledAssistant

        print(f"Starting {settings.ui.answer_workers} answer worker process(es)…", flush=True)
        assistant = PooledAssistant(settings, assistant, settings.ui.answer_workers)
    assistant.warm_up()
    demo = build_app(settings, assistant)
    _, local_url, _ = launch_app(demo, settings, prevent_thread_lock=True, quiet=True)
    login = " (login required)" if has_login(settings) else ""
    print(f"{TITLE} is running at {local_url}{login}", flush=True)
    print("Press Ctrl+C to stop.", flush=True)
    _stop_on_sigterm()
    try:
        demo.block_thread()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        pass
    finally:
        demo.close()
        if hasattr(assistant, "close"):
            assistant.close()
        print("Stopped.", file=sys.stderr)


def is_replica(settings: Settings) -> bool:
    """In server mode, a ``serve`` with no local index answers from the collection another process
    indexed (a replica): it must not build one of its own. True when the server's collection has a
    generation."""
    if not settings.index.chroma_host:
        return False
    from assistant.generations import read_generation
    from ingest.store import EvidenceStore

    return read_generation(settings.index, EvidenceStore(settings.index)) is not None


def build_index(settings: Settings) -> None:
    """The first run: index the corpus, printing progress about ten times and a short summary."""

    print(f"No index in {settings.index.index_dir} yet: building it from {settings.index.corpus_dir} "
          "(first run only)…", flush=True)
    step = {"next": 0}

    def progress(done: int, total: int) -> None:
        if total and (done >= step["next"] or done == total):
            print(f"  embedded {done}/{total} passages", flush=True)
            step["next"] = done + max(1, total // 10)

    report = pipeline.run_ingest(settings, progress=progress)
    summary = [line for line in report.summary().splitlines()
               if not line.startswith(("  added:", "  updated:", "  deleted:"))]  # no list of 50 card ids
    print("\n".join(summary), flush=True)


def _stop_on_sigterm() -> None:
    """Let `kill`, systemd or docker stop the server as cleanly as Ctrl+C does."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave the default
        pass
