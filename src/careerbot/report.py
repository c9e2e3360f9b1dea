"""What the question log says since a moment: how much was asked and answered, which
answers were shown and judged, what went unanswered (alike questions grouped), and the
alternate phrasings people's choices propose for interview questions.

`careerbot report`, `careerbot review` and `GET /admin/report` all start here.
"""

import dataclasses
import re
import textwrap
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from careerbot import CareerbotError
from careerbot.curation import Claims, metadata_files
from careerbot.embedding import Embedder
from careerbot.metadata import phrasing_text, plain
from careerbot.redaction import redact
from careerbot.store import (
    ASK_CHECKED,
    FUTURE,
    HELPFUL_RAW,
    asks,
    connect,
    flag,
    given,
    picks,
    skips,
    texts,
    votes,
)
from careerbot.transcript import parse_corpus, speakers_file

# Unanswered questions whose vectors are at least this close are counted as one. Measured
# with the bundled model: of 11,667 pairs of eval/ questions about different interview
# questions, 0.04 % reach 0.75 (0.17 % reach 0.70, 0.45 % reach 0.65); rewordings such as
# "ml engineer pay" / "how much do ML engineers earn" score 0.86-0.88, looser paraphrases
# 0.69-0.73 stay apart. A group split in two costs the curator a glance; a wrong merge
# hides a question, so the threshold errs on the side of splitting.
SAME_MEANING = 0.75
# A helpful answer that scored below this was found despite the question's wording, so
# the wording is worth teaching as a phrasing of the answer's interview question. Above
# it, the wording already works.
LOW_SCORE = 0.5
# The text report cuts questions longer than this (a forum post) at a word.
SHOWN_CHARS = 160
# `since` is a number of days or hours back: "7d", "36h". Five digits keep it in range.
SINCE = re.compile(r"0*([1-9][0-9]{0,4})([dh])", re.IGNORECASE)  # 07d is 7d


@dataclass(frozen=True)
class AnswerFacts:
    """Who gave an answer of the served index, to which interview question, and in which
    transcript."""

    speaker: str
    question: str
    document: str


@dataclass(frozen=True)
class AnswerFigures:
    id: str
    speaker: str | None  # None: the answer is not in the index served now
    question: str | None
    shown: int
    helpful: int
    unhelpful: int


@dataclass(frozen=True)
class Group:
    """Unanswered questions that mean the same; `questions` most asked first."""

    count: int
    questions: tuple[str, ...]


@dataclass(frozen=True)
class Unhelpful:
    question: str
    answer_id: str


@dataclass(frozen=True)
class Candidate:
    """An asked question proposed as another way to ask an interview question; when a
    particular answer was found helpful for it, as a question that answer answers."""

    phrasing: str
    question: str
    answer_id: str | None = None
    # The uncovered topic the question was taken for when it was asked: accepted as a
    # phrasing, it would have such questions answered.
    uncovered: str | None = None


@dataclass(frozen=True)
class Report:
    since: datetime
    questions: int
    answered: int
    answers: tuple[AnswerFigures, ...]
    unanswered: tuple[Group, ...]
    unhelpful: tuple[Unhelpful, ...]
    candidates: tuple[Candidate, ...]
    # Records not as careerbot writes them (edited by hand), left out of all the above
    # with the votes and picks on such an ask; said beside the report, not in its JSON.
    left_out: int = 0

    def to_json(self) -> dict[str, Any]:
        """The DESIGN's shape, field for field."""
        return {
            "since": self.since.isoformat(),
            "questions": self.questions,
            "answered": self.answered,
            "answers": [figures.__dict__ for figures in self.answers],
            "unanswered": [
                {"count": g.count, "questions": list(g.questions)} for g in self.unanswered
            ],
            "unhelpful": [u.__dict__ for u in self.unhelpful],
            "candidates": [c.__dict__ for c in self.candidates],
        }


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """The moment `text` ("7d", "12h") before now, in UTC (the log stores UTC times)."""
    found = SINCE.fullmatch(text.strip())
    if found is None:
        raise CareerbotError(
            f"since: {text[:40]!r} is not 1 to 99999 days or hours, such as 7d or 12h"
        )
    amount, unit = int(found[1]), found[2].lower()
    back = timedelta(days=amount) if unit == "d" else timedelta(hours=amount)
    return (now or datetime.now(UTC)).astimezone(UTC) - back


