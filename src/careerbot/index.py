"""Build the index directory, write it atomically, and load it only when it verifies."""

import hashlib
import io
import json
import mmap
import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import bm25s
import faiss
import numpy as np
from numpy.typing import NDArray
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
    with_config,
)
from tqdm import tqdm
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from careerbot import (
    SMALL_FILE_BYTES,
    CareerbotError,
    __version__,
    left_by_dead_writer,
    read_limited,
)
from careerbot.chunking import Answer, Passage, answers_of, embedding_text, split_passages
from careerbot.config import HNSW_FROM, Settings
from careerbot.embedding import Embedder, Vectors
from careerbot.lexical import (
    BM25_FILES,
    SYNONYMS_FILE,
    Synonyms,
    load_word_model,
    word_model,
)
from careerbot.metadata import MAX_PHRASING_CHARS, TOPIC_NAME, plain
from careerbot.transcript import Speaker, Transcript, parse_corpus

# 2: the version folder's name carries its manifest's digest. 3: views.npy. 4: a record's
# source gives the interview's title, date and url. 5: keys.npy, the model's fingerprint.
# 6: all a server needs is made at build (catalog.json, the arrays, bm25/), to be mapped.
FORMAT = 6
BM25_DIR = "bm25"
DATA_FILES = (
    "faiss.index",
    "passages.jsonl",
    "answers.jsonl",
    "passages.npy",
    "answers.npy",
    "catalog.json",
    "views.npy",
    "keys.npy",
    "answer-keys.npy",
    *(f"{BM25_DIR}/{name}" for name in BM25_FILES),
)
# passages.npy's columns: where the passage's line starts in passages.jsonl; the rows of
# its answer (in answers.jsonl), its interview question and its speaker (in catalog.json);
# and where it starts and ends in its answer's text.
LINE, ANSWER, TOPIC, SPEAKER, START, END = range(6)
# Per passage, this many bytes of the SHA-256 of the model's fingerprint and the text
# embedded: a later build reuses the vector of a passage whose key it finds again.
KEY_BYTES = 16
# index_dir/versions/<version>/ holds each build; index_dir/CURRENT names the one served.
POINTER = "CURRENT"
VERSIONS = "versions"
BUILDING = ".building-"
KEEP_VERSIONS = 3
# A version's name: its build time, then the first 24 hex digits of its manifest's SHA-256,
# so the pointer (which holds the name) vouches for the manifest, and the manifest for
# every other file. Nothing else is a version: no path, no dot, no separator.
VERSION_NAME = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{24}")
MANIFEST_DIGEST = 24
REBUILD = "rebuild it with: careerbot build"
Record = dict[str, Any]
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0)]
Phrasing = Annotated[str, Field(min_length=1, max_length=MAX_PHRASING_CHARS)]


