"""What a new build may reuse of the version being served: each answer's split into
passages, and the vectors of passages and views, found by keys of what they depend on."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from careerbot import CareerbotError
from careerbot.chunking import Answer, Passage
from careerbot.embedding import Embedder, Vectors
from careerbot.version import (
    ANSWER,
    END,
    KEY_BYTES,
    POINTER,
    START,
    VERSIONS,
    AnswerRecord,
    LoadedIndex,
    check_named,
    current_version,
    open_version,
    read_version,
    version_folders,
)

# What makes a version untrustworthy to reuse: it does not verify, or its files do not fit.
UNTRUSTED = (CareerbotError, OSError, RuntimeError, ValueError, EOFError, KeyError, TypeError)


def passage_key(fingerprint: str, text: str) -> bytes:
    return hashlib.sha256(f"{fingerprint}\0{text}".encode()).digest()[:KEY_BYTES]


def key_rows(keys: list[bytes]) -> NDArray[np.uint8]:
    return np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES)


def split_key(record: AnswerRecord) -> bytes:
    """What an answer's split depends on, besides the settings and the tokenizer: its
    text, and its question and speaker, which are embedded with each passage."""
    content = json.dumps([record["text"], record["question"], record["speaker"]])
    return hashlib.sha256(content.encode()).digest()[:KEY_BYTES]


@dataclass(frozen=True)
class Previous:
    """What the version being served holds that a new build may reuse: each answer's
    passages (when split with the same settings and tokenizer), and the vectors of its
    passages and views by key (made by the same model)."""

    spans: dict[bytes, list[tuple[int, int]]]  # split key: (start, end) of each passage
    keys: dict[bytes, int]  # key: row of `stored`
    stored: Vectors  # the passage vectors, then the view vectors

    @classmethod
    def load(
        cls,
        index_dir: Path,
        embedder: Embedder,
        chunking: dict[str, int],
        served: LoadedIndex | None = None,
    ) -> tuple["Previous", str | None]:
        """What the version being served holds: `served`, loaded already, or else the one
        CURRENT names, or when that one is missing, refused or made by another model the
        newest that verifies and this model made, as a server would serve. A version
        that does not verify, or whose keys do not fit its vectors, is not trusted:
        nothing of it is used, and the second value says why."""
        nothing = cls({}, {}, empty(embedder.dimension))
        if served is not None:
            folder = index_dir / VERSIONS / served.version
            try:
                return cls.of(served, folder, embedder, chunking), None
            except UNTRUSTED as error:
                return nothing, f"{folder} is not reused ({error}); all is made anew"
        named, problem = None, None
        try:
            named = current_version(index_dir)
            if named is not None:
                check_named(index_dir, named)
                found = cls.read(named, embedder, chunking)
                if found is not None:
                    return found, None
        except UNTRUSTED as error:
            problem = f"{named or index_dir / POINTER} is not reused ({error})"
        for folder in version_folders(index_dir):
            if named is not None and folder.name == named.name:
                continue  # read above
            try:
                found = cls.read(folder, embedder, chunking)
            except UNTRUSTED:
                continue
            if found is not None:
                reusing = f"reusing {folder.name}, the newest that verifies"
                return found, f"{problem}; {reusing}" if problem else None
        return nothing, f"{problem}; all is made anew" if problem else None

    @classmethod
    def read(
        cls, version_dir: Path, embedder: Embedder, chunking: dict[str, int]
    ) -> "Previous | None":
        """What one version holds, verified; None when another model made it."""
        manifest = read_version(version_dir)
        if manifest.fingerprint != embedder.fingerprint:
            return None
        return cls.of(open_version(version_dir, manifest), version_dir, embedder, chunking)

    @classmethod
    def of(
        cls, index: LoadedIndex, version_dir: Path, embedder: Embedder, chunking: dict[str, int]
    ) -> "Previous":
        """What a version that verified and this model made (`index`, from `version_dir`:
        loading refuses another model's) holds."""
        manifest = index.manifest
        keys = np.load(version_dir / "keys.npy", allow_pickle=False)
        splits = np.load(version_dir / "answer-keys.npy", allow_pickle=False)
        views, size = index.views, index.vectors.ntotal + len(index.views)
        if keys.dtype != np.uint8 or keys.shape != (size, KEY_BYTES):
            raise CareerbotError("keys.npy does not fit its vectors")
        if splits.dtype != np.uint8 or splits.shape != (manifest.answers, KEY_BYTES):
            raise CareerbotError("answer-keys.npy does not fit its answers")
        if index.vectors.d != embedder.dimension or views.shape[1:] != (embedder.dimension,):
            raise CareerbotError("it holds vectors of another dimension")
        stored = np.concatenate([index.vectors.reconstruct_n(0, index.vectors.ntotal), views])
        if not np.isfinite(stored).all():
            raise CareerbotError("it holds vectors that are not finite float32 numbers")
        spans: dict[bytes, list[tuple[int, int]]] = {}
        if manifest.chunking.model_dump() == chunking:
            by_answer: dict[int, list[tuple[int, int]]] = {}
            for answer, start, end in index.rows[:, [ANSWER, START, END]].tolist():
                by_answer.setdefault(answer, []).append((start, end))
            # An answer told twice (in two transcripts, say) has one split: the first.
            for answer, its in by_answer.items():
                spans.setdefault(bytes(splits[answer]), its)
        rows = {bytes(key): row for row, key in enumerate(keys)}
        return cls(spans, rows, stored)

    def passages(self, answer: Answer, split: bytes) -> list[Passage]:
        """The answer's passages as last split, when an answer of the same text, question
        and speaker (the same split key) was split before into well-formed spans; else
        none."""
        spans = self.spans.get(split, [])
        # Each window starts and ends after the one before (Searcher.shown relies on it).
        if not all(
            0 <= start < end <= len(answer.text) and start > before[0] and end > before[1]
            for before, (start, end) in zip([(-1, 0), *spans], spans, strict=False)
        ):
            return []
        return [
            Passage(f"{answer.id}#{number}", answer, start, end)
            for number, (start, end) in enumerate(spans, start=1)
        ]

    def vectors(self, keys: list[bytes]) -> dict[bytes, Vectors]:
        """The stored vectors of those keys it has."""
        return {key: self.stored[self.keys[key]] for key in keys if key in self.keys}


def empty(dimension: int) -> Vectors:
    return np.zeros((0, dimension), dtype=np.float32)
