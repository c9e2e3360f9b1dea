import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from careerbot.chunking import answers_of
from careerbot.embedding import OnnxEmbedder
from careerbot.transcript import parse_corpus
from tests.conftest import ROOT


def test_the_synthetic_corpus_parses_into_as_many_answers_as_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "corpus"
    argv = ["synth.py", str(out), "--answers", "125", "--per-interview", "50"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(ROOT / "scripts" / "synth.py"), run_name="__main__")
    transcripts = parse_corpus(out)
    answers = [answer for transcript in transcripts for answer in answers_of(transcript)]
    assert len(transcripts) == 3 and len(answers) == 125
    assert all(len({a.speaker.id for a in answers_of(t)}) == 2 for t in transcripts)
    assert all(answer.speaker.organization for answer in answers)


@pytest.mark.model
def test_the_scale_script_builds_a_small_synthetic_corpus_and_reports_every_figure(
    tmp_path: Path, encoder_dir: Path, real_embedder: OnnxEmbedder
) -> None:
    # The session's export of the model, so that the script's build does not export again.
    shutil.copytree(encoder_dir, tmp_path / "index" / "encoders")
    script = ROOT / "scripts" / "scale.py"
    command = [sys.executable, str(script), "--answers", "300", "--work", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "Exporting" not in done.stderr
    assert "300 passages, index type flat" in out
    for figure in ("build (careerbot build", "faiss.index", "flat: built in", "hnsw: built in",
                   "HNSW p50 / exact p50", "Searcher.ask"):  # fmt: skip
        assert figure in out
    recall = float(out.split("HNSW recall@10 against exact: ")[1].split()[0])
    assert 0.9 <= recall <= 1.0
