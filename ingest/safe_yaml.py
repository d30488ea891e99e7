"""Safe YAML for cards and data files: no anchors or aliases, no duplicate keys, no objects."""

from __future__ import annotations

from typing import Any

import yaml

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