class Chunking(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    passage_tokens: Annotated[int, Field(ge=1)]
    window: Annotated[int, Field(ge=1)]


class Manifest(BaseModel):
    """What a version holds and how it was built; every field checked when it loads."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    format: Literal[6]
    model: Annotated[str, Field(min_length=1, max_length=1000)]
    fingerprint: Annotated[str, Field(min_length=1, max_length=1000)]
    dimension: Annotated[int, Field(ge=1, le=65_536)]
    passages: Count
    index_type: Literal["flat", "hnsw"]
    answers: Count
    speakers: Count
    documents: list[str]
    corpus_sha256: Digest
    chunking: Chunking
    synonyms: dict[str, list[str]]
    # Other ways people ask each interview question, and topics the corpus does not cover.
    phrasings: dict[str, list[Phrasing]] = {}
    uncovered: dict[Annotated[str, Field(pattern=TOPIC_NAME.pattern)], list[Phrasing]] = {}
    careerbot_version: str
    built_at: str
    files: dict[str, Digest]
    sizes: dict[str, Count]

    @field_validator("files", "sizes")
    @classmethod
    def every_data_file(cls, files: dict[str, Any]) -> dict[str, Any]:
        if sorted(files) != sorted(DATA_FILES):
            raise ValueError(f"must list exactly {', '.join(DATA_FILES)}")
        return files

    @field_validator("synonyms")
    @classmethod
    def valid_synonyms(cls, table: dict[str, list[str]]) -> dict[str, list[str]]:
        Synonyms.checked(table, "synonyms")
        return table


def merged(tables: list[dict[str, tuple[str, ...]]]) -> dict[str, list[str]]:
    """Tables of phrasings from several transcripts as one, each phrasing once."""
    found: dict[str, list[str]] = {}
    for table in tables:
        for key, texts in table.items():
            found[key] = list(dict.fromkeys([*found.get(key, []), *texts]))
    return found


class NoIndex(CareerbotError):
    """There is no index yet."""


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


class CatalogSpeaker(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str
    name: str
    role: str
    organization: str
    answers: Count


class Named(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str
    name: str


class Topic(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    question: str
    speakers: list[Named]  # who answered it, once for each answer


class Catalog(BaseModel):
    """What a server lists and looks up without reading every answer: the speakers, the
    interview questions (in the order of the answers) and the passages' words."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    speakers: list[CatalogSpeaker]
    topics: list[Topic]
    vocabulary: list[str]

    @model_validator(mode="after")
    def each_once(self) -> "Catalog":
        # A server finds speakers by id and topics by question, and each passage names
        # its speaker and topic by row: twins would make rows and names disagree.
        ids = {speaker.id for speaker in self.speakers}
        if len(ids) != len(self.speakers):
            raise ValueError("a speaker is listed twice")
        if len({topic.question for topic in self.topics}) != len(self.topics):
            raise ValueError("an interview question is listed twice")
        if any(named.id not in ids for topic in self.topics for named in topic.speakers):
            raise ValueError("a question names a speaker it does not list")
        return self


def catalog(answers: list[Record], vocabulary: list[str]) -> Catalog:
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


NEWLINE = ord("\n")


STRICT_RECORD = ConfigDict(extra="forbid", strict=True)


class DamagedIndex(CareerbotError):
    """A record of the version being served is not what the build wrote."""


@with_config(STRICT_RECORD)
class SpeakerRecord(TypedDict):
    id: str
    name: str
    role: str
    organization: str


@with_config(STRICT_RECORD)
class SourceRecord(TypedDict):
    document: str
    lines: list[int]
    title: str | None
    date: str | None
    url: str | None


@with_config(STRICT_RECORD)
class AnswerRecord(TypedDict):
    id: str
    speaker: SpeakerRecord
    question: str
    text: str
    source: SourceRecord


@with_config(STRICT_RECORD)
class PassageRecord(AnswerRecord):
    answer_id: str
    span: list[int]


PASSAGE_RECORD: TypeAdapter[Any] = TypeAdapter(PassageRecord)
ANSWER_RECORD: TypeAdapter[Any] = TypeAdapter(AnswerRecord)


class Lines:
    """The records of a JSON-lines file, each parsed when asked for: a server reads only
    the passages and answers it returns. Parsing every record at load would cost time the
    size of the corpus, so each is checked against `kind` as it is parsed: one that is
    not what the build wrote is DamagedIndex, one line, never a KeyError mid-request."""

    def __init__(self, path: Path, starts: NDArray[np.int64], kind: TypeAdapter[Any]) -> None:
        self.path, self.kind = path, kind
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            self.data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        # Each start must be that of a line: the first at 0, each after a newline, and
        # the file must end with one.
        self.starts, self.ends = starts, np.append(starts[1:], size)
        text = np.frombuffer(self.data, dtype=np.uint8)
        if not (
            (len(starts) == size == 0)
            or (
                len(starts) > 0
                and starts[0] == 0
                and (self.ends > starts).all()
                and text[-1] == NEWLINE
                and (text[starts[1:] - 1] == NEWLINE).all()
            )
        ):
            raise CareerbotError(f"{path}: its line offsets do not fit it; {REBUILD}")

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, row: int) -> Record:
        if not 0 <= row < len(self.starts):
            raise IndexError(row)
        try:
            record: Record = self.kind.validate_json(self.data[self.starts[row] : self.ends[row]])
            return record
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(map(str, first["loc"])) or "record"
            raise DamagedIndex(
                f"{self.path}: line {row + 1} is not what careerbot build writes "
                f"({where}: {first['msg']}); {REBUILD}"
            ) from None

    def __iter__(self) -> Iterator[Record]:
        return (self[row] for row in range(len(self)))


@dataclass(frozen=True)
class LoadedIndex:
    version: str
    manifest: Manifest
    vectors: faiss.Index
    passages: Lines
    answers: Lines
    rows: NDArray[np.int64]  # per passage: LINE, ANSWER, TOPIC, SPEAKER, START, END
    catalog: Catalog
    bm25: bm25s.BM25
    # The vectors of `layout`'s views, in its order: the topic views, then the uncovered.
    views: Vectors
    layout: "Views"


