"""A NumPy forward pass for the BERT-style sentence-transformers model, used to embed questions
when there is no ONNX export of the model (ingest/onnx_encoder.py, the default encoder) or it cannot run.

Why: importing sentence-transformers (and with it torch, transformers and scikit-learn) takes
about 7 s on the 2-core machines, which alone would break the <= 8 s budget for a cold
``peer-assist ask``. A question is a few dozen tokens, so the same weights run through NumPy in
milliseconds after a ~0.5 s start. The vectors match sentence-transformers: tests/ingest/test_minilm.py
checks a cosine of at least 0.99999 on 200 card sentences (measured: the lowest is 1 - 1e-12, the
largest difference in any component 2e-7); ingest still embeds passages with sentence-transformers.

It supports exactly what the shipped model's ``modules.json`` declares: BertModel →
mean pooling → L2 normalisation. Anything else raises, and the caller falls back to
sentence-transformers.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ingest.model_config import SUPPORTED_MODULES, UnsupportedModel, supported_config

__all__ = ["SUPPORTED_MODULES", "NumpyMiniLM", "UnsupportedModel"]


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class NumpyMiniLM:
    """Encode text with a BERT sentence-transformers model using NumPy only."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = Path(model_dir)
        self.config, self.max_len = supported_config(self.model_dir)
        self._weights: dict[str, np.ndarray] | None = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[dict[str, np.ndarray], Any]:
        if self._weights is None:
            with self._lock:
                if self._weights is None:
                    from safetensors.numpy import load_file
                    from tokenizers import Tokenizer

                    tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
                    tok.enable_truncation(max_length=self.max_len)
                    tok.no_padding()
                    self._tokenizer = tok
                    self._weights = load_file(str(self.model_dir / "model.safetensors"))
        assert self._weights is not None
        return self._weights, self._tokenizer

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised sentence embeddings, shape (len(texts), hidden)."""
        from threadpoolctl import threadpool_limits

        w, tok = self._load()
        out = np.zeros((len(texts), int(self.config["hidden_size"])), dtype=np.float32)
        # The matrices of one question are tiny: a single BLAS thread is fastest, and it keeps a
        # busy machine (another process on the other core) from slowing every product down ~100x.
        with threadpool_limits(limits=1, user_api="blas"):
            for i, enc in enumerate(tok.encode_batch(list(texts))):
                out[i] = self._forward(w, np.asarray(enc.ids, dtype=np.int64))
        return out

    def _forward(self, w: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
        from scipy.special import erf

        cfg = self.config
        eps = float(cfg.get("layer_norm_eps", 1e-12))
        heads = int(cfg["num_attention_heads"])
        hidden = int(cfg["hidden_size"])
        dh = hidden // heads
        n = len(ids)
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        scale = 1.0 / math.sqrt(dh)
        for i in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{i}."

            def lin(name: str, h: np.ndarray) -> np.ndarray:
                return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]  # noqa: B023

            q = lin("attention.self.query", x).reshape(n, heads, dh).transpose(1, 0, 2)
            k = lin("attention.self.key", x).reshape(n, heads, dh).transpose(1, 0, 2)
            v = lin("attention.self.value", x).reshape(n, heads, dh).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) * scale
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(1, 0, 2).reshape(n, hidden)
            x = _layer_norm(x + lin("attention.output.dense", ctx), w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], eps)
            h = lin("intermediate.dense", x)
            h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
            x = _layer_norm(x + lin("output.dense", h), w[p + "output.LayerNorm.weight"],
                            w[p + "output.LayerNorm.bias"], eps)
        pooled = x.mean(0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
