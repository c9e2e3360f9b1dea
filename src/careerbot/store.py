"""The question log's database: its tables, the engine for a URL, and migrations.

SQLite (one file, WAL, for one server) or PostgreSQL (several servers sharing one log).
The schema is made and upgraded only by the Alembic migrations in careerbot/migrations,
run at start-up; the tables below are what the code reads and writes.
"""

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import alembic.util
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from pydantic import BaseModel, Field, StrictStr, TypeAdapter, ValidationError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from careerbot import CareerbotError

metadata = sa.MetaData()

asks = sa.Table(
    "asks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("answered", sa.Boolean, nullable=False),
    sa.Column("uncovered", sa.String(200)),
    # [{"id": answer id, "score": 0-1}, ...], best first; and the suggestions shown.
    sa.Column("answers", sa.JSON, nullable=False),
    sa.Column("suggestions", sa.JSON, nullable=False),
    sa.Column("index_version", sa.String(100), nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
)

votes = sa.Table(
    "votes",
    metadata,
    sa.Column("ask_id", sa.String(32), sa.ForeignKey("asks.id", ondelete="CASCADE")),
    sa.Column("answer_id", sa.String(300)),
    sa.Column("helpful", sa.Boolean, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("voted_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("ask_id", "answer_id"),
)

picks = sa.Table(
    "picks",
    metadata,
    sa.Column("ask_id", sa.String(32), sa.ForeignKey("asks.id", ondelete="CASCADE")),
    sa.Column("suggestion", sa.Text),
    sa.Column("picked_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("ask_id", "suggestion"),
)


# Phrasings a curator skipped in `careerbot review`: not offered again.
skips = sa.Table(
    "skips",
    metadata,
    sa.Column("phrasing", sa.Text),
    sa.Column("question", sa.Text),
    sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("phrasing", "question"),
)


# The JSON columns read as text, to be checked here rather than parsed by the driver,
# whose parse error would end the whole query: a record edited by hand is then one bad
# record, not an unreadable log.
ANSWERS_TEXT = sa.cast(asks.c.answers, sa.Text).label("answers")
SUGGESTIONS_TEXT = sa.cast(asks.c.suggestions, sa.Text).label("suggestions")


class LoggedAnswer(BaseModel, strict=True, extra="forbid"):
    id: str
    score: float = Field(ge=0, le=1)  # as /ask gives it


LOGGED_ANSWERS = TypeAdapter(list[LoggedAnswer])
LOGGED_SUGGESTIONS = TypeAdapter(list[StrictStr])


def logged_answers(text: object) -> tuple[tuple[str, float], ...] | None:
    """An ask's answers as logged (ANSWERS_TEXT): (id, score), best first; None when the
    record is not as careerbot writes it."""
    try:
        found = LOGGED_ANSWERS.validate_json(text if isinstance(text, str) else "")
    except ValidationError:
        return None
    return tuple((answer.id, answer.score) for answer in found)


def logged_suggestions(text: object) -> tuple[str, ...] | None:
    """An ask's suggestions as logged (SUGGESTIONS_TEXT); None when not as written."""
    try:
        return tuple(LOGGED_SUGGESTIONS.validate_json(text if isinstance(text, str) else ""))
    except ValidationError:
        return None


# No ask is logged this far ahead of the clock: an asked_at past it is damage (text that
# is not a time sorts after every time in SQLite), which the purge removes too.
FUTURE = timedelta(days=1)

# The true/false columns as stored: SQLite keeps 1 and 0, or whatever was edited in.
ANSWERED_RAW = sa.type_coerce(asks.c.answered, sa.Integer).label("answered")
HELPFUL_RAW = sa.type_coerce(votes.c.helpful, sa.Integer).label("helpful")


def flag(value: object) -> bool | None:
    """A true/false column's value as stored (ANSWERED_RAW); None when it is neither."""
    return bool(value) if isinstance(value, int) and value in (0, 1) else None


def texts(*values: object) -> bool:
    """Whether each value read from a text column is text: SQLite keeps whatever it is
    given, bytes edited in by hand too."""
    return all(isinstance(value, str) for value in values)


# What is read of an ask for checking with given(): its texts, and its true/false and
# JSON columns as stored.
ASK_CHECKED = (asks.c.question, asks.c.uncovered, ANSWERED_RAW, ANSWERS_TEXT, SUGGESTIONS_TEXT)


@dataclass(frozen=True)
class Given:
    """What a sound ask's record says it gave."""

    answered: bool
    answers: tuple[tuple[str, float], ...]  # (answer id, score), best first
    suggestions: tuple[str, ...]


def given(row: Any) -> Given | None:
    """What the ask of a row holding ASK_CHECKED gave; None when its record is not as
    careerbot writes it (edited by hand)."""
    answers, suggestions = logged_answers(row.answers), logged_suggestions(row.suggestions)
    answered, uncovered = flag(row.answered), row.uncovered is None or texts(row.uncovered)
    if answers is None or suggestions is None or answered is None:
        return None
    if not texts(row.question) or not uncovered or not row.question.strip():
        return None
    # As /ask writes them: answered exactly when answers were given, and then neither
    # suggestions nor an uncovered topic.
    if answered != bool(answers) or (answered and (suggestions or row.uncovered is not None)):
        return None
    return Given(answered, answers, suggestions)


def on_sqlite_connect(connection: Any, record: Any) -> None:
    # Text that is not UTF-8 (the file edited by hand) is read with U+FFFD in place of the
    # bad bytes, not refused: sqlite3's error would end the whole query.
    connection.text_factory = lambda data: data.decode("utf-8", "replace")
    cursor = connection.cursor()
    # WAL: readers (report, feedback checks) never wait for the writer; foreign keys are
    # off in SQLite unless asked for; a busy file is waited on, not failed.
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL never corrupts the file; a power cut may lose the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def connect(url: str) -> Engine:
    """An engine for the URL, its schema brought up to date."""
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ImportError, ValueError) as error:  # ValueError: a port
        raise CareerbotError(f"CAREERBOT_DATABASE_URL is not usable ({error})") from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", on_sqlite_connect)
    elif engine.dialect.name != "postgresql":
        raise CareerbotError(
            f"CAREERBOT_DATABASE_URL names {engine.dialect.name}; use sqlite or postgresql"
        )
    try:
        migrate(engine)
    # ValueError: what the driver makes of the URL's parts (a host name it cannot encode)
    except (OSError, ValueError, sa.exc.DBAPIError, alembic.util.CommandError) as error:
        engine.dispose()  # its pool may hold a connection
        raise CareerbotError(f"cannot open the question log{why(error)}") from None
    return engine


def why(error: Exception) -> str:
    """Why the log could not be opened, for the end of a one-line message."""
    if isinstance(error, alembic.util.CommandError):  # the schema of a newer careerbot
        return (
            ": its schema is not one this careerbot knows (written by a newer version?): "
            f"{str(error)[:200]}"
        )
    reason = cause(error)  # not a database, or not reachable
    return f" ({first_line(reason) or type(reason).__name__})"


def cause(error: BaseException) -> BaseException:
    """The database's own error under sqlalchemy's (whose message quotes the statement and
    the values written), else the error itself."""
    if isinstance(error, sa.exc.StatementError) and error.orig is not None:
        return error.orig
    return error


def first_line(error: BaseException) -> str:
    return str(error).strip().partition("\n")[0][:200]


def sqlite_path(engine: Engine) -> str | None:
    """The file of an SQLite database, else None."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    return path if path and path != ":memory:" else None


def migrate(engine: Engine) -> None:
    """Run every migration not yet run. Servers starting at once take turns: on
    PostgreSQL by an advisory lock (see migrations/env.py), on SQLite by a lock file."""
    config = Config()
    config.set_main_option("script_location", str(files("careerbot") / "migrations"))
    with taking_turns(engine), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextlib.contextmanager
def taking_turns(engine: Engine) -> Iterator[None]:
    path = sqlite_path(engine)
    if path is None:
        yield
        return
    file = Path(path).absolute()  # a relative path is in the server's folder
    if not file.parent.is_dir():  # say so, rather than that the lock file cannot be made
        raise FileNotFoundError(f"{file.parent} is not a folder, so {file.name} cannot be made")
    if file.is_dir():  # SQLite would say only that it cannot open it
        raise IsADirectoryError(
            f"{file} is a folder; name a file in it, such as {file / 'questions.sqlite'}"
        )
    with open(f"{path}.migrating", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def upsert(engine: Engine, table: sa.Table, keys: list[str]) -> Any:
    """An INSERT that replaces the row with the same keys, in the engine's dialect."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    others = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    return statement.on_conflict_do_update(index_elements=keys, set_=others)


def insert_many(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert the rows in the connection's transaction. On PostgreSQL by COPY, which costs
    the client half the CPU of an INSERT of the same rows: the writer shares the
    interpreter lock with /ask."""
    if connection.dialect.name != "postgresql":
        connection.execute(sa.insert(table), rows)
        return
    columns = list(table.columns)
    names = ", ".join(column.name for column in columns)
    as_json = [isinstance(column.type, sa.JSON) for column in columns]
    driver = connection.connection.driver_connection
    assert driver is not None  # a connection in a transaction has one
    with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    json.dumps(row[column.name]) if is_json else row[column.name]
                    for column, is_json in zip(columns, as_json, strict=True)
                ]
            )