@dataclass(frozen=True)
class Views:
    """What the model embeds for each interview question and each uncovered topic: the
    question itself and each of its phrasings, which say how else people ask it."""

    topics: list[tuple[str, str]]  # (interview question, view text)
    uncovered: list[tuple[str, str]]  # (topic name, phrasing)

    @property
    def texts(self) -> list[str]:
        return [text for _, text in (*self.topics, *self.uncovered)]


def view_texts(
    questions: list[str],
    phrasings: dict[str, list[str]],
    uncovered: dict[str, list[str]],
    synonyms: Synonyms,
) -> Views:
    """The views of the corpus's interview questions (in the order given) and of its
    uncovered topics; phrasings have their abbreviations expanded, as questions asked do."""
    return Views(
        [
            (question, text if text == question else synonyms.expand(text))
            for question in questions
            for text in (question, *phrasings.get(question, []))
        ],
        [(name, synonyms.expand(text)) for name, texts in uncovered.items() for text in texts],
    )


def lexicon_text(question: str, text: str) -> str:
    """What word matching reads of a passage: its interview question and its text."""
    return f"{question} {text}"


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


def speaker_record(speaker: Speaker) -> Record:
    return {
        "id": speaker.id,
        "name": speaker.name,
        "role": speaker.title,
        "organization": speaker.organization,
    }


def source_record(answer: Answer, lines: tuple[int, int]) -> Record:
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


