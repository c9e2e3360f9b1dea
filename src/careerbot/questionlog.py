"""The question log: every /ask, and what people said of its answers, written off the
request path by one writer thread.

/ask hands its record to a bounded queue and goes on; when the queue is full the record
is dropped and counted, so logging never slows or fails an answer. Feedback goes through
the same queue, after the ask it is about.
"""

import contextlib
import dataclasses
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from careerbot.redaction import redact
from careerbot.store import (
    ASK_CHECKED,
    FUTURE,
    asks,
    cause,
    first_line,
    given,
    insert_many,
    picks,
    skips,
    sqlite_path,
    upsert,
    votes,
)

log = logging.getLogger("careerbot")

LogMode = Literal["full", "redacted", "off"]


def identity(path: str) -> tuple[int, int]:
    found = os.stat(path)
    return found.st_dev, found.st_ino


@dataclass(frozen=True)
class Ask:
    """One question asked, and what it was given."""

    id: str
    asked_at: datetime
    question: str
    answered: bool
    uncovered: str | None
    answers: tuple[tuple[str, float], ...]  # (answer id, score), best first
    suggestions: tuple[str, ...]
    index_version: str
    latency_ms: float


@dataclass(frozen=True)
class Vote:
    ask_id: str
    answer_id: str
    helpful: bool
    comment: str | None
    voted_at: datetime


@dataclass(frozen=True)
class Pick:
    """A suggested interview question picked after an ask got no answer."""

    ask_id: str
    suggestion: str
    picked_at: datetime


Record = Ask | Vote | Pick
STOP = object()


# An ask's record, the columns that given() checks read as stored.
FACTS = sa.select(asks.c.id, asks.c.asked_at, asks.c.index_version, asks.c.latency_ms, *ASK_CHECKED)


def read_ask(row: Any) -> Ask | None:
    """An ask from its record (FACTS); None when the record is not as careerbot writes it
    (edited by hand)."""
    found = given(row)
    if found is None:
        return None
    return Ask(
        id=row.id,
        asked_at=row.asked_at,
        question=row.question,
        answered=found.answered,
        uncovered=row.uncovered,
        answers=found.answers,
        suggestions=found.suggestions,
        index_version=row.index_version,
        latency_ms=row.latency_ms,
    )