def existing_log(url: str) -> Engine:
    """The question log at url; an SQLite file that is not there is an error, not a new
    empty log (connect would make one, and the report would say nothing was asked)."""
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as error:
        raise CareerbotError(f"CAREERBOT_DATABASE_URL is not usable ({error})") from None
    path = parsed.database or ""
    on_disk = parsed.get_backend_name() == "sqlite" and path not in ("", ":memory:")
    if on_disk and not Path(path).is_file():
        raise CareerbotError(
            f"no question log at {path}: the server writes it once it serves "
            "questions (set CAREERBOT_DATABASE_URL if it lives elsewhere)"
        )
    return connect(url)


def answer_facts(records: Iterable[Mapping[str, Any]]) -> dict[str, AnswerFacts]:
    """Answer id -> speaker and interview question, from an index's answer records."""
    return {
        record["id"]: AnswerFacts(
            record["speaker"]["name"], record["question"], record["source"]["document"]
        )
        for record in records
    }


@dataclass(frozen=True)
class Asked:
    """An ask as the report reads it."""

    question: str
    answered: bool
    answer_ids: tuple[str, ...]


@dataclass(frozen=True)
class Judged:
    """A vote as the report reads it, with the question asked and the scores that ask gave
    its answers."""

    answer_id: str
    helpful: bool
    question: str
    scores: dict[str, float]


@dataclass(frozen=True)
class Logged:
    """The records of recent asks, and the votes and picks on them, as careerbot wrote
    them; `left_out` counts the records that are not (edited by hand)."""

    asked: tuple[Asked, ...]
    judged: tuple[Judged, ...]
    picked: tuple[Candidate, ...]
    left_out: int


def read_log(engine: Engine, since: datetime) -> Logged:
    """What the log holds on asks since `since`, oldest feedback first."""
    # A time past the horizon is none that careerbot wrote: text that is not a time,
    # compared as text by SQLite, sorts there. Such asks are damaged.
    horizon = datetime.now(UTC) + FUTURE
    recent = (asks.c.asked_at >= since.astimezone(UTC)) & (asks.c.asked_at <= horizon)
    with engine.connect() as connection:
        asked, damaged = recent_asks(connection, recent)
        damaged += (
            connection.scalar(
                sa.select(sa.func.count()).select_from(asks).where(asks.c.asked_at > horizon)
            )
            or 0
        )
        judged, bad_votes = feedback_rows(connection, recent)
        picked, bad_picks = pick_rows(connection, recent)
    return Logged(asked, judged, picked, damaged + bad_votes + bad_picks)


def recent_asks(
    connection: Connection, recent: sa.ColumnElement[bool]
) -> tuple[tuple[Asked, ...], int]:
    """Each recent ask as Logged.asked holds it, and how many are damaged."""
    asked, damaged = [], 0
    for row in connection.execute(sa.select(*ASK_CHECKED).where(recent)):
        found = given(row)
        if found is None:
            damaged += 1
        else:
            ids = tuple(answer_id for answer_id, _ in found.answers)
            asked.append(Asked(row.question, found.answered, ids))
    return tuple(asked), damaged


def feedback_rows(
    connection: Connection, recent: sa.ColumnElement[bool]
) -> tuple[tuple[Judged, ...], int]:
    """Each vote on a recent ask, oldest first, and how many votes are damaged (votes on a
    damaged ask are left out with it, uncounted)."""
    query = (
        sa.select(*ASK_CHECKED, votes.c.answer_id, HELPFUL_RAW)
        .join(asks, asks.c.id == votes.c.ask_id)
        .where(recent)
        .order_by(votes.c.voted_at, votes.c.ask_id, votes.c.answer_id)
    )
    judged, damaged = [], 0
    for row in connection.execute(query):
        found, helpful = given(row), flag(row.helpful)
        if found is None:
            continue
        scores = dict(found.answers)
        # /feedback takes votes only on the answers an ask gave.
        if helpful is None or not texts(row.answer_id) or row.answer_id not in scores:
            damaged += 1
        else:
            judged.append(Judged(row.answer_id, helpful, row.question, scores))
    return tuple(judged), damaged


