"""Take the UI screenshots in docs/screenshots/ (1280x900, headless Debian Chromium via Playwright).

    .venv/bin/python tests/ui/make_screenshots.py [--out docs/screenshots]

Uses the project index when it is built (``peer-assist ingest``); otherwise builds one in a
temporary folder first. Starts the app on a free loopback port, then writes:
first-visit.png, answered-with-sources.png and crisis.png.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
BOTS = "#chat [data-testid='bot']"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ask(page: Any, text: str) -> None:
    before = page.locator(BOTS).count()
    page.fill("#question textarea", text)
    page.press("#question textarea", "Enter")
    page.wait_for_function(
        """([sel, n]) => document.querySelectorAll(sel).length > n
             && !document.querySelector('#chat').innerText.includes('Searching the evidence')""",
        arg=[BOTS, before])
    page.wait_for_timeout(400)
    # show the question and the start of the reply, not its end (the chat autoscrolls to the bottom)
    page.locator("#chat [data-testid='user']").last.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.evaluate("document.querySelector('#chat [role=log]').scrollBy(0, -48)")
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 1

    from assistant.settings import Settings, enforce_offline

    enforce_offline()
    from playwright.sync_api import sync_playwright

    from assistant.chat import Assistant
    from assistant.ui.app import build_app
    from assistant.ui.serve import launch_app
    from ingest.pipeline import index_is_built, run_ingest

    tmp = Path(tempfile.mkdtemp(prefix="peer-assist-shots-"))
    settings = Settings(feedback_path=tmp / "feedback.jsonl")
    if not index_is_built(settings):
        print(f"No index in {settings.index.index_dir}: building one in {tmp} …")
        settings = Settings(index_dir=tmp / "index", feedback_path=tmp / "feedback.jsonl")
        run_ingest(settings)
    assistant = Assistant(settings)
    assistant.warm_up()
    demo = build_app(settings, assistant)
    _, url, _ = launch_app(demo, settings, host="127.0.0.1", port=_free_port(), prevent_thread_lock=True, quiet=True)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            shots = {
                "first-visit.png": None,
                "answered-with-sources.png": "Who should supervise peer workers?",
                "crisis.png": "My peer worker told me she wants to kill herself tonight",
            }
            for name, question in shots.items():
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.goto(url)
                page.wait_for_selector("#question textarea")
                page.wait_for_timeout(800)
                if question:
                    _ask(page, question)
                page.mouse.move(0, 0)
                path = args.out / name
                page.screenshot(path=str(path))
                print(f"wrote {path}")
                context.close()
            browser.close()
    finally:
        demo.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
