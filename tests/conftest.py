import hashlib
import importlib.util
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from careerbot.config import Settings
from careerbot.embedding import OnnxEmbedder, Text, Vectors, Within
from careerbot.version import current_version

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
DATA = Path(__file__).resolve().parent / "data"


def script(name: str) -> ModuleType:
    """scripts/NAME.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeEmbedder:
    """Exact, fast vectors: each word adds one to a hashed coordinate; rows are unit length."""

    def __init__(self, dimension: int = 64, model_id: str = "fake-model", window: int = 256):
        self.model_id = model_id
        self.fingerprint = f"{model_id}:{dimension}"
        self.dimension = dimension
        self.window = window
        self.calls: list[list[str]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2

    def embed(self, texts: Sequence[Text], progress: bool = False) -> Vectors:
        """Sentences Within a text are the words inside its spans: words have no context."""
        self.calls.append(list(texts))
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            if isinstance(text, Within):
                text = " ".join(text.text[start:end] for start, end in text.spans)
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.sha256(word.encode()).digest()
                vectors[row, int.from_bytes(digest[:4], "little") % self.dimension] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)


def metadata_file(corpus_dir: Path) -> Path:
    """The one metadata file (NAME.speakers.toml) of a corpus folder."""
    (path,) = corpus_dir.glob("*.speakers.toml")
    return path


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


UNCOVERED = "\n[uncovered."


def without_uncovered_topics(corpus: Path) -> None:
    """Drop the [uncovered.*] tables (the last part of each metadata file): the fake
    embedder's hashed words find every question near some uncovered topic."""
    for path in corpus.glob("*.speakers.toml"):
        text = path.read_text(encoding="utf-8")
        if UNCOVERED in text:
            kept = text[: text.index(UNCOVERED)]
            assert "[uncovered." not in kept and "[questions." not in text[len(kept) :]
            path.write_text(kept, encoding="utf-8")


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A private copy of the default corpus, without its uncovered topics (see above)."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    without_uncovered_topics(target)
    return target


@pytest.fixture
def settings(tmp_path: Path, corpus_dir: Path) -> Settings:
    # The fake embedder is not calibrated: keep every answer, whatever its score.
    return Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index", min_score=0.0)


@pytest.fixture(scope="session")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX export of the bundled model for the whole session."""
    return tmp_path_factory.mktemp("encoders")


@pytest.fixture(scope="session")
def real_embedder(encoder_dir: Path) -> OnnxEmbedder:
    """The bundled model, run the default way."""
    return OnnxEmbedder(cache_dir=encoder_dir)


def served_version(index_dir: Path) -> Path:
    """The version folder an index directory's pointer names."""
    version = current_version(index_dir)
    assert version is not None, f"no index at {index_dir}"
    return version