class QuestionLog:
    """The writer thread and its queue; `facts` tells feedback what an ask returned."""

    RECENT = 10_000  # asks remembered in memory, so feedback need not wait for the writer
    BATCH = 500
    GATHER_SECONDS = 0.2
    PURGE_EVERY = 3600.0
    # /health is degraded for this long after a record could not be written: a part that
    # keeps failing (the votes, say) is not hidden by the asks written beside it.
    FAILING_SECONDS = 60.0
    SAY_EVERY = 60.0  # the server's log says why at most this often while writes fail

    def __init__(
        self,
        engine: Engine | None,
        mode: LogMode,
        retention_days: int,
        capacity: int = 10_000,
        problem: str | None = None,
    ) -> None:
        """`problem`: why the database could not be opened; answers go on unlogged."""
        self.engine, self.mode, self.retention = engine, mode, timedelta(days=retention_days)
        self.problem = problem
        self.queue: queue.Queue[object] = queue.Queue(capacity)
        self.recent: OrderedDict[str, Ask] = OrderedDict()
        self.lock = threading.Lock()
        self.written = self.dropped = self.failed = 0
        # When a record last could not be written, and the kind of error (for /health: its
        # message may quote what was being written); when the log last said so.
        self.failed_at: float | None = None
        self.failed_kind = ""
        self.said_at: float | None = None
        # An SQLite file as opened (device, inode): one deleted or replaced under the
        # server is written on unseen, and what goes there is lost.
        self.path = None if engine is None else sqlite_path(engine)
        self.opened: tuple[int, int] | None = None
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.opened = identity(self.path)
        self.purged_at = 0.0
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()  # cuts the writer's gathering short

    @property
    def on(self) -> bool:
        return self.mode != "off" and self.engine is not None

    def start(self) -> None:
        if self.on:
            self.stopping.clear()
            self.thread = threading.Thread(target=self.work, name="question-log", daemon=True)
            self.thread.start()

    def stop(self, seconds: float = 10.0) -> None:
        """Write what is queued (for at most `seconds`), then stop the writer."""
        if self.thread is not None:
            self.stopping.set()
            with contextlib.suppress(queue.Full):
                self.queue.put(STOP, timeout=seconds)
            self.thread.join(seconds)
            if self.thread.is_alive():  # the database is stuck: say what is lost
                left = self.queue.qsize()
                with self.lock:
                    self.failed += left
                log.warning("question log: stopped with %d records not written", left)
            self.thread = None

    def ask(self, record: Ask) -> None:
        """Queue an ask; never blocks. A full queue drops it, and counts it."""
        if not self.on:
            return
        if self.mode == "redacted":
            record = dataclasses.replace(record, question=redact(record.question))
        # Remembered before it is queued, so that a write failing at once can forget it,
        # and forgotten when dropped: feedback on it gets 404, as on any unknown ask.
        with self.lock:
            self.recent[record.id] = record
            while len(self.recent) > self.RECENT:
                self.recent.popitem(last=False)
        if not self.offer(record):
            with self.lock:
                self.recent.pop(record.id, None)

    def feedback(self, record: Vote | Pick) -> bool:
        """Queue a vote or a pick; False when the queue is full."""
        if self.mode == "redacted" and isinstance(record, Vote) and record.comment:
            record = dataclasses.replace(record, comment=redact(record.comment))
        return self.offer(record)

    def offer(self, record: Record) -> bool:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            with self.lock:
                self.dropped += 1
            return False
        return True

    def facts(self, ask_id: str) -> Ask | None:
        """What the ask returned: from memory when recent, else from the database (which
        raises sqlalchemy's errors when it is down)."""
        with self.lock:
            found = self.recent.get(ask_id)
        if found is not None or not self.on or self.engine is None:
            return found
        try:
            with self.engine.connect() as connection:
                row = connection.execute(FACTS.where(asks.c.id == ask_id)).first()
            if row is None:
                return None
            found = read_ask(row)
        except (ValueError, TypeError):  # a time or a number that does not parse
            found = None
        if found is None:
            log.warning("ask %s in the question log is damaged (edited by hand?)", ask_id)
        return found

    def work(self) -> None:
        """Purge at start and every PURGE_EVERY seconds; write what comes, in batches."""
        self.purge()
        while True:
            wait = self.PURGE_EVERY - (time.monotonic() - self.purged_at)
            try:
                batch = [self.queue.get(timeout=max(1.0, wait))]
            except queue.Empty:
                self.purge()
                continue
            # Gather for a moment: a transaction per record would cost /ask a good share
            # of the CPU under load; one per GATHER_SECONDS costs it nothing measurable.
            # Sleep, then take what came: waiting on the queue instead would wake this
            # thread (and take the interpreter lock from /ask) at every record. A full
            # batch already waiting is written at once; stop() cuts the sleep short.
            if STOP not in batch and self.queue.qsize() < self.BATCH:
                self.stopping.wait(self.GATHER_SECONDS)
            while len(batch) < self.BATCH and STOP not in batch:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self.write([r for r in batch if r is not STOP])  # type: ignore[misc]
            if STOP in batch:
                return
            if time.monotonic() - self.purged_at >= self.PURGE_EVERY:  # steady traffic
                self.purge()

    def write(self, batch: Sequence[Record]) -> None:
        """Write a batch in one transaction; when that fails, each record in its own, so
        one bad record (a vote whose ask was never written) costs only itself."""
        if not batch or self.engine is None:
            return
        try:
            self.insert(batch)
        except Exception as error:  # the writer outlives a database that is down
            if len(batch) > 1:
                for record in batch:
                    self.write([record])
                return
            self.failed_one(batch[0], error)
            return
        with self.lock:
            self.written += len(batch)

    def insert(self, batch: Sequence[Record]) -> None:
        assert self.engine is not None
        with self.engine.begin() as connection:
            for table, rows in rows_of(batch):
                if table is asks:
                    insert_many(connection, asks, rows)
                    continue
                # One at a time: a repeat vote in the same batch replaces the first.
                keys = ["ask_id", "answer_id" if table is votes else "suggestion"]
                for row in rows:
                    connection.execute(upsert(self.engine, table, keys), row)

    def failed_one(self, record: Record, error: Exception) -> None:
        reason = cause(error)  # the database's own error, if any
        kind, now = type(reason).__name__, time.monotonic()
        with self.lock:
            self.failed += 1
            self.failed_at, self.failed_kind = now, kind
            if isinstance(record, Ask):  # feedback on it would be refused by the database
                self.recent.pop(record.id, None)
            failed = self.failed
            say = self.said_at is None or now - self.said_at >= self.SAY_EVERY
            if say:
                self.said_at = now
        # The first, then at most once a SAY_EVERY with the latest reason: a database that
        # is down must not flood the log.
        if say:
            log.warning(
                "question log: %d records not written so far (last: %s: %s)",
                failed,
                kind,
                first_line(reason),
            )

    @property
    def failing(self) -> str | None:
        """What /health warns of while records are not being written, else None."""
        if self.path is not None and self.opened is not None:
            try:
                gone = identity(self.path) != self.opened
            except OSError:
                gone = True
            if gone:
                return (
                    f"question log: {self.path} was deleted, moved or replaced while the "
                    "server ran, and what is logged now does not go there; restart the server"
                )
        with self.lock:
            at, kind = self.failed_at, self.failed_kind
        if at is None:
            return None
        ago = time.monotonic() - at
        if ago >= self.FAILING_SECONDS:
            return None
        return (
            f"question log: a record could not be written {ago:.0f} s ago ({kind}; see the "
            "server's log)"
        )

    def purge(self) -> None:
        """Remove asks (and their feedback) older than the retention period."""
        self.purged_at = time.monotonic()
        if self.engine is None:
            return
        now = datetime.now(UTC)
        cutoff = now - self.retention
        # Old, or past the clock: an asked_at that is not a time (edited by hand).
        gone = (asks.c.asked_at < cutoff) | (asks.c.asked_at > now + FUTURE)
        old = sa.select(asks.c.id).where(gone)
        # Feedback whose ask is not there at all (deleted by hand, foreign keys off).
        orphan_votes = ~sa.exists().where(asks.c.id == votes.c.ask_id)
        orphan_picks = ~sa.exists().where(asks.c.id == picks.c.ask_id)
        try:
            with self.engine.begin() as connection:
                connection.execute(sa.delete(votes).where(votes.c.ask_id.in_(old) | orphan_votes))
                connection.execute(sa.delete(picks).where(picks.c.ask_id.in_(old) | orphan_picks))
                connection.execute(sa.delete(asks).where(gone))
                # A skipped phrasing is someone's question too: it goes with the rest.
                connection.execute(sa.delete(skips).where(skips.c.skipped_at < cutoff))
        except Exception as error:
            log.warning("question log: old records not purged (%s)", error)


def rows_of(batch: Sequence[Record]) -> list[tuple[sa.Table, list[dict[str, object]]]]:
    """The batch as runs of rows per table, in order: an ask before the feedback on it."""
    runs: list[tuple[sa.Table, list[dict[str, object]]]] = []
    for record in batch:
        if isinstance(record, Ask):
            table, row = (
                asks,
                {
                    **record.__dict__,
                    "answers": [{"id": i, "score": s} for i, s in record.answers],
                    "suggestions": list(record.suggestions),
                },
            )
        elif isinstance(record, Vote):
            table, row = votes, dict(record.__dict__)
        else:
            table, row = picks, dict(record.__dict__)
        if runs and runs[-1][0] is table:
            runs[-1][1].append(row)
        else:
            runs.append((table, [row]))
    return runs
