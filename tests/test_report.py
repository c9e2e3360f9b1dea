"""The question log's report, the review that writes accepted phrasings into the corpus
metadata, and GET /admin/report; on SQLite and on a real PostgreSQL."""

import io
import json
import os
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from careerbot import CareerbotError, cli, curation, transcript
from careerbot import admin as admin_module
from careerbot.api import create_app
from careerbot.config import Settings
from careerbot.index import build_index
from careerbot.questionlog import Ask, Pick, QuestionLog, Vote
from careerbot.report import (
    SAME_MEANING,
    SHOWN_CHARS,
    answer_facts,
    build_report,
    group,
    parse_since,
    render,
    short,
)
from careerbot.store import connect, picks, skips
from careerbot.version import load_index
from tests import test_questionlog
from tests.conftest import FakeEmbedder, metadata_file

# The question log's fixtures: an index built and an empty log, on SQLite and (when
# CAREERBOT_TEST_POSTGRES_URL is set, as scripts/test.sh does) on PostgreSQL.
database_url = test_questionlog.database_url
logged = test_questionlog.logged

TOKEN = "s3cret-admin-token-for-tests"
NOW = datetime.now(UTC)


@dataclass(frozen=True)
class Seeded:
    """What the seeded log holds: three answers of the index and two interview questions."""

    a1: str
    a2: str
    a3: str
    picked: str  # an interview question picked as a suggestion
    low: str  # the interview question of a2, found helpful at a low score


@pytest.fixture
def engine(logged: Settings) -> Iterator[sa.Engine]:
    engine = connect(logged.database)
    yield engine
    engine.dispose()


def an_ask(
    ask_id: str,
    hours_ago: float,
    question: str,
    answers: tuple[tuple[str, float], ...] = (),
    suggestions: tuple[str, ...] = (),
    uncovered: str | None = None,
) -> Ask:
    when = NOW - timedelta(hours=hours_ago)
    return Ask(
        ask_id, when, question, bool(answers), uncovered, answers, suggestions, "v1", 3.0
    )  # fmt: skip


@pytest.fixture
def seeded(logged: Settings, engine: sa.Engine, fake_embedder: FakeEmbedder) -> Seeded:
    """Seven asks (one ten days old), votes on three of them and two picks."""
    answers = {
        answer["id"]: answer for answer in load_index(logged.index_dir, fake_embedder).answers
    }
    a1, a2, a3 = sorted(answers)[:3]
    questions = sorted({record["question"] for record in answers.values()})
    low = answers[a2]["question"]
    picked = next(q for q in questions if q != low)
    log = QuestionLog(engine, "full", 90)
    log.write(
        [
            an_ask("1" * 32, 1, "how do I get hired at airbnb", ((a1, 0.8), (a2, 0.4))),
            an_ask("2" * 32, 3, "airbnb hiring process", ((a1, 0.7),)),
            an_ask("3" * 32, 5, "how much do ML engineers earn", (), (picked, low), "pay"),
            an_ask("4" * 32, 6, "how much do ml engineers earn", suggestions=(picked,)),
            an_ask("5" * 32, 7, "ml engineer salary"),
            an_ask("7" * 32, 8, "how much do ML engineers earn today"),
            an_ask("6" * 32, 240, "old question", ((a3, 0.9),)),
        ]
    )
    at = NOW - timedelta(minutes=30)
    log.write(
        [
            Vote("1" * 32, a1, True, None, at),
            Vote("1" * 32, a2, True, "found it", at + timedelta(seconds=1)),
            Vote("2" * 32, a1, False, "not this", at + timedelta(seconds=2)),
            Vote("6" * 32, a3, False, None, at),
            Pick("3" * 32, picked, at),
            Pick("4" * 32, picked, at + timedelta(seconds=1)),
        ]
    )
    return Seeded(a1, a2, a3, picked, low)


def expected_week(seeded: Seeded, facts: dict[str, Any]) -> dict[str, Any]:
    """The report on the last seven days of the seeded log, `since` aside."""

    def figures(answer_id: str, shown: int, helpful: int, unhelpful: int) -> dict[str, Any]:
        fact = facts[answer_id]
        return {
            "id": answer_id,
            "speaker": fact.speaker,
            "question": fact.question,
            "shown": shown,
            "helpful": helpful,
            "unhelpful": unhelpful,
        }

    return {
        "questions": 6,
        "answered": 2,
        "answers": [figures(seeded.a1, 2, 1, 1), figures(seeded.a2, 1, 1, 0)],
        "unanswered": [
            {
                "count": 3,
                "questions": [
                    "how much do ML engineers earn",
                    "how much do ML engineers earn today",
                    "how much do ml engineers earn",
                ],
            },
            {"count": 1, "questions": ["ml engineer salary"]},
        ],
        "unhelpful": [{"question": "airbnb hiring process", "answer_id": seeded.a1}],
        "candidates": [
            {
                "phrasing": "how much do ML engineers earn",
                "question": seeded.picked,
                "answer_id": None,
                "uncovered": "pay",
            },
            {
                "phrasing": "how do I get hired at airbnb",
                "question": seeded.low,
                "answer_id": seeded.a2,
                "uncovered": None,
            },
        ],
    }


def facts_of(settings: Settings, embedder: FakeEmbedder) -> dict[str, Any]:
    return answer_facts(load_index(settings.index_dir, embedder).answers)


def without_since(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key != "since"}


def test_report_counts_asks_answers_votes_groups_and_candidates_of_the_last_week(
    logged: Settings, engine: sa.Engine, seeded: Seeded, fake_embedder: FakeEmbedder
) -> None:
    facts = facts_of(logged, fake_embedder)
    report = build_report(engine, fake_embedder, NOW - timedelta(days=7), facts)
    body = report.to_json()
    assert without_since(body) == expected_week(seeded, facts)
    assert datetime.fromisoformat(body["since"]) == NOW - timedelta(days=7)
    json.dumps(body)  # all of it is JSON


def test_alike_unanswered_questions_are_grouped_and_unlike_ones_are_not(
    fake_embedder: FakeEmbedder,
) -> None:
    vectors = fake_embedder.embed(
        ["how much do ML engineers earn", "how much do ML engineers earn today", "ml salary"]
    )
    # The premise: the fake embedder puts the first two close and the third far.
    assert vectors[0] @ vectors[1] >= SAME_MEANING > vectors[0] @ vectors[2]
    groups = group(
        {
            "how much do ML engineers earn": 1,
            "ml salary": 4,
            "how much do ML engineers earn today": 2,
        },
        fake_embedder,
    )
    assert [(g.count, g.questions) for g in groups] == [
        (4, ("ml salary",)),
        (3, ("how much do ML engineers earn today", "how much do ML engineers earn")),
    ]
    assert group({}, fake_embedder) == ()


def test_since_leaves_out_older_asks_and_their_feedback(
    logged: Settings, engine: sa.Engine, seeded: Seeded, fake_embedder: FakeEmbedder
) -> None:
    facts = facts_of(logged, fake_embedder)
    fortnight = build_report(engine, fake_embedder, NOW - timedelta(days=14), facts)
    assert (fortnight.questions, fortnight.answered) == (7, 3)
    (old,) = [figures for figures in fortnight.answers if figures.id == seeded.a3]
    assert (old.shown, old.helpful, old.unhelpful) == (1, 0, 1)
    assert {u.question for u in fortnight.unhelpful} == {"airbnb hiring process", "old question"}
    hours = build_report(engine, fake_embedder, NOW - timedelta(hours=2), facts)
    assert (hours.questions, hours.answered, hours.unanswered) == (1, 1, ())
    assert [u.answer_id for u in hours.unhelpful] == []  # its vote is on a 3-hour-old ask
    assert [c.phrasing for c in hours.candidates] == ["how do I get hired at airbnb"]