def pick_rows(
    connection: Connection, recent: sa.ColumnElement[bool]
) -> tuple[tuple[Candidate, ...], int]:
    """Each suggestion picked after a recent ask, oldest first, as the question asked
    proposed for the interview question picked; and how many picks are damaged."""
    query = (
        sa.select(*ASK_CHECKED, picks.c.suggestion)
        .join(asks, asks.c.id == picks.c.ask_id)
        .where(recent)
        .order_by(picks.c.picked_at, picks.c.ask_id, picks.c.suggestion)
    )
    picked, damaged = [], 0
    for row in connection.execute(query):
        found = given(row)
        if found is None:
            continue
        # ... and picks only of the suggestions it offered.
        if not texts(row.suggestion) or row.suggestion not in found.suggestions:
            damaged += 1
        else:
            picked.append(Candidate(row.question, row.suggestion, uncovered=row.uncovered))
    return tuple(picked), damaged


def build_report(
    engine: Engine, embedder: Embedder, since: datetime, answers: Mapping[str, AnswerFacts]
) -> Report:
    """The report on asks since `since` and the feedback on them."""
    logged = read_log(engine, since)
    shown = Counter(answer_id for ask in logged.asked for answer_id in ask.answer_ids)
    unanswered = Counter(ask.question for ask in logged.asked if not ask.answered)
    judged = logged.judged
    helpful = Counter(vote.answer_id for vote in judged if vote.helpful)
    unhelpful = Counter(vote.answer_id for vote in judged if not vote.helpful)
    figures = tuple(
        AnswerFigures(
            id=answer_id,
            speaker=answers[answer_id].speaker if answer_id in answers else None,
            question=answers[answer_id].question if answer_id in answers else None,
            shown=count,
            helpful=helpful[answer_id],
            unhelpful=unhelpful[answer_id],
        )
        for answer_id, count in sorted(shown.items(), key=lambda item: (-item[1], item[0]))
    )
    return Report(
        since=since.astimezone(UTC),
        questions=len(logged.asked),
        answered=sum(ask.answered for ask in logged.asked),
        answers=figures,
        unanswered=group(unanswered, embedder),
        unhelpful=tuple(
            Unhelpful(vote.question, vote.answer_id) for vote in judged if not vote.helpful
        ),
        candidates=propose(logged.picked, judged, answers),
        left_out=logged.left_out,
    )


def skipped_in_review(engine: Engine) -> set[tuple[str, str]]:
    """(phrasing, interview question) of each candidate a curator skipped."""
    with engine.connect() as connection:
        query = sa.select(skips.c.phrasing, skips.c.question)
        return {(row.phrasing, row.question) for row in connection.execute(query)}


@dataclass(frozen=True)
class Helpful:
    """The answer a proposed phrasing was voted helpful on, and its transcript's speakers
    file (where review's [a] writes the phrasing)."""

    answer: AnswerFacts
    path: Path


@dataclass(frozen=True)
class Pending:
    """A proposed phrasing not decided on yet, and where accepting it would write it."""

    candidate: Candidate
    path: Path  # the speakers file of the first transcript that asks its question
    helpful: Helpful | None


def undecided(
    candidates: Iterable[Candidate],
    skipped: set[tuple[str, str]],
    answers: Mapping[str, AnswerFacts],
    corpus_dir: Path,
    max_bytes: int,
) -> tuple[list[Pending], list[str], Claims]:
    """The candidates a curator has not decided on (neither `skipped` in a review, as
    skipped_in_review() reads them, nor in a metadata file), the interview questions no
    transcript asks any more (whose candidates are left out), and what the metadata files
    hold, from one parse."""
    transcripts = parse_corpus(corpus_dir, max_bytes)
    files, claims = metadata_files(transcripts, corpus_dir), Claims.of(transcripts)
    pending: list[Pending] = []
    gone: set[str] = set()
    for candidate in candidates:
        path = files.get(candidate.question)
        if path is None:
            gone.add(candidate.question)
        elif (candidate.phrasing, candidate.question) not in skipped and not claims.decided(
            candidate.question, candidate.phrasing
        ):
            facts = answers.get(candidate.answer_id or "")
            helpful = (
                Helpful(facts, speakers_file(corpus_dir / Path(facts.document).name))
                if facts
                else None
            )
            pending.append(Pending(candidate, path, helpful))
    return pending, sorted(gone), claims


