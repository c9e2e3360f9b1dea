"""A version folder of the index: what it holds, and loading it (mapped, not read) only
when it verifies."""

import hashlib
import mmap
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

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
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from careerbot import (
    SMALL_FILE_BYTES,
    CareerbotError,
    first_problem,
    read_limited,
)
from careerbot.embedding import Embedder, Vectors
from careerbot.lexical import (
    BM25_FILES,
    Synonyms,
    load_word_model,
)
from careerbot.metadata import MAX_PHRASING_CHARS, MAX_TOPIC_CHARS, TOPIC_NAME

# 2: the version folder's name carries its manifest's digest. 3: views.npy. 4: a record's
# source gives the interview's title, date and url. 5: keys.npy, the model's fingerprint.
# 6: all a server needs is made at build (catalog.json, the arrays, bm25/), to be mapped.
# 7: answer-keys.npy and the spans in passages.npy; the splitter's version in the manifest.
# 8: phrasings of answers, as views. 10: the documents that list each uncovered topic.
FORMAT = 10


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


# A version's name: its build time, then the first 24 hex digits of its manifest's SHA-256,
# so the pointer (which holds the name) vouches for the manifest, and the manifest for
# every other file. Nothing else is a version: no path, no dot, no separator.
MANIFEST_DIGEST = 24
VERSION_NAME = re.compile(rf"\d{{8}}T\d{{12}}Z-[0-9a-f]{{{MANIFEST_DIGEST}}}")


REBUILD = "rebuild it with: careerbot build"


Record = dict[str, Any]


Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


Count = Annotated[int, Field(ge=0)]


Phrasing = Annotated[str, Field(min_length=1, max_length=MAX_PHRASING_CHARS)]


