"""The vocabularies as data (ingest/vocabulary.py): every pattern must compile and must not fire on
everything; a bad file is a CorpusError naming the entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.errors import CorpusError
from ingest.safe_yaml import safe_yaml
from ingest.vocabulary import load_vocabulary
from tests.conftest import CORPUS


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "vocabulary.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_the_shipped_vocabulary_loads() -> None:
    vocab = load_vocabulary(CORPUS / "vocabulary.yaml")
    assert vocab.cues.enumerate and vocab.scope.out_of_scope
    assert vocab.expand_query("nothing to expand here") == "nothing to expand here"


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    node: Any = data
    for key in path:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(last) if isinstance(node, list) else last] = value


@pytest.mark.parametrize("where, pattern, says", [
    ("cues.asks_findings", "(unclosed", "not a valid regular expression"),
    ("scope.anchor", "[a-", "not a valid regular expression"),
    ("followup.pronoun", "(them)?", "matches an empty string"),
    ("cues.enumerate.0", "x*", "matches an empty string"),  # reported as [cues.enumerate] with the pattern
    ("scope.out_of_scope.0.pattern", ".", "matches an empty string"),  # fires on any text at all
])
def test_bad_or_match_everything_patterns_are_corpus_errors(tmp_path: Path, where: str, pattern: str, says: str) -> None:
    data = safe_yaml((CORPUS / "vocabulary.yaml").read_text(encoding="utf-8"))
    _set(data, where, pattern)
    with pytest.raises(CorpusError) as err:
        load_vocabulary(write(tmp_path, data))
    problems = [str(p) for p in err.value.problems]
    assert len(problems) == 1 and says in problems[0] and pattern in problems[0], problems
    assert f"[{where.removesuffix('.0')}]" in problems[0], problems


def test_a_missing_or_unreadable_file_is_a_corpus_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="problem"):
        load_vocabulary(tmp_path / "vocabulary.yaml")
    (tmp_path / "vocabulary.yaml").write_text("a: [unclosed", encoding="utf-8")
    with pytest.raises(CorpusError) as err:
        load_vocabulary(tmp_path / "vocabulary.yaml")
    assert "cannot be read" in str(err.value.problems[0])
