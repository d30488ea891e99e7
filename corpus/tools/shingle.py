"""Write the 10-word shingle hashes of a source text for the own-words check.

Usage: python corpus/tools/shingle.py SOURCE_TEXT_FILE CARD_ID [--append]

SOURCE_TEXT_FILE is a plain-text copy of what you read for the card (abstract, summary page, guide
text). It is never committed; only the hashes are. The output, corpus/source_shingles/<CARD_ID>.txt,
holds one line per distinct 10-word window: the first 16 hex characters of its sha256, where words
are ``re.findall(r"[a-z]+", text.lower())`` joined by single spaces. tests/corpus/test_corpus.py
hashes every card's windows the same way and fails on any overlap (words in the card's title
excepted). With --append the new hashes are merged into an existing file (several sources, one card).
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

N = 10
HEX_CHARS = 16
OUT_DIR = Path(__file__).resolve().parent.parent / "source_shingles"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def shingle_hashes(text: str, n: int = N) -> set[str]:
    """The truncated sha256 of every n-word window of ``text``."""
    w = words(text)
    return {hashlib.sha256(" ".join(w[i:i + n]).encode("utf-8")).hexdigest()[:HEX_CHARS]
            for i in range(len(w) - n + 1)}


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    source, card_id = Path(args[0]), args[1]
    if not re.fullmatch(r"[a-z]+(?:-[a-z]+)*-\d{4}[a-z]?", card_id):
        print(f"'{card_id}' is not a card id (e.g. gates-2007)", file=sys.stderr)
        return 2
    hashes = shingle_hashes(source.read_text(encoding="utf-8"))
    out = OUT_DIR / f"{card_id}.txt"
    if "--append" in argv and out.exists():
        hashes |= {line.strip() for line in out.read_text(encoding="utf-8").splitlines() if line.strip()}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{h}\n" for h in sorted(hashes)), encoding="utf-8")
    print(f"{out}: {len(hashes)} shingles")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
