"""Sentence embeddings: a thin wrapper over sentence-transformers with the packaged all-MiniLM-L6-v2.

The model loads on the first `embed` call and is shared by every Embedder in the process with the
same folder and device, so the UI, the API and the tests pay the load once.

    >>> Embedder().embed(["When are you open?"]).shape   # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path

import numpy as np

from kb.models import default_device, embedder_path
from kb.settings import Settings

BATCH_SIZE = 64  # measured ~90 short sentences/s on 2 cores at 64; larger batches gain nothing on CPU

_models: dict[tuple[str, str], object] = {}  # (model folder, device) -> SentenceTransformer
_load_lock = threading.Lock()



@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX): there all-mpnet-base-v2
    embedded passages 1.9x faster under torch's bfloat16 autocast than in float32, each vector's
    cosines within 0.003 of float32's (bench/retrieval.py --precision)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: float32, as before
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class Embedder:
    """Normalized float32 vectors for texts; inner product of two vectors is their cosine."""

    def __init__(self, settings: Settings | None = None, device: str | None = None):
        self.settings = settings or Settings()
        self._device = device
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        # Resolved lazily too: a missing package raises ModelMissing on first use, not at import.
        if self._path is None:
            self._path = embedder_path(self.settings.models.embedder)
        return self._path

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = default_device()
        return self._device

    @functools.cached_property
    def fingerprint(self) -> str:
        """Names the model's weights, so a saved index can tell it was built by another model.
        Built from the folder name, its config and its weight file sizes, not the absolute path,
        so a knowledge base copied to another machine keeps its vectors. Computed once: every
        sync asks for it."""
        h = hashlib.sha256(self.path.name.encode())
        for name in ("config.json", "modules.json", "sentence_bert_config.json"):
            file = self.path / name
            if file.is_file():
                h.update(file.read_bytes())
        for file in sorted(self.path.rglob("*")):
            if file.suffix in (".safetensors", ".bin"):
                h.update(f"{file.relative_to(self.path)}:{file.stat().st_size}".encode())
        return h.hexdigest()[:16]

    @property
    def model(self):
        key = (str(self.path), self.device)
        model = _models.get(key)
        if model is None:
            with _load_lock:
                model = _models.get(key)
                if model is None:
                    from sentence_transformers import SentenceTransformer

                    model = _models[key] = SentenceTransformer(str(self.path), device=self.device)
        return model

    @property
    def dim(self) -> int:
        model = self.model
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    @property
    def bf16(self) -> bool:
        """Whether the model's matrix products run in bfloat16: the fast_search setting, on a CPU
        that has bfloat16 instructions (elsewhere they would be emulated, and slower)."""
        return self.settings.models.fast_search and self.device == "cpu" and cpu_has_bf16()

    def embed(self, texts: list[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
        """An (n, dim) float32 array of unit vectors, one row per text, in order."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            vectors = self.model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
