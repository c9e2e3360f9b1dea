"""The question log and feedback, on SQLite and on a real PostgreSQL."""

import logging
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from careerbot import CareerbotError
from careerbot.api import create_app
from careerbot.config import Settings
from careerbot.index import build_index
from careerbot.questionlog import Ask, Pick, QuestionLog, Vote
from careerbot.redaction import redact
from careerbot.store import asks, connect, picks, votes
from tests.conftest import FakeEmbedder
from tests.test_reliability import wait_for

POSTGRES = os.environ.get("CAREERBOT_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """An empty database of each kind; PostgreSQL is the throwaway one scripts/test.sh runs."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.sqlite'}"
    if not POSTGRES:
        pytest.skip("no PostgreSQL: run the suite with scripts/test.sh")
    engine = sa.create_engine(POSTGRES)
    with engine.begin() as connection:
        connection.execute(
            sa.text("DROP TABLE IF EXISTS skips, picks, votes, asks, alembic_version")
        )
    engine.dispose()
    return POSTGRES


def rows(url: str, table: sa.Table) -> list[Any]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        found = list(connection.execute(sa.select(table)))
    engine.dispose()
    return found


@pytest.fixture
def logged(settings: Settings, fake_embedder: FakeEmbedder, database_url: str) -> Settings:
    build_index(settings, fake_embedder)
    return settings.model_copy(update={"database_url": database_url})


@pytest.fixture
def client(logged: Settings, fake_embedder: FakeEmbedder) -> Iterator[TestClient]:
    with TestClient(create_app(logged, fake_embedder)) as client:
        yield client


def test_every_ask_is_logged_once_with_what_it_returned(
    logged: Settings, fake_embedder: FakeEmbedder
) -> None:
    with TestClient(create_app(logged, fake_embedder)) as client:
        given = [client.post("/ask", json={"question": f"hiring {n}"}).json() for n in range(5)]
    # Leaving the app drains the queue.
    logged_asks = {row.id: row for row in rows(logged.database, asks)}
    assert set(logged_asks) == {body["id"] for body in given}
    for body in given:
        row = logged_asks[body["id"]]
        assert row.question == body["question"] and row.answered is True
        assert [a["id"] for a in row.answers] == [a["id"] for a in body["answers"]]
        assert row.index_version and row.latency_ms > 0


def test_questions_are_redacted_by_default_kept_in_full_or_not_at_all(
    logged: Settings, fake_embedder: FakeEmbedder
) -> None:
    question = "I am ada@example.org, +1 (415) 555-0100, see https://ada.dev/cv: how to get hired?"
    for mode, stored in [
        ("redacted", "I am [email], [phone], see [url] how to get hired?"),
        ("full", question),
    ]:
        settings = logged.model_copy(update={"question_log": mode})
        with TestClient(create_app(settings, fake_embedder)) as client:
            ask_id = client.post("/ask", json={"question": question}).json()["id"]
        (row,) = [row for row in rows(logged.database, asks) if row.id == ask_id]
        assert row.question == stored
    before = len(rows(logged.database, asks))
    off = logged.model_copy(update={"question_log": "off"})
    with TestClient(create_app(off, fake_embedder)) as client:
        body = client.post("/ask", json={"question": question}).json()
        vote = {"ask_id": body["id"], "answer_id": body["answers"][0]["id"], "helpful": True}
        refused = client.post("/feedback", json=vote)
        assert refused.status_code == 404
        assert refused.json()["detail"] == "the question log is off: nothing is logged"
        assert client.get("/health").json()["question_log"]["mode"] == "off"
    assert len(rows(logged.database, asks)) == before


def vote_on(client: TestClient, **extra: Any) -> tuple[dict[str, Any], int]:
    body = client.post("/ask", json={"question": "core values interviews"}).json()
    vote = {"ask_id": body["id"], "answer_id": body["answers"][0]["id"], "helpful": True}
    return body, client.post("/feedback", json={**vote, **extra}).status_code


def test_a_vote_is_recorded_and_a_repeat_replaces_it(
    logged: Settings, fake_embedder: FakeEmbedder
) -> None:
    with TestClient(create_app(logged, fake_embedder)) as client:
        body, status = vote_on(client, comment="clear, thanks")
        assert status == 204
        again = {"ask_id": body["id"], "answer_id": body["answers"][0]["id"], "helpful": False}
        assert client.post("/feedback", json=again).status_code == 204
    (row,) = rows(logged.database, votes)
    assert (row.ask_id, row.answer_id, row.helpful, row.comment) == (
        body["id"],
        body["answers"][0]["id"],
        False,
        None,
    )


def test_a_suggestion_picked_after_no_answer_is_recorded(
    logged: Settings, fake_embedder: FakeEmbedder
) -> None:
    strict = logged.model_copy(update={"min_score": 1.0})  # nothing clears it
    with TestClient(create_app(strict, fake_embedder)) as client:
        body = client.post("/ask", json={"question": "what is the weather"}).json()
        assert body["answered"] is False and body["suggestions"]
        pick = {"ask_id": body["id"], "suggestion": body["suggestions"][0]}
        assert client.post("/feedback", json=pick).status_code == 204
        other = {"ask_id": body["id"], "suggestion": "How do I get rich quickly?"}
        refused = client.post("/feedback", json=other)
        assert refused.status_code == 422
        assert refused.json()["detail"] == (
            "suggestion: not one of the suggestions that ask returned"
        )
    (row,) = rows(logged.database, picks)
    assert (row.ask_id, row.suggestion) == (body["id"], body["suggestions"][0])


BAD_FEEDBACK = {
    "unknown ask": ({"ask_id": "0" * 32}, 404, "no ask with that ask_id was logged"),
    "malformed ask id": ({"ask_id": "'; DROP TABLE asks; --"}, 422, "ask_id: must be the id of an"),
    "ask id in capitals": ({"ask_id": "A" * 32}, 422, "ask_id: must be the id of an /ask response"),
    "another ask's answer": ({"answer_id": "somebody-else/1/x"}, 422, "answer_id: not one of"),
    "oversized comment": ({"comment": "x" * 501}, 422, "comment: must be at most 500 characters"),
    "a vote and a pick at once": (
        {"suggestion": "How?"},
        422,
        "answer_id: unknown field; the fields are ask_id, suggestion",
    ),
    "helpful as text": ({"helpful": "yes"}, 422, "helpful: must be true or false"),
    "helpful as a number": ({"helpful": 1}, 422, "helpful: must be true or false"),
    "empty answer id": ({"answer_id": ""}, 422, "answer_id: must not be empty"),
    "control characters": ({"comment": "a\x00b"}, 422, "comment: must not contain control"),
}


@pytest.mark.parametrize("case", BAD_FEEDBACK)
def test_bad_feedback_gets_a_clear_4xx_and_writes_nothing(
    logged: Settings, fake_embedder: FakeEmbedder, case: str
) -> None:
    change, status, message = BAD_FEEDBACK[case]
    with TestClient(create_app(logged, fake_embedder)) as client:
        body = client.post("/ask", json={"question": "hiring"}).json()
        vote = {"ask_id": body["id"], "answer_id": body["answers"][0]["id"], "helpful": True}
        response = client.post("/feedback", json={**vote, **change})
    assert response.status_code == status
    assert response.json()["detail"].startswith(message)  # each field named as sent
    assert rows(logged.database, votes) == [] and rows(logged.database, picks) == []
    assert len(rows(logged.database, asks)) == 1  # the tables are all there, untouched


def test_sql_looking_text_is_stored_as_text(logged: Settings, fake_embedder: FakeEmbedder) -> None:
    sql = "x'); DELETE FROM asks; --"
    with TestClient(create_app(logged, fake_embedder)) as client:
        body = client.post("/ask", json={"question": f"hiring {sql}"}).json()
        _, status = vote_on(client, comment=sql)
    assert status == 204
    assert {row.comment for row in rows(logged.database, votes)} == {sql}
    assert len(rows(logged.database, asks)) == 2 and body["id"]


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = connect(database_url)
    yield engine
    engine.dispose()


def an_ask(ask_id: str, when: datetime) -> Ask:
    return Ask(ask_id, when, "how?", True, None, (("a/1/x", 0.5),), (), "v1", 1.0)


def test_a_full_queue_drops_and_counts_instead_of_waiting(
    engine: sa.Engine, database_url: str
) -> None:
    questions = QuestionLog(engine, "full", 90, capacity=2)  # writer not started
    for n in range(5):
        questions.ask(an_ask(f"{n:032x}", datetime.now(UTC)))
    assert (questions.dropped, questions.queue.qsize()) == (3, 2)
    # A dropped ask is not remembered either: feedback on it would fail at the database.
    assert questions.facts(f"{1:032x}") is not None and questions.facts(f"{2:032x}") is None
    questions.start()
    questions.stop()
    assert questions.written == 2 and len(rows(database_url, asks)) == 2


def test_records_past_the_retention_period_are_purged_with_their_feedback(
    engine: sa.Engine, database_url: str
) -> None:
    questions = QuestionLog(engine, "full", 30)
    old, new = datetime.now(UTC) - timedelta(days=31), datetime.now(UTC)
    questions.write([an_ask("a" * 32, old), an_ask("b" * 32, new)])
    questions.write([Vote("a" * 32, "a/1/x", True, None, old)])
    questions.purge()
    assert [row.id for row in rows(database_url, asks)] == ["b" * 32]
    assert rows(database_url, votes) == []


def test_the_purge_takes_asks_whose_time_is_not_one_and_feedback_without_its_ask(
    engine: sa.Engine, database_url: str
) -> None:
    questions = QuestionLog(engine, "full", 30)
    now = datetime.now(UTC)
    questions.write([an_ask("a" * 32, now), an_ask("b" * 32, now), an_ask("c" * 32, now)])
    questions.write([Vote("a" * 32, "a/1/x", True, None, now), Pick("b" * 32, "q?", now)])
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as connection:
        # Foreign keys off, as in the sqlite3 shell (on PostgreSQL, for this transaction).
        no_keys = (
            "PRAGMA foreign_keys = OFF"
            if sqlite
            else "SET LOCAL session_replication_role = replica"
        )
        connection.execute(sa.text(no_keys))
        # The asks of the vote and the pick deleted behind the foreign keys' back.
        connection.execute(sa.delete(asks).where(asks.c.id.in_(["a" * 32, "b" * 32])))
        if sqlite:  # text that is not a time, edited in by hand
            garbage = sa.text("UPDATE asks SET asked_at = 'garbage' WHERE id = :id")
            connection.execute(garbage, {"id": "c" * 32})
        else:  # a time far ahead of the clock, the same to the purge
            far = asks.update().where(asks.c.id == "c" * 32).values(asked_at=now.replace(year=9999))
            connection.execute(far)
        if sqlite:
            connection.execute(sa.text("PRAGMA foreign_keys = ON"))
    assert len(rows(database_url, votes)) == len(rows(database_url, picks)) == 1
    questions.purge()
    assert rows(database_url, asks) == []
    assert rows(database_url, votes) == [] and rows(database_url, picks) == []


def test_migrations_run_once_and_again_without_harm(database_url: str) -> None:
    for _ in range(2):
        engine = connect(database_url)
        with engine.connect() as connection:
            version = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert [row[0] for row in version] == ["0002"]
        engine.dispose()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("write to a.b+c@d.co.uk today", "write to [email] today"),
        ("call 415-555-0100 or +44 20 7946 0958", "call [phone] or [phone]"),
        ("my site www.ada.dev and http://x.io/a?b=1", "my site [url] and [url]"),
        ("10 years in 2019, 3 offers, 120k", "10 years in 2019, 3 offers, 120k"),
        ("my number is 07911 123456.", "my number is [phone]."),
        ("see HTTPS://EXAMPLE.COM/Profile or JaneDoe.COM", "see [url] or [url]"),
        ("worked 2015-2023 for 120000-150000", "worked 2015-2023 for 120000-150000"),
        (
            "a budget of 100 000 000 in ticket #123456789",
            "a budget of 100 000 000 in ticket #123456789",
        ),
        # Found by an attack session: forms that were let through.
        ("call me on 555-1234 or 212-5551234", "call me on [phone] or [phone]"),
        ("my cell 612 345 678, or ring 555\u2013123\u20134567", "my cell [phone], or ring [phone]"),
        ("see bit.ly/3xYzAbc and youtu.be/a1", "see [url] and [url]"),
        ("my cv ftp://files.janedoe.ca/cv.pdf", "my cv [url]"),
        ("jane.doe\uff20example.ch or mysite.com.br", "[email] or [url]"),
        # Found by a second: more forms let through (and one of the first's, lost).
        ("07700-900123, 98765-43210 or 555 - 123 - 4567", "[phone], [phone] or [phone]"),
        ("555\u2014123\u20144567, Mob.9876543210", "[phone], Mob.[phone]"),
        ("555 123 4567 555 987 6543", "[phone]"),
        (
            "jane\uff20gmail\uff0ecom, jane.doe @gmail.com, o'brien@gmail.com",
            "[email], [email], [email]",
        ),
        # and what is still no contact
        (
            "on 2023-01-15 or 15.01.2023, pi is 3.14159265",
            "on 2023-01-15 or 15.01.2023, pi is 3.14159265",
        ),
        ("an M.Sc/PhD or a B.Tech, 1000-10000 users", "an M.Sc/PhD or a B.Tech, 1000-10000 users"),
        (
            "salary 1,234,567 or 1 200 000 in 2015\u20132023",
            "salary 1,234,567 or 1 200 000 in 2015\u20132023",
        ),
        ("TCP/IP and/or e.g. v1.2.3, 3.14159", "TCP/IP and/or e.g. v1.2.3, 3.14159"),
    ],
)
def test_redaction_replaces_contacts_and_keeps_numbers_that_are_not(
    text: str, expected: str
) -> None:
    assert redact(text) == expected