def gone_warning(question: str) -> str:
    return f"no transcript asks {question[:80]!r} any more; its candidates are left out"


def open_candidates(
    engine: Engine, report: Report, answers: Mapping[str, AnswerFacts], corpus: Path, max_bytes: int
) -> tuple[Report, list[str]]:
    """The report with only the candidates a curator has not decided on, as review would
    offer them, and warnings. A server may have no corpus beside its index (the
    container): then only what review skipped is left out."""
    skipped = skipped_in_review(engine)
    try:
        pending, gone, _ = undecided(report.candidates, skipped, answers, corpus, max_bytes)
    except CareerbotError as error:
        kept = [c for c in report.candidates if (c.phrasing, c.question) not in skipped]
        warning = f"candidates are not checked against the corpus's metadata files: {error}"
        return dataclasses.replace(report, candidates=tuple(kept)), [warning]
    candidates = tuple(item.candidate for item in pending)
    return dataclasses.replace(report, candidates=candidates), [gone_warning(q) for q in gone]


def curated_report(
    engine: Engine,
    embedder: Embedder,
    since: datetime,
    answers: Mapping[str, AnswerFacts],
    corpus: Path,
    max_bytes: int,
) -> tuple[Report, list[str]]:
    """The report since `since`, proposing only what a curator has not decided on (as
    `careerbot report` and GET /admin/report give it), and its warnings."""
    made = build_report(engine, embedder, since, answers)
    made, warnings = open_candidates(engine, made, answers, corpus, max_bytes)
    left_out = left_out_warning(made.left_out, "report")
    return made, [*warnings, *([left_out] if left_out else [])]


def left_out_warning(count: int, of: str) -> str | None:
    """What was left out of the report or review (`of`), in words, when something was."""
    if not count:
        return None
    records = "1 damaged record" if count == 1 else f"{count:,} damaged records"
    return (
        f"left out of the {of}: {records} in the question log (edited by hand?); the votes "
        "and picks on a damaged ask go with it"
    )


def group(counts: Mapping[str, int], embedder: Embedder) -> tuple[Group, ...]:
    """Questions that mean the same, in groups, largest first.

    Greedy, most asked first: a question joins the first group whose first question is at
    least SAME_MEANING close, else starts a group. Comparing with the group's first
    question (not any member) keeps a chain of small steps from joining unlike questions.
    """
    texts = sorted(counts, key=lambda text: (-counts[text], text))
    if not texts:
        return ()
    vectors = embedder.embed(texts)
    leaders: list[int] = []
    members: dict[int, list[int]] = {}
    for i in range(len(texts)):
        near = (lead for lead in leaders if float(vectors[lead] @ vectors[i]) >= SAME_MEANING)
        lead = next(near, None)
        if lead is not None:
            members[lead].append(i)
        else:
            leaders.append(i)
            members[i] = [i]
    groups = [
        Group(sum(counts[texts[i]] for i in chosen), tuple(texts[i] for i in chosen))
        for chosen in members.values()
    ]
    return tuple(sorted(groups, key=lambda g: (-g.count, g.questions[0])))


# Placeholders redaction put in: a question holding them is someone's, not a phrasing.
# U+FFFD stands for bytes that were not text in the log: it would be curated as it is.
PLACEHOLDERS = ("[email]", "[phone]", "[url]", "\ufffd")


def usable(candidate: Candidate) -> bool:
    """Whether a candidate could go into a metadata file as it is, and the build take it:
    not with someone's contacts in it, redacted or (logged in full) not."""
    text = candidate.phrasing
    return phrasing_text(text) and not any(p in text for p in PLACEHOLDERS) and redact(text) == text


