import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from careerbot import CareerbotError
from careerbot.config import HNSW_FROM, Settings
from careerbot.index import (
    HNSW_SEARCH_DEPTH,
    build_index,
    index_kind,
    load_index,
    search_vectors,
    searchable,
    sha256,
)
from tests.conftest import FakeEmbedder, served_version


@pytest.fixture
def built(settings: Settings, fake_embedder: FakeEmbedder) -> Path:
    build_index(settings, fake_embedder)
    return served_version(settings.index_dir)


def test_build_writes_the_three_files_and_a_manifest(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    summary = build_index(settings, fake_embedder)
    assert (summary.documents, summary.speakers, summary.answers) == (1, 2, 9)
    version = served_version(settings.index_dir)
    assert summary.index_dir == version
    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["index_version"] == version.name
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
    assert index.vectors.ntotal == len(index.passages) == index.manifest["passages"]
    first = index.passages[0]
    assert set(first) >= {"id", "answer_id", "speaker", "question", "text", "source"}
    assert first["speaker"] == {
        "id": "chirag-mahapatra",
        "name": "Chirag Mahapatra",
        "role": "Machine learning engineer at Airbnb",
        "organization": "Airbnb",
    }
    assert first["source"] == {"document": "corpus/ml-engineer-career-qa.txt", "lines": [7, 9]}
    for passage in index.passages:
        answer = index.answers[passage["answer_id"]]
        start, end = passage["span"]
        assert answer["text"][start:end] == passage["text"]
    # Vector i is the embedding of passage i, with its question and speaker for context.
    embedded = fake_embedder.calls[0]
    assert len(embedded) == len(index.passages)
    for position, passage in enumerate(index.passages):
        assert embedded[position].endswith(passage["text"])
        assert embedded[position].startswith(passage["question"])
        stored = index.vectors.reconstruct(position)
        assert np.allclose(stored, fake_embedder.embed([embedded[position]])[0])


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
        r"manifest\.json is not a careerbot manifest",
    ),
    "empty faiss.index": (
        lambda d: (d / "faiss.index").write_bytes(b""),
        r"faiss\.index does not match its checksum",
    ),
    "no manifest": (lambda d: (d / "manifest.json").unlink(), r"CURRENT names .* no manifest"),
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


def rehash(index_dir: Path) -> None:
    """Make the manifest's checksums agree with damaged files, to reach the deeper checks."""
    manifest = json.loads((index_dir / "manifest.json").read_text())
    manifest["files"] = {name: sha256(index_dir / name) for name in manifest["files"]}
    (index_dir / "manifest.json").write_text(json.dumps(manifest))


def test_passages_one_line_short_is_refused_even_with_matching_checksums(
    built: Path, fake_embedder: FakeEmbedder
) -> None:
    drop_last_line(built / "passages.jsonl")
    rehash(built)
    with pytest.raises(CareerbotError, match=r"inconsistent: (\d+) vectors, \d+ passages"):
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
    assert exact.manifest["index_type"] == "flat"
    assert isinstance(exact.vectors, faiss.IndexFlatIP)
    build_index(settings.model_copy(update={"index_type": "hnsw"}), fake_embedder)
    graph = load_index(settings.index_dir, fake_embedder)
    assert graph.manifest["index_type"] == "hnsw"
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