def test_a_record_the_database_refuses_costs_only_itself(
    engine: sa.Engine, database_url: str
) -> None:
    questions = QuestionLog(engine, "full", 90)
    now = datetime.now(UTC)
    orphan = Vote("f" * 32, "a/1/x", True, None, now)  # its ask was never written
    questions.write([an_ask("a" * 32, now), orphan, an_ask("b" * 32, now)])
    assert sorted(row.id for row in rows(database_url, asks)) == ["a" * 32, "b" * 32]
    assert (questions.written, questions.failed) == (2, 1)


def test_old_records_are_purged_under_steady_traffic(engine: sa.Engine, database_url: str) -> None:
    questions = QuestionLog(engine, "full", 30)
    questions.PURGE_EVERY = 0.0  # every batch is "an hour later"
    questions.write([an_ask("a" * 32, datetime.now(UTC) - timedelta(days=31))])
    questions.start()
    questions.ask(an_ask("b" * 32, datetime.now(UTC)))
    questions.stop()
    assert [row.id for row in rows(database_url, asks)] == ["b" * 32]


def test_servers_starting_at_once_on_a_new_sqlite_file_take_turns_migrating(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'new.sqlite'}"
    errors: list[Exception] = []

    def start() -> None:
        try:
            connect(url).dispose()
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []


