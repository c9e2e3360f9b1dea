"""What a transcript's metadata file (NAME.speakers.toml) says beside its speakers: the
interview's title, date and address, other ways people ask each interview question and
what each speaker's answer to it answers, and career topics the interviews do not
cover, each with ways people ask about it.

    [interview]
    title = "Machine learning engineer careers: Q&A with Airbnb and SurveyMonkey engineers"
    date = 2019-01-15
    url = "https://example.org/ml-engineer-qa"

    [questions."How can a data scientist transition to a machine learning engineer role?"]
    phrasings = ["how do I go from data science to ML engineering"]

    [questions."What separates a great candidate from a good candidate?".answers.Chirag]
    phrasings = ["should I specialize or be a generalist"]

    [uncovered.pay]
    phrasings = ["how much do ML engineers earn"]
"""

import datetime
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from careerbot import SMALL_FILE_BYTES, CareerbotError, read_limited

TOPIC_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_TOPIC_CHARS = 60
MAX_PHRASING_CHARS = 1000
INTERVIEW_FIELDS = ("title", "date", "url")
MAX_TITLE_CHARS = 200
MAX_URL_CHARS = 2000
# date.fromisoformat() also takes "20190115" and "2019-W03-2"; a date here is written one way.
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Phrasings = dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Curation:
    """Phrasings by interview question, by answer, and uncovered topics by name."""

    phrasings: Phrasings = field(default_factory=dict)
    uncovered: Phrasings = field(default_factory=dict)
    # By interview question and speaker label: questions that speaker's answer answers.
    answers: dict[str, Phrasings] = field(default_factory=dict)


@dataclass(frozen=True)
class Interview:
    """What the metadata file says of the interview itself; None where it says nothing."""

    title: str | None = None
    date: str | None = None  # YYYY-MM-DD
    url: str | None = None  # an absolute http(s) address, safe to make a link of


def phrasing_text(text: object) -> bool:
    """Whether a text may be a phrasing: 1 to MAX_PHRASING_CHARS characters once stripped,
    on one line, with no control or invisible characters."""
    return (
        isinstance(text, str) and 0 < len(text.strip()) <= MAX_PHRASING_CHARS and text.isprintable()
    )


def plain(text: str) -> str:
    """Text as compared for sameness: case and runs of spaces make no difference."""
    return " ".join(text.casefold().split())


