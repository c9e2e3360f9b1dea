"""Build the index directory: parse, split and embed the corpus (reusing what the last
version holds), write a version atomically, and clean up old ones."""

import hashlib
import io
import json
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import bm25s
import faiss
import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from careerbot import (
    SMALL_FILE_BYTES,
    CareerbotError,
    __version__,
    left_by_dead_writer,
    read_limited,
)
from careerbot.chunking import (
    SPLITTER,
    Answer,
    Passage,
    answers_of,
    embedding_text,
    split_passages,
)
from careerbot.config import HNSW_FROM, Settings
from careerbot.embedding import Embedder, Vectors
from careerbot.lexical import (
    BM25_FILES,
    SYNONYMS_FILE,
    Synonyms,
    word_model,
)
from careerbot.metadata import plain
from careerbot.reuse import Previous, key_rows, passage_key, split_key
from careerbot.transcript import (
    Speaker,
    Transcript,
    covered,
    document_name,
    parse_corpus,
    speakers_file,
)
from careerbot.version import (
    BM25_DIR,
    DATA_FILES,
    FORMAT,
    MANIFEST_DIGEST,
    POINTER,
    VERSIONS,
    AnswerPhrasings,
    AnswerRecord,
    AnswerRows,
    Catalog,
    CatalogSpeaker,
    LoadedIndex,
    Named,
    PassageRecord,
    Record,
    SourceRecord,
    SpeakerRecord,
    Topic,
    current_version,
    lexicon_text,
    verifies,
    view_texts,
)

BUILDING = ".building-"


KEEP_VERSIONS = 3
# The new pointer a build writes before swapping it in: .CURRENT-<its pid>.
STALE_POINTER = re.compile(rf"\.{POINTER}-\d+")


def merged(tables: list[dict[str, tuple[str, ...]]]) -> dict[str, list[str]]:
    """Tables of phrasings from several transcripts as one, each phrasing once."""
    found: dict[str, list[str]] = {}
    for table in tables:
        for key, texts in table.items():
            found[key] = list(dict.fromkeys([*found.get(key, []), *texts]))
    return found


@dataclass(frozen=True)
class BuildSummary:
    index_dir: Path
    documents: int
    speakers: int
    answers: int
    passages: int
    seconds: float
    warnings: tuple[str, ...] = ()
    reused: int = 0  # passages whose vector came from the previous version

    def __str__(self) -> str:
        return (
            f"Indexed documents: {self.documents}, speakers: {self.speakers}, answers: "
            f"{self.answers}, passages: {self.passages} ({self.reused} reused, "
            f"{self.passages - self.reused} embedded) in {self.seconds:.1f} s -> {self.index_dir}"
        )


def catalog(answers: list[AnswerRecord], vocabulary: list[str]) -> Catalog:
    speakers: dict[str, Record] = {}
    topics: dict[str, list[Named]] = {}
    for answer in answers:
        speaker = answer["speaker"]
        speakers.setdefault(speaker["id"], {**speaker, "answers": 0})["answers"] += 1
        topics.setdefault(answer["question"], []).append(
            Named(id=speaker["id"], name=speaker["name"])
        )
    return Catalog(
        speakers=[CatalogSpeaker(**speaker) for speaker in speakers.values()],
        topics=[Topic(question=question, speakers=named) for question, named in topics.items()],
        vocabulary=vocabulary,
    )


def sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def version_name(built: datetime, manifest: bytes) -> str:
    digest = hashlib.sha256(manifest).hexdigest()[:MANIFEST_DIGEST]
    return f"{built.strftime('%Y%m%dT%H%M%S%fZ')}-{digest}"


def corpus_sha256(corpus_dir: Path, max_bytes: int) -> str:
    """One digest over every transcript and speakers file, so any edit shows; each file
    read as parsing reads it, so one that could not be parsed is refused alike."""
    digest = hashlib.sha256()
    paths = [*corpus_dir.glob("*.txt"), *corpus_dir.glob("*.speakers.toml")]
    for path in sorted([*paths, *corpus_dir.glob(SYNONYMS_FILE)]):
        limit = max_bytes if path.suffix == ".txt" else SMALL_FILE_BYTES
        digest.update(path.name.encode() + b"\0" + read_limited(path, limit) + b"\0")
    return digest.hexdigest()


