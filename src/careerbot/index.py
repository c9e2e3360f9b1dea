"""Build the index directory, write it atomically, and load it only when it verifies."""

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from careerbot import CareerbotError, __version__
from careerbot.chunking import Answer, Passage, answers_of, embedding_text, split_passages
from careerbot.config import Settings
from careerbot.embedding import Embedder, Vectors
from careerbot.lexical import SYNONYMS_FILE, Synonyms
from careerbot.transcript import Speaker, parse_corpus

FORMAT = 1
DATA_FILES = ("faiss.index", "passages.jsonl", "answers.jsonl")
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


def write_jsonl(path: Path, records: list[Record]) -> None:
    with path.open("w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_index(
    index_dir: Path, vectors: Vectors, passages: list[Record], answers: list[Record], facts: Record
) -> None:
    """Write into a temporary sibling directory, then rename it into place."""
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}-new-", dir=index_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a server may run as another user
    try:
        flat = faiss.IndexFlatIP(vectors.shape[1])
        flat.add(vectors)
        faiss.write_index(flat, str(staging / "faiss.index"))
        write_jsonl(staging / "passages.jsonl", passages)
        write_jsonl(staging / "answers.jsonl", answers)
        files = {name: sha256(staging / name) for name in DATA_FILES}
        manifest = {**facts, "files": files}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        old = index_dir.with_name(f".{index_dir.name}-old-{time.time_ns()}")
        if index_dir.exists():
            index_dir.rename(old)
        staging.rename(index_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


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
        "answers": len(answers),
        "speakers": len(speakers),
        "documents": [transcript.document for transcript in transcripts],
        "corpus_sha256": corpus_sha256(settings.corpus_dir),
        "chunking": {"passage_tokens": settings.passage_tokens, "window": embedder.window},
        "synonyms": synonyms.table,
        "version": __version__,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_index(
        settings.index_dir,
        vectors,
        [passage_record(p) for p in passages],
        [answer_record(a) for a in answers],
        facts,
    )
    return BuildSummary(
        settings.index_dir,
        len(transcripts),
        len(speakers),
        len(answers),
        len(passages),
        time.perf_counter() - started,
    )


def read_jsonl(path: Path) -> list[Record]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def load_index(index_dir: Path, embedder: Embedder) -> LoadedIndex:
    """Load the index, refusing it with one line that says what is wrong unless all agrees."""
    manifest_path = index_dir / "manifest.json"
    if not manifest_path.is_file():
        raise CareerbotError(f"no index at {index_dir} (run: careerbot build)")
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
    return LoadedIndex(manifest, vectors, passages, answers)


def search_vectors(index: faiss.Index, query: Vectors, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and ids of the k nearest passages, without FAISS's -1 padding."""
    scores, ids = index.search(query, min(k, index.ntotal))
    keep = ids[0] >= 0
    return scores[0][keep], ids[0][keep]
