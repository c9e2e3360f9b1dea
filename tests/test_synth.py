import runpy
import sys
from pathlib import Path

import pytest

from careerbot.chunking import answers_of
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
