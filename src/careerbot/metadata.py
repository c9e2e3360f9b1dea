"""What a curator adds in a transcript's metadata file (NAME.speakers.toml) beside its
speakers: other ways people ask each interview question, and career topics the
interviews do not cover, each with ways people ask about it.

    [questions."How can a data scientist transition to a machine learning engineer role?"]
    phrasings = ["how do I go from data science to ML engineering"]

    [uncovered.pay]
    phrasings = ["how much do ML engineers earn"]
"""

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from careerbot import SMALL_FILE_BYTES, CareerbotError, read_limited

TOPIC_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_PHRASING_CHARS = 1000

Phrasings = dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Curation:
    """Phrasings by interview question, and uncovered topics by name."""

    phrasings: Phrasings = field(default_factory=dict)
    uncovered: Phrasings = field(default_factory=dict)


def plain(text: str) -> str:
    """Text as compared for sameness: case and runs of spaces make no difference."""
    return " ".join(text.casefold().split())


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(read_limited(path, SMALL_FILE_BYTES).decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise CareerbotError(f"{path}: {error}") from None
    except RecursionError:
        raise CareerbotError(f"{path}: nested too deeply to be a metadata file") from None


def phrasings_of(table: object, where: str) -> Phrasings:
    """A table of {key: {phrasings = [text, ...]}}, checked."""
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
            or not all(
                isinstance(t, str) and 0 < len(t.strip()) <= MAX_PHRASING_CHARS and t.isprintable()
                for t in texts
            )
        ):
            raise CareerbotError(
                f"{where} {key!r}: expected phrasings = a list of one or more texts "
                f"of at most {MAX_PHRASING_CHARS} characters, without control characters"
            )
        found[key] = tuple(dict.fromkeys(t.strip() for t in texts))
    return found


def curation_from(data: dict[str, Any], path: Path) -> Curation:
    """The [questions] and [uncovered] tables of a metadata file (both optional)."""
    phrasings = phrasings_of(data.get("questions", {}), f"{path.name}: [questions]")
    uncovered = phrasings_of(data.get("uncovered", {}), f"{path.name}: [uncovered]")
    for name in uncovered:
        if not TOPIC_NAME.fullmatch(name):
            raise CareerbotError(
                f"{path.name}: [uncovered] {name!r}: a topic's name is lowercase words joined "
                "by hyphens, such as remote-work"
            )
    return Curation(phrasings, uncovered)
