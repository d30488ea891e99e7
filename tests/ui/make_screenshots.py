"""Take the UI screenshots in docs/screenshots/ (1280x900, headless Debian Chromium via Playwright).

    .venv/bin/python tests/ui/make_screenshots.py [--out docs/screenshots]

Uses the project index when it is built (``peer-assist ingest``); otherwise builds one in a
temporary folder first. Starts the app on a free loopback port, then writes:
first-visit.png, answered-with-sources.png and crisis.png; the evidence map tab: map-by-kind.png (the
default columns), map-by-country.png, map-cell-selected.png (a cell chosen, its cards listed); and the
map exported by ``peer-assist map`` (evidence-map-kind-export.png). ``--only map`` skips the chat shots.
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
    parser.add_argument("--only", choices=("chat", "map"), help="take only the chat or only the map shots")
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
            for name, question in shots.items() if args.only != "map" else ():
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
            if args.only != "chat":
                _map_shots(browser, url, args.out)
            browser.close()
        if args.only != "chat":
            from assistant.evidence_map import build_map, write_png

            corpus = assistant.corpus
            path = write_png(build_map(corpus.cards, corpus.taxonomy, "kind"), args.out / "evidence-map-kind-export.png")
            print(f"wrote {path}")
    finally:
        demo.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _map_shots(browser: Any, url: str, out: Path) -> None:
    """The evidence map tab: default columns, by country (whole page), a chosen cell with its cards."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#question textarea")
    page.get_by_role("tab", name="Evidence map").click()
    page.wait_for_selector("#evidence-map-table td[data-count]")
    page.wait_for_timeout(500)
    page.mouse.move(0, 0)
    page.screenshot(path=str(out / "map-by-kind.png"), full_page=True)
    print(f"wrote {out / 'map-by-kind.png'}")
    page.locator("#map-by").get_by_text("Country").click()
    page.wait_for_selector("#evidence-map-table th[data-col='Norway']")
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "map-by-country.png"), full_page=True)
    print(f"wrote {out / 'map-by-country.png'}")
    page.locator("#map-by").get_by_text("Kind of evidence").click()
    page.wait_for_selector("#evidence-map-table th[data-col='guidance']")
    label = "Supervision that understands the peer role × study"
    page.click("#map-cell input")
    page.fill("#map-cell input", label)
    page.locator("#map-cell [role=option]").filter(has_text=label).first.click()
    page.wait_for_selector("#map-cards li")
    page.wait_for_timeout(500)
    page.locator("#map-by").evaluate("e => e.scrollIntoView({block: 'start'})")
    page.mouse.move(0, 0)
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "map-cell-selected.png"))
    print(f"wrote {out / 'map-cell-selected.png'}")
    context.close()


if __name__ == "__main__":
    sys.exit(main())