def speaker_record(speaker: Speaker) -> SpeakerRecord:
    return {
        "id": speaker.id,
        "name": speaker.name,
        "role": speaker.title,
        "organization": speaker.organization,
    }


def source_record(answer: Answer, lines: tuple[int, int]) -> SourceRecord:
    """Where a text comes from: its file and lines, and the interview's title, date and
    url from the metadata file (None where it gives none)."""
    interview = answer.interview
    return {
        "document": answer.document,
        "lines": list(lines),
        "title": interview.title,
        "date": interview.date,
        "url": interview.url,
    }


def answer_record(answer: Answer) -> AnswerRecord:
    return {
        "id": answer.id,
        "speaker": speaker_record(answer.speaker),
        "question": answer.question,
        "text": answer.text,
        "source": source_record(answer, answer.lines),
    }


def passage_record(passage: Passage) -> PassageRecord:
    answer = passage.answer
    return {
        "id": passage.id,
        "answer_id": answer.id,
        "speaker": speaker_record(answer.speaker),
        "question": answer.question,
        "text": passage.text,
        "span": [passage.start, passage.end],
        "source": source_record(answer, passage.lines),
    }


def write_file(path: Path, data: bytes) -> None:
    """Write and flush to disk, so a published version survives a crash."""
    with path.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def jsonl(records: Sequence[Mapping[str, object]]) -> tuple[bytes, NDArray[np.int64]]:
    """JSON lines, and where each line starts."""
    lines = [(json.dumps(r, ensure_ascii=False) + "\n").encode() for r in records]
    starts = np.cumsum([0, *map(len, lines)], dtype=np.int64)[:-1]
    return b"".join(lines), starts


def clean_up(index_dir: Path) -> list[str]:
    """Remove what killed builds left behind, folders that are not good versions, and good
    versions older than the last few; never the one CURRENT names. Returns what could
    not be removed: the index itself is fine either way."""
    versions = index_dir / VERSIONS
    try:
        folders = sorted(versions.iterdir())
    except OSError as error:
        return [f"could not clean up {versions} ({error.strerror})"]
    try:
        current = current_version(index_dir)
    except CareerbotError:
        current = None
    good, doomed = [], []
    for folder in folders:
        if folder.name.startswith(BUILDING):
            if left_by_dead_writer(folder.name, BUILDING):
                doomed.append(folder)
        elif folder.name.startswith(".") or folder == current:
            continue
        elif folder.is_dir() and not folder.is_symlink() and verifies(folder):
            good.append(folder)
        else:
            doomed.append(folder)
    doomed += good[: max(0, len(good) - (KEEP_VERSIONS - (current is not None)))]
    # A build killed before it swapped the pointer left its new pointer (.CURRENT-<pid>).
    for path in index_dir.iterdir():
        if STALE_POINTER.fullmatch(path.name) and path.is_file():
            doomed += [path] if left_by_dead_writer(path.name, f".{POINTER}-") else []
    problems = []
    for folder in doomed:
        try:
            remove(folder)
        except OSError as error:
            problems.append(f"could not remove {folder} ({error.strerror})")
    return problems


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


# HNSW: links per vector, and how widely building and searching look; chosen at 100,000
# passages by scripts/scale.py (recall@10 against exact search stays above 0.95): 16 links
# built 160 wide gave recall 0.960 in 12.2 s; 32 links 160 wide 0.962 in 13.6 s, 200 wide
# 0.970 in 17.4 s, 100 wide 0.940.
HNSW_LINKS, HNSW_BUILD_DEPTH, HNSW_SEARCH_DEPTH = 16, 160, 128


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


