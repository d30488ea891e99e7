"""The layers point one way. Every import is walked (module level and inside functions):

- ``ingest/`` never imports ``assistant/`` or ``evals/``;
- ``assistant/`` never imports ``evals/``, except the CLI;
- ``evals/`` never imports the CLI or the UI.
"""

from __future__ import annotations

import ast
from pathlib import Path

from assistant.settings import PROJECT_ROOT

RULES = {
    "ingest": ("assistant", "evals"),
    "assistant": ("evals",),
    "evals": ("assistant.cli", "assistant.app", "assistant.ui"),
}
ALLOWED = {("assistant.cli", "evals")}


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, anywhere in it (a function-local import counts the same)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def wrong_way_arrows(root: Path) -> list[str]:
    found = []
    for layer, banned in RULES.items():
        for path in sorted((root / layer).rglob("*.py")):
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            for lineno, target in imports(path):
                for ban in banned:
                    if (target == ban or target.startswith(ban + ".")) and not any(
                            module.startswith(m) and target.startswith(t) for m, t in ALLOWED):
                        found.append(f"{path.relative_to(root)}:{lineno} {module} -> {target}")
    return found


def test_layers_point_one_way() -> None:
    assert wrong_way_arrows(PROJECT_ROOT) == []


def test_the_walker_sees_function_local_imports(tmp_path: Path) -> None:
    (tmp_path / "ingest").mkdir()
    (tmp_path / "ingest" / "bad.py").write_text("def f():\n    from assistant.settings import Settings\n")
    for layer in ("assistant", "evals"):
        (tmp_path / layer).mkdir()
    assert wrong_way_arrows(tmp_path) == ["ingest/bad.py:2 ingest.bad -> assistant.settings"]