def answer_record(answer: Answer) -> Record:
    return {
        "id": answer.id,
        "speaker": speaker_record(answer.speaker),
        "question": answer.question,
        "text": answer.text,
        "source": source_record(answer, answer.lines),
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


def jsonl(records: list[Record]) -> tuple[bytes, NDArray[np.int64]]:
    """JSON lines, and where each line starts."""
    lines = [(json.dumps(r, ensure_ascii=False) + "\n").encode() for r in records]
    starts = np.cumsum([0, *map(len, lines)], dtype=np.int64)[:-1]
    return b"".join(lines), starts


def current_version(index_dir: Path) -> Path | None:
    """The version folder the pointer names, if there is a pointer; a pointer that names
    anything but a folder directly inside versions/ is refused."""
    pointer = index_dir / POINTER
    if not os.path.lexists(pointer):
        return None
    raw = read_data(pointer, 4096)
    name = raw.decode("ascii", "replace").strip()
    if not VERSION_NAME.fullmatch(name):
        raise CareerbotError(
            f"{pointer} does not name a version in {index_dir / VERSIONS} "
            f"(it holds {raw[:60]!r}); {REBUILD}"
        )
    return index_dir / VERSIONS / name


def verifies(version_dir: Path) -> bool:
    try:
        read_version(version_dir)
    except CareerbotError:
        return False
    return True


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
# passages by scripts/scale.py (recall@10 against exact search stays above 0.95): building
# 160 wide gave recall 0.962 in 14 s, 200 wide 0.970 in 18 s, 100 wide 0.940.
HNSW_LINKS, HNSW_BUILD_DEPTH, HNSW_SEARCH_DEPTH = 32, 160, 128


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
        files = {name: sha256(staging / name) for name in DATA_FILES}
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


def curation(transcripts: list[Transcript]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The corpus's phrasings and uncovered topics; an uncovered topic may not claim an
    interview question or a phrasing, which would make that question unanswerable."""
    phrasings = merged([t.curation.phrasings for t in transcripts])
    uncovered = merged([t.curation.uncovered for t in transcripts])
    covered = {plain(text) for q, texts in phrasings.items() for text in (q, *texts)}
    covered |= {plain(question.text) for t in transcripts for question in t.questions}
    for name, texts in uncovered.items():
        for text in texts:
            if plain(text) in covered:
                raise CareerbotError(
                    f"[uncovered.{name}] lists {text[:100]!r}, which is an interview question "
                    "or one of its phrasings; a question cannot be both covered and not"
                )
    return phrasings, uncovered


def build_index(settings: Settings, embedder: Embedder, progress: bool = False) -> BuildSummary:
    """Parse, chunk and embed the whole corpus into settings.index_dir, reusing what the
    version being served already holds for answers and texts that have not changed."""
    started = time.perf_counter()
    transcripts = parse_corpus(settings.corpus_dir, settings.max_transcript_bytes)
    corpus_digest = corpus_sha256(settings.corpus_dir, settings.max_transcript_bytes)
    phrasings, uncovered = curation(transcripts)
    synonyms = Synonyms.read(settings.corpus_dir)
    answers = [answer for transcript in transcripts for answer in answers_of(transcript)]
    chunking = {"passage_tokens": settings.passage_tokens, "window": embedder.window}
    previous, problem = Previous.load(settings.index_dir, embedder, chunking)
    records = [answer_record(a) for a in answers]
    passages: list[Passage] = []
    with tqdm(
        total=sum(len(answer.text) for answer in answers),
        desc="Splitting",
        unit="char",
        unit_scale=True,
        disable=not progress,
    ) as bar:
        for answer, record in zip(answers, records, strict=True):
            passages += previous.passages(answer, record) or split_passages(
                answer, embedder.count_tokens, embedder.window, settings.passage_tokens
            )
            bar.update(len(answer.text))
    views = view_texts(
        list(dict.fromkeys(a.question for a in answers)), phrasings, uncovered, synonyms
    )
    texts = [embedding_text(p.answer, p.text) for p in passages] + views.texts
    keys = [passage_key(embedder.fingerprint, text) for text in texts]
    known = previous.vectors(keys)
    missing = [i for i, key in enumerate(keys) if key not in known]
    every = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    if missing:
        every[missing] = embedder.embed([texts[i] for i in missing], progress)
    for i, key in enumerate(keys):
        if key in known:
            every[i] = known[key]
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
        "careerbot_version": __version__,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    passage_lines, passage_starts = jsonl([passage_record(p) for p in passages])
    answer_lines, answer_starts = jsonl(records)
    bm25, vocabulary = word_model(
        [lexicon_text(p.answer.question, p.text) for p in passages], synonyms
    )
    listed = catalog(records, vocabulary)
    row_of = {answer.id: row for row, answer in enumerate(answers)}
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
        "faiss.index": faiss.serialize_index(searchable(every[: len(passages)], kind)).tobytes(),
        "passages.jsonl": passage_lines,
        "answers.jsonl": answer_lines,
        "passages.npy": npy(rows),
        "answers.npy": npy(answer_starts),
        "catalog.json": listed.model_dump_json().encode(),
        "views.npy": npy(every[len(passages) :]),
        "keys.npy": npy(key_rows(keys)),
        "answer-keys.npy": npy(key_rows([split_key(record) for record in records])),
    }
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
            *([problem] if problem else []),
            *clean_up(settings.index_dir),
        ),
        len(passages) - sum(1 for i in missing if i < len(passages)),
    )


def passage_key(fingerprint: str, text: str) -> bytes:
    return hashlib.sha256(f"{fingerprint}\0{text}".encode()).digest()[:KEY_BYTES]


def key_rows(keys: list[bytes]) -> NDArray[np.uint8]:
    return np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES)


def split_key(record: Record) -> bytes:
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
        cls, index_dir: Path, embedder: Embedder, chunking: dict[str, int]
    ) -> tuple["Previous", str | None]:
        """The version CURRENT names, verified; nothing to reuse when there is none or it
        was made by another model. A version that does not verify, or whose keys do not
        fit its vectors, is not trusted: nothing of it is used, and the second value
        says why."""
        nothing = cls({}, {}, empty(embedder.dimension))
        where = str(index_dir / POINTER)
        try:
            version_dir = current_version(index_dir)
            if version_dir is None:
                return nothing, None
            where = str(version_dir)
            if not version_dir.is_dir():
                raise CareerbotError("it names a version that is missing")
            manifest = read_version(version_dir)
            if manifest.fingerprint != embedder.fingerprint:
                return nothing, None
            index = open_version(version_dir, manifest)
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
                split_of = [bytes(key) for key in splits]
                for answer, start, end in index.rows[:, [ANSWER, START, END]].tolist():
                    spans.setdefault(split_of[answer], []).append((start, end))
            rows = {bytes(key): row for row, key in enumerate(keys)}
            return cls(spans, rows, stored), None
        except (CareerbotError, RuntimeError, ValueError, EOFError, KeyError, TypeError) as error:
            return nothing, f"{where} is not reused ({error}); all is made anew"

    def passages(self, answer: Answer, record: Record) -> list[Passage]:
        """The answer's passages as last split, when an answer of the same text, question
        and speaker was split before into well-formed spans; else none."""
        spans = self.spans.get(split_key(record), [])
        ends = [0] + [end for _, end in spans]
        if not all(
            0 <= start < end <= len(answer.text) and end > ends[number - 1]
            for number, (start, end) in enumerate(spans, start=1)
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


def read_data(path: Path, max_bytes: int) -> bytes:
    try:
        return read_limited(path, max_bytes)
    except CareerbotError as error:
        raise CareerbotError(f"{error}; {REBUILD}") from None


def verify_file(path: Path, size: int, digest: str) -> None:
    """Check a data file against its manifest: a regular file, of that size (checked before
    anything is read), with that SHA-256 (streamed, not kept)."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as error:
        raise CareerbotError(f"{path}: cannot be read ({error.strerror}); {REBUILD}") from None
    info = os.fstat(handle)
    if not stat.S_ISREG(info.st_mode):
        os.close(handle)
        raise CareerbotError(f"{path}: not a regular file; {REBUILD}")
    with os.fdopen(handle, "rb") as file:
        if info.st_size != size:
            raise CareerbotError(
                f"{path} does not match its checksum in the manifest (it has {info.st_size:,} "
                f"bytes, not {size:,}); {REBUILD}"
            )
        try:
            found = hashlib.file_digest(file, "sha256").hexdigest()
        except OSError as error:
            raise CareerbotError(f"{path}: cannot be read ({error.strerror}); {REBUILD}") from None
    if found != digest:
        raise CareerbotError(f"{path} does not match its checksum in the manifest; {REBUILD}")


def read_version(version_dir: Path) -> Manifest:
    """A version's manifest, once it and every data file verify: the manifest against the
    digest in the folder's name, the files against the manifest (streamed, not kept).
    Raises CareerbotError with one line that says what is wrong."""
    name = version_dir.name
    if not VERSION_NAME.fullmatch(name):
        raise CareerbotError(f"{version_dir} is not a version made by this careerbot; {REBUILD}")
    manifest_path = version_dir / "manifest.json"
    if not os.path.lexists(manifest_path):
        raise CareerbotError(f"{version_dir} has no manifest; {REBUILD}")
    raw = read_data(manifest_path, SMALL_FILE_BYTES)
    if not name.endswith("-" + hashlib.sha256(raw).hexdigest()[:MANIFEST_DIGEST]):
        raise CareerbotError(f"{manifest_path} does not match the digest in its name; {REBUILD}")
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(map(str, first["loc"])) or "manifest"
        raise CareerbotError(
            f"{manifest_path} is not a careerbot manifest of format {FORMAT} "
            f"({where}: {first['msg']}); {REBUILD}"
        ) from None
    for file_name in DATA_FILES:
        path = version_dir / file_name
        if not os.path.lexists(path):
            raise CareerbotError(f"{path} is missing; {REBUILD}")
        verify_file(path, manifest.sizes[file_name], manifest.files[file_name])
    return manifest


def load_index(index_dir: Path, embedder: Embedder) -> LoadedIndex:
    """Load the version CURRENT names, refusing it with one line that says what is wrong
    unless all agrees."""
    version_dir = current_version(index_dir)
    if version_dir is None:
        raise NoIndex(f"no index at {index_dir} (run: careerbot build)")
    if not version_dir.is_dir():
        raise CareerbotError(f"{index_dir}/{POINTER} names {version_dir}, which is missing")
    return load_version(version_dir, embedder)


def load_newest(index_dir: Path, embedder: Embedder) -> tuple[LoadedIndex, list[str]]:
    """The version CURRENT names, or when that one is refused, the newest that verifies;
    with a line for each version refused on the way. Raises when none loads."""
    try:
        return load_index(index_dir, embedder), []
    except CareerbotError as error:
        refusal, problems = error, [str(error)]
    versions = index_dir / VERSIONS
    folders = sorted(versions.iterdir(), reverse=True) if versions.is_dir() else []
    for folder in folders:
        if not VERSION_NAME.fullmatch(folder.name) or folder.is_symlink():
            continue
        try:
            index = load_version(folder, embedder)
        except CareerbotError as error:
            problems.append(str(error))
            continue
        problems.append(f"serving {folder.name}, the newest version that verifies")
        return index, problems
    raise refusal


def load_version(version_dir: Path, embedder: Embedder) -> LoadedIndex:
    """Load one version folder, once it verifies and agrees with the model."""
    manifest = read_version(version_dir)
    if manifest.model != embedder.model_id:
        raise CareerbotError(
            f"{version_dir} was built with model {manifest.model!r}, not the configured "
            f"{embedder.model_id!r}; {REBUILD}"
        )
    if manifest.dimension != embedder.dimension:
        raise CareerbotError(
            f"{version_dir} holds {manifest.dimension}-dimensional vectors but the model makes "
            f"{embedder.dimension}-dimensional ones; {REBUILD}"
        )
    return open_version(version_dir, manifest)


def open_version(version_dir: Path, manifest: Manifest) -> LoadedIndex:
    """A verified version, its large files mapped rather than read: several processes
    serving it share their pages, and nothing the size of the corpus is worked through."""
    try:
        vectors = faiss.read_index(str(version_dir / "faiss.index"), faiss.IO_FLAG_MMAP_IFC)
        rows = np.load(version_dir / "passages.npy", mmap_mode="r", allow_pickle=False)
        starts = np.load(version_dir / "answers.npy", mmap_mode="r", allow_pickle=False)
        listed = Catalog.model_validate_json((version_dir / "catalog.json").read_bytes())
        views = np.load(version_dir / "views.npy", allow_pickle=False)
        bm25 = load_word_model(version_dir / BM25_DIR, manifest.passages)
    except CareerbotError as error:
        raise CareerbotError(f"{error}; {REBUILD}") from None
    except ValidationError as error:  # the catalog's; one line, as for the manifest
        first = error.errors()[0]
        where = ".".join(map(str, first["loc"])) or "catalog"
        raise CareerbotError(
            f"{version_dir}/catalog.json is not a careerbot catalog ({where}: {first['msg']}); "
            f"{REBUILD}"
        ) from None
    except (
        RuntimeError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,  # bm25s reads a vocabulary that is not a table
        EOFError,
        OSError,
    ) as error:
        raise CareerbotError(f"{version_dir} cannot be read ({error}); {REBUILD}") from None
    if len(listed.speakers) != manifest.speakers:
        raise CareerbotError(
            f"{version_dir}/catalog.json lists {len(listed.speakers)} speakers, the manifest "
            f"says {manifest.speakers}; {REBUILD}"
        )
    if vectors.d != manifest.dimension:
        raise CareerbotError(
            f"{version_dir}/faiss.index holds {vectors.d}-dimensional vectors, "
            f"the manifest says {manifest.dimension}; {REBUILD}"
        )
    if rows.dtype != np.int64 or rows.ndim != 2 or rows.shape[1] != 6:
        raise CareerbotError(f"{version_dir}/passages.npy is not a table of 6 columns; {REBUILD}")
    if starts.dtype != np.int64 or starts.ndim != 1 or len(starts) != manifest.answers:
        raise CareerbotError(f"{version_dir}/answers.npy does not fit the manifest; {REBUILD}")
    if not vectors.ntotal == len(rows) == manifest.passages:
        raise CareerbotError(
            f"{version_dir} is inconsistent: {vectors.ntotal} vectors, {len(rows)} passages, "
            f"manifest says {manifest.passages}; {REBUILD}"
        )
    limits = (manifest.answers, len(listed.topics), len(listed.speakers))
    if len(rows) and not all(
        rows[:, column].min() >= 0 and rows[:, column].max() < limit
        for column, limit in zip((ANSWER, TOPIC, SPEAKER), limits, strict=True)
    ):
        raise CareerbotError(f"{version_dir}: a passage names an unknown answer; {REBUILD}")
    line_starts = np.ascontiguousarray(rows[:, LINE])
    passages = Lines(version_dir / "passages.jsonl", line_starts, PASSAGE_RECORD)
    answers = Lines(version_dir / "answers.jsonl", starts, ANSWER_RECORD)
    expected = view_texts(
        [topic.question for topic in listed.topics],
        manifest.phrasings,
        manifest.uncovered,
        Synonyms(manifest.synonyms),
    )
    if (
        views.dtype != np.float32
        or views.shape != (len(expected.texts), manifest.dimension)
        or not np.isfinite(views).all()
    ):
        raise CareerbotError(
            f"{version_dir}/views.npy holds {views.dtype} {views.shape}, not the "
            f"{len(expected.texts)} views of the manifest as finite float32 numbers; {REBUILD}"
        )
    return LoadedIndex(
        version_dir.name, manifest, vectors, passages, answers, rows, listed, bm25, views, expected
    )


def search_vectors(index: faiss.Index, query: Vectors, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and ids of the k nearest passages, without FAISS's -1 padding. (An HNSW
    search looks at least k wide, whatever its search depth.)"""
    scores, ids = index.search(query, min(k, index.ntotal))
    keep = ids[0] >= 0
    return scores[0][keep], ids[0][keep]