def test_a_log_that_cannot_be_opened_leaves_answers_running_and_says_so(
    settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Any
) -> None:
    build_index(settings, fake_embedder)
    broken = settings.model_copy(
        update={"database_url": f"sqlite:///{tmp_path / 'missing' / 'dir' / 'log.sqlite'}"}
    )
    with TestClient(create_app(broken, fake_embedder)) as client:
        body = client.post("/ask", json={"question": "hiring"}).json()
        health = client.get("/health").json()
        vote = {"ask_id": body["id"], "answer_id": body["answers"][0]["id"], "helpful": True}
        refused = client.post("/feedback", json=vote)
    assert body["answered"] is True
    assert health["status"] == "degraded"
    assert health["warnings"][-1].startswith(
        f"cannot open the question log ({tmp_path / 'missing' / 'dir'} is not a folder, "
        "so log.sqlite cannot be made)"
    )
    # The ask was not logged, as with the log off: 404, and the widget offers no retry.
    assert refused.status_code == 404 and "could not be opened" in refused.json()["detail"]


def test_feedback_when_the_database_cannot_be_read_is_503_not_500(
    logged: Settings, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: object) -> None:
        raise sa.exc.OperationalError("SELECT", {}, Exception("server closed the connection"))

    with TestClient(create_app(logged, fake_embedder)) as client:
        monkeypatch.setattr(QuestionLog, "facts", down)
        response = client.post(
            "/feedback", json={"ask_id": "0" * 32, "answer_id": "x", "helpful": True}
        )
    assert response.status_code == 503
    assert response.json()["detail"].startswith("the question log cannot be read right now")


