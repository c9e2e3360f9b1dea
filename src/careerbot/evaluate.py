"""Measure answer quality on a labelled question set (JSONL)."""

import functools
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
)

from careerbot import CareerbotError, utf8_text
from careerbot.rules import rule
from careerbot.search import Hit, Searcher


@dataclass(frozen=True)
class Case:
    """A labelled question: the acceptable (interview question, speaker) pairs, or none."""

    question: str
    labels: tuple[tuple[str, str], ...]  # as the file writes them; none: not to be answered
    evidence: str | None
    where: str

    @functools.cached_property
    def expect(self) -> frozenset[tuple[str, str]]:
        """The acceptable pairs, case aside."""
        return frozenset((question.casefold(), who.casefold()) for question, who in self.labels)

    def accepts(self, hit: Hit) -> bool:
        return not self.expect.isdisjoint(keys_of(hit.answer))


def keys_of(answer: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The (interview question, speaker) pairs an expectation may name an answer by: the
    speaker by name or id, case aside."""
    speaker = answer["speaker"]
    return {(answer["question"].casefold(), speaker[who].casefold()) for who in ("name", "id")}


# The two forms of "expect", by the tags pydantic puts in the location of an error.
NONE, PAIRS = "no answer", "answers"


class Expected(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    question: str = Field(pattern=r"\S")
    speaker: str = Field(pattern=r"\S")


class Labelled(BaseModel):
    """One line of a labelled set, as written."""

    model_config = ConfigDict(strict=True, extra="forbid")

    question: str = Field(pattern=r"\S")
    expect: Annotated[
        Annotated[Literal["no_answer"], Tag(NONE)]
        | Annotated[list[Expected], Field(min_length=1), Tag(PAIRS)],
        Discriminator(lambda value: NONE if isinstance(value, str) else PAIRS),
    ]
    evidence: str | None = Field(default=None, pattern=r"\S")


LABELLED = TypeAdapter(Labelled)
FORM = (
    'expected {"question": ..., "expect": [{"question": ..., "speaker": ...}] or '
    '"no_answer", "evidence": optional}'
)


# pydantic's words for what a line broke, in plain ones (rules.rule).
LINE_RULES = {
    "missing": "is missing",
    "too_short": "must not be empty",
    "string_type": "must be a string",
    "string_pattern_mismatch": "must not be blank",
    "extra_forbidden": "is not a field of a labelled question",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "list_type": "must be a list",
    "literal_error": 'must be "no_answer" or a list',
}


def field(part: int | str) -> str:
    """A part of where a problem is, as said in one line: a field the file may have by
    its name, anything else (an unknown field, which may hold anything) quoted and cut."""
    known = {*Labelled.model_fields, *Expected.model_fields}
    return str(part) if isinstance(part, int) or part in known else repr(part[:40])


def read_cases(path: Path) -> list[Case]:
    cases = []
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CareerbotError(f"cannot read {path}: {error}") from None
    # JSON lines end at "\n" alone: a string may hold U+2028 and its kin.
    lines = utf8_text(raw, str(path)).removeprefix("\ufeff").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = LABELLED.validate_json(line)
        except ValidationError as error:
            first = error.errors()[0]
            at = ".".join(field(part) for part in first["loc"] if part not in (NONE, PAIRS))
            if first["type"] == "json_invalid":
                problem = f"is not JSON ({first['ctx']['error']})"
            else:
                problem = rule(first, LINE_RULES)
            raise CareerbotError(f"{where}: {at or 'line'}: {problem}; {FORM}") from None
        expect = [] if record.expect == "no_answer" else record.expect
        labels = tuple((e.question, e.speaker) for e in expect)
        cases.append(Case(record.question, labels, record.evidence, where))
    if not cases:
        raise CareerbotError(f"{path} holds no labelled questions; {FORM}")
    return cases


def read_chatter(path: Path) -> list[str]:
    """The distinct lines of a file of chatter (with_chatter), one sentence or more each."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as error:
        raise CareerbotError(f"cannot read {path}: {error}") from None
    distinct = list(dict.fromkeys(line for line in lines if line))
    if not distinct:
        raise CareerbotError(f"{path} has no lines of chatter")
    return distinct


def with_chatter(cases: Sequence[Case], chatter: Sequence[str], count: int) -> list[Case]:
    """The cases, each question wrapped in `count` lines of chatter (drawn without
    repeats, each put before or after it), as people wrap a question in their life when
    they post it online. The same every run."""
    draw = random.Random(0)
    pool = list(chatter)
    wrapped = []
    for case in cases:
        before: list[str] = []
        after: list[str] = []
        for line in draw.sample(pool, min(count, len(pool))):
            (before if draw.random() < 0.6 else after).append(line)
        wrapped.append(replace(case, question=" ".join([*before, case.question, *after])))
    return wrapped


@dataclass(frozen=True)
class Outcome:
    case: Case
    hits: list[Hit]

    @property
    def rank(self) -> int | None:
        """Where the first acceptable answer is (1-based), if anywhere."""
        return next((i for i, hit in enumerate(self.hits, 1) if self.case.accepts(hit)), None)

    @property
    def evidence_ok(self) -> bool:
        evidence = self.case.evidence
        return self.rank == 1 and (
            evidence is None or evidence.casefold() in self.hits[0].passage["text"].casefold()
        )


@dataclass(frozen=True)
class Report:
    outcomes: list[Outcome]
    # Expected answers the index does not hold (a typo in a label, or a transcript not
    # in the corpus): such a question can never be right, which the reader should know.
    unknown: tuple[str, ...] = ()

    @property
    def in_domain(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.case.expect]

    @property
    def off_topic(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.case.expect]

    def figures(self) -> dict[str, float]:
        inside, outside = self.in_domain, self.off_topic
        with_evidence = [o for o in inside if o.case.evidence]
        return {
            "top1": share(o.rank == 1 for o in inside),
            "mrr3": sum(1 / o.rank for o in inside if o.rank) / max(len(inside), 1),
            "evidence1": share(o.evidence_ok for o in with_evidence),
            "offtopic_rejected": share(not o.hits for o in outside),
            "false_rejection": share(not o.hits for o in inside),
        }

    def misses(self) -> list[str]:
        lines = list(self.unknown)
        for o in self.outcomes:
            got = (
                f"{o.hits[0].answer['speaker']['name']} on {o.hits[0].answer['question']!r} "
                f"({o.hits[0].score:.3f})"
                if o.hits
                else "no answer"
            )
            if not o.case.expect and o.hits:
                lines.append(f"off-topic answered: {o.case.question!r} -> {got}")
            elif o.case.expect and not o.hits:
                lines.append(f"falsely rejected: {o.case.question!r}")
            elif o.case.expect and o.rank != 1:
                rank = f"rank {o.rank}" if o.rank else f"not in the {len(o.hits)} given"
                lines.append(f"wrong top-1 ({rank}): {o.case.question!r} -> {got}")
            elif o.case.expect and not o.evidence_ok:
                lines.append(f"evidence missing: {o.case.question!r} wants {o.case.evidence!r}")
        return lines

    def __str__(self) -> str:
        f = {k: f"{v:.3f}" for k, v in self.figures().items()}
        if not self.in_domain:  # a set of off-topic questions only: in-domain figures are moot
            f.update(top1="-", mrr3="-", evidence1="-", false_rejection="-")
        if not any(o.case.evidence for o in self.in_domain):
            f["evidence1"] = "-"
        if not self.off_topic:
            f["offtopic_rejected"] = "-"
        return (
            f"in-domain {len(self.in_domain)}, off-topic {len(self.off_topic)}: "
            f"top-1 {f['top1']}  MRR@3 {f['mrr3']}  evidence@1 {f['evidence1']}  "
            f"off-topic rejected {f['offtopic_rejected']}  "
            f"in-domain falsely rejected {f['false_rejection']}"
        )


def share(flags: Iterable[bool]) -> float:
    values = list(flags)
    return sum(values) / len(values) if values else 1.0


def evaluate(searcher: Searcher, cases: list[Case]) -> Report:
    held = set().union(*map(keys_of, searcher.index.answers))
    unknown = dict.fromkeys(
        f"not in the index: {case.where} expects {question!r} by {speaker!r}"
        for case in cases
        for question, speaker in case.labels
        if (question.casefold(), speaker.casefold()) not in held
    )
    outcomes = [Outcome(case, searcher.ask(case.question, 3).answers) for case in cases]
    return Report(outcomes, tuple(unknown))