def refuse_unknown(
    keys: Iterable[str], known: Sequence[str], where: str, kind: Literal["field", "table"]
) -> None:
    """One line naming the first key of a table that is none of the `known` ones (a typo
    would otherwise be ignored without a word): `where 'rol': unknown field; expected
    name, role` or `where [questionz]: unknown table; expected [speakers], ...`."""
    unknown = sorted(set(keys) - set(known))
    if unknown and kind == "field":
        raise CareerbotError(
            f"{where} {unknown[0][:100]!r}: unknown field; expected {', '.join(known)}"
        )
    if unknown:
        listed = ", ".join(f"[{table}]" for table in known)
        raise CareerbotError(f"{where} [{unknown[0][:100]}]: unknown table; expected {listed}")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        # A byte-order mark, as some editors write one, is no part of the TOML.
        return tomllib.loads(read_limited(path, SMALL_FILE_BYTES).decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise CareerbotError(f"{path}: {error}") from None
    except RecursionError:
        raise CareerbotError(f"{path}: nested too deeply to be a metadata file") from None


def phrasings_of(table: object, where: str, also: str = "") -> Phrasings:
    """A table of {key: {phrasings = [text, ...]}}, checked; `also` says what else an
    entry may hold, for the error."""
    if not isinstance(table, dict):
        raise CareerbotError(f"{where} must be tables, each with phrasings = [...]")
    found: Phrasings = {}
    for key, entry in table.items():
        texts = entry.get("phrasings") if isinstance(entry, dict) else None
        if (
            not isinstance(entry, dict)
            or set(entry) != {"phrasings"}
            or not isinstance(texts, list)
            or not texts
            or not all(phrasing_text(t) for t in texts)
        ):
            raise CareerbotError(
                f"{where} {key[:100]!r}: expected phrasings = a list of one or more texts "
                f"of at most {MAX_PHRASING_CHARS} characters, without control characters{also}"
            )
        found[key] = tuple(dict.fromkeys(t.strip() for t in texts))
    return found


def curation_from(data: dict[str, Any], path: Path) -> Curation:
    """The [questions] and [uncovered] tables of a metadata file (both optional). A
    question's table may hold phrasings, an `answers` table by speaker label, or both."""
    where = f"{path.name}: [questions]"
    questions = data.get("questions", {})
    if not isinstance(questions, dict):
        raise CareerbotError(f"{where} must be tables, each with phrasings = [...]")
    answers: dict[str, Phrasings] = {}
    own: dict[str, object] = {}
    for question, entry in questions.items():
        if isinstance(entry, dict) and "answers" in entry:
            if not entry["answers"]:
                raise CareerbotError(
                    f"{where} {question[:100]!r} answers: expected [...answers.<speaker>] "
                    "tables, each with phrasings = [...]"
                )
            answers[question] = phrasings_of(entry["answers"], f"{where} {question!r} answers")
            entry = {key: value for key, value in entry.items() if key != "answers"}
            if not entry:
                continue
        own[question] = entry
    phrasings = phrasings_of(own, where, ", and optionally answers.<speaker> tables")
    uncovered = phrasings_of(data.get("uncovered", {}), f"{path.name}: [uncovered]")
    for name in uncovered:
        if not TOPIC_NAME.fullmatch(name) or len(name) > MAX_TOPIC_CHARS:
            raise CareerbotError(
                f"{path.name}: [uncovered] {name[:MAX_TOPIC_CHARS]!r}: a topic's name is "
                f"lowercase words joined by hyphens, at most {MAX_TOPIC_CHARS} characters, "
                "such as remote-work"
            )
    return Curation(phrasings, uncovered, answers)


def shown(value: object) -> str:
    """A value as an error quotes it: short, and with its type when it is not text."""
    if isinstance(value, str):
        return repr(value[:60])
    return f"{str(value)[:60]} ({type(value).__name__})"


def title_of(value: object, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and 0 < len(value.strip()) <= MAX_TITLE_CHARS and value.isprintable():
        return value.strip()
    raise CareerbotError(
        f"{where}: expected a text of 1 to {MAX_TITLE_CHARS} characters, without control "
        f"characters, not {shown(value)}"
    )


def date_of(value: object, where: str) -> str | None:
    if value is None:
        return None
    # A TOML date (date = 2019-01-15) reads as a date; a date and time is one too, but
    # says more than the day.
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, str) and ISO_DATE.fullmatch(value):
        try:
            return datetime.date.fromisoformat(value).isoformat()
        except ValueError:
            pass  # 2019-02-30
    raise CareerbotError(
        f"{where}: expected a date as YYYY-MM-DD, such as 2019-01-15, not {shown(value)}"
    )


def url_of(value: object, where: str) -> str | None:
    """An absolute http(s) address: a widget makes a link of it, so nothing else (no
    javascript:, data: or relative address)."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= MAX_URL_CHARS and value.isprintable():
        try:
            parts = urlsplit(value)
            # .port raises for a port that is not a number from 0 to 65535; a backslash
            # is read as a slash by browsers and not by Python, so the hosts would differ.
            if (
                not {" ", "\\"} & set(value)
                and parts.scheme in ("http", "https")
                and parts.hostname
                and (parts.port or 0) >= 0
            ):
                return value
        except ValueError:
            pass  # an unclosed [ in the host, or a bad port
    raise CareerbotError(
        f"{where}: expected an absolute http or https address of at most {MAX_URL_CHARS} "
        f"characters, such as https://example.org/interview, not {shown(value)}"
    )


def interview_from(data: dict[str, Any], path: Path) -> Interview:
    """The [interview] table of a metadata file (optional, as is each of its fields)."""
    table = data.get("interview", {})
    where = f"{path.name}: [interview]"
    if not isinstance(table, dict):
        raise CareerbotError(f"{where} must be a table of {', '.join(INTERVIEW_FIELDS)}")
    refuse_unknown(table, INTERVIEW_FIELDS, where, "field")
    return Interview(
        title=title_of(table.get("title"), f"{where} title"),
        date=date_of(table.get("date"), f"{where} date"),
        url=url_of(table.get("url"), f"{where} url"),
    )
