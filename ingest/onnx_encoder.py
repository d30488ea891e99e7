"""The question encoder in ONNX Runtime: the packaged MiniLM weights exported once, offline, at ingest.

Why: a MiniLM question costs about 0.4 GFLOP; the NumPy forward pass (ingest/minilm.py) takes about
30 ms of it, ONNX Runtime with one intra-op thread runs the same graph closer to the machine's
limit (figures: ``peer-assist bench``, query embedding). The export needs torch, which ingest
loads anyway to embed passages; answering needs only onnxruntime and tokenizers. When the export or
the runtime fails, the caller falls back to the NumPy encoder (tests/ingest/test_onnx_encoder.py).

The exported graph is BertModel → mean pooling over the attention mask → L2 normalisation, exactly
the module stack NumpyMiniLM accepts; parity with sentence-transformers is checked on 200 card
sentences (cosine >= 0.9999, integration tier).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.model_config import supported_config

if TYPE_CHECKING:  # pragma: no cover - NumPy loads when a question is encoded
    import numpy as np

log = logging.getLogger(__name__)

ENCODERS = "encoders"
OPSET = 17


class OnnxUnavailable(Exception):
    """The ONNX encoder cannot be exported or run here (the NumPy encoder is used instead)."""


def encoder_path(encoder_dir: Path, model_dir: Path) -> Path:
    """Where the export of ``model_dir`` lives: keyed by the weights' size and mtime and the config,
    so a changed model package gets a new export and never a stale one."""
    weights = Path(model_dir) / "model.safetensors"
    st = weights.stat()
    config = (Path(model_dir) / "config.json").read_text(encoding="utf-8")
    key = hashlib.sha256(json.dumps([str(Path(model_dir).name), st.st_size, st.st_mtime_ns, config, OPSET])
                         .encode()).hexdigest()[:12]
    return Path(encoder_dir) / f"minilm-{key}.onnx"


def optimised_path(onnx_path: Path) -> Path:
    return Path(onnx_path).with_suffix(".opt.onnx")


def _onnxruntime() -> Any:
    """onnxruntime with its telemetry off: from 1.32 the Linux build has Microsoft's 1DS telemetry,
    and a session start was seen looking up its host during ingest (the no-network test's strace)."""
    import onnxruntime as ort

    ort.disable_telemetry_events()
    return ort


def _session_options(level: Any) -> Any:
    ort = _onnxruntime()
    opts = ort.SessionOptions()
    # One question is a tiny graph: one thread is fastest and leaves the other core to the next request.
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.graph_optimization_level = level
    return opts


def _optimise(source: Path, target: Path) -> None:
    """Save the graph after ONNX Runtime's portable (extended) optimisations, so a reader's session
    starts without redoing them (about half the session start-up)."""
    ort = _onnxruntime()

    opts = _session_options(ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
    tmp = target.with_suffix(".tmp")
    opts.optimized_model_filepath = str(tmp)
    ort.InferenceSession(str(source), sess_options=opts, providers=["CPUExecutionProvider"])
    os.replace(tmp, target)


def export(model_dir: Path, encoder_dir: Path) -> Path:
    """Export the model to ONNX (atomic: temp file, then rename); returns the path. Raises
    OnnxUnavailable when the model is not the supported stack or the export fails."""
    try:
        supported_config(model_dir)  # NumpyMiniLM's checks: BERT + mean pooling + normalise, nothing else
        target = encoder_path(encoder_dir, model_dir)
    except Exception as exc:
        raise OnnxUnavailable(f"cannot export {model_dir}: {exc}") from exc
    if target.is_file():
        return target
    try:
        import torch
        from transformers import AutoModel

        class Encoder(torch.nn.Module):
            def __init__(self, bert: Any) -> None:
                super().__init__()
                self.bert = bert

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                                   token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

        bert = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager")
        module = Encoder(bert).eval()
        ids = torch.ones((1, 8), dtype=torch.int64)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
        os.close(fd)
        try:
            with torch.no_grad():
                torch.onnx.export(module, (ids, torch.ones_like(ids)), tmp, input_names=["input_ids", "attention_mask"],
                                  output_names=["embedding"], opset_version=OPSET, dynamo=False,
                                  dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                                "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}})
            _optimise(Path(tmp), optimised_path(target))
            os.chmod(tmp, 0o644)  # mkstemp makes it private; readers may run as another user
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except Exception as exc:
        raise OnnxUnavailable(f"ONNX export of {model_dir} failed: {exc}") from exc
    log.info("exported the question encoder to %s", target)
    return target


class OnnxMiniLM:
    """Encode questions with the exported graph in ONNX Runtime (one intra-op thread)."""

    def __init__(self, model_dir: Path, onnx_path: Path) -> None:
        if not Path(onnx_path).is_file():
            raise OnnxUnavailable(f"no exported encoder at {onnx_path}")
        self.model_dir = Path(model_dir)
        self.onnx_path = Path(onnx_path)
        st_config = json.loads((self.model_dir / "sentence_bert_config.json").read_text())
        self.max_len = int(st_config.get("max_seq_length", 256))
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    try:
                        from tokenizers import Tokenizer

                        ort = _onnxruntime()

                        tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
                        tok.enable_truncation(max_length=self.max_len)
                        tok.no_padding()
                        optimised = optimised_path(self.onnx_path)
                        if optimised.is_file():  # already optimised at export: load it as it is
                            path, level = optimised, ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                        else:
                            path, level = self.onnx_path, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
                        session = ort.InferenceSession(str(path), sess_options=_session_options(level),
                                                       providers=["CPUExecutionProvider"])
                    except Exception as exc:
                        raise OnnxUnavailable(f"cannot run {self.onnx_path}: {exc}") from exc
                    self._tokenizer = tok
                    self._session = session
        return self._session, self._tokenizer

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised sentence embeddings, one text at a time (no padding: exact mean pooling)."""
        import numpy as np

        session, tok = self._load()
        rows = []
        for enc in tok.encode_batch(list(texts)):
            ids = np.asarray([enc.ids], dtype=np.int64)
            (vec,) = session.run(["embedding"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})
            rows.append(vec[0])
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)