def write_index(index_dir: Path, data: dict[str, bytes], bm25: bm25s.BM25, facts: Record) -> str:
    """Write a new version folder, then point CURRENT at it; return the version's name.
    (Old versions are then for clean_up to remove.)

    Until the pointer is swapped (os.replace, atomic) readers see the old version; a
    build that fails or is killed never changes it.
    """
    versions = index_dir / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    built = datetime.now(UTC)
    staging = versions / f"{BUILDING}{os.getpid()}-{built.strftime('%Y%m%dT%H%M%S%fZ')}"
    staging.mkdir()
    try:
        for name, content in data.items():
            write_file(staging / name, content)
        bm25.save(staging / BM25_DIR, show_progress=False)
        for name in BM25_FILES:
            with (staging / BM25_DIR / name).open("rb") as file:
                os.fsync(file.fileno())
        # The files written from memory are hashed there; bm25s wrote its own.
        files = {name: hashlib.sha256(content).hexdigest() for name, content in data.items()}
        files |= {name: sha256(staging / name) for name in DATA_FILES if name not in data}
        sizes = {name: (staging / name).stat().st_size for name in DATA_FILES}
        manifest = json.dumps({**facts, "files": files, "sizes": sizes}, indent=2) + "\n"
        write_file(staging / "manifest.json", manifest.encode())
        version = version_name(built, manifest.encode())
        staging.rename(versions / version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    pointer = index_dir / f".{POINTER}-{os.getpid()}"
    try:
        write_file(pointer, version.encode())
        os.replace(pointer, index_dir / POINTER)
    except OSError as error:
        pointer.unlink(missing_ok=True)
        raise CareerbotError(
            f"cannot point {index_dir / POINTER} at the new version ({error.strerror}); "
            f"it stays in {versions}"
        ) from None
    return version


@dataclass(frozen=True)
class CorpusCuration:
    """What the transcripts' metadata files say, over the whole corpus."""

    phrasings: dict[str, list[str]]  # interview question: its phrasings
    uncovered: dict[str, list[str]]  # uncovered topic: its phrasings
    listed_by: dict[str, list[str]]  # uncovered topic: the documents that list it


def curation(transcripts: list[Transcript]) -> CorpusCuration:
    """The corpus's phrasings, its uncovered topics and the transcripts (documents) that
    list each; an uncovered topic may not claim an interview question or a phrasing (of a
    question or of an answer), which would make that question unanswerable."""
    phrasings = merged([t.curation.phrasings for t in transcripts])
    uncovered = merged([t.curation.uncovered for t in transcripts])
    listed_by = {
        name: [t.document for t in transcripts if name in t.curation.uncovered]
        for name in uncovered
    }
    claimed = covered(transcripts)
    for transcript in transcripts:
        for name, texts in transcript.curation.uncovered.items():
            for text in texts:
                if plain(text) in claimed:
                    raise CareerbotError(
                        f"{speakers_file(Path(transcript.document)).name}: [uncovered.{name}] "
                        f"lists {text[:100]!r}, which is an interview question or a phrasing "
                        "of one or of an answer; a question cannot be both covered and not"
                    )
    return CorpusCuration(phrasings, uncovered, listed_by)


# Room in the manifest for what the build adds to the facts: each file's digest and size.
FILES_ROOM = 4096


def check_manifest_size(facts: Record) -> None:
    """An error naming what fills it when the manifest the facts will make is too large
    for a load to read (a loader refuses a manifest over SMALL_FILE_BYTES)."""
    size = len(json.dumps(facts, indent=2).encode()) + FILES_ROOM
    if size > SMALL_FILE_BYTES:
        raise CareerbotError(
            f"the corpus's phrasings, uncovered topics and synonyms would make a manifest of "
            f"{size:,} bytes, over the limit of {SMALL_FILE_BYTES:,}: give fewer or shorter "
            "phrasings in the speakers files"
        )


def plain_rows(
    per_transcript: list[list[Answer]], phrasings: dict[str, list[str]], unphrased: set[str]
) -> tuple[list[AnswerRows], list[str]]:
    """The rows of the answers to score with the plain weights, a span per transcript:
    those some interview question of which has no phrasings, and some answer none (their
    documents are `unphrased`). Scoring
    changes only once a transcript's curation is whole, so a phrasing or two added by
    review does not move its answers against each other. With them, a note for each such
    transcript that has some phrasings, naming the questions still without."""
    spans, notes, first = [], [], 0
    for answers in per_transcript:
        end = first + len(answers)
        questions = list(dict.fromkeys(a.question for a in answers))
        bare = [q for q in questions if not phrasings.get(q)]
        if bare and answers[0].document in unphrased:
            spans.append(AnswerRows(first=first, end=end))
            if len(bare) < len(questions) or any(a.phrasings for a in answers):
                named = ", ".join(repr(q[:80]) for q in bare[:3])
                notes.append(
                    f"{answers[0].document}: {len(bare)} of {len(questions)} interview "
                    f"questions have no phrasings ({named}{', ...' if len(bare) > 3 else ''}); "
                    "phrasings count in its answers' scores once every question has some"
                )
        first = end
    return spans, notes


def split_all(
    answers: list[Answer],
    splits: list[bytes],
    previous: Previous,
    embedder: Embedder,
    passage_tokens: int,
    progress: bool,
) -> list[Passage]:
    """Every answer's passages: as the previous version split it when it has not changed
    (`splits` are the answers' keys), else split anew."""
    passages: list[Passage] = []
    with tqdm(
        total=sum(len(answer.text) for answer in answers),
        desc="Splitting",
        unit="char",
        unit_scale=True,
        disable=not progress,
    ) as bar:
        for answer, split in zip(answers, splits, strict=True):
            passages += previous.passages(answer, split) or split_passages(
                answer, embedder.count_tokens, embedder.window, passage_tokens
            )
            bar.update(len(answer.text))
    return passages


def answer_phrasings(answers: list[Answer], unphrased: set[str]) -> list[AnswerPhrasings]:
    """The answers with phrasings of their own, by row; `whole` when every answer of the
    transcript has some (`unphrased`: the transcripts where some answer has none)."""
    return [
        AnswerPhrasings(
            answer=answer.id,
            row=row,
            phrasings=list(answer.phrasings),
            whole=answer.document not in unphrased,
        )
        for row, answer in enumerate(answers)
        if answer.phrasings
    ]


def embed_reusing(
    texts: list[str], keys: list[bytes], previous: Previous, embedder: Embedder, progress: bool
) -> tuple[Vectors, list[int]]:
    """The texts' vectors, those the previous version holds (by key) taken from it; and
    the positions of the texts embedded anew."""
    known = previous.vectors(keys)
    missing = [i for i, key in enumerate(keys) if key not in known]
    every = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    if missing:
        every[missing] = embedder.embed([texts[i] for i in missing], progress)
    for i, key in enumerate(keys):
        if key in known:
            every[i] = known[key]
    return every, missing


def build_index(
    settings: Settings,
    embedder: Embedder,
    progress: bool = False,
    served: LoadedIndex | None = None,
) -> BuildSummary:
    """Parse, chunk and embed the whole corpus into settings.index_dir, reusing what the
    version being served (`served`, loaded already, or else as Previous.load finds it)
    already holds for answers and texts that have not changed."""
    started = time.perf_counter()
    transcripts = parse_corpus(settings.corpus_dir, settings.max_transcript_bytes)
    corpus_digest = corpus_sha256(settings.corpus_dir, settings.max_transcript_bytes)
    synonyms = Synonyms.read(settings.corpus_dir)
    curated = curation(transcripts)
    phrasings, uncovered, listed_by = curated.phrasings, curated.uncovered, curated.listed_by
    per_transcript = [answers_of(transcript) for transcript in transcripts]
    answers = [answer for some in per_transcript for answer in some]
    chunking = {
        "passage_tokens": settings.passage_tokens,
        "window": embedder.window,
        "splitter": SPLITTER,
    }
    previous, problem = Previous.load(settings.index_dir, embedder, chunking, served)
    records = [answer_record(a) for a in answers]
    splits = [split_key(record) for record in records]
    passages = split_all(answers, splits, previous, embedder, settings.passage_tokens, progress)
    # The transcripts some answer of which has no phrasings of its own.
    unphrased = {answer.document for answer in answers if not answer.phrasings}
    phrased = answer_phrasings(answers, unphrased)
    plain_spans, partly_phrased = plain_rows(per_transcript, phrasings, unphrased)
    views = view_texts(
        list(dict.fromkeys(a.question for a in answers)), phrasings, phrased, uncovered, synonyms
    )
    speakers = {answer.speaker.id for answer in answers}
    kind = index_kind(settings.index_type, len(passages))
    facts = {
        "format": FORMAT,
        "model": embedder.model_id,
        "fingerprint": embedder.fingerprint,
        "dimension": embedder.dimension,
        "passages": len(passages),
        "index_type": kind,
        "answers": len(answers),
        "speakers": len(speakers),
        "documents": [transcript.document for transcript in transcripts],
        "corpus_sha256": corpus_digest,
        "chunking": chunking,
        "synonyms": synonyms.table,
        "phrasings": phrasings,
        "uncovered": uncovered,
        "uncovered_by": listed_by,
        "answer_phrasings": [a.model_dump() for a in phrased],
        "plain": [span.model_dump() for span in plain_spans],
        "careerbot_version": __version__,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    check_manifest_size(facts)  # before any embedding
    texts = [embedding_text(p.answer, p.text) for p in passages] + views.texts
    keys = [passage_key(embedder.fingerprint, text) for text in texts]
    every, missing = embed_reusing(texts, keys, previous, embedder, progress)
    # FAISS builds its index without Python's lock, alongside the work below (an HNSW
    # graph of 100,000 passages takes about 12 s, the rest about 5 s).
    with ThreadPoolExecutor(max_workers=1) as pool:
        searching = pool.submit(searchable, every[: len(passages)], kind)
        data, bm25 = version_files(passages, records, splits, every, keys, synonyms)
        data["faiss.index"] = faiss.serialize_index(searching.result()).tobytes()
    version = write_index(settings.index_dir, data, bm25, facts)
    return BuildSummary(
        settings.index_dir / VERSIONS / version,
        len(transcripts),
        len(speakers),
        len(answers),
        len(passages),
        time.perf_counter() - started,
        (
            *(warning for transcript in transcripts for warning in transcript.warnings),
            *speaker_conflicts(answers),
            *orphans(settings.corpus_dir),
            *partly_phrased,
            *([problem] if problem else []),
            *clean_up(settings.index_dir),
        ),
        len(passages) - sum(1 for i in missing if i < len(passages)),
    )


def speaker_conflicts(answers: list[Answer]) -> list[str]:
    """Speakers of one id told differently in two transcripts: /speakers and the words that
    name a speaker take the first, while each answer keeps its own (the same person who
    moved on, or two people of one name, whom a curator should tell apart)."""
    first: dict[str, Answer] = {}
    found: dict[tuple[str, Speaker], str] = {}  # once per way of telling
    for answer in answers:
        shown = first.setdefault(answer.speaker.id, answer)
        if shown.speaker != answer.speaker:
            found.setdefault(
                (answer.document, answer.speaker),
                f"{answer.document}: speaker {answer.speaker.id!r} is "
                f"{told(answer.speaker)} here but {told(shown.speaker)} in "
                f"{shown.document}, which /speakers shows; if two people, give one a "
                "fuller name",
            )
    return list(found.values())


def told(speaker: Speaker) -> str:
    return f"{speaker.name!r}" + (f" ({speaker.title})" if speaker.title else "")


def orphans(corpus_dir: Path) -> list[str]:
    """A speakers file beside no transcript (renamed, or its transcript removed): read by
    nothing, which its curator should know."""
    found = []
    for path in sorted(corpus_dir.glob("*.speakers.toml")):
        text = path.name.removesuffix(".speakers.toml") + ".txt"
        if not (corpus_dir / text).exists():
            found.append(
                f"{document_name(corpus_dir, path)}: no transcript {text} beside it reads it"
            )
    return found


def version_files(
    passages: list[Passage],
    records: list[AnswerRecord],
    splits: list[bytes],
    every: Vectors,
    keys: list[bytes],
    synonyms: Synonyms,
) -> tuple[dict[str, bytes], bm25s.BM25]:
    """A version's files but the FAISS index and the manifest, and its word model."""
    passage_lines, passage_starts = jsonl([passage_record(p) for p in passages])
    answer_lines, answer_starts = jsonl(records)
    bm25, vocabulary = word_model(
        [lexicon_text(p.answer.question, p.text) for p in passages], synonyms
    )
    listed = catalog(records, vocabulary)
    row_of = {record["id"]: row for row, record in enumerate(records)}
    topic_of = {topic.question: row for row, topic in enumerate(listed.topics)}
    speaker_of = {speaker.id: row for row, speaker in enumerate(listed.speakers)}
    rows = np.array(
        [
            (
                line,
                row_of[p.answer.id],
                topic_of[p.answer.question],
                speaker_of[p.answer.speaker.id],
                p.start,
                p.end,
            )
            for line, p in zip(passage_starts, passages, strict=True)
        ],
        dtype=np.int64,
    ).reshape(len(passages), 6)
    data = {
        "passages.jsonl": passage_lines,
        "answers.jsonl": answer_lines,
        "passages.npy": npy(rows),
        "answers.npy": npy(answer_starts),
        "catalog.json": listed.model_dump_json().encode(),
        "views.npy": npy(every[len(passages) :]),
        "keys.npy": npy(key_rows(keys)),
        "answer-keys.npy": npy(key_rows(splits)),
    }
    return data, bm25
