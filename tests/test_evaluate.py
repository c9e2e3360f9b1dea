import json
import re
from pathlib import Path

import pytest

from careerbot import CareerbotError
from careerbot.config import Settings
from careerbot.evaluate import evaluate, read_cases, read_chatter, with_chatter
from careerbot.index import build_index
from careerbot.search import Searcher
from careerbot.version import load_index
from tests.conftest import FakeEmbedder

TIPS = "What are some tips for the interview process?"


def write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_figures_count_hits_misses_evidence_and_rejections(
    tmp_path: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    build_index(settings, fake_embedder)
    searcher = Searcher(load_index(settings.index_dir, fake_embedder), fake_embedder, 0.05)
    tips = {"question": TIPS, "speaker": "Shubhankar Jain"}
    cases = read_cases(
        write(
            tmp_path / "set.jsonl",
            [
                {"question": "titanic project resume", "expect": [tips], "evidence": "Titanic"},
                {"question": "titanic project resume", "expect": [tips], "evidence": "absent"},
                {"question": "titanic project", "expect": [{"question": TIPS, "speaker": "X"}]},
                {"question": "sourdough bread", "expect": "no_answer"},
                {"question": "titanic resume", "expect": "no_answer"},
            ],
        )
    )
    report = evaluate(searcher, cases)
    figures = report.figures()
    assert figures["top1"] == pytest.approx(2 / 3)
    assert figures["evidence1"] == pytest.approx(1 / 2)
    assert figures["offtopic_rejected"] == pytest.approx(1 / 2)
    assert figures["false_rejection"] == 0
    misses = report.misses()
    assert any(m.startswith("evidence missing: 'titanic project resume'") for m in misses)
    assert any(
        re.match(r"wrong top-1 \(not in the \d given\): 'titanic project'", m) for m in misses
    )
    assert any(m.startswith("off-topic answered: 'titanic resume'") for m in misses)
    assert "top-1 0.667" in str(report)
    # The third line's speaker "X" answers nothing: said first, as no answer can be right.
    assert misses[0] == f"not in the index: {tmp_path / 'set.jsonl'}:3 expects {TIPS!r} by 'X'"
    assert sum(m.startswith("not in the index") for m in misses) == 1


def test_a_set_without_evidence_shows_no_evidence_figure(
    tmp_path: Path, settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    build_index(settings, fake_embedder)
    searcher = Searcher(load_index(settings.index_dir, fake_embedder), fake_embedder, 0.05)
    tips = {"question": TIPS, "speaker": "shubhankar-jain"}  # an id serves as well as a name
    cases = read_cases(
        write(tmp_path / "set.jsonl", [{"question": "titanic project resume", "expect": [tips]}])
    )
    report = evaluate(searcher, cases)
    assert "evidence@1 -" in str(report) and not report.unknown


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"question": "no expect"}', "expect: is missing"),
        ('{"question": 5, "expect": "no_answer"}', "question: must be a string"),
        ('{"question": " ", "expect": "no_answer"}', "question: must not be blank"),
        ('{"question": "q", "expect": []}', "expect: must not be empty"),
        ('{"question": "q", "expect": "no_answer", "evidence": 3}', "evidence: must be a string"),
        ('{"question": "q", "expect": "no_answer", "evidance": "x"}', "'evidance': is not a field"),
        ('{"question": "q", "expect": "no_answer", "a\\nb\\u001b[31m": 1}', "'a\\nb\\x1b[31m'"),
        ('{"question": "q", "expect": [{"question": "q", "speaker": " "}]}', "expect.0.speaker"),
        (
            '{"question": "q", "expect": "no_answer", "evidence": "\\t"}',
            "evidence: must not be blank",
        ),
        ('{"question": "q", "expect": [{"question": "q"}]}', "speaker: is missing"),
        ("[1, 2]", "line: must be an object"),
        ('{"question": "q", "expect": "maybe"}', 'expect: must be "no_answer" or a list'),
        ("{", "line: is not JSON (EOF while parsing"),
    ],
)
def test_a_malformed_line_is_refused_naming_it_and_its_problem(
    tmp_path: Path, line: str, problem: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "ok", "expect": "no_answer"}\n' + line + "\n")
    with pytest.raises(CareerbotError) as error:
        read_cases(path)
    message = str(error.value)
    assert message.startswith(f"{path}:2: ") and "\n" not in message
    assert problem in message and message.endswith('"evidence": optional}')


def test_a_set_without_questions_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n \n")
    with pytest.raises(CareerbotError, match=r"empty\.jsonl holds no labelled questions; "):
        read_cases(path)


def test_chatter_wraps_each_question_the_same_way_every_run(tmp_path: Path) -> None:
    cases = read_cases(
        write(
            tmp_path / "set.jsonl",
            [{"question": f"question {n}?", "expect": "no_answer"} for n in range(40)],
        )
    )
    chatter = [f"Line {n}." for n in range(10)]
    wrapped = with_chatter(cases, chatter, 2)
    assert wrapped == with_chatter(cases, chatter, 2)
    for case, before in zip(wrapped, cases, strict=True):
        head, _, tail = case.question.partition(before.question)
        lines = (head + tail).split()[1::2]  # "Line 3. Line 7." -> ["3.", "7."]
        assert len(lines) == 2 and len(set(lines)) == 2
        assert (case.expect, case.evidence, case.where) == (
            before.expect,
            before.evidence,
            before.where,
        )
    # Before the question and after it, both.
    assert any(c.question.startswith("Line") for c in wrapped)
    assert any(c.question.endswith(".") for c in wrapped)
    assert all(c.question.count("Line") == 3 for c in with_chatter(cases, chatter[:3], 5))


def test_a_chatter_file_without_lines_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(CareerbotError, match="has no lines of chatter"):
        read_chatter(tmp_path / "empty.txt")
    with pytest.raises(CareerbotError, match="cannot read"):
        read_chatter(tmp_path / "missing.txt")
    (tmp_path / "some.txt").write_text("Hi all.\n\n  Thanks!  \nHi all.\n")
    assert read_chatter(tmp_path / "some.txt") == ["Hi all.", "Thanks!"]  # each once


def test_a_label_file_may_start_with_a_bom_and_hold_line_separators_in_strings(
    tmp_path: Path,
) -> None:
    path = tmp_path / "set.jsonl"
    line = json.dumps({"question": "why\u2028now?", "expect": "no_answer"}, ensure_ascii=False)
    path.write_text("\ufeff" + line + "\r\n" + line + "\n", encoding="utf-8")
    assert [case.question for case in read_cases(path)] == ["why\u2028now?"] * 2


def test_a_label_file_that_is_not_utf8_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_bytes(b'{"question": "q", "expect": "no_answer"}\n{"question": "\xff"}\n')
    with pytest.raises(CareerbotError, match=r"set\.jsonl:2: not UTF-8 text \(byte 0xff\)$"):
        read_cases(path)