class Chunking(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    passage_tokens: Annotated[int, Field(ge=1)]
    window: Annotated[int, Field(ge=1)]
    splitter: Annotated[int, Field(ge=1)]  # chunking.SPLITTER of the build


class AnswerPhrasings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    answer: Annotated[str, Field(min_length=1)]  # its id
    row: Count
    phrasings: Annotated[list[Phrasing], Field(min_length=1)]
    # Every answer of its transcript has phrasings: scored with the weights for that.
    whole: bool


class AnswerRows(BaseModel):
    """Rows first to end (not included) of answers.jsonl."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    first: Count
    end: Count


class Manifest(BaseModel):
    """What a version holds and how it was built; every field checked when it loads."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    format: Literal[10]
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
    uncovered: dict[
        Annotated[str, Field(pattern=f"^{TOPIC_NAME.pattern}$", max_length=MAX_TOPIC_CHARS)],
        list[Phrasing],
    ] = {}
    # The documents whose metadata lists each uncovered topic: under the speaker filter
    # only the topics of that speaker's documents are judged (another may answer them).
    uncovered_by: dict[str, Annotated[list[str], Field(min_length=1)]] = {}
    # What particular answers answer, by their row in answers.jsonl.
    answer_phrasings: list[AnswerPhrasings] = []
    # The answers of transcripts scored with the plain weights: some interview question
    # of theirs has no phrasings, and some answer none.
    plain: list[AnswerRows] = []
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

    @model_validator(mode="after")
    def topics_listed_by_documents(self) -> "Manifest":
        if self.uncovered_by.keys() != self.uncovered.keys():
            raise ValueError("uncovered_by must name exactly the uncovered topics")
        documents = set(self.documents)
        if any(not set(d) <= documents for d in self.uncovered_by.values()):
            raise ValueError("uncovered_by may name only the manifest's documents")
        if any(len(set(d)) < len(d) for d in self.uncovered_by.values()):
            raise ValueError("uncovered_by names a document twice for a topic")
        return self


class NoIndex(CareerbotError):
    """There is no index yet."""


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


PASSAGE_RECORD: TypeAdapter[PassageRecord] = TypeAdapter(PassageRecord)


ANSWER_RECORD: TypeAdapter[AnswerRecord] = TypeAdapter(AnswerRecord)


R = TypeVar("R", PassageRecord, AnswerRecord)


class Lines(Generic[R]):
    """The records of a JSON-lines file, each parsed when asked for: a server reads only
    the passages and answers it returns. Parsing every record at load would cost time the
    size of the corpus, so each is checked against `kind` as it is parsed: one that is
    not what the build wrote is DamagedIndex, one line, never a KeyError mid-request."""

    def __init__(self, path: Path, starts: NDArray[np.int64], kind: TypeAdapter[R]) -> None:
        self.path = path
        self.kind: TypeAdapter[R] = kind
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

    def __getitem__(self, row: int) -> R:
        if not 0 <= row < len(self.starts):
            raise IndexError(row)
        try:
            return self.kind.validate_json(self.data[self.starts[row] : self.ends[row]])
        except ValidationError as error:
            raise DamagedIndex(
                f"{self.path}: line {row + 1} is not what careerbot build writes "
                f"({first_problem(error, 'record')}); {REBUILD}"
            ) from None

    def __iter__(self) -> Iterator[R]:
        return (self[row] for row in range(len(self)))


@dataclass(frozen=True)
class LoadedIndex:
    version: str
    manifest: Manifest
    vectors: faiss.Index
    passages: Lines[PassageRecord]
    answers: Lines[AnswerRecord]
    rows: NDArray[np.int64]  # per passage: LINE, ANSWER, TOPIC, SPEAKER, START, END
    catalog: Catalog
    bm25: bm25s.BM25
    # The vectors of `layout`'s views, in its order: topics, answers, uncovered topics.
    views: Vectors
    layout: "Views"


@dataclass(frozen=True)
class Views:
    """What the model embeds for each interview question, answer and uncovered topic: the
    question itself and each of its phrasings, which say how else people ask it; what a
    particular answer answers; how people ask about a topic the corpus does not cover."""

    topics: list[tuple[str, str]]  # (interview question, view text)
    answers: list[tuple[int, str]]  # (answer's row, phrasing)
    uncovered: list[tuple[str, str]]  # (topic name, phrasing)

    @property
    def texts(self) -> list[str]:
        return [text for _, text in (*self.topics, *self.answers, *self.uncovered)]


def view_texts(
    questions: list[str],
    phrasings: dict[str, list[str]],
    answers: list[AnswerPhrasings],
    uncovered: dict[str, list[str]],
    synonyms: Synonyms,
) -> Views:
    """The views of the corpus's interview questions (in the order given), answers and
    uncovered topics; phrasings have their abbreviations expanded, as questions asked do."""
    return Views(
        [
            (question, text if text == question else synonyms.expand(text))
            for question in questions
            for text in (question, *phrasings.get(question, []))
        ],
        [(a.row, synonyms.expand(text)) for a in answers for text in a.phrasings],
        [(name, synonyms.expand(text)) for name, texts in uncovered.items() for text in texts],
    )


def lexicon_text(question: str, text: str) -> str:
    """What word matching reads of a passage: its interview question and its text."""
    return f"{question} {text}"


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
        raise CareerbotError(
            f"{manifest_path} is not a careerbot manifest of format {FORMAT} "
            f"({first_problem(error, 'manifest')}); {REBUILD}"
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
    return load_named(index_dir, current_version(index_dir), embedder)


def load_named(index_dir: Path, version_dir: Path | None, embedder: Embedder) -> LoadedIndex:
    """load_index, for the version CURRENT was found to name."""
    if version_dir is None:
        raise NoIndex(f"no index at {index_dir} (run: careerbot build)")
    check_named(index_dir, version_dir)
    return load_version(version_dir, embedder)


def check_named(index_dir: Path, version_dir: Path) -> None:
    """Refuse the version folder CURRENT names when it is missing."""
    if not version_dir.is_dir():
        raise CareerbotError(f"{index_dir}/{POINTER} names {version_dir}, which is missing")


def version_folders(index_dir: Path) -> list[Path]:
    """The folders of index_dir's versions, newest first; none when they cannot be
    listed."""
    versions = index_dir / VERSIONS
    try:
        folders = sorted(versions.iterdir(), reverse=True) if versions.is_dir() else []
    except OSError:
        return []
    return [f for f in folders if VERSION_NAME.fullmatch(f.name) and not f.is_symlink()]


@dataclass(frozen=True)
class Newest:
    """What load_newest loaded, the lines said on the way, and the version CURRENT named
    when that one was refused ("CURRENT" when it named none that could be read)."""

    index: LoadedIndex
    problems: list[str]
    refused: str | None = None


def load_newest(index_dir: Path, embedder: Embedder) -> Newest:
    """The version CURRENT names, or when that one is refused, the newest that verifies;
    with a line for each version refused on the way. Raises when none loads."""
    # CURRENT is read once: a build may change it meanwhile.
    named: Path | None = None
    try:
        named = current_version(index_dir)
        return Newest(load_named(index_dir, named, embedder), [])
    except CareerbotError as error:
        refusal, problems = error, [str(error)]
    for folder in version_folders(index_dir):
        if named is not None and folder.name == named.name:
            continue  # refused above, and said
        try:
            index = load_version(folder, embedder)
        except CareerbotError as error:
            problems.append(str(error))
            continue
        problems.append(f"serving {folder.name}, the newest version that verifies")
        return Newest(index, problems, named.name if named else "CURRENT")
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
    if manifest.fingerprint != embedder.fingerprint:
        # Same name, other files: questions would be embedded unlike the passages.
        raise CareerbotError(
            f"{version_dir} was built with other files of model {manifest.model!r} "
            f"({manifest.fingerprint}, not {embedder.fingerprint}); {REBUILD}"
        )
    return open_version(version_dir, manifest)


def open_version(version_dir: Path, manifest: Manifest) -> LoadedIndex:
    """A verified version, its large files mapped rather than read: several processes
    serving it share their pages, and nothing the size of the corpus is worked through."""
    vectors, rows, starts, listed, views, bm25 = mapped(version_dir, manifest)
    check_tables(version_dir, manifest, vectors, rows, starts, listed)
    check_curation(version_dir, manifest, rows)
    expected = expected_views(version_dir, manifest, listed, views)
    line_starts = np.ascontiguousarray(rows[:, LINE])
    passages = Lines(version_dir / "passages.jsonl", line_starts, PASSAGE_RECORD)
    answers = Lines(version_dir / "answers.jsonl", starts, ANSWER_RECORD)
    return LoadedIndex(
        version_dir.name, manifest, vectors, passages, answers, rows, listed, bm25, views, expected
    )


def mapped(
    version_dir: Path, manifest: Manifest
) -> tuple[faiss.Index, NDArray[np.int64], NDArray[np.int64], Catalog, Vectors, bm25s.BM25]:
    """The version's FAISS index, passage table, answer starts, catalog, views and word
    model, the large ones mapped; anything unreadable is one line."""
    try:
        vectors = faiss.read_index(str(version_dir / "faiss.index"), faiss.IO_FLAG_MMAP_IFC)
        # Mapped, but as plain arrays: indexing a numpy memmap makes a memmap of every
        # piece, which /ask does several times an answer.
        rows = np.asarray(np.load(version_dir / "passages.npy", mmap_mode="r", allow_pickle=False))
        starts = np.asarray(np.load(version_dir / "answers.npy", mmap_mode="r", allow_pickle=False))
        listed = Catalog.model_validate_json((version_dir / "catalog.json").read_bytes())
        views = np.load(version_dir / "views.npy", allow_pickle=False)
        bm25 = load_word_model(version_dir / BM25_DIR, manifest.passages)
    except CareerbotError as error:
        raise CareerbotError(f"{error}; {REBUILD}") from None
    except ValidationError as error:  # the catalog's; one line, as for the manifest
        raise CareerbotError(
            f"{version_dir}/catalog.json is not a careerbot catalog "
            f"({first_problem(error, 'catalog')}); {REBUILD}"
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
    return vectors, rows, starts, listed, views, bm25


def check_tables(
    version_dir: Path,
    manifest: Manifest,
    vectors: faiss.Index,
    rows: NDArray[np.int64],
    starts: NDArray[np.int64],
    listed: Catalog,
) -> None:
    """The files agree with the manifest and each other: counts, shapes, and rows that name
    answers, interview questions and speakers there are."""
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


def check_curation(version_dir: Path, manifest: Manifest, rows: NDArray[np.int64]) -> None:
    """The manifest's answers with phrasings, and its spans of plain answers, fit the rows."""
    # The passages' answer rows are in range (check_tables): a row they name is one.
    phrased_rows = [phrased.row for phrased in manifest.answer_phrasings]
    if (
        len(set(phrased_rows)) < len(phrased_rows)
        or not np.isin(phrased_rows, rows[:, ANSWER]).all()
    ):
        raise CareerbotError(
            f"{version_dir}/manifest.json gives phrasings of an answer twice, or of an answer "
            f"without passages; {REBUILD}"
        )
    ends = [0] + [row for span in manifest.plain for row in (span.first, span.end)]
    if (
        ends != sorted(ends)
        or ends[-1] > manifest.answers
        or any(span.first == span.end for span in manifest.plain)
        or any(
            span.first <= phrased.row < span.end
            for phrased in manifest.answer_phrasings
            if phrased.whole
            for span in manifest.plain
        )
    ):
        raise CareerbotError(
            f"{version_dir}/manifest.json gives rows of answers for the plain weights that "
            f"are empty, out of order, past the answers or phrased whole; {REBUILD}"
        )


def expected_views(version_dir: Path, manifest: Manifest, listed: Catalog, views: Vectors) -> Views:
    """The views the manifest and catalog call for, which views.npy must hold."""
    expected = view_texts(
        [topic.question for topic in listed.topics],
        manifest.phrasings,
        manifest.answer_phrasings,
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
    return expected


def search_vectors(index: faiss.Index, query: Vectors, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and ids of the k nearest passages, without FAISS's -1 padding. (An HNSW
    search looks at least k wide, whatever its search depth.)"""
    scores, ids = index.search(query, min(k, index.ntotal))
    keep = ids[0] >= 0
    return scores[0][keep], ids[0][keep]
