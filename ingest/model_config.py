"""Which sentence-transformers models the NumPy and ONNX question encoders run, read from the model's
files alone (no NumPy import, so an unchanged ``peer-assist ingest`` can check its ONNX export cheaply)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SUPPORTED_MODULES = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
                     "sentence_transformers.models.Normalize"]


class UnsupportedModel(Exception):
    """The model directory is not a plain BERT + mean pooling + normalise sentence-transformers model."""


def supported_config(model_dir: Path) -> tuple[dict[str, Any], int]:
    """The model's ``config.json`` and maximum sequence length; raises UnsupportedModel unless the
    model is BertModel → mean pooling → L2 normalisation with exact GELU."""
    model_dir = Path(model_dir)
    modules = json.loads((model_dir / "modules.json").read_text())
    if [m.get("type") for m in modules] != SUPPORTED_MODULES:
        raise UnsupportedModel(f"unsupported module stack: {[m.get('type') for m in modules]}")
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens") or any(
            pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens")):
        raise UnsupportedModel("only mean pooling is supported")
    config: dict[str, Any] = json.loads((model_dir / "config.json").read_text())
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise UnsupportedModel("only BERT models with exact GELU are supported")
    st_config = json.loads((model_dir / "sentence_bert_config.json").read_text())
    return config, int(st_config.get("max_seq_length", 256))
