"""Child process of the load test: the chat UI from ``assistant.app.build_app(settings)`` on 127.0.0.1.

Usage: ``python -m tests.resilience.serve_app PORT`` with the PEER_ASSIST_* settings in the
environment. Warms the assistant up (model, passages and one answer, so lazily loaded parts are
ready before anything is measured), prints ``READY <url>`` and serves until SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading


def main(port: int) -> int:
    from assistant.app import build_app, launch_app
    from assistant.chat import Assistant
    from assistant.settings import Settings

    settings = Settings()
    assistant = Assistant(settings)
    assistant.warm_up()
    assistant.ask("Who should supervise peer workers?")
    demo = build_app(settings, assistant)
    _, url, _ = launch_app(demo, settings, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"READY {url}", flush=True)
    stop.wait()
    demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
