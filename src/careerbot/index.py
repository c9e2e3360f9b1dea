"""Build the index directory, write it atomically, and load it only when it verifies."""

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from careerbot import CareerbotError, __version__
from careerbot.chunking import Answer, Passage, answers_of, embedding_text, split_passages
from careerbot.config import HNSW_FROM, Settings
from careerbot.embedding import Embedder, Vectors
from careerbot.lexical import SYNONYMS_FILE, Synonyms
from careerbot.transcript import Speaker, parse_corpus

FORMAT = 1
DATA_FILES = ("faiss.index", "passages.jsonl", "answers.jsonl")
# index_dir/versions/<version>/ holds each build; index_dir/CURRENT names the one served.
POINTER = "CURRENT"
VERSIONS = "versions"
BUILDING = ".building-"
KEEP_VERSIONS = 3
Record = dict[str, Any]


@dataclass(frozen=True)
class BuildSummary:
    index_dir: Path
    documents: int
    speakers: int
    answers: int
    passages: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"Indexed documents: {self.documents}, speakers: {self.speakers}, answers: "
            f"{self.answers}, passages: {self.passages} in {self.seconds:.1f} s -> {self.index_dir}"
        )


@dataclass(frozen=True)
class LoadedIndex:
    version: str
    manifest: Record
    vectors: faiss.Index
    passages: list[Record]
    answers: dict[str, Record]


def sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def corpus_sha256(corpus_dir: Path) -> str:
    """One digest over every transcript and speakers file, so any edit shows."""
    digest = hashlib.sha256()
    paths = [*corpus_dir.glob("*.txt"), *corpus_dir.glob("*.speakers.toml")]
    for path in sorted([*paths, *corpus_dir.glob(SYNONYMS_FILE)]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def speaker_record(speaker: Speaker) -> Record:
    return {
        "id": speaker.id,
        "name": speaker.name,
        "role": speaker.title,
        "organization": speaker.organization,
    }


def answer_record(answer: Answer) -> Record:
    return {
        "id": answer.id,
        "speaker": speaker_record(answer.speaker),
        "question": answer.question,
        "text": answer.text,
        "source": {"document": answer.document, "lines": list(answer.lines)},
    }


def passage_record(passage: Passage) -> Record:
    answer = passage.answer
    return {
        "id": passage.id,
        "answer_id": answer.id,
        "speaker": speaker_record(answer.speaker),
        "question": answer.question,
        "text": passage.text,
        "span": [passage.start, passage.end],
        "source": {"document": answer.document, "lines": list(passage.lines)},
    }


def write_file(path: Path, data: bytes) -> None:
    """Write and flush to disk, so a published version survives a crash."""
    with path.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def jsonl(records: list[Record]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def current_version(index_dir: Path) -> Path | None:
    """The version folder the pointer names, if there is a pointer."""
    pointer = index_dir / POINTER
    if not pointer.is_file():
        return None
    return index_dir / VERSIONS / pointer.read_text(encoding="utf-8").strip()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_up(index_dir: Path) -> None:
    """Remove what killed builds left behind, and versions older than the last few."""
    versions = index_dir / VERSIONS
    for leftover in versions.glob(f"{BUILDING}*"):
        pid = leftover.name.removeprefix(BUILDING).split("-")[0]
        if not (pid.isdigit() and alive(int(pid))):
            shutil.rmtree(leftover, ignore_errors=True)
    current = current_version(index_dir)
    finished = sorted(p for p in versions.iterdir() if not p.name.startswith("."))
    for old in finished[:-KEEP_VERSIONS]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)


# HNSW: links per vector, and how widely building and searching look; chosen at 100,000
# passages by scripts/scale.py (recall@10 against exact search stays above 0.95).
HNSW_LINKS, HNSW_BUILD_DEPTH, HNSW_SEARCH_DEPTH = 32, 200, 128


def index_kind(setting: str, passages: int) -> str:
    if setting == "auto":
        return "hnsw" if passages >= HNSW_FROM else "flat"
    return setting


def searchable(vectors: Vectors, kind: str) -> faiss.Index:
    """A FAISS inner-product index of the vectors: exact, or an HNSW graph."""
    index: faiss.Index
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_BUILD_DEPTH
        index.hnsw.efSearch = HNSW_SEARCH_DEPTH
    else:
        index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def write_index(
    index_dir: Path, vectors: Vectors, passages: list[Record], answers: list[Record], facts: Record
) -> str:
    """Write a new version folder, then point CURRENT at it; return the version's name.

    Until the pointer is swapped (os.replace, atomic) readers see the old version; a
    build that fails or is killed never changes it.
    """
    versions = index_dir / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    staging = versions / f"{BUILDING}{os.getpid()}-{version}"
    staging.mkdir()
    try:
        write_file(
            staging / "faiss.index",
            faiss.serialize_index(searchable(vectors, facts["index_type"])).tobytes(),
        )
        write_file(staging / "passages.jsonl", jsonl(passages))
        write_file(staging / "answers.jsonl", jsonl(answers))
        files = {name: sha256(staging / name) for name in DATA_FILES}
        manifest = {**facts, "index_version": version, "files": files}
        write_file(staging / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
        staging.rename(versions / version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    pointer = index_dir / f".{POINTER}-{os.getpid()}"
    write_file(pointer, version.encode())
    os.replace(pointer, index_dir / POINTER)
    clean_up(index_dir)
    return version


def build_index(settings: Settings, embedder: Embedder, progress: bool = False) -> BuildSummary:
    """Parse, chunk and embed the whole corpus into settings.index_dir."""
    started = time.perf_counter()
    transcripts = parse_corpus(settings.corpus_dir)
    synonyms = Synonyms.read(settings.corpus_dir)
    answers = [answer for transcript in transcripts for answer in answers_of(transcript)]
    passages = [
        passage
        for answer in answers
        for passage in split_passages(
            answer, embedder.count_tokens, embedder.window, settings.passage_tokens
        )
    ]
    vectors = embedder.embed([embedding_text(p.answer, p.text) for p in passages], progress)
    speakers = {answer.speaker.id for answer in answers}
    facts = {
        "format": FORMAT,
        "model": embedder.model_id,
        "dimension": embedder.dimension,
        "passages": len(passages),
        "index_type": index_kind(settings.index_type, len(passages)),
        "answers": len(answers),
        "speakers": len(speakers),
        "documents": [transcript.document for transcript in transcripts],
        "corpus_sha256": corpus_sha256(settings.corpus_dir),
        "chunking": {"passage_tokens": settings.passage_tokens, "window": embedder.window},
        "synonyms": synonyms.table,
        "careerbot_version": __version__,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    version = write_index(
        settings.index_dir,
        vectors,
        [passage_record(p) for p in passages],
        [answer_record(a) for a in answers],
        facts,
    )
    return BuildSummary(
        settings.index_dir / VERSIONS / version,
        len(transcripts),
        len(speakers),
        len(answers),
        len(passages),
        time.perf_counter() - started,
    )


def read_jsonl(path: Path) -> list[Record]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def load_index(index_dir: Path, embedder: Embedder) -> LoadedIndex:
    """Load the current version, refusing it with one line that says what is wrong unless
    all agrees."""
    version_dir = current_version(index_dir)
    if version_dir is None:
        raise CareerbotError(f"no index at {index_dir} (run: careerbot build)")
    manifest_path = version_dir / "manifest.json"
    if not manifest_path.is_file():
        raise CareerbotError(f"{index_dir}/{POINTER} names {version_dir}, which has no manifest")
    index_dir = version_dir
    rebuild = "rebuild it with: careerbot build"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files, count, dimension = manifest["files"], manifest["passages"], manifest["dimension"]
    except (ValueError, KeyError, TypeError):
        raise CareerbotError(f"{manifest_path} is not a careerbot manifest; {rebuild}") from None
    for name in DATA_FILES:
        path = index_dir / name
        if not path.is_file():
            raise CareerbotError(f"{path} is missing; {rebuild}")
        if sha256(path) != files.get(name):
            raise CareerbotError(f"{path} does not match its checksum in the manifest; {rebuild}")
    if manifest.get("model") != embedder.model_id:
        raise CareerbotError(
            f"{index_dir} was built with model {manifest.get('model')!r}, not the configured "
            f"{embedder.model_id!r}; {rebuild}"
        )
    if dimension != embedder.dimension:
        raise CareerbotError(
            f"{index_dir} holds {dimension}-dimensional vectors but the model makes "
            f"{embedder.dimension}-dimensional ones; {rebuild}"
        )
    try:
        vectors = faiss.read_index(str(index_dir / "faiss.index"))
        passages = read_jsonl(index_dir / "passages.jsonl")
        answers = {record["id"]: record for record in read_jsonl(index_dir / "answers.jsonl")}
    except (RuntimeError, ValueError, KeyError, TypeError) as error:
        raise CareerbotError(f"{index_dir} cannot be read ({error}); {rebuild}") from None
    if vectors.d != dimension:
        raise CareerbotError(
            f"{index_dir}/faiss.index holds {vectors.d}-dimensional vectors, "
            f"the manifest says {dimension}; {rebuild}"
        )
    if not vectors.ntotal == len(passages) == count:
        raise CareerbotError(
            f"{index_dir} is inconsistent: {vectors.ntotal} vectors, {len(passages)} passages, "
            f"manifest says {count}; {rebuild}"
        )
    if any(p.get("answer_id") not in answers for p in passages):
        raise CareerbotError(f"{index_dir}: a passage names an unknown answer; {rebuild}")
    return LoadedIndex(version_dir.name, manifest, vectors, passages, answers)


def search_vectors(index: faiss.Index, query: Vectors, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and ids of the k nearest passages, without FAISS's -1 padding. (An HNSW
    search looks at least k wide, whatever its search depth.)"""
    scores, ids = index.search(query, min(k, index.ntotal))
    keep = ids[0] >= 0
    return scores[0][keep], ids[0][keep]
