"""Safe YAML for cards and data files: no anchors or aliases, no duplicate keys, no objects."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_BaseLoader):
    """Safe YAML (the C parser when available) that also refuses duplicate keys."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise yaml.YAMLError(f"a field name must be plain text (line {key_node.start_mark.line + 1})")
            if key in seen:
                raise yaml.YAMLError(f"duplicate key '{key}' (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def safe_yaml(text: str) -> Any:
    """Parse YAML safely: no anchors or aliases (no "billion laughs"), no duplicate keys, no objects."""
    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, yaml.AliasEvent):
            raise yaml.YAMLError(f"YAML aliases are not allowed (line {event.start_mark.line + 1})")
        if getattr(event, "anchor", None):
            raise yaml.YAMLError(f"YAML anchors are not allowed (line {event.start_mark.line + 1})")
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a safe loader subclass


def load_data_file(path: Path, model: type[M]) -> M:
    """A data file beside the taxonomy (``corpus/<name>.yaml``) read with :func:`safe_yaml` and checked
    against a pydantic ``model``; raises CorpusError naming the file, each bad entry and the fix."""
    from pydantic import ValidationError

    from ingest.errors import CorpusError, Problem

    try:
        data = safe_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpusError([Problem(str(path), path.name, "the file is missing",
                                   f"restore corpus/{path.name} from the repository")]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CorpusError([Problem(path.name, path.name, f"cannot be read: {exc}", "make it valid UTF-8 YAML")]) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CorpusError([Problem(path.name, ".".join(str(p) for p in err["loc"]) or path.name, err["msg"],
                                   f"fix the entry in corpus/{path.name}") for err in exc.errors()]) from None