def test_any_text_an_ask_carries_is_stored_and_read_back_as_it_was(
    engine: sa.Engine, database_url: str
) -> None:
    """Tabs, newlines, backslashes and a line of '\\.' mean something to COPY's text
    format (PostgreSQL); quotes and '--' to SQL; all must arrive as they were."""
    texts = ["a\tb\nc\\d", "\\.\nend", 'it\'s "quoted" -- not SQL; DROP TABLE asks', "ü 中文 😀"]
    questions = QuestionLog(engine, "full", 90)
    now = datetime.now(UTC)
    made = [
        Ask(f"{n:032x}", now, text, False, "pay", ((text, 0.25),), (text, "\\N"), text, 1.5)
        for n, text in enumerate(texts)
    ]
    questions.write(made)
    for ask in made:
        with engine.connect() as connection:
            row = connection.execute(sa.select(asks).where(asks.c.id == ask.id)).one()
        assert (row.question, row.uncovered, row.index_version) == (
            ask.question,
            "pay",
            ask.question,
        )
        assert row.answers == [{"id": ask.question, "score": 0.25}]
        assert row.suggestions == [ask.question, "\\N"]


def test_a_relative_log_path_in_a_missing_folder_is_named_in_full(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CareerbotError) as error:
        connect("sqlite:///missing/log.sqlite")
    assert f"({tmp_path / 'missing'} is not a folder, so log.sqlite cannot be made)" in str(
        error.value
    )