def test_a_candidate_that_is_the_interview_question_itself_is_not_proposed(
    logged: Settings, engine: sa.Engine, seeded: Seeded, fake_embedder: FakeEmbedder
) -> None:
    log = QuestionLog(engine, "full", 90)
    log.write([an_ask("8" * 32, 1, f"  {seeded.picked.upper()} ", suggestions=(seeded.picked,))])
    log.write([Pick("8" * 32, seeded.picked, NOW)])
    report = build_report(
        engine, fake_embedder, NOW - timedelta(days=7), facts_of(logged, fake_embedder)
    )
    assert len(report.candidates) == 2


def test_answers_no_longer_in_the_index_are_reported_without_speaker(
    logged: Settings, engine: sa.Engine, seeded: Seeded, fake_embedder: FakeEmbedder
) -> None:
    report = build_report(engine, fake_embedder, NOW - timedelta(days=7), {})
    assert [(f.speaker, f.question) for f in report.answers] == [(None, None), (None, None)]
    # Without the answer's interview question a low-score helpful vote proposes nothing.
    assert [c.phrasing for c in report.candidates] == ["how much do ML engineers earn"]
    assert "(not in the index served now)" in render(report)


def test_the_text_report_has_a_section_for_each_part(
    logged: Settings, engine: sa.Engine, seeded: Seeded, fake_embedder: FakeEmbedder
) -> None:
    facts = facts_of(logged, fake_embedder)
    text = render(build_report(engine, fake_embedder, NOW - timedelta(days=7), facts))
    assert "UTC: 6, answered 2 (33%)" in text
    assert f"   2 shown, 1 helpful, 1 unhelpful  {seeded.a1}" in text
    assert (
        "   3x how much do ML engineers earn\n        also: how much do ML engineers earn today\n"
        in text
    )
    assert "Answers voted unhelpful\n  airbnb hiring process\n" in text
    assert f"as a way to ask: {seeded.low}" in text
    assert text.count("taken for the uncovered topic 'pay' when asked") == 1
    empty = render(build_report(engine, fake_embedder, NOW + timedelta(days=1), facts))
    assert empty.count("(none)") == 4 and "answered 0\n" in empty


def test_the_text_report_cuts_a_long_question_at_a_word() -> None:
    post = "I have been a data engineer for four years, mostly Spark. " * 10
    shown = short(post)
    assert len(shown) <= SHOWN_CHARS and shown.endswith(" …")
    assert post.startswith(shown.removesuffix(" …")) and len(shown) > SHOWN_CHARS - 20
    assert short("how much do ML engineers\nearn") == "how much do ML engineers earn"
    # Written without spaces, or one long word: cut within it, not to nothing.
    chinese = "我是一名数据工程师想转行做机器学习工程师" * 11
    assert short(chinese) == chinese[: SHOWN_CHARS - 2] + " …"
    assert short("see " + "x" * 300) == "see " + "x" * (SHOWN_CHARS - 6) + " …"
    assert short("x" * SHOWN_CHARS) == "x" * SHOWN_CHARS


@pytest.mark.parametrize(
    "text, back",
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        (" 1d", timedelta(1)),
        ("24H", timedelta(1)),
        ("99999D", timedelta(99999)),
        ("07d", timedelta(7)),
        ("000012h", timedelta(hours=12)),
    ],
)
def test_since_is_days_or_hours_back(text: str, back: timedelta) -> None:
    assert parse_since(text, NOW) == NOW - back


@pytest.mark.parametrize(
    "text", ["7", "0d", "00d", "7w", "-1d", "1.5d", "100000d", "0100000d", "", "d"]
)
def test_since_that_is_not_days_or_hours_is_refused(text: str) -> None:
    with pytest.raises(CareerbotError, match="is not 1 to 99999 days or hours, such as 7d"):
        parse_since(text)


# The command line.