def propose(
    picked: Iterable[Candidate],
    judged: Sequence[Judged],
    answers: Mapping[str, AnswerFacts],
) -> tuple[Candidate, ...]:
    """Alternate phrasings, first proposed first, each once: the question asked for the
    suggestion picked after it, and for the interview question of an answer found
    helpful though it scored low. A phrasing that is the question itself is no news."""
    found: list[Candidate] = list(picked)
    for vote in judged:
        low = vote.scores.get(vote.answer_id, 1.0) < LOW_SCORE
        if vote.helpful and low and vote.answer_id in answers:
            question = answers[vote.answer_id].question
            found.append(Candidate(vote.question, question, vote.answer_id))
    # A phrasing is one line: a question pasted in paragraphs, or with tabs or no-break
    # spaces, is proposed with single spaces.
    found = [dataclasses.replace(c, phrasing=" ".join(c.phrasing.split())) for c in found]
    seen: dict[tuple[str, str], int] = {}  # where each kept candidate is in `kept`
    kept: list[Candidate] = []
    for candidate in found:
        key = (plain(candidate.phrasing), candidate.question)
        if key in seen:
            # Proposed twice: keep an answer found helpful, for review's [a], and an
            # uncovered topic the question was taken for, for review's warning.
            earlier = kept[seen[key]]
            kept[seen[key]] = dataclasses.replace(
                earlier,
                answer_id=earlier.answer_id or candidate.answer_id,
                uncovered=earlier.uncovered or candidate.uncovered,
            )
        elif usable(candidate) and plain(candidate.phrasing) != plain(candidate.question):
            seen[key] = len(kept)
            kept.append(candidate)
    return tuple(kept)


def render(report: Report) -> str:
    """The report for people to read, a section at a time."""
    share = f" ({report.answered / report.questions:.0%})" if report.questions else ""
    lines = [
        f"Questions since {report.since:%Y-%m-%d %H:%M} UTC: {report.questions}, "
        f"answered {report.answered}{share}",
        "",
        "Answers shown (most shown first)",
    ]
    for figures in report.answers:
        who = (
            f"{figures.speaker}: {figures.question}"
            if figures.speaker is not None
            else "(not in the index served now)"
        )
        lines.append(
            f"  {figures.shown:>4} shown, {figures.helpful} helpful, "
            f"{figures.unhelpful} unhelpful  {figures.id}"
        )
        lines.append(f"       {who}")
    lines += none_if_empty(report.answers)
    lines += ["", "Unanswered questions (alike ones together, most asked first)"]
    for each in report.unanswered:
        # Questions alike in the part shown (long ones, cut) are shown once.
        shown = dict.fromkeys(map(short, each.questions))
        first, *others = shown
        lines.append(f"  {each.count:>4}x {first}")
        lines += [f"        also: {other}" for other in others]
    lines += none_if_empty(report.unanswered)
    lines += ["", "Answers voted unhelpful"]
    for vote in report.unhelpful:
        lines.append(f"  {short(vote.question)}")
        lines.append(f"       -> {vote.answer_id}")
    lines += none_if_empty(report.unhelpful)
    lines += ["", "Proposed phrasings (accept or skip them with: careerbot review)"]
    for candidate in report.candidates:
        lines.append(f"  {short(candidate.phrasing)}")
        lines.append(f"       as a way to ask: {candidate.question}")
        if candidate.answer_id:
            lines.append(f"       found helpful in answer {candidate.answer_id}")
        if candidate.uncovered:
            lines.append(f"       taken for the uncovered topic {candidate.uncovered!r} when asked")
    lines += none_if_empty(report.candidates)
    return "\n".join(lines)


def short(question: str) -> str:
    """A question as the text report shows it: a long one (a forum post) cut at a word
    within SHOWN_CHARS characters (or within a word, when a word is half that long), its
    whitespace made single; --json has them whole."""
    text = " ".join(question.split())
    if len(text) <= SHOWN_CHARS:
        return text
    cut = textwrap.shorten(text, SHOWN_CHARS, placeholder=" …")
    # Little or nothing but the placeholder: a first word over the limit (a language
    # written without spaces, a long address), cut where the limit falls.
    return cut if len(cut) > SHOWN_CHARS // 2 else text[: SHOWN_CHARS - 2] + " …"


def none_if_empty(items: Sequence[object]) -> list[str]:
    return [] if items else ["  (none)"]