def test_a_log_path_that_is_a_folder_says_so_and_which_file_to_name(tmp_path: Any) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    with pytest.raises(CareerbotError) as error:
        connect(f"sqlite:///{folder}")
    assert f"({folder} is a folder; name a file in it, such as {folder / 'questions.sqlite'})" in (
        str(error.value)
    )


@pytest.mark.parametrize(
    "url, problem",
    [
        ("postgresql+psycopg://u@h:notaport/x", "CAREERBOT_DATABASE_URL is not usable"),
        (f"postgresql+psycopg://{'a' * 300}/x", "cannot open the question log"),
    ],
)
def test_a_url_its_driver_cannot_use_is_one_line_not_a_traceback(url: str, problem: str) -> None:
    with pytest.raises(CareerbotError, match=problem) as error:
        connect(url)
    assert "\n" not in str(error.value)


def test_a_log_whose_writes_fail_makes_health_degraded_for_a_while(
    client: TestClient, logged: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    def health() -> dict[str, Any]:
        found: dict[str, Any] = client.get("/health").json()
        return found

    questions = client.app.state.questions  # type: ignore[attr-defined]
    body = client.post("/ask", json={"question": "hiring"}).json()
    wait_for(lambda: health()["question_log"]["written"] == 1)
    assert health()["status"] == "ok"
    engine = sa.create_engine(logged.database)
    with engine.begin() as connection:  # a database gone wrong under the server
        connection.execute(sa.text("DROP TABLE votes"))
    engine.dispose()
    vote = {"ask_id": body["id"], "answer_id": body["answers"][0]["id"], "helpful": True}
    vote["comment"] = "my private words"
    with caplog.at_level(logging.WARNING, logger="careerbot"):
        assert client.post("/feedback", json=vote).status_code == 204
        # An ask written after it does not hide that votes are being lost.
        client.post("/ask", json={"question": "hiring again"})
        wait_for(lambda: health()["question_log"]["failed"] == 1)
        wait_for(lambda: health()["question_log"]["written"] == 2)
    failing = health()
    assert failing["status"] == "degraded"
    (warning,) = failing["warnings"]
    assert re.fullmatch(
        r"question log: a record could not be written \d+ s ago \(\w+; see the server's log\)",
        warning,
    )
    assert "private" not in warning
    (said,) = [r.getMessage() for r in caplog.records if "not written" in r.getMessage()]
    assert "1 records not written so far (last: " in said and "votes" in said
    assert "private" not in said
    questions.FAILING_SECONDS = 0.5  # a minute, in the server
    wait_for(lambda: health()["status"] == "ok")
    assert health()["warnings"] == []


def test_the_log_says_the_latest_reason_at_most_once_a_while(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    questions = QuestionLog(engine, "full", 90)
    now = datetime.now(UTC)
    orphans = [Vote(c * 32, "a/1/x", True, None, now) for c in "abc"]  # no such asks
    with caplog.at_level(logging.WARNING, logger="careerbot"):
        questions.write(orphans[:2])
        questions.SAY_EVERY = 0.0
        questions.write(orphans[2:])
    said = [r.getMessage() for r in caplog.records if "not written" in r.getMessage()]
    assert [line.split(" (")[0] for line in said] == [
        "question log: 1 records not written so far",
        "question log: 3 records not written so far",
    ]


def test_an_sqlite_log_deleted_under_the_server_makes_health_degraded(
    settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Any
) -> None:
    build_index(settings, fake_embedder)
    path = tmp_path / "log.sqlite"
    logged = settings.model_copy(update={"database_url": f"sqlite:///{path}"})
    with TestClient(create_app(logged, fake_embedder)) as client:
        client.post("/ask", json={"question": "hiring"})
        assert client.get("/health").json()["status"] == "ok"
        for leftover in tmp_path.glob("log.sqlite*"):
            leftover.unlink()
        health = client.get("/health").json()
    assert health["status"] == "degraded"
    assert health["warnings"] == [
        f"question log: {path} was deleted, moved or replaced while the server ran, and "
        "what is logged now does not go there; restart the server"
    ]