def dirs(settings: Settings) -> list[str]:
    return ["--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)]


@pytest.fixture
def command(
    logged: Settings, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The command runs with the fake model, on the test's question log."""
    monkeypatch.setattr(cli, "load_embedder", lambda settings: fake_embedder)
    monkeypatch.setenv("CAREERBOT_DATABASE_URL", logged.database)
    return logged


def test_report_json_is_the_report_of_the_last_seven_days(
    command: Settings,
    seeded: Seeded,
    fake_embedder: FakeEmbedder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Seven days before the command ran (NOW is when the tests were collected, maybe
    # minutes before on a slow machine).
    before = datetime.now(UTC)
    assert cli.main(["report", "--json", *dirs(command)]) == 0
    after = datetime.now(UTC)
    body = json.loads(capsys.readouterr().out)
    assert without_since(body) == expected_week(seeded, facts_of(command, fake_embedder))
    since = datetime.fromisoformat(body["since"])
    assert before - timedelta(days=7) <= since <= after - timedelta(days=7)


def test_report_json_escapes_what_a_terminal_would_act_on(
    command: Settings, seeded: Seeded, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    with engine.begin() as connection:
        update = sa.text("UPDATE asks SET question = :q WHERE id = :id")
        connection.execute(update, {"q": "pay \u202egnorw\x9b2J", "id": "4" * 32})
    assert cli.main(["report", "--json", *dirs(command)]) == 0
    out = capsys.readouterr().out
    assert "\u202e" not in out and "\x9b" not in out
    unanswered = [q for g in json.loads(out)["unanswered"] for q in g["questions"]]
    assert "pay \u202egnorw\x9b2J" in unanswered  # the same text, once read as JSON


def test_report_since_and_text_output(
    command: Settings, seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", "--since", "2h", *dirs(command)]) == 0
    out = capsys.readouterr().out
    assert ": 1, answered 1 (100%)" in out and "Unanswered questions" in out


@pytest.mark.parametrize("command_name", ["report", "review"])
def test_a_bad_since_is_one_error_line_and_exit_2(
    command: Settings, capsys: pytest.CaptureFixture[str], command_name: str
) -> None:
    assert cli.main([command_name, "--since", "3w", *dirs(command)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "careerbot: error: since: '3w' is not 1 to 99999 days or hours, such as 7d or 12h"
    ]


def test_report_on_a_missing_database_is_one_error_line_and_makes_no_file(
    command: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "nowhere.sqlite"
    monkeypatch.setenv("CAREERBOT_DATABASE_URL", f"sqlite:///{missing}")
    assert cli.main(["report", *dirs(command)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"careerbot: error: no question log at {missing}")
    assert not missing.exists()


def metadata(settings: Settings) -> Path:
    return metadata_file(settings.corpus_dir)


def review(settings: Settings, monkeypatch: pytest.MonkeyPatch, typed: str) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(typed))
    return cli.main(["review", *dirs(settings)])


def phrasings(path: Path, section: str, key: str) -> list[str]:
    found: list[str] = tomllib.loads(path.read_text())[section][key]["phrasings"]
    return found


NOTE = "# A curator's note that must survive.\n"


def test_review_writes_an_accepted_phrasing_keeping_comments_and_layout(
    command: Settings,
    seeded: Seeded,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = metadata(command)
    original = NOTE + path.read_text().replace("\nname =", "\nname =  ", 1)
    path.write_text(original)
    assert review(command, monkeypatch, "y\nn\n") == 0
    out = capsys.readouterr().out
    assert "[1/2] 'how much do ML engineers earn'" in out and "1 phrasing added" in out
    # Read from a pipe, each answer is echoed after its prompt, ending the line.
    assert "quit [q]? y\n" in out and "quit [q]? n\n" in out
    # The first was taken for an uncovered topic when asked: review says so, once.
    assert out.count("careerbot took it for the uncovered topic 'pay'") == 1
    written = path.read_text()
    assert phrasings(path, "questions", seeded.picked)[-1] == "how much do ML engineers earn"
    assert "how do I get hired at airbnb" not in written  # skipped
    # Every line of the file is still there, in its order, the odd spacing included.
    lines = iter(written.splitlines())
    assert all(line in lines for line in original.splitlines())
    assert written.startswith(NOTE)


def test_review_says_what_an_answer_that_is_no_choice_was_and_when_nothing_was_added(
    command: Settings,
    seeded: Seeded,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert review(command, monkeypatch, "x\nyes\nn\nq\n") == 0
    out = capsys.readouterr().out
    assert out.count("is not a choice; type one of y, n, u, q") == 2
    assert "'x' is not a choice" in out and "'yes' is not a choice" in out
    assert out.rstrip().endswith("No phrasing added.") and "rebuild" not in out


def test_review_offers_nothing_decided_before_accepted_or_skipped(
    command: Settings,
    seeded: Seeded,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = metadata(command)
    assert review(command, monkeypatch, "y\nn\n") == 0
    capsys.readouterr()
    assert review(command, monkeypatch, "y\ny\n") == 0
    assert "Nothing to review." in capsys.readouterr().out  # one accepted, one skipped
    assert phrasings(path, "questions", seeded.picked).count("how much do ML engineers earn") == 1
    assert "how do I get hired at airbnb" not in path.read_text()


def test_the_report_proposes_nothing_a_review_decided_on_as_review_does(
    command: Settings,
    seeded: Seeded,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def proposed() -> list[str]:
        assert cli.main(["report", "--json", *dirs(command)]) == 0
        return [c["phrasing"] for c in json.loads(capsys.readouterr().out)["candidates"]]

    def served(settings: Settings) -> list[str]:
        with TestClient(create_app(admin(settings), fake_embedder)) as client:
            body = client.get("/admin/report", headers={"Authorization": f"Bearer {TOKEN}"})
        return [c["phrasing"] for c in body.json()["candidates"]]

    both = ["how much do ML engineers earn", "how do I get hired at airbnb"]
    assert proposed() == served(command) == both
    assert review(command, monkeypatch, "y\nn\n") == 0  # accept the first, skip the second
    capsys.readouterr()
    assert proposed() == served(command) == []
    # A server with no corpus beside its index (the container) knows only what was skipped.
    elsewhere = command.model_copy(update={"corpus_dir": command.corpus_dir / "gone"})
    assert served(elsewhere) == both[:1]


def test_review_accepts_a_candidate_as_an_uncovered_topic_after_a_bad_name(
    command: Settings,
    seeded: Seeded,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = metadata(command)
    assert review(command, monkeypatch, "u\nML Salaries\nml-salaries\nq\n") == 0
    out = capsys.readouterr().out
    assert "'ML Salaries' is not a topic name: use lowercase letters, digits" in out
    assert "empty: pay, -: back): ML Salaries\n" in out
    assert phrasings(path, "uncovered", "ml-salaries") == ["how much do ML engineers earn"]
    assert "how do I get hired at airbnb" not in path.read_text()  # q stopped the review


def test_review_goes_back_on_an_empty_topic_name_or_a_dash_when_there_is_no_default(
    command: Settings,
    seeded: Seeded,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, before = metadata(command), metadata(command).read_text()
    # The second candidate, from a helpful vote, was not taken for an uncovered topic.
    assert review(command, monkeypatch, "n\nu\n\nu\n-\nq\n") == 0
    out = capsys.readouterr().out
    assert out.count("Topic name (lowercase letters, digits, hyphens; empty or -: back)") == 2
    assert "is not a topic name" not in out
    assert path.read_text() == before


def test_review_files_a_candidate_under_the_topic_it_was_taken_for_on_an_empty_name(
    command: Settings,
    seeded: Seeded,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = metadata(command)
    # "-" goes back to the choices; then u and an empty line take the topic "pay".
    assert review(command, monkeypatch, "u\n-\nu\n\nq\n") == 0
    out = capsys.readouterr().out
    assert out.count("Topic name (lowercase letters, digits, hyphens; empty: pay, -: back)") == 2
    assert phrasings(path, "uncovered", "pay") == ["how much do ML engineers earn"]
    assert "how do I get hired at airbnb" not in path.read_text()


def test_review_puts_a_helpful_votes_phrasing_under_the_answer_voted_for(
    command: Settings,
    seeded: Seeded,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = metadata(command)
    speaker = facts_of(command, fake_embedder)[seeded.a2].speaker
    answers_before = tomllib.loads(path.read_text())["questions"][seeded.low]["answers"]
    (label,) = [key for key in answers_before if speaker.startswith(key)]
    # The suggestion picked has no answer: [a] is not offered, and is asked again.
    assert review(command, monkeypatch, "a\nn\na\n") == 0
    out = capsys.readouterr().out
    assert out.count("for this answer [a]") == 1
    assert f"found helpful in the answer by {speaker}" in out
    # Under the label the file already uses for that answer ("Shubhankar"), not a new one.
    answers = tomllib.loads(path.read_text())["questions"][seeded.low]["answers"]
    assert set(answers) == set(answers_before) and label != speaker
    assert answers[label]["phrasings"][-1] == "how do I get hired at airbnb"
    # The next build takes it as a phrasing of that answer, and the next review is done.
    build_index(command, fake_embedder)
    manifest = load_index(command.index_dir, fake_embedder).manifest
    (phrased,) = [a for a in manifest.answer_phrasings if a.answer == seeded.a2]
    assert phrased.phrasings[-1] == "how do I get hired at airbnb"
    assert review(command, monkeypatch, "") == 0
    assert "Nothing to review." in capsys.readouterr().out


def test_review_quits_at_the_end_of_input_writing_nothing(
    command: Settings, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = metadata(command).read_text()
    assert review(command, monkeypatch, "maybe\n") == 0
    assert metadata(command).read_text() == before


def test_review_takes_a_last_line_cut_short_as_the_end_of_input(
    command: Settings, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = metadata(command).read_text()
    assert review(command, monkeypatch, "u\nml-sal") == 0  # the pipe cut in the topic's name
    assert metadata(command).read_text() == before


def test_review_reads_crlf_lines_and_refuses_input_that_is_not_utf8(
    command: Settings,
    seeded: Seeded,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert review(command, monkeypatch, "n\r\nq\r\n") == 0
    assert "quit [q]? n\n" in capsys.readouterr().out  # no carriage return echoed
    binary = io.TextIOWrapper(io.BytesIO(b"\xff\xfe\nq\n"), "utf-8", "surrogateescape")
    monkeypatch.setattr(sys, "stdin", binary)
    assert cli.main(["review", *dirs(command)]) == 2
    assert "standard input is not UTF-8 text" in capsys.readouterr().err


# The metadata file, written without prompts.


@pytest.fixture
def speakers_file(tmp_path: Path) -> Path:
    path = tmp_path / "talk.speakers.toml"
    path.write_text(
        '# Who speaks.\n[speakers.Ada]\nname = "Ada Lovelace"  # the label\n\n'
        '# Ways to ask.\n[questions."What is it like?"]\nphrasings = [\n    "how is it",\n]\n\n'
        "# Topics not covered.\n[uncovered.pay]\nphrasings = []\n"
    )
    return path


def test_a_new_question_goes_beside_the_others_and_the_next_heading_stays_put(
    speakers_file: Path,
) -> None:
    assert curation.add_phrasing(speakers_file, "questions", 'Is "it" hard?', "tough?")
    assert curation.add_phrasing(speakers_file, "questions", "What is it like?", "and then")
    assert curation.add_phrasing(speakers_file, "uncovered", "pay", "salary?")
    assert speakers_file.read_text() == (
        '# Who speaks.\n[speakers.Ada]\nname = "Ada Lovelace"  # the label\n\n'
        '# Ways to ask.\n[questions."What is it like?"]\nphrasings = [\n    "how is it",\n'
        '    "and then",\n]\n\n'
        '[questions."Is \\"it\\" hard?"]\nphrasings = ["tough?"]\n\n'
        '# Topics not covered.\n[uncovered.pay]\nphrasings = ["salary?"]\n'
    )


DOTTED = {
    "answers written with dotted keys": (
        '[questions."Q?"]\nphrasings = ["a"]\nanswers.Ada.phrasings = ["b"]\n\n'
        '[uncovered.pay]\nphrasings = ["s"]\n',
        ("questions", "Q?", "c", "Bob Smith"),
        '[questions."Q?"]\nphrasings = ["a"]\nanswers.Ada.phrasings = ["b"]\n'
        'answers."Bob Smith" = {phrasings = ["c"]}\n\n[uncovered.pay]\nphrasings = ["s"]\n',
    ),
    "a question written with a dotted key": (
        '[questions]\n"Q?".phrasings = ["a"]\n\n[uncovered.pay]\nphrasings = ["s"]\n',
        ("questions", "Q?", "c", "Ada"),
        '[questions]\n"Q?".phrasings = ["a"]\n"Q?".answers = {Ada = {phrasings = ["c"]}}\n\n'
        '[uncovered.pay]\nphrasings = ["s"]\n',
    ),
    "an inline question": (
        '[questions]\n"Q?" = {phrasings = ["a"]}\n',
        ("questions", "Q?", "c", None),
        '[questions]\n"Q?" = {phrasings = ["a", "c"]}\n',
    ),
}


@pytest.mark.parametrize("case", DOTTED)
def test_a_phrasing_goes_where_it_belongs_in_a_file_of_dotted_keys_or_inline_tables(
    tmp_path: Path, case: str
) -> None:
    before, (section, key, phrasing, speaker), after = DOTTED[case]
    path = tmp_path / "qa.speakers.toml"
    path.write_text(before)
    assert curation.add_phrasing(path, section, key, phrasing, speaker)
    assert path.read_text() == after
    # Offered again, it is there already, and the file stays one the build reads.
    assert not curation.add_phrasing(path, section, key, phrasing, speaker)
    assert path.read_text() == after


def test_a_transcript_without_a_speakers_file_gets_one_with_the_first_phrasing(
    tmp_path: Path,
) -> None:
    (tmp_path / "qa.txt").write_text("Why?\n\nAda Lovelace: I do.\n")
    path = tmp_path / "qa.speakers.toml"
    claims = curation.Claims.of(transcript.parse_corpus(tmp_path))
    assert not claims.decided("Why?", "how come")  # no file: nothing decided
    umask = os.umask(0o027)  # the file is made as an editor would make it
    try:
        assert curation.add_phrasing(path, "questions", "Why?", "how come")
    finally:
        os.umask(umask)
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    assert curation.add_phrasing(path, "questions", "Why?", "for what", "Ada Lovelace")
    claims = curation.Claims.of(transcript.parse_corpus(tmp_path))
    assert claims.decided("Why?", "How come") and claims.decided("Why?", "FOR what")
    parsed = transcript.parse_transcript(tmp_path / "qa.txt")  # the next build takes it
    assert parsed.curation.phrasings == {"Why?": ("how come",)}
    assert [(t.speaker.name, t.phrasings) for t in parsed.turns] == [
        ("Ada Lovelace", ("for what",))
    ]


def test_a_phrasing_keeps_the_files_line_endings_and_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "qa.txt").write_text("Why?\n\nAda: I do.\n")
    path = tmp_path / "qa.speakers.toml"
    path.write_bytes(b'\xef\xbb\xbf[speakers.Ada]\r\nname = "Ada"\r\n')
    assert transcript.parse_transcript(tmp_path / "qa.txt").speakers[0].name == "Ada"
    assert curation.add_phrasing(path, "questions", "Why?", "how come")
    written = path.read_bytes()
    assert written.startswith(b"\xef\xbb\xbf[speakers.Ada]\r\n")
    assert written.count(b"\n") == written.count(b"\r\n") > 2  # no line ends in \n alone
    assert transcript.parse_transcript(tmp_path / "qa.txt").curation.phrasings == {
        "Why?": ("how come",)
    }


def test_a_phrasing_that_would_take_the_file_over_its_limit_is_refused(
    speakers_file: Path,
) -> None:
    from careerbot import SMALL_FILE_BYTES

    padding = SMALL_FILE_BYTES - len(speakers_file.read_bytes()) - 10
    speakers_file.write_text(speakers_file.read_text() + "#" * (padding - 1) + "\n")
    before = speakers_file.read_bytes()
    with pytest.raises(CareerbotError, match="would take the file over 4,194,304 bytes"):
        curation.add_phrasing(speakers_file, "questions", "What is it like?", "and then")
    assert speakers_file.read_bytes() == before


@pytest.mark.parametrize(
    "key, speaker", [("\ud800", None), ("Why?", "\ud800"), ("", None), ("a\nb", None)]
)
def test_a_key_that_is_no_questions_text_is_refused(
    speakers_file: Path, key: str, speaker: str | None
) -> None:
    before = speakers_file.read_text()
    with pytest.raises(CareerbotError, match="not a question's text"):
        curation.add_phrasing(speakers_file, "questions", key, "and then", speaker)
    assert speakers_file.read_text() == before


def test_a_file_without_a_last_line_break_keeps_a_blank_line_before_the_new_table(
    tmp_path: Path,
) -> None:
    path = tmp_path / "qa.speakers.toml"
    path.write_text('[uncovered.pay]\nphrasings = ["p"]')
    assert curation.add_phrasing(path, "uncovered", "visas", "visa?")
    assert path.read_text() == (
        '[uncovered.pay]\nphrasings = ["p"]\n\n[uncovered.visas]\nphrasings = ["visa?"]\n'
    )


def test_a_read_only_file_is_not_rewritten(speakers_file: Path) -> None:
    before = speakers_file.read_text()
    speakers_file.chmod(0o444)
    with pytest.raises(CareerbotError, match="the file is read-only; make it writable"):
        curation.add_phrasing(speakers_file, "questions", "What is it like?", "and then")
    assert speakers_file.read_text() == before


LAYOUTS = {
    "an answer's table last, then a commented section": (
        '[questions."Q?".answers.Ada]\nphrasings = ["a"]\n\n# Not covered.\n'
        '[uncovered.pay]\nphrasings = ["s"]\n',
        None,
        '[questions."Q?".answers.Ada]\nphrasings = ["a"]\n\n'
        '[questions."R?"]\nphrasings = ["c"]\n\n# Not covered.\n'
        '[uncovered.pay]\nphrasings = ["s"]\n',
    ),
    "a headed [questions] of dotted keys": (
        '[questions]\n"Q?".phrasings = ["a"]\n\n[uncovered.pay]\nphrasings = ["s"]\n',
        None,
        '[questions]\n"Q?".phrasings = ["a"]\n\n[questions."R?"]\nphrasings = ["c"]\n\n'
        '[uncovered.pay]\nphrasings = ["s"]\n',
    ),
    "a [questions] of comments only": (
        '[questions]\n\n# Not covered.\n[uncovered.pay]\nphrasings = ["s"]\n',
        None,
        '[questions]\n\n[questions."R?"]\nphrasings = ["c"]\n\n# Not covered.\n'
        '[uncovered.pay]\nphrasings = ["s"]\n',
    ),
    "a comment of [questions] and one of the next section": (
        '[questions]\n# None yet.\n\n# Not covered.\n[uncovered.pay]\nphrasings = ["s"]\n',
        None,
        '[questions]\n# None yet.\n\n[questions."R?"]\nphrasings = ["c"]\n\n# Not covered.\n'
        '[uncovered.pay]\nphrasings = ["s"]\n',
    ),
    "[questions] split around another section": (
        '[questions."A?"]\nphrasings = ["a"]\n\n# Topics.\n[uncovered.pay]\nphrasings = ["s"]\n'
        '\n# More.\n[questions."B?"]\nphrasings = ["b"]\n',
        None,
        '[questions."A?"]\nphrasings = ["a"]\n\n[questions."R?"]\nphrasings = ["c"]\n\n'
        '# Topics.\n[uncovered.pay]\nphrasings = ["s"]\n\n# More.\n[questions."B?"]\n'
        'phrasings = ["b"]\n',
    ),
    "a question's table without phrasings yet": (
        '[questions."R?"]\n# None yet.\n\n# Topics.\n[uncovered.pay]\nphrasings = ["s"]\n',
        None,
        '[questions."R?"]\n# None yet.\nphrasings = ["c"]\n\n# Topics.\n[uncovered.pay]\n'
        'phrasings = ["s"]\n',
    ),
    "an answer's phrasing for a question with a table of its own": (
        '[questions."R?"]\nphrasings = ["a"]\n\n# Not covered.\n'
        '[uncovered.pay]\nphrasings = ["s"]\n',
        "Ada",
        '[questions."R?"]\nphrasings = ["a"]\n\n[questions."R?".answers.Ada]\nphrasings = ["c"]\n'
        '\n# Not covered.\n[uncovered.pay]\nphrasings = ["s"]\n',
    ),
    "a comment in a table of dotted keys stays": (
        '[questions."R?"]\nanswers.Bob.phrasings = ["a"]\n# Mind this.\n\n[uncovered.pay]\n'
        'phrasings = ["s"]\n',
        "Ada",
        '[questions."R?"]\nanswers.Bob.phrasings = ["a"]\nanswers.Ada = {phrasings = ["c"]}\n'
        '# Mind this.\n\n[uncovered.pay]\nphrasings = ["s"]\n',
    ),
}


@pytest.mark.parametrize("case", LAYOUTS)
def test_a_new_question_goes_after_the_last_and_before_the_next_sections_comments(
    tmp_path: Path, case: str
) -> None:
    before, speaker, after = LAYOUTS[case]
    path = tmp_path / "qa.speakers.toml"
    path.write_text(before)
    assert curation.add_phrasing(path, "questions", "R?", "c", speaker)
    assert path.read_text() == after


def test_a_phrasing_in_another_transcripts_file_is_decided_on(tmp_path: Path) -> None:
    from careerbot.report import Candidate, undecided

    for name in ("a", "b"):
        (tmp_path / f"{name}.txt").write_text("How do I start?\n\nAda: I do.\n")
    (tmp_path / "b.speakers.toml").write_text(
        '[questions."How do I start?"]\nphrasings = ["where to begin"]\n\n'
        '[uncovered.pay]\nphrasings = ["what does it pay"]\n'
    )
    question = "How do I start?"
    candidates = [Candidate(p, question) for p in ("Where to begin", "what does it pay", "new")]
    pending, gone, _ = undecided(candidates, set(), {}, tmp_path, 10**6)
    assert [item.candidate.phrasing for item in pending] == ["new"] and gone == []
    assert pending[0].path == tmp_path / "a.speakers.toml"  # written to the first


def test_review_prints_a_file_name_a_terminal_would_act_on_safely(
    tmp_path: Path,
    engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from careerbot.report import Candidate, Pending

    path = tmp_path / "b\x1b[7mX\u202e.speakers.toml"
    monkeypatch.setattr(sys, "stdin", io.StringIO("q\n"))
    claims = curation.Claims({}, set(), set())
    cli.review([Pending(Candidate("how co\x1bme", "Why?"), path, None)], engine, claims)
    out = capsys.readouterr().out
    assert "b\ufffd[7mX\ufffd.speakers.toml" in out and "\x1b" not in out and "\u202e" not in out


def test_a_phrasing_already_there_is_not_added_again(speakers_file: Path) -> None:
    before = speakers_file.read_text()
    assert not curation.add_phrasing(speakers_file, "questions", "What is it like?", " How  IS it")
    assert speakers_file.read_text() == before


def test_claims_say_what_is_decided_for_a_question_and_for_every_question() -> None:
    claims = curation.Claims({"What is it like?": {"how is it"}}, {"how is it"}, set())
    assert claims.decided("What is it like?", " How  IS it")
    assert not claims.decided("Another?", "how is it")  # another question's phrasing
    claims.add("uncovered", "pay", "Salary?")
    assert claims.decided("Another?", "salary?")  # an uncovered topic's: for every question
    claims.add("questions", "Another?", "and then")
    assert claims.decided("Another?", "And then") and not claims.decided("Third?", "and then")


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(
    speakers_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = speakers_file.read_text()
    speakers_file.chmod(0o640)

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="No space left"):
        curation.add_phrasing(speakers_file, "questions", "What is it like?", "new one")
    assert speakers_file.read_text() == before
    assert [p.name for p in speakers_file.parent.iterdir()] == [speakers_file.name]
    monkeypatch.undo()
    assert curation.add_phrasing(speakers_file, "questions", "What is it like?", "new one")
    assert [p.name for p in speakers_file.parent.iterdir()] == [speakers_file.name]
    assert speakers_file.stat().st_mode & 0o777 == 0o640  # permissions kept


@pytest.mark.parametrize(
    "name", ["ML", "ml salaries", "-pay", "pay-", "pay--day", "", "ünï", "pay_day", "x" * 61]
)
def test_a_topic_name_other_than_lowercase_words_and_hyphens_is_refused(
    speakers_file: Path, name: str
) -> None:
    with pytest.raises(CareerbotError, match="is not a topic name"):
        curation.add_phrasing(speakers_file, "uncovered", name, "anything")
    assert "anything" not in speakers_file.read_text()


@pytest.mark.parametrize("name", ["remote-work", "h1b", "x" * 60])
def test_lowercase_words_digits_and_hyphens_make_a_topic_name(name: str) -> None:
    assert curation.topic_name(name) == name


def test_a_damaged_metadata_file_is_refused_not_rewritten(speakers_file: Path) -> None:
    speakers_file.write_text('questions = "not a table"\n')
    with pytest.raises(CareerbotError, match="questions must be a table"):
        curation.add_phrasing(speakers_file, "questions", "Q?", "p")
    assert speakers_file.read_text() == 'questions = "not a table"\n'


def test_each_interview_question_maps_to_its_transcripts_metadata(settings: Settings) -> None:
    files = curation.metadata_files(
        transcript.parse_corpus(settings.corpus_dir), settings.corpus_dir
    )
    (path,) = set(files.values())
    assert path == metadata(settings) and len(files) >= 5


# GET /admin/report.


def admin(settings: Settings, token: str = TOKEN, **more: Any) -> Settings:
    return settings.model_copy(update={"admin_token": SecretStr(token), **more})


def test_without_a_token_configured_there_is_no_admin_route(
    logged: Settings, fake_embedder: FakeEmbedder
) -> None:
    with TestClient(create_app(logged, fake_embedder)) as client:
        response = client.get("/admin/report", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 404
        assert not any(p.startswith("/admin") for p in client.get("/openapi.json").json()["paths"])


@pytest.mark.parametrize(
    "header",
    [None, f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer "],
)
def test_a_missing_or_wrong_token_gets_401_with_the_error_body(
    logged: Settings, fake_embedder: FakeEmbedder, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    with TestClient(create_app(admin(logged), fake_embedder)) as client:
        response = client.get("/admin/report?since=bad", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "this route needs the admin token", "errors": []}
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_the_right_token_gets_the_same_report_as_the_command(
    command: Settings,
    seeded: Seeded,
    fake_embedder: FakeEmbedder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with TestClient(create_app(admin(command), fake_embedder)) as client:
        response = client.get("/admin/report", headers={"Authorization": f"bearer {TOKEN}"})
        hours = client.get("/admin/report?since=2h", headers={"Authorization": f"Bearer {TOKEN}"})
        assert "/admin/report" in client.get("/openapi.json").json()["paths"]
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert cli.main(["report", "--json", *dirs(command)]) == 0
    from_command = json.loads(capsys.readouterr().out)
    assert without_since(response.json()) == without_since(from_command)
    assert without_since(from_command) == expected_week(seeded, facts_of(command, fake_embedder))
    assert hours.json()["questions"] == 1


def test_a_bad_since_gets_422_naming_the_field(
    logged: Settings, fake_embedder: FakeEmbedder
) -> None:
    with TestClient(create_app(admin(logged), fake_embedder)) as client:
        response = client.get(
            "/admin/report?since=7w", headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "since", "message": "'7w' is not 1 to 99999 days or hours, such as 7d or 12h"}
    ]


def test_with_the_question_log_off_the_report_is_404_saying_so(
    logged: Settings, fake_embedder: FakeEmbedder
) -> None:
    off = admin(logged, question_log="off")
    with TestClient(create_app(off, fake_embedder)) as client:
        response = client.get("/admin/report", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404
    assert "question log is off" in response.json()["detail"]


@pytest.mark.parametrize(
    "token", ["short", "has spaces in it, long enough", "tab\there-1234567890"]
)
def test_an_admin_token_too_short_or_with_spaces_is_refused(token: str) -> None:
    with pytest.raises(ValidationError, match="at least 16 visible ASCII characters"):
        Settings(admin_token=token)
    assert Settings(admin_token=TOKEN).admin_token.get_secret_value() == TOKEN


def test_a_database_that_is_down_gets_503_not_a_traceback(
    logged: Settings, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: Any) -> None:
        raise sa.exc.OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(admin_module, "curated_report", down)
    with TestClient(create_app(admin(logged), fake_embedder)) as client:
        response = client.get("/admin/report", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503
    assert response.json()["detail"] == "the question log cannot be read now; try again"


def test_concurrent_reviews_of_one_file_lose_no_phrasing(corpus_dir: Path) -> None:
    import threading

    path = metadata_file(corpus_dir)
    wanted = [f"how would someone ask about pay, take {n}?" for n in range(40)]

    def add(texts: list[str]) -> None:
        for text in texts:
            curation.add_phrasing(path, "uncovered", "pay", text)

    threads = [threading.Thread(target=add, args=(wanted[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    written = tomllib.loads(path.read_text())["uncovered"]["pay"]["phrasings"]
    assert set(wanted) <= set(written)


def test_a_phrasing_too_long_for_the_metadata_file_is_refused(corpus_dir: Path) -> None:
    path = metadata_file(corpus_dir)
    with pytest.raises(CareerbotError, match="1 to 1000 characters on one line"):
        curation.add_phrasing(path, "uncovered", "pay", "x" * 1001)


def test_candidates_with_redaction_placeholders_or_too_long_are_not_proposed() -> None:
    from careerbot.report import Candidate, propose

    picked = [
        Candidate("mail me at [email] about hiring", "Q"),
        Candidate("y" * 1001, "Q"),
        Candidate("how do interviews go", "Q"),
        # Logged in full: the contacts are there as asked, and would go into the file.
        Candidate("Email jane.doe@example.com: tips for ML interviews?", "Q"),
        Candidate("call me on +1 415 555 0100 about MLE jobs", "Q"),
        Candidate("is www.example.org right about MLE interviews", "Q"),
    ]
    assert [c.phrasing for c in propose(picked, [], {})] == ["how do interviews go"]


def test_questions_shown_alike_in_a_group_are_shown_once() -> None:
    from careerbot.report import Group, Report

    post = "I have been a data engineer for four years, mostly Spark. " * 5
    group = Group(3, (post + "What pays best?", post + "Which pays more?", "what pays"))
    text = render(Report(NOW, 3, 0, (), (group,), (), ()))
    assert f"   3x {short(post)}\n        also: what pays\n" in text
    assert text.count(short(post)) == 1


@pytest.mark.parametrize("command_name", ["report", "review"])
def test_with_the_question_log_off_the_commands_read_and_write_nothing(
    command: Settings,
    engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command_name: str,
) -> None:
    monkeypatch.setenv("CAREERBOT_QUESTION_LOG", "off")
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n" * 10))
    with engine.connect() as connection:
        before = connection.execute(sa.select(sa.func.count()).select_from(skips)).scalar()
    assert cli.main([command_name, *dirs(command)]) == 2
    assert capsys.readouterr().err == (
        "careerbot: error: the question log is off (CAREERBOT_QUESTION_LOG=off): nothing is "
        "read or written; to report on a log kept before, set it to redacted or full\n"
    )
    with engine.connect() as connection:
        after = connection.execute(sa.select(sa.func.count()).select_from(skips)).scalar()
    assert after == before


def test_a_phrasing_proposed_twice_keeps_the_answer_a_helpful_vote_gave_it() -> None:
    from careerbot.report import AnswerFacts, Candidate, Judged, propose

    picked = [Candidate("how do interviews go", "Q")]
    judged = [Judged("a/1/x", True, "How  do interviews go", {"a/1/x": 0.2})]
    facts = {"a/1/x": AnswerFacts("X", "Q", "corpus/a.txt")}
    assert propose(picked, judged, facts) == (Candidate("how do interviews go", "Q", "a/1/x"),)


@pytest.mark.parametrize("taken_first", [True, False])
def test_a_phrasing_proposed_twice_keeps_the_uncovered_topic_it_was_once_taken_for(
    taken_first: bool,
) -> None:
    from careerbot.report import Candidate, propose

    picked = [Candidate("what do they pay", "Q"), Candidate("What do they pay", "Q", None, "pay")]
    picked = picked[::-1] if taken_first else picked
    (kept,) = propose(picked, [], {})
    assert kept.uncovered == "pay"


def test_review_of_a_helpful_answer_in_another_transcript_is_not_offered_twice(
    command: Settings,
    seeded: Seeded,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """[a] writes to the answer's own transcript's file; the next review must see it
    there, though the question's first transcript is another."""
    first = command.corpus_dir / "a-first.txt"
    first.write_text(f"{seeded.low}\n\nAda: I do.\n")
    transcript.speakers_file(first).write_text('[speakers.Ada]\nname = "Ada"\n')
    assert review(command, monkeypatch, "n\na\n") == 0
    out = capsys.readouterr().out
    assert f"({transcript.speakers_file(first)})" in out  # the question's first file
    own = transcript.speakers_file(command.corpus_dir / "ml-engineer-career-qa.txt")
    assert "added to" in out and str(own) in out
    assert review(command, monkeypatch, "") == 0
    assert "Nothing to review." in capsys.readouterr().out


def test_review_refuses_a_phrasing_both_covered_and_not_which_the_build_would_refuse(
    command: Settings,
    engine: sa.Engine,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from careerbot.report import Candidate, Pending

    path, asked = metadata(command), "what salary should I expect"
    (parsed,) = transcript.parse_corpus(command.corpus_dir)
    questions = [question.text for question in parsed.questions[:2]]
    # The one question, picked after two different suggestions: proposed for each.
    pending = [Pending(Candidate(asked, question), path, None) for question in questions]
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\nu\npay\n"))
    cli.review(pending, engine, curation.Claims.of(transcript.parse_corpus(command.corpus_dir)))
    out = capsys.readouterr().out
    assert "not added: it asks a covered question" in out and "1 phrasing added" in out
    assert asked not in tomllib.loads(path.read_text()).get("uncovered", {}).get("pay", {})
    build_index(command, fake_embedder)  # the file is still one the build takes
    # And the other way round: a topic's phrasing is not added to a question.
    claims = curation.Claims.of(transcript.parse_corpus(command.corpus_dir))
    assert claims.conflict("uncovered", asked) is not None
    claims.add("uncovered", "pay", "ml pay")
    assert claims.conflict("questions", "ML  Pay") == "an uncovered topic lists it"


def test_an_uncovered_phrasing_that_is_an_interview_question_fails_the_build(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    path = metadata(settings)
    question = "What are some tips for the interview process?"
    path.write_text(path.read_text() + f'\n[uncovered.pay]\nphrasings = ["{question}"]\n')
    with pytest.raises(CareerbotError) as error:
        build_index(settings, fake_embedder)
    assert str(error.value).startswith(f"{path.name}: [uncovered.pay] lists {question!r}, ")
    assert "is an interview question or a phrasing of one or of an answer" in str(error.value)


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    bogus = tmp_path / "questions.sqlite"
    bogus.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CareerbotError, match="cannot open the question log"):
        connect(f"sqlite:///{bogus}")


def test_a_log_of_a_newer_schema_is_one_line(logged: Settings, engine: sa.Engine) -> None:
    # As after going back to an older careerbot once a newer one has migrated the log.
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    with pytest.raises(CareerbotError, match="its schema is not one this careerbot knows"):
        connect(logged.database)


# Records damaged by hand, as the ask "1111..." of the seeded log. Some only SQLite
# allows: PostgreSQL refuses text that is not JSON in a JSON column, or bytes in a text one.
DAMAGE = {
    "answers not JSON": ("UPDATE asks SET answers = 'nope' WHERE id = :id", True),
    "answers a list of numbers": ("UPDATE asks SET answers = '[1, 2]' WHERE id = :id", False),
    "a score that is text": (
        """UPDATE asks SET answers = '[{"id": "a", "score": "0.5"}]' WHERE id = :id""",
        False,
    ),
    "a score that is true": (
        """UPDATE asks SET answers = '[{"id": "a", "score": true}]' WHERE id = :id""",
        False,
    ),
    "the question stored as bytes": ("UPDATE asks SET question = X'FF41' WHERE id = :id", True),
    "answered that is text": ("UPDATE asks SET answered = 'yes' WHERE id = :id", True),
    "a score over 1": (
        """UPDATE asks SET answers = '[{"id": "a", "score": 1.5}]' WHERE id = :id""",
        False,
    ),
    "an answer with a field careerbot does not write": (
        """UPDATE asks SET answers = '[{"id": "a", "score": 0.5, "x": 1}]' WHERE id = :id""",
        False,
    ),
    "suggestions not a list of texts": (
        "UPDATE asks SET suggestions = '[1]' WHERE id = :id",
        False,
    ),
    "a time that is not one": ("UPDATE asks SET asked_at = 'garbage' WHERE id = :id", True),
    "a score that is not finite": (
        """UPDATE asks SET answers = '[{"id": "a", "score": 1e999}]' WHERE id = :id""",
        True,
    ),
    "an empty question": ("UPDATE asks SET question = '  ' WHERE id = :id", False),
    "answers given but answered false": ("UPDATE asks SET answered = false WHERE id = :id", False),
    "answered with suggestions": (
        """UPDATE asks SET suggestions = '["What is it like?"]' WHERE id = :id""",
        False,
    ),
    "answered as an uncovered topic": ("UPDATE asks SET uncovered = 'pay' WHERE id = :id", False),
}
ONE_LEFT_OUT = (
    "careerbot: warning: left out of the {}: 1 damaged record in the question log (edited "
    "by hand?); the votes and picks on a damaged ask go with it"
)


def damage(engine: sa.Engine, case: str, ask_id: str) -> None:
    statement, sqlite_only = DAMAGE[case]
    if sqlite_only and engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL keeps such values out of its columns")
    with engine.begin() as connection:
        connection.execute(sa.text(statement), {"id": ask_id})


@pytest.mark.parametrize("case", DAMAGE)
def test_an_ask_damaged_by_hand_is_left_out_of_the_report_and_said(
    command: Settings,
    seeded: Seeded,
    engine: sa.Engine,
    fake_embedder: FakeEmbedder,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    damage(engine, case, "1" * 32)
    assert cli.main(["report", "--json", *dirs(command)]) == 0
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == [ONE_LEFT_OUT.format("report")]
    body = json.loads(out)
    week = expected_week(seeded, facts_of(command, fake_embedder))
    assert body["questions"] == week["questions"] - 1
    assert body["answered"] == week["answered"] - 1
    # The damaged ask's votes (two helpful, one of them at a low score) are gone too.
    assert sum(figures["helpful"] for figures in body["answers"]) == 0
    assert all(candidate["answer_id"] is None for candidate in body["candidates"])
    with TestClient(create_app(admin(command), fake_embedder)) as client:
        response = client.get("/admin/report", headers={"Authorization": f"Bearer {TOKEN}"})
        vote = {"ask_id": "1" * 32, "answer_id": seeded.a1, "helpful": True}
        damaged_vote = client.post("/feedback", json=vote)
        sound_vote = client.post("/feedback", json={**vote, "ask_id": "2" * 32})
    assert damaged_vote.status_code == 404 and sound_vote.status_code == 204
    if case == "a time that is not one":
        return  # the server's purge at start took it (the test above)
    assert response.status_code == 200 and response.json()["questions"] == body["questions"]
    assert ONE_LEFT_OUT.format("report").removeprefix("careerbot: warning: ") in caplog.text
    assert f"ask {'1' * 32} in the question log is damaged" in caplog.text


def test_a_damaged_ask_takes_its_pick_with_it_and_review_says_so(
    command: Settings,
    seeded: Seeded,
    engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Ask 3 was taken for "pay" and its suggestion picked; ask 4 picked the same one.
    damage(engine, "answers a list of numbers", "3" * 32)
    assert cli.main(["report", "--json", *dirs(command)]) == 0
    candidates = json.loads(capsys.readouterr().out)["candidates"]
    assert {"phrasing": "how much do ml engineers earn", "question": seeded.picked,
            "answer_id": None, "uncovered": None} in candidates  # fmt: skip
    assert review(command, monkeypatch, "q\n") == 0
    out, err = capsys.readouterr()
    assert ONE_LEFT_OUT.format("review") in err.splitlines()
    assert "careerbot took it for the uncovered topic" not in out


VOTE_DAMAGE = {
    "helpful that is text": (
        "UPDATE votes SET helpful = 'no' WHERE ask_id = :id AND answer_id = :answer",
        True,
    ),
    "an answer id stored as bytes": (
        "UPDATE votes SET answer_id = X'6869' WHERE ask_id = :id AND answer_id = :answer",
        True,
    ),
    "a vote on an answer the ask did not give": (
        "UPDATE votes SET answer_id = :other WHERE ask_id = :id AND answer_id = :answer",
        False,
    ),
}


def test_a_pick_of_a_suggestion_its_ask_did_not_offer_is_left_out_and_counted(
    command: Settings, seeded: Seeded, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    with engine.begin() as connection:  # ask 4 offered only `picked`
        connection.execute(
            sa.update(picks).where(picks.c.ask_id == "4" * 32).values(suggestion=seeded.low)
        )
    assert cli.main(["report", "--json", *dirs(command)]) == 0
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == [ONE_LEFT_OUT.format("report")]
    proposed = {(c["phrasing"], c["question"]) for c in json.loads(out)["candidates"]}
    assert ("how much do ml engineers earn", seeded.low) not in proposed
    assert ("how much do ML engineers earn", seeded.picked) in proposed  # ask 3's sound pick


@pytest.mark.parametrize("case", VOTE_DAMAGE)
def test_a_damaged_vote_is_left_out_and_counted(
    command: Settings,
    seeded: Seeded,
    engine: sa.Engine,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    statement, sqlite_only = VOTE_DAMAGE[case]
    if sqlite_only and engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL keeps such values out of its columns")
    with engine.begin() as connection:  # the unhelpful vote on ask 2's only answer
        connection.execute(
            sa.text(statement), {"id": "2" * 32, "answer": seeded.a1, "other": seeded.a3}
        )
    assert cli.main(["report", "--json", *dirs(command)]) == 0
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == [ONE_LEFT_OUT.format("report")]
    body = json.loads(out)
    assert body["unhelpful"] == [] and body["questions"] == 6
    assert sum(figures["unhelpful"] for figures in body["answers"]) == 0


def test_an_ask_whose_time_does_not_parse_is_damaged_to_feedback_and_purged_at_start(
    command: Settings,
    seeded: Seeded,
    engine: sa.Engine,
    fake_embedder: FakeEmbedder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL keeps text out of a timestamp column")
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE asks SET asked_at = 'garbage' WHERE id = :id"), {"id": "1" * 32}
        )
    assert QuestionLog(engine, "full", 90).facts("1" * 32) is None  # no purge has run
    assert f"ask {'1' * 32} in the question log is damaged" in caplog.text
    vote = {"ask_id": "1" * 32, "answer_id": seeded.a1, "helpful": True}
    with TestClient(create_app(command, fake_embedder)) as client:
        assert client.post("/feedback", json=vote).status_code == 404
    with engine.connect() as connection:  # the server's purge at start took it
        assert connection.scalar(sa.text("SELECT count(*) FROM asks WHERE id = :id"),
                                 {"id": "1" * 32}) == 0  # fmt: skip


def test_review_reads_past_a_damaged_skip_and_refuses_a_choice_as_a_topic_name(
    command: Settings,
    seeded: Seeded,
    engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if engine.dialect.name == "sqlite":  # a time that does not parse, in SQLite
        with engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO skips VALUES ('x', 'y', 'garbage')"))
    path, before = metadata(command), metadata(command).read_text()
    # q at the topic prompt is not a topic named "q": it is refused, and - goes back.
    assert review(command, monkeypatch, "u\nq\n-\nq\n") == 0
    out = capsys.readouterr().out
    assert "'q' is a choice of the prompt before; '-' goes back to it" in out
    assert path.read_text() == before


def test_text_that_is_not_utf8_in_an_sqlite_log_is_shown_with_replacement_characters(
    command: Settings, seeded: Seeded, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL keeps text that is not UTF-8 out")
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE asks SET question = CAST(X'FF41' AS TEXT) WHERE id = :id"),
            {"id": "4" * 32},  # unanswered, and its pick proposes it as a phrasing
        )
    assert cli.main(["report", "--json", *dirs(command)]) == 0
    body = json.loads(capsys.readouterr().out)
    unanswered = [q for g in body["unanswered"] for q in g["questions"]]
    assert "\ufffdA" in unanswered and "how much do ml engineers earn" not in unanswered
    phrasings = [candidate["phrasing"] for candidate in body["candidates"]]
    assert "how much do ML engineers earn" in phrasings  # ask 3's pick
    assert not any("\ufffd" in phrasing for phrasing in phrasings)


def test_a_log_that_cannot_be_read_is_one_error_line_and_exit_2(
    command: Settings, seeded: Seeded, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE votes"))
    assert cli.main(["report", *dirs(command)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "careerbot: error: the question log cannot be read or written ("
    )
    assert "votes" in err[0]


def first_question(settings: Settings, embedder: FakeEmbedder) -> str:
    answers = load_index(settings.index_dir, embedder).answers
    return sorted({answer["question"] for answer in answers})[0]


def test_a_question_in_paragraphs_is_proposed_on_one_line_and_the_next_build_takes_it(
    command: Settings,
    engine: sa.Engine,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    question = first_question(command, fake_embedder)
    pasted = "I lead a team.\n\nHow do\tML\u00a0engineers get hired?"
    log = QuestionLog(engine, "full", 90)
    log.write(
        [
            an_ask("a" * 32, 1, pasted, suggestions=(question,)),
            an_ask("b" * 32, 2, "a zero\u200bwidth space", suggestions=(question,)),
        ]
    )
    log.write([Pick("a" * 32, question, NOW), Pick("b" * 32, question, NOW)])
    assert review(command, monkeypatch, "y\nq\n") == 0
    assert "zero" not in capsys.readouterr().out  # the build would refuse it: not offered
    written = phrasings(metadata(command), "questions", question)
    assert "I lead a team. How do ML engineers get hired?" in written
    build_index(command, fake_embedder)  # refuses a phrasing with control characters


def test_a_topic_named_like_a_choice_is_still_taken_on_an_empty_line(
    command: Settings,
    engine: sa.Engine,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    question = first_question(command, fake_embedder)
    log = QuestionLog(engine, "full", 90)
    log.write([an_ask("a" * 32, 1, "what do quants earn", (), (question,), uncovered="q")])
    log.write([Pick("a" * 32, question, NOW)])
    assert review(command, monkeypatch, "u\n\n") == 0
    assert "empty: q, -: back" in capsys.readouterr().out
    assert phrasings(metadata(command), "uncovered", "q") == ["what do quants earn"]
