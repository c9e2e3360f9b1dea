import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from careerbot import SMALL_FILE_BYTES, CareerbotError
from careerbot.cli import ensure_index
from careerbot.config import HNSW_FROM, Settings
from careerbot.curation import add_phrasing
from careerbot.index import HNSW_SEARCH_DEPTH, build_index, clean_up, index_kind, searchable, sha256
from careerbot.search import Searcher
from careerbot.version import (
    ANSWER,
    DATA_FILES,
    END,
    FORMAT,
    START,
    DamagedIndex,
    load_index,
    load_newest,
    search_vectors,
)
from tests.conftest import DATA as TEST_DATA
from tests.conftest import FakeEmbedder, metadata_file, served_version


@pytest.fixture
def built(settings: Settings, fake_embedder: FakeEmbedder) -> Path:
    build_index(settings, fake_embedder)
    return served_version(settings.index_dir)


def test_build_writes_the_data_files_and_a_manifest(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    summary = build_index(settings, fake_embedder)
    assert (summary.documents, summary.speakers, summary.answers) == (1, 2, 9)
    version = served_version(settings.index_dir)
    assert summary.index_dir == version
    raw = (version / "manifest.json").read_bytes()
    manifest = json.loads(raw)
    assert version.name.endswith("-" + hashlib.sha256(raw).hexdigest()[:24])
    assert manifest["model"] == "fake-model"
    assert manifest["dimension"] == 64
    assert manifest["passages"] == summary.passages > 9
    assert manifest["chunking"]["passage_tokens"] == settings.passage_tokens
    assert len(manifest["corpus_sha256"]) == 64
    for name, digest in manifest["files"].items():
        assert sha256(version / name) == digest
    assert sorted(p.name for p in settings.index_dir.iterdir()) == ["CURRENT", "versions"]
    assert [p.name for p in (settings.index_dir / "versions").iterdir()] == [version.name]


def test_round_trip_gives_back_every_passage_in_vector_order(
    built: Path, fake_embedder: FakeEmbedder
) -> None:
    index = load_index(built.parent.parent, fake_embedder)
    assert index.vectors.ntotal == len(index.passages) == index.manifest.passages
    first = index.passages[0]
    assert set(first) >= {"id", "answer_id", "speaker", "question", "text", "source"}
    assert first["speaker"] == {
        "id": "chirag-mahapatra",
        "name": "Chirag Mahapatra",
        "role": "Machine learning engineer at Airbnb",
        "organization": "Airbnb",
    }
    assert first["source"] == {
        "document": "corpus/ml-engineer-career-qa.txt",
        "lines": [7, 9],
        "title": "Machine learning engineer careers: Q&A with Airbnb and SurveyMonkey engineers",
        "date": None,
        "url": None,
    }
    answers = {answer["id"]: answer for answer in index.answers}
    for row, passage in enumerate(index.passages):
        answer = answers[passage["answer_id"]]
        assert index.answers[int(index.rows[row, ANSWER])] == answer
        start, end = passage["span"]
        assert answer["text"][start:end] == passage["text"]
    # Vector i is the embedding of passage i, with its question and speaker for context.
    # One call embeds the passages, in order, then the views of the interview questions.
    embedded = fake_embedder.calls[0][: len(index.passages)]
    assert len(fake_embedder.calls[0]) == len(index.passages) + len(index.views)
    for position, passage in enumerate(index.passages):
        assert embedded[position].endswith(passage["text"])
        assert embedded[position].startswith(passage["question"])
        stored = index.vectors.reconstruct(position)
        assert np.allclose(stored, fake_embedder.embed([embedded[position]])[0])


def test_the_views_of_each_interview_question_are_embedded_at_build_not_at_load(
    built: Path, fake_embedder: FakeEmbedder
) -> None:
    index = load_index(built.parent.parent, fake_embedder)
    phrasings = index.manifest.phrasings
    assert phrasings, "the default corpus lists phrasings"
    fake_embedder.calls.clear()
    searcher = Searcher(index, fake_embedder)
    assert fake_embedder.calls == []  # nothing embedded to load
    question, texts = next(iter(phrasings.items()))
    topic = list(searcher.topics).index(question)
    rows = np.flatnonzero(searcher.view_topic == topic)
    assert len(rows) == 1 + len(texts)
    # The first view is the interview question itself, the rest its phrasings.
    assert np.allclose(searcher.view_vectors[rows[0]], fake_embedder.embed([question])[0])
    expanded = [searcher.synonyms.expand(text) for text in texts]
    assert np.allclose(searcher.view_vectors[rows[1:]], fake_embedder.embed(expanded))


INTERVIEW = (
    '[interview]\ntitle = "Ada on computing"\ndate = 1843-09-01\n'
    'url = "https://example.org/ada"\n\n'
)


def test_the_interview_title_date_and_url_are_in_every_source(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ada.txt").write_text("Why?\n\nAda: I do.\n\nHow?\n\nAda: With care.\n")
    (corpus / "ada.speakers.toml").write_text(f'{INTERVIEW}[speakers.Ada]\nname = "Ada"\n')
    (corpus / "plain.txt").write_text("When?\n\nGrace: Now.\n")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    build_index(settings, FakeEmbedder())
    index = load_index(settings.index_dir, FakeEmbedder())
    sources = {record["id"]: record["source"] for record in [*index.answers, *index.passages]}
    assert sources["ada/1/ada"] == {
        "document": "corpus/ada.txt",
        "lines": [3, 3],
        "title": "Ada on computing",
        "date": "1843-09-01",
        "url": "https://example.org/ada",
    }
    assert all(s["title"] == "Ada on computing" for i, s in sources.items() if i.startswith("ada/"))
    # Without a metadata file (or an [interview] table) each field is null.
    assert sources["plain/1/grace"] == {
        "document": "corpus/plain.txt",
        "lines": [3, 3],
        "title": None,
        "date": None,
        "url": None,
    }


def test_an_index_of_an_older_format_is_rebuilt(
    built: Path,
    settings: Settings,
    fake_embedder: FakeEmbedder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its records lack what this version reads: it is refused, and serving rebuilds it."""
    sealed = reseal(built, format=FORMAT - 1)
    with pytest.raises(CareerbotError, match=rf"not a careerbot manifest of format {FORMAT} \("):
        load_index(settings.index_dir, fake_embedder)
    index, problems = ensure_index(settings, fake_embedder)
    assert f"format: Input should be {FORMAT}" in capsys.readouterr().err
    assert (index.manifest.format, problems) == (FORMAT, [])
    assert set(index.passages[0]["source"]) == {"document", "lines", "title", "date", "url"}
    assert served_version(settings.index_dir) != sealed


def test_views_that_do_not_match_the_manifest_are_refused(
    built: Path, fake_embedder: FakeEmbedder
) -> None:
    sealed = reseal_array(built, "views.npy", lambda views: views[:-1])
    with pytest.raises(CareerbotError, match=r"views\.npy holds float32 \(\d+, 64\), not the \d+"):
        load_index(sealed.parent.parent, fake_embedder)


def test_views_holding_pickled_objects_are_refused_unread(
    built: Path, fake_embedder: FakeEmbedder
) -> None:
    np.save(built / "views.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    sealed = reseal(built)
    with pytest.raises(CareerbotError, match=r"cannot be read \(Object arrays cannot be loaded"):
        load_index(sealed.parent.parent, fake_embedder)


def test_rebuild_publishes_a_new_version_and_keeps_the_last_few(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    (settings.corpus_dir / "ml-engineer-career-qa.speakers.toml").unlink()
    build_index(settings, fake_embedder)
    index = load_index(settings.index_dir, fake_embedder)
    assert index.version != built.name
    assert index.passages[0]["speaker"]["name"] == "Chirag"
    for _ in range(3):
        build_index(settings, fake_embedder)
    versions = sorted(p.name for p in (settings.index_dir / "versions").iterdir())
    assert len(versions) == 3
    assert served_version(settings.index_dir).name == versions[-1]


def test_failed_build_leaves_the_pointer_and_no_leftovers(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    pointer = (settings.index_dir / "CURRENT").read_text()
    (settings.corpus_dir / "broken.txt").write_text("no questions here\n")
    with pytest.raises(CareerbotError, match=r"broken\.txt:1"):
        build_index(settings, fake_embedder)
    assert (settings.index_dir / "CURRENT").read_text() == pointer
    assert [p.name for p in (settings.index_dir / "versions").iterdir()] == [built.name]


def test_a_build_failing_while_writing_changes_nothing(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    pointer = (settings.index_dir / "CURRENT").read_text()

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("careerbot.index.jsonl", full_disk)
    with pytest.raises(OSError, match="No space left"):
        build_index(settings, fake_embedder)
    assert (settings.index_dir / "CURRENT").read_text() == pointer
    assert [p.name for p in (settings.index_dir / "versions").iterdir()] == [built.name]
    assert load_index(settings.index_dir, fake_embedder).version == built.name


def test_leftovers_of_a_killed_build_are_ignored_then_cleaned(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    # What a build killed half-way leaves: a staging folder of a process that is gone.
    leftover = settings.index_dir / "versions" / ".building-999999-20990101T000000000000Z"
    leftover.mkdir()
    (leftover / "faiss.index").write_bytes(b"half")
    assert load_index(settings.index_dir, fake_embedder).version == built.name
    build_index(settings, fake_embedder)
    assert not leftover.exists()


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def drop_last_line(path: Path) -> None:
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))


DAMAGE = {
    "truncated faiss.index": (
        lambda d: (d / "faiss.index").write_bytes((d / "faiss.index").read_bytes()[:100]),
        r"faiss\.index does not match its checksum",
    ),
    "flipped byte in faiss.index": (
        lambda d: flip_byte(d / "faiss.index"),
        r"faiss\.index does not match its checksum",
    ),
    "missing passages.jsonl": (
        lambda d: (d / "passages.jsonl").unlink(),
        r"passages\.jsonl is missing",
    ),
    "passages one line short": (
        lambda d: drop_last_line(d / "passages.jsonl"),
        r"passages\.jsonl does not match its checksum",
    ),
    "manifest not JSON": (
        lambda d: (d / "manifest.json").write_text("{"),
        r"manifest\.json does not match the digest in its name",
    ),
    "empty faiss.index": (
        lambda d: (d / "faiss.index").write_bytes(b""),
        r"faiss\.index does not match its checksum",
    ),
    "no manifest": (lambda d: (d / "manifest.json").unlink(), r"has no manifest"),
    "no pointer": (lambda d: (d.parent.parent / "CURRENT").unlink(), r"no index at .*build"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_damaged_index_is_refused_with_one_clear_line(
    built: Path, fake_embedder: FakeEmbedder, case: str
) -> None:
    damage, message = DAMAGE[case]
    damage(built)
    with pytest.raises(CareerbotError, match=message) as error:
        load_index(built.parent.parent, fake_embedder)
    assert "\n" not in str(error.value)


def reseal_array(version_dir: Path, name: str, change: Callable[[Any], Any]) -> Path:
    """Replace one of a version's arrays by `change` of it, then reseal the version."""
    np.save(version_dir / name, change(np.load(version_dir / name)))
    return reseal(version_dir)


def assigned(array: Any, where: Any, value: Any) -> Any:
    """A copy of the array with array[where] = value."""
    changed = array.copy()
    changed[where] = value
    return changed


def reseal(version_dir: Path, **changes: object) -> Path:
    """Rewrite a version's manifest (with changes) and rename the folder and the pointer to
    match, as a forger would, to reach the checks behind the digests."""
    manifest = json.loads((version_dir / "manifest.json").read_text())
    manifest["files"] = {name: sha256(version_dir / name) for name in DATA_FILES}
    manifest["sizes"] = {name: (version_dir / name).stat().st_size for name in DATA_FILES}
    manifest.update(changes)
    raw = json.dumps(manifest).encode()
    (version_dir / "manifest.json").write_bytes(raw)
    stamp = version_dir.name.split("-")[0]
    sealed = version_dir.rename(version_dir.parent / f"{stamp}-{sha256_of(raw)[:24]}")
    (sealed.parent.parent / "CURRENT").write_text(sealed.name)
    return sealed


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rehash(version_dir: Path) -> None:
    reseal(version_dir)


def test_passages_one_line_short_is_refused_even_with_matching_checksums(
    built: Path, fake_embedder: FakeEmbedder
) -> None:
    drop_last_line(built / "passages.jsonl")
    rehash(built)
    with pytest.raises(CareerbotError, match=r"passages\.jsonl: its line offsets do not fit it"):
        load_index(built.parent.parent, fake_embedder)


def test_random_bytes_as_faiss_index_are_refused_even_with_matching_checksums(
    built: Path, fake_embedder: FakeEmbedder
) -> None:
    (built / "faiss.index").write_bytes(bytes(range(256)) * 4)
    rehash(built)
    with pytest.raises(CareerbotError, match=r"cannot be read"):
        load_index(built.parent.parent, fake_embedder)


def test_index_from_a_model_of_another_dimension_is_refused(built: Path) -> None:
    other = FakeEmbedder(dimension=32)
    with pytest.raises(CareerbotError, match=r"64-dimensional vectors but the model makes 32"):
        load_index(built.parent.parent, other)


def test_index_from_another_model_is_refused(built: Path) -> None:
    other = FakeEmbedder(model_id="another-model")
    with pytest.raises(CareerbotError, match=r"built with model 'fake-model', not .*another-model"):
        load_index(built.parent.parent, other)


def test_small_corpora_get_exact_search_and_hnsw_is_a_setting(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    build_index(settings, fake_embedder)
    exact = load_index(settings.index_dir, fake_embedder)
    assert exact.manifest.index_type == "flat"
    assert isinstance(exact.vectors, faiss.IndexFlatIP)
    build_index(settings.model_copy(update={"index_type": "hnsw"}), fake_embedder)
    graph = load_index(settings.index_dir, fake_embedder)
    assert graph.manifest.index_type == "hnsw"
    assert isinstance(graph.vectors, faiss.IndexHNSWFlat)
    assert graph.vectors.hnsw.efSearch == HNSW_SEARCH_DEPTH
    query = fake_embedder.embed(["machine learning engineer interviews"])
    exact_scores, exact_ids = search_vectors(exact.vectors, query, 10)
    graph_scores, graph_ids = search_vectors(graph.vectors, query, 10)
    assert list(graph_ids) == list(exact_ids)
    assert np.allclose(graph_scores, exact_scores, atol=1e-5)


def test_hnsw_finds_more_neighbours_than_its_search_depth_when_asked() -> None:
    vectors = np.random.default_rng(7).standard_normal((2000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    graph, exact = searchable(vectors, "hnsw"), searchable(vectors, "flat")
    wanted = 4 * HNSW_SEARCH_DEPTH
    _, graph_ids = search_vectors(graph, vectors[:1], wanted)
    _, exact_ids = search_vectors(exact, vectors[:1], wanted)
    assert len(graph_ids) == len(set(graph_ids)) == wanted
    assert len(set(graph_ids[:10]) & set(exact_ids[:10])) >= 9


def test_auto_picks_hnsw_for_large_corpora() -> None:
    assert index_kind("auto", HNSW_FROM - 1) == "flat"
    assert index_kind("auto", HNSW_FROM) == "hnsw"
    assert index_kind("flat", 10 * HNSW_FROM) == "flat"


def test_an_edited_manifest_is_refused_by_the_digest_in_the_version_name(
    built: Path, fake_embedder: FakeEmbedder
) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    manifest["synonyms"]["ml"] = ["PWNED"]
    (built / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    with pytest.raises(CareerbotError, match=r"manifest\.json does not match the digest"):
        load_index(built.parent.parent, fake_embedder)


MANIFESTS = {
    "speakers as text": ({"speakers": "two"}, r"speakers: Input should be a valid integer"),
    "documents as a number": ({"documents": 7}, r"documents: Input should be a valid array"),
    "no files": ({"files": []}, r"files: Input should be an object"),
    "a file missing": ({"files": {}}, r"files: Value error, must list exactly"),
    "synonym not a list": ({"synonyms": {"ml": 5}}, r"synonyms\.ml: Input should be a valid array"),
    "empty synonym key": ({"synonyms": {"": ["x"]}}, r"synonyms"),
    "unknown field": ({"extra": 1}, r"extra: Extra inputs are not permitted"),
    "older format": ({"format": 9}, r"format: Input should be 10"),
    "an uncovered topic listed by no document": (
        {"uncovered": {"pay": ["what do they earn"]}},
        r"uncovered_by must name exactly the uncovered topics",
    ),
    "an uncovered topic listed by no document, emptily": (
        {"uncovered": {"pay": ["what do they earn"]}, "uncovered_by": {"pay": []}},
        r"uncovered_by\.pay: List should have at least 1 item",
    ),
    "an uncovered topic listed twice by one document": (
        {
            "documents": ["x.txt"],
            "uncovered": {"pay": ["what do they earn"]},
            "uncovered_by": {"pay": ["x.txt"] * 2},
        },
        r"uncovered_by names a document twice for a topic",
    ),
    "an uncovered topic listed by a document not indexed": (
        {"uncovered": {"pay": ["what do they earn"]}, "uncovered_by": {"pay": ["elsewhere.txt"]}},
        r"uncovered_by may name only the manifest's documents",
    ),
    "negative count": ({"passages": -1}, r"passages: Input should be greater than or equal"),
    "an answer's phrasings past the answers": (
        {"answer_phrasings": [{"answer": "x/1/ada", "row": 9, "phrasings": ["y"], "whole": True}]},
        r"gives phrasings of an answer twice, or of an answer without passages",
    ),
    "an answer's phrasings twice": (
        {
            "answer_phrasings": [
                {"answer": "x/1/ada", "row": 0, "phrasings": ["y"], "whole": True},
                {"answer": "x/1/ada", "row": 0, "phrasings": ["z"], "whole": True},
            ]
        },
        r"gives phrasings of an answer twice, or of an answer without passages",
    ),
    "an answer without phrasings": (
        {"answer_phrasings": [{"answer": "x/1/ada", "row": 0, "phrasings": [], "whole": True}]},
        r"answer_phrasings\.0\.phrasings: List should have at least 1 item",
    ),
    "plain rows past the answers": (
        {"plain": [{"first": 0, "end": 10_000}]},
        r"rows of answers for the plain weights that are empty, out of order, past the",
    ),
    "plain rows out of order": (
        {"plain": [{"first": 2, "end": 3}, {"first": 0, "end": 1}]},
        r"rows of answers for the plain weights that are empty, out of order, past the",
    ),
    "plain rows empty": (
        {"plain": [{"first": 1, "end": 1}]},
        r"rows of answers for the plain weights that are empty, out of order, past the",
    ),
    "plain rows phrased whole": (
        {
            "plain": [{"first": 0, "end": 1}],
            "answer_phrasings": [
                {"answer": "x/1/ada", "row": 0, "phrasings": ["y"], "whole": True}
            ],
        },
        r"rows of answers for the plain weights that .* or phrased whole",
    ),
    "plain rows as text": (
        {"plain": [{"first": "0", "end": 1}]},
        r"plain\.0\.first: Input should be a valid integer",
    ),
    "an answer's phrasings without whole": (
        {"answer_phrasings": [{"answer": "x/1/ada", "row": 0, "phrasings": ["y"]}]},
        r"answer_phrasings\.0\.whole: Field required",
    ),
}


@pytest.mark.parametrize("case", MANIFESTS)
def test_a_manifest_is_validated_field_by_field_even_when_its_digests_agree(
    built: Path, fake_embedder: FakeEmbedder, case: str
) -> None:
    changes, message = MANIFESTS[case]
    sealed = reseal(built, **changes)
    with pytest.raises(CareerbotError, match=message) as error:
        load_index(sealed.parent.parent, fake_embedder)
    assert "\n" not in str(error.value)


POINTERS = {
    "bytes that are not text": b"\xff\xfe garbage",
    "a 300-character name": b"2" * 300,
    "an absolute path": b"/etc",
    "a path out of versions": b"../versions/x",
    "empty": b"",
}


@pytest.mark.parametrize("case", POINTERS)
def test_current_can_only_name_a_version_folder_inside_versions(
    built: Path, fake_embedder: FakeEmbedder, case: str
) -> None:
    (built.parent.parent / "CURRENT").write_bytes(POINTERS[case])
    with pytest.raises(CareerbotError, match=r"CURRENT does not name a version in") as error:
        load_index(built.parent.parent, fake_embedder)
    assert "\n" not in str(error.value)


def fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


NOT_FILES: dict[str, Callable[[Path], None]] = {
    "a FIFO": fifo,
    "a directory": lambda path: (path.unlink(), path.mkdir()),
    "a device": lambda path: (path.unlink(), path.symlink_to("/dev/zero")),
}


@pytest.mark.parametrize("case", NOT_FILES)
def test_current_that_is_not_a_file_is_refused_without_reading_it(
    built: Path, fake_embedder: FakeEmbedder, case: str
) -> None:
    NOT_FILES[case](built.parent.parent / "CURRENT")
    with pytest.raises(CareerbotError, match=r"CURRENT: not a regular file; rebuild"):
        load_index(built.parent.parent, fake_embedder)


@pytest.mark.parametrize("case", NOT_FILES)
def test_a_data_file_that_is_not_a_file_is_refused_without_reading_it(
    built: Path, fake_embedder: FakeEmbedder, case: str
) -> None:
    NOT_FILES[case](built / "faiss.index")  # a FIFO blocked the reader for good
    with pytest.raises(CareerbotError, match=r"faiss\.index: not a regular file; rebuild"):
        load_index(built.parent.parent, fake_embedder)


def test_a_data_file_larger_than_the_manifest_says_is_refused_before_it_is_read(
    built: Path, fake_embedder: FakeEmbedder
) -> None:
    with (built / "passages.jsonl").open("r+b") as file:
        file.truncate(8 * 1024**3)  # 8 GiB, sparse: reading it would take all memory
    with pytest.raises(
        CareerbotError,
        match=r"passages\.jsonl does not match its checksum in the manifest \(it has 8,589,934,592",
    ):
        load_index(built.parent.parent, fake_embedder)


def test_a_build_that_cannot_swap_the_pointer_says_so_and_leaves_no_temporary_file(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    pointer = settings.index_dir / "CURRENT"
    pointer.unlink()
    pointer.mkdir()
    with pytest.raises(CareerbotError, match=r"cannot point .*CURRENT at the new version"):
        build_index(settings, fake_embedder)
    assert not list(settings.index_dir.glob(".CURRENT-*"))


def test_what_clean_up_cannot_remove_is_a_warning_not_a_failed_build(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    (settings.index_dir / "versions" / "stray").mkdir()

    def refuse(path: Path) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("careerbot.index.remove", refuse)
    summary = build_index(settings, fake_embedder)
    assert summary.warnings == (f"could not remove {built.parent / 'stray'} (Permission denied)",)
    assert served_version(settings.index_dir) == summary.index_dir


def test_current_naming_another_index_by_absolute_path_is_refused(
    built: Path, tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    (built.parent.parent / "CURRENT").write_text(str(built))
    with pytest.raises(CareerbotError, match=r"does not name a version"):
        load_index(built.parent.parent, fake_embedder)


def test_a_damaged_current_version_falls_back_to_the_newest_that_verifies(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    second = build_index(settings, fake_embedder).index_dir
    third = build_index(settings, fake_embedder).index_dir
    (third / "faiss.index").write_bytes(b"damaged")
    newest = load_newest(settings.index_dir, fake_embedder)
    assert newest.index.version == second.name
    assert "faiss.index does not match its checksum" in newest.problems[0]
    assert newest.problems[-1] == f"serving {second.name}, the newest version that verifies"
    assert newest.refused == third.name  # the version CURRENT named, as it was read
    (settings.index_dir / "CURRENT").write_text("not-a-version")
    assert load_newest(settings.index_dir, fake_embedder).refused == "CURRENT"
    (settings.index_dir / "CURRENT").write_text(second.name)
    loaded = load_newest(settings.index_dir, fake_embedder)
    assert (loaded.index.version, loaded.problems, loaded.refused) == (second.name, [], None)


def test_with_no_version_that_verifies_loading_says_why_the_current_one_failed(
    built: Path, fake_embedder: FakeEmbedder
) -> None:
    (built / "faiss.index").write_bytes(b"damaged")
    with pytest.raises(CareerbotError, match=r"faiss\.index does not match its checksum"):
        load_newest(built.parent.parent, fake_embedder)


def test_clean_up_keeps_the_served_version_and_the_newest_good_ones_and_drops_refused_ones(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    versions = settings.index_dir / "versions"
    second, third = (build_index(settings, fake_embedder).index_dir for _ in range(2))
    (settings.index_dir / "CURRENT").write_text(built.name)  # served: the oldest
    digest = second.name.split("-")[1]
    older = [versions / f"{year}0101T000000000000Z-{digest}" for year in (1998, 1999)]
    for copy in older:  # good versions, older than everything else
        shutil.copytree(second, copy)
    (third / "answers.jsonl").write_text("damaged")
    corrupt = versions / f"29991231T235959999999Z-{'0' * 24}"  # sorts last, never verifies
    corrupt.mkdir()
    (corrupt / "manifest.json").write_text("{}")
    (versions / "not-a-version").mkdir()
    clean_up(settings.index_dir)
    kept = sorted(p.name for p in versions.iterdir())
    assert kept == sorted([built.name, older[1].name, second.name])


NEW_TRANSCRIPT = """Intro.

How do you pick a first project?

Ada: Start with data you care about, and finish something small.

Why write tests?

Ada: Tests let you change code without fear.
"""


def test_a_rebuild_embeds_only_what_is_new_and_matches_a_full_build(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    before = load_index(settings.index_dir, fake_embedder)
    (settings.corpus_dir / "ada.txt").write_text(NEW_TRANSCRIPT)
    fake_embedder.calls.clear()
    summary = build_index(settings, fake_embedder)
    after = load_index(settings.index_dir, fake_embedder)
    new = [p for p in after.passages if p["answer_id"].startswith("ada/")]
    assert summary.reused == len(before.passages) and summary.passages == summary.reused + len(new)
    assert "reused" in str(summary) and f"{len(new)} embedded" in str(summary)
    # Only the new passages were embedded, and the new interview questions (views).
    assert fake_embedder.calls[0][len(new) :] == [
        "How do you pick a first project?",
        "Why write tests?",
    ]
    assert all(
        text.endswith(p["text"])
        for text, p in zip(fake_embedder.calls[0][: len(new)], new, strict=True)
    )
    same_as_a_full_build(settings, tmp_path)


def test_vectors_of_another_model_are_not_reused(built: Path, settings: Settings) -> None:
    other = FakeEmbedder(model_id="another-model")
    summary = build_index(settings, other)
    index = load_index(settings.index_dir, other)
    assert summary.reused == 0
    assert len(other.calls[0]) == summary.passages + len(index.views)


def test_a_build_reuses_the_newest_version_of_its_model_when_another_model_made_the_current(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    build_index(settings, FakeEmbedder(model_id="another-model"))
    summary = build_index(settings, fake_embedder)
    assert summary.reused == summary.passages and not summary.warnings


def test_a_build_without_current_reuses_the_newest_version_that_verifies(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    (settings.index_dir / "CURRENT").unlink()
    summary = build_index(settings, fake_embedder)
    assert summary.reused == summary.passages and not summary.warnings


def test_versions_that_cannot_be_listed_leave_nothing_to_reuse(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An older version that verifies, which a listing would find.
    shutil.copytree(TEST_DATA / "second", settings.corpus_dir, dirs_exist_ok=True)
    build_index(settings, fake_embedder)
    built = served_version(settings.index_dir)
    (built / "faiss.index").write_bytes(b"\0" * 64)
    listing = Path.iterdir

    def refused(folder: Path) -> Iterator[Path]:
        if folder.name == "versions":
            raise PermissionError(13, "Permission denied", str(folder))
        return listing(folder)

    monkeypatch.setattr(Path, "iterdir", refused)
    summary = build_index(settings, fake_embedder)
    assert summary.reused == 0
    assert any(w.startswith(f"{built} is not reused (") for w in summary.warnings)
    assert any(w.endswith("; all is made anew") for w in summary.warnings)


def test_a_previous_version_that_does_not_verify_is_not_trusted(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    reseal_array(built, "keys.npy", lambda keys: keys[:-1])
    summary = build_index(settings, fake_embedder)
    assert summary.reused == 0
    assert any("keys.npy does not fit its vectors" in w for w in summary.warnings)
    # Tampered without a new seal: refused by its checksum, likewise not used.
    version = served_version(settings.index_dir)
    (version / "faiss.index").write_bytes(b"\0" * 64)
    summary = build_index(settings, fake_embedder)
    assert summary.reused == 0
    assert any("does not match its checksum" in w for w in summary.warnings)
    assert len(load_index(settings.index_dir, fake_embedder).passages) == summary.passages


def count_calls(embedder: FakeEmbedder) -> list[str]:
    """The texts whose tokens the embedder is asked to count (as splitting does), from now."""
    counted: list[str] = []
    real = embedder.count_tokens

    def counting(text: str) -> int:
        counted.append(text)
        return real(text)

    embedder.count_tokens = counting  # type: ignore[method-assign]
    return counted


def test_unchanged_answers_keep_their_split_unless_the_settings_change(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    counted = count_calls(fake_embedder)
    (settings.corpus_dir / "ada.txt").write_text(NEW_TRANSCRIPT)
    build_index(settings, fake_embedder)
    new = ("Start with data you care about, and finish something small.",
           "Tests let you change code without fear.")  # fmt: skip
    assert counted
    # Pieces of the new answers, alone or with their question and speaker around them.
    assert all("Ada:" in text or any(text in answer for answer in new) for text in counted)
    counted.clear()
    smaller = settings.model_copy(update={"passage_tokens": 24})
    build_index(smaller, fake_embedder)
    assert len(counted) > 20, "other settings: every answer is split anew"
    fresh = smaller.model_copy(update={"index_dir": tmp_path / "fresh"})
    build_index(fresh, FakeEmbedder())
    assert list(load_index(fresh.index_dir, fake_embedder).passages) == list(
        load_index(smaller.index_dir, fake_embedder).passages
    )


def same_as_a_full_build(settings: Settings, tmp_path: Path) -> None:
    """The index built from the last one holds what a build from nothing would."""
    fresh = settings.model_copy(update={"index_dir": tmp_path / "fresh"})
    build_index(fresh, FakeEmbedder())
    one, other = (load_index(s.index_dir, FakeEmbedder()) for s in (settings, fresh))
    assert list(one.passages) == list(other.passages)
    every = np.arange(len(one.passages))
    assert np.array_equal(
        one.vectors.reconstruct_batch(every), other.vectors.reconstruct_batch(every)
    )
    assert np.array_equal(one.views, other.views)


def test_a_longer_speaker_role_splits_the_answers_anew(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    """The speaker's name and role are embedded with each passage: they count in its size."""
    metadata = settings.corpus_dir / "ml-engineer-career-qa.speakers.toml"
    text = metadata.read_text(encoding="utf-8")
    role = 'role = "Machine learning engineer'
    long = role + "".join(f" responsible for area{i} systems" for i in range(45))
    metadata.write_text(text.replace(role, long, 1), encoding="utf-8")
    build_index(settings, fake_embedder)
    same_as_a_full_build(settings, tmp_path)


@pytest.mark.parametrize("span", [(50, 20), (0, 999999), (-5, 10), (0, 0)])
def test_a_sealed_version_with_bad_spans_is_split_anew(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Path, span: Any
) -> None:
    reseal_array(built, "passages.npy", lambda rows: assigned(rows, (0, [START, END]), span))
    counted = count_calls(fake_embedder)
    build_index(settings, fake_embedder)
    assert counted, "the first answer was split anew"
    same_as_a_full_build(settings, tmp_path)


def test_a_sealed_version_whose_windows_do_not_start_in_order_is_split_anew(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    """Each window must start after the one before, as it ends after it (Searcher.shown)."""
    rows = np.load(built / "passages.npy")
    assert rows[1, ANSWER] == rows[0, ANSWER] and rows[1, END] > rows[0, END]
    reseal_array(built, "passages.npy", lambda rows: assigned(rows, (1, START), 0))
    counted = count_calls(fake_embedder)
    build_index(settings, fake_embedder)
    assert counted, "the first answer was split anew"
    same_as_a_full_build(settings, tmp_path)


def test_the_same_answer_in_a_renamed_transcript_keeps_its_split(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    for old in settings.corpus_dir.glob("ml-engineer-career-qa*"):
        old.rename(old.with_name(old.name.replace("ml-engineer-career-qa", "renamed")))
    counted = count_calls(fake_embedder)
    summary = build_index(settings, fake_embedder)
    assert counted == [] and summary.reused == summary.passages
    same_as_a_full_build(settings, tmp_path)


def test_stored_vectors_that_are_not_finite_are_not_reused(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    sealed = reseal_array(built, "views.npy", lambda views: assigned(views, (0, 0), np.nan))
    summary = build_index(settings, fake_embedder)
    assert summary.reused == 0
    assert any("finite float32" in w and sealed.name in w for w in summary.warnings)
    same_as_a_full_build(settings, tmp_path)


def test_a_pointer_to_a_missing_version_is_said_and_all_is_made_anew(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    shutil.rmtree(built)
    summary = build_index(settings, fake_embedder)
    assert summary.reused == 0
    pointer = settings.index_dir / "CURRENT"
    missing = f"{built} is not reused ({pointer} names {built}, which is missing)"
    assert f"{missing}; all is made anew" in summary.warnings


ROWS = {
    "an answer past the last": lambda rows: assigned(rows, (0, 1), 10**6),
    "a negative speaker": lambda rows: assigned(rows, (0, 3), -1),
    "a line start inside a line": lambda rows: assigned(rows, (1, 0), rows[1, 0] + 1),
}


@pytest.mark.parametrize("case", ROWS)
def test_per_passage_rows_that_do_not_fit_are_refused_even_with_matching_checksums(
    built: Path, fake_embedder: FakeEmbedder, case: str
) -> None:
    sealed = reseal_array(built, "passages.npy", ROWS[case])
    with pytest.raises(CareerbotError, match=r"unknown answer|line offsets do not fit"):
        load_index(sealed.parent.parent, fake_embedder)


def test_a_loaded_index_maps_its_large_files_and_parses_records_only_when_asked(
    built: Path, fake_embedder: FakeEmbedder
) -> None:
    index = load_index(built.parent.parent, fake_embedder)
    assert not index.rows.flags.owndata  # a view of the mapped file, not a copy
    mapped = Path(f"/proc/{os.getpid()}/maps").read_text().splitlines()
    names = ("faiss.index", "passages.jsonl", "answers.jsonl", "data.csc.index.npy", "passages.npy")
    for name in names:
        assert any(index.version in line and line.endswith(f"/{name}") for line in mapped), name
    first = json.loads((built / "passages.jsonl").read_text().splitlines()[0])
    assert index.passages[0] == first
    with pytest.raises(IndexError):
        index.passages[len(index.passages)]


def edit_json(name: str, change: Callable[[Any], Any]) -> Callable[[Path], None]:
    def edit(version: Path) -> None:
        path = version / name
        path.write_text(json.dumps(change(json.loads(path.read_text()))))

    return edit


def edit_array(name: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    return lambda version: np.save(version / name, change(np.load(version / name)))


def with_(**changes: object) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda table: {**table, **changes}


PARAMS, VOCAB = "bm25/params.index.json", "bm25/vocab.index.json"
DATA, INDICES, INDPTR = (f"bm25/{name}.csc.index.npy" for name in ("data", "indices", "indptr"))
# Each of these once loaded, then failed (or scored NaN) on every question that reached it.
HOSTILE_WORD_MODELS = {
    "k1 as text": edit_json(PARAMS, with_(k1="1.5")),
    "k1 not a number": edit_json(PARAMS, with_(k1=float("nan"))),
    "a backend that compiles": edit_json(PARAMS, with_(backend="numba")),
    "another method": edit_json(PARAMS, with_(method="robertson")),
    "scores as objects": edit_json(PARAMS, with_(dtype="object")),
    "narrow word ids": edit_json(PARAMS, with_(int_dtype="int8")),
    "passages counted as text": edit_json(PARAMS, with_(num_docs="31")),
    "a word numbered -1": edit_json(VOCAB, lambda vocab: dict.fromkeys(vocab, -1)),
    "words numbered as text": edit_json(VOCAB, lambda vocab: {k: str(v) for k, v in vocab.items()}),
    "a vocabulary that is a list": edit_json(VOCAB, list),
    "columns in reverse": edit_array(INDPTR, lambda a: a[::-1].copy()),
    "columns past the scores": edit_array(INDPTR, lambda a: a * 1000),
    "column offsets as floats": edit_array(INDPTR, lambda a: a.astype(np.float64)),
    "a passage past the last": edit_array(INDICES, lambda a: a + 10**6),
    "a negative passage": edit_array(INDICES, lambda a: a - 10**6),
    "scores as text": edit_array(DATA, lambda a: a.astype(str)),
    "scores not finite": edit_array(DATA, lambda a: a * np.nan),
    "scores fewer than offsets": edit_array(DATA, lambda a: a[:3]),
}


@pytest.mark.parametrize("case", HOSTILE_WORD_MODELS)
def test_a_hostile_word_model_is_refused_at_load_with_one_line(
    built: Path, fake_embedder: FakeEmbedder, case: str
) -> None:
    HOSTILE_WORD_MODELS[case](built)
    sealed = reseal(built)
    with pytest.raises(CareerbotError) as refusal:
        load_index(sealed.parent.parent, fake_embedder)
    assert "\n" not in str(refusal.value)
    assert str(refusal.value).endswith("rebuild it with: careerbot build")


def with_speakers(change: Callable[[list[Any]], list[Any]]) -> Callable[[Path], None]:
    return edit_json("catalog.json", lambda c: {**c, "speakers": change(c["speakers"])})


HOSTILE_CATALOGS = {
    "a speaker twice": with_speakers(lambda speakers: [speakers[0]] * len(speakers)),
    "a topic naming nobody listed": edit_json(
        "catalog.json",
        lambda c: {
            **c,
            "topics": [{**t, "speakers": [{"id": "x", "name": "X"}]} for t in c["topics"]],
        },
    ),
    "words that are numbers": edit_json("catalog.json", lambda c: {**c, "vocabulary": [1, 2]}),
    "more speakers than the manifest": with_speakers(
        lambda speakers: [*speakers, {**speakers[0], "id": "another"}]
    ),
}


@pytest.mark.parametrize("case", HOSTILE_CATALOGS)
def test_a_catalog_that_contradicts_itself_or_the_manifest_is_refused_with_one_line(
    built: Path, fake_embedder: FakeEmbedder, case: str
) -> None:
    HOSTILE_CATALOGS[case](built)
    sealed = reseal(built)
    with pytest.raises(CareerbotError, match=r"catalog\.json") as refusal:
        load_index(sealed.parent.parent, fake_embedder)
    assert "\n" not in str(refusal.value)


def test_a_record_that_is_not_what_the_build_wrote_is_damaged_index_when_read(
    built: Path, fake_embedder: FakeEmbedder
) -> None:
    lines = (built / "answers.jsonl").read_bytes().splitlines(keepends=True)
    # The same length, so every offset still fits: only parsing the record can tell.
    lines[0] = b"[" + b" " * (len(lines[0]) - 3) + b"]\n"
    (built / "answers.jsonl").write_bytes(b"".join(lines))
    index = load_index(reseal(built).parent.parent, fake_embedder)
    with pytest.raises(DamagedIndex, match=r"answers\.jsonl: line 1 is not what careerbot build"):
        index.answers[0]
    assert index.answers[1]["id"]


def test_an_index_built_from_other_files_of_the_same_model_is_refused(
    built: Path, fake_embedder: FakeEmbedder
) -> None:
    other = FakeEmbedder()
    other.fingerprint = "fake-model:other files"
    with pytest.raises(CareerbotError, match=r"built with other files of model 'fake-model'"):
        load_index(built.parent.parent, other)


def test_an_answer_told_twice_keeps_its_split(
    settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    (settings.corpus_dir / "ada.txt").write_text(NEW_TRANSCRIPT)
    (settings.corpus_dir / "ada-again.txt").write_text(NEW_TRANSCRIPT)
    build_index(settings, fake_embedder)
    counted = count_calls(fake_embedder)
    build_index(settings, fake_embedder)
    assert counted == []
    same_as_a_full_build(settings, tmp_path)


def test_a_version_split_by_another_splitter_is_split_anew(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    reseal(
        built, chunking={**manifest["chunking"], "splitter": manifest["chunking"]["splitter"] + 1}
    )
    counted = count_calls(fake_embedder)
    summary = build_index(settings, fake_embedder)
    assert counted and summary.reused == summary.passages  # split anew, vectors kept
    same_as_a_full_build(settings, tmp_path)


def test_an_uncovered_topic_may_not_claim_an_answers_phrasing(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    path = metadata_file(settings.corpus_dir)
    with path.open("a") as toml:
        toml.write('\n[uncovered.pay]\nphrasings = ["Does  SWE work pay off?"]\n')
    text = path.read_text()
    question = "What separates a great candidate from a good candidate?"
    add_phrasing(path, "questions", question, "does SWE work pay off?", "Chirag")
    with pytest.raises(
        CareerbotError, match=r"\[uncovered\.pay\] lists 'Does  SWE work pay off\?'"
    ):
        build_index(settings, fake_embedder)
    path.write_text(text)  # without the answer's phrasing it builds
    build_index(settings, fake_embedder)


def test_phrasings_that_would_make_an_unloadable_manifest_fail_the_build(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    path = metadata_file(settings.corpus_dir)
    # Each é is 2 bytes in the file and 6 (\u00e9) in the manifest.
    texts = ", ".join(f'"{i} {"é" * 990}"' for i in range(900))
    with path.open("a") as toml:
        toml.write(f"\n[uncovered.pay]\nphrasings = [{texts}]\n")
    assert path.stat().st_size < SMALL_FILE_BYTES
    with pytest.raises(CareerbotError, match=r"would make a manifest of [\d,]+ bytes, over"):
        build_index(settings, fake_embedder)
    assert fake_embedder.calls == []  # refused before anything was embedded
    assert not (settings.index_dir / "CURRENT").exists()


def test_the_answers_of_a_transcript_without_phrasings_for_each_question_are_plain(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """The default transcript has phrasings for every question; the second has none, so
    its answers, which follow the default's (files in name order), are listed as plain."""
    for path in (TEST_DATA / "second").iterdir():
        shutil.copy(path, settings.corpus_dir)
    build_index(settings, fake_embedder)
    index = load_index(settings.index_dir, fake_embedder)
    documents = [index.answers[row]["source"]["document"] for row in range(len(index.answers))]
    unphrased = [row for row, doc in enumerate(documents) if "product-management" in doc]
    assert unphrased and unphrased[-1] == len(documents) - 1
    (span,) = index.manifest.plain
    assert (span.first, span.end) == (unphrased[0], unphrased[-1] + 1)


def test_a_pointer_left_by_a_killed_build_is_removed_by_the_next(
    built: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    stale = settings.index_dir / ".CURRENT-999999999"  # no such process
    stale.write_text(built.name)
    # Not a build's: another's file or folder, named alike.
    (settings.index_dir / ".CURRENT-backup").mkdir()
    (settings.index_dir / ".CURRENT-old").write_text("keep")
    summary = build_index(settings, fake_embedder)
    assert not stale.exists()
    assert (settings.index_dir / ".CURRENT-backup").is_dir()
    assert (settings.index_dir / ".CURRENT-old").read_text() == "keep"
    assert served_version(settings.index_dir) == summary.index_dir


def test_a_speakers_file_beside_no_transcript_is_a_warning(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    (settings.corpus_dir / "gone.speakers.toml").write_text('[speakers.A]\nname = "A"\n')
    warning = f"{settings.corpus_dir.name}/gone.speakers.toml: no transcript gone.txt beside it"
    assert f"{warning} reads it" in build_index(settings, fake_embedder).warnings


def test_one_speaker_told_differently_in_two_transcripts_is_a_warning(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    corpus = settings.corpus_dir
    for name, organization in (("a", "Acme"), ("b", "Initech"), ("c", "Acme"), ("d", "Umbrella")):
        (corpus / f"{name}.txt").write_text("Why?\n\nAda: Because.\n")
        (corpus / f"{name}.speakers.toml").write_text(
            '[speakers.Ada]\nname = "Ada Lee"\nrole = "Engineer"\n'
            f'organization = "{organization}"\n'
        )
    warnings = [w for w in build_index(settings, fake_embedder).warnings if "'ada-lee'" in w]
    folder = corpus.name
    assert warnings == [
        f"{folder}/b.txt: speaker 'ada-lee' is 'Ada Lee' (Engineer at Initech) here but "
        f"'Ada Lee' (Engineer at Acme) in {folder}/a.txt, which /speakers shows; if two "
        "people, give one a fuller name",
        f"{folder}/d.txt: speaker 'ada-lee' is 'Ada Lee' (Engineer at Umbrella) here but "
        f"'Ada Lee' (Engineer at Acme) in {folder}/a.txt, which /speakers shows; if two "
        "people, give one a fuller name",
    ]
