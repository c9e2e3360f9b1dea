"""Parse one interview transcript into speakers, questions and turns, keeping line numbers."""

import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from careerbot import CareerbotError, read_limited, utf8_text
from careerbot.metadata import (
    Curation,
    Interview,
    curation_from,
    interview_from,
    plain,
    read_toml,
    refuse_unknown,
)

END_MARKER = "---"
# Without an end marker, at most this many trailing paragraphs can be an editor's outro.
OUTRO_PARAGRAPHS = 3
# A transcript is a document people read, not a data dump; refuse one far past that.
MAX_TRANSCRIPT_BYTES = 10 * 1024 * 1024
# A speaker label: one to four words, each opening with a capital (speaker_label()
# checks that, in any script: Python's re has no class for capitals), an optional note
# in brackets, a colon, then the answer: "Chirag: ...", "Ada Lovelace (Acme): ...".
LABEL = re.compile(
    r"(?P<label>[^\W\d_][\w.'’-]*(?: [^\W\d_][\w.'’-]*){0,3})(?: \([^()\n]{1,60}\))?:"
    r"(?:\s+(?P<rest>.*)|$)",
    re.S,
)


def speaker_label(text: str) -> re.Match[str] | None:
    """The paragraph's speaker label ("Émile Zola (Acme): I ..."), or None."""
    found = LABEL.fullmatch(text)
    words = found["label"].split(" ") if found else []
    return found if words and all(w[0].istitle() for w in words) else None


# A question may have a short lead-in ("Let's talk hiring. What is the process like?").
QUESTION_WORDS = 25
FIRST_PERSON = re.compile(
    r"\b(?:I|I['’](?:m|ve|d|ll)|me|my|mine|we|we['’](?:re|ve|d|ll)|us|our|ours)\b", re.I
)
# Sentence punctuation followed by a space inside a paragraph: more than one sentence.
INNER_SENTENCE_END = re.compile(r"[.!?…][\"”’)]*\s+\S")


@dataclass(frozen=True)
class Speaker:
    id: str
    name: str
    role: str
    organization: str = ""

    @property
    def title(self) -> str:
        """The role as shown to people: "Machine learning engineer at Airbnb"."""
        if self.role and self.organization:
            return f"{self.role} at {self.organization}"
        return self.role or self.organization


@dataclass(frozen=True)
class Paragraph:
    text: str
    first_line: int
    last_line: int


@dataclass(frozen=True)
class Question:
    number: int
    text: str
    line: int


@dataclass(frozen=True)
class Turn:
    """One speaker's whole reply to one interview question."""

    question: Question
    speaker: Speaker
    paragraphs: tuple[Paragraph, ...]
    # From the metadata file: questions people ask that this reply answers.
    phrasings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transcript:
    document: str
    speakers: tuple[Speaker, ...]
    questions: tuple[Question, ...]
    turns: tuple[Turn, ...]
    # What a person should check: text left out, speakers who never answer.
    warnings: tuple[str, ...] = ()
    # From the metadata file: other ways to ask its questions, topics it does not cover.
    curation: Curation = field(default_factory=Curation)
    # From the metadata file: the interview's title, date and address, for people to see.
    interview: Interview = field(default_factory=Interview)

    @property
    def name(self) -> str:
        return Path(self.document).stem


def slug(text: str) -> str:
    """A speaker's id: the name's letters, marks (a vowel sign, an accent) and digits, in
    any script, in lower case and joined by hyphens ("Chirag Mahapatra" ->
    chirag-mahapatra, "सीता" -> सीता)."""
    lowered = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(c if unicodedata.category(c)[0] in "LMN" else " " for c in lowered)
    return "-".join(kept.split())


# What a metadata file may hold: the speakers here, the rest in metadata.py.
METADATA_TABLES = ("speakers", "interview", "questions", "uncovered")
SPEAKER_FIELDS = ("name", "role", "organization")


def speakers_file(path: Path) -> Path:
    return path.with_suffix(".speakers.toml")


def read_speakers(path: Path, data: dict[str, Any] | None = None) -> dict[str, Speaker] | None:
    """Map every accepted label (key, full name, first name) to its speaker; None when the
    file lists no speakers (it may describe only the interview), so labels stand as
    written."""
    data = read_toml(path) if data is None else data
    refuse_unknown(data, METADATA_TABLES, f"{path}:", "table")
    entries = data.get("speakers")
    if entries is None:
        return None
    if not isinstance(entries, dict) or not entries:
        raise CareerbotError(f"{path}: expected [speakers.LABEL] tables with a name")
    labels: dict[str, Speaker] = {}
    by_id: dict[str, Speaker] = {}
    for label, entry in entries.items():
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise CareerbotError(f"{path}: speaker {label[:100]!r} needs a name")
        refuse_unknown(entry, SPEAKER_FIELDS, f"{path}: speaker {label[:100]!r}", "field")
        fields = {key: entry.get(key, "") for key in ("role", "organization")}
        if not all(isinstance(value, str) for value in fields.values()):
            raise CareerbotError(f"{path}: speaker {label!r}: role and organization are text")
        # Control and direction-changing characters would garble what shows the name.
        if not all(text.isprintable() for text in (name, *fields.values())):
            raise CareerbotError(
                f"{path}: speaker {label!r}: name, role and organization may not hold control "
                "or text-direction characters"
            )
        # One way to write a name: "José" typed either way, no space at either end.
        name = unicodedata.normalize("NFC", name.strip())
        speaker = Speaker(id=slug(name), name=name, **fields)
        if not speaker.id:
            raise CareerbotError(f"{path}: speaker {label[:100]!r}: a name needs a letter or digit")
        # One person may have several labels (Chirag, CM): one name, one speaker.
        twin = by_id.setdefault(speaker.id, speaker)
        if twin.name != speaker.name:
            raise CareerbotError(
                f"{path}: speakers {twin.name[:100]!r} and {speaker.name[:100]!r} would share "
                f"the id {speaker.id[:100]!r}; their names must differ in more than spacing, "
                "case and punctuation"
            )
        if twin != speaker:
            raise CareerbotError(
                f"{path}: speaker {label[:100]!r} is {name[:100]!r} as another label is, with "
                "another role or organization; give one person the same ones under each label"
            )
        labels[label] = twin
    # A label the file gives wins; then a full name, then a first name, the first listed.
    for speaker in by_id.values():
        labels.setdefault(speaker.name, speaker)
    for speaker in by_id.values():
        labels.setdefault(speaker.name.split()[0], speaker)
    return labels


def read_lines(path: Path, document: str, max_bytes: int) -> list[str]:
    """The file's lines, refusing before reading it a file too large to be a transcript."""
    advice = " for one transcript; split it, or raise CAREERBOT_MAX_TRANSCRIPT_MB"
    raw = read_limited(path, max_bytes, document, advice)
    # Lines end at "\n" only, as editors and grep count them: splitlines() would also
    # break at form feeds and Unicode separators and shift every line number after. A
    # file whose lines mostly end in CR alone (classic Mac OS, perhaps with a "\n" a tool
    # appended) has its lines ended by CR.
    if raw.count(b"\r") - raw.count(b"\r\n") > raw.count(b"\n"):
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    text = utf8_text(raw, document).removeprefix("\ufeff")
    return [line.removesuffix("\r") for line in text.split("\n")]


def interview_paragraphs(text_lines: list[str]) -> tuple[list[Paragraph], list[Paragraph], int]:
    """The paragraphs up to the end marker or, without one, up to the outro; the
    paragraphs left out after them; and the end marker's line (0 when there is none)."""
    paragraphs: list[Paragraph] = []
    lines: list[str] = []
    marker = 0
    for number, content in enumerate([*text_lines, ""], start=1):
        if content.strip() == END_MARKER and not marker:
            if lines:
                paragraphs.append(Paragraph(" ".join(lines), number - len(lines), number - 1))
            marker, lines = number, []
            continue
        if content.strip():
            lines.append(content.strip())
        elif lines:
            paragraphs.append(Paragraph(" ".join(lines), number - len(lines), number - 1))
            lines = []
    if marker:
        end = next((n for n, p in enumerate(paragraphs) if p.first_line > marker), len(paragraphs))
    else:
        end = outro_start(paragraphs)
    return paragraphs[:end], paragraphs[end:], marker


def outro_start(paragraphs: list[Paragraph]) -> int:
    """Drop the editor's lines that close a transcript with no end marker.

    The speakers talk in the first person; an editor's note or an advert ("These Q&As
    were edited…", "Check out our course…") does not. Up to OUTRO_PARAGRAPHS trailing
    paragraphs with no first-person word, after the last speaker label, are taken to be
    those: no more, so an answer that goes on without "I" or "we" is not lost.
    """
    end = len(paragraphs)
    while end > max(0, len(paragraphs) - OUTRO_PARAGRAPHS):
        last = paragraphs[end - 1].text
        if speaker_label(last) or FIRST_PERSON.search(last):
            break
        end -= 1
    return end


def is_question(paragraph: Paragraph, following: Paragraph | None) -> bool:
    """A short paragraph ending in '?' that a speaker answers next.

    Short: one sentence, or a few words; a long paragraph of an answer may end in '?'.
    """
    text = paragraph.text.rstrip('"”’ ')
    return (
        text.endswith("?")
        and (not INNER_SENTENCE_END.search(text) or len(text.split()) <= QUESTION_WORDS)
        and speaker_label(paragraph.text) is None
        and following is not None
        and speaker_label(following.text) is not None
    )


def after_the_end(document: str, after: list[Paragraph], marker: int) -> list[str]:
    """A warning naming what was left out at the end when it may hold answers: closing
    paragraphs taken for a note for want of an end marker, or questions with answers
    after one."""
    if not after:
        return []
    lines = f"lines {after[0].first_line}-{after[-1].last_line}"
    if not marker:
        return [
            f"{document}: {lines}, at the end with no 'I' or 'we', are taken as a closing "
            "note and left out; put a line '---' after the last answer to say where the "
            "interview ends"
        ]
    following = [*after[1:], None]
    if any(is_question(p, next_one) for p, next_one in zip(after, following, strict=True)):
        return [
            f"{document}:{marker}: the line '---' ends the interview, yet questions and "
            f"answers follow it ({lines} left out); move it after the last answer"
        ]
    return []


def left_out(document: str, lines: list[str], used: list[Paragraph]) -> list[str]:
    """A warning when most of the text is in no question or answer, naming the lines."""
    kept = {number for p in used for number in range(p.first_line, p.last_line + 1)}
    total = dropped = 0
    ranges: list[tuple[int, int]] = []
    in_range = False
    for number, line in enumerate(lines, start=1):
        content = line.strip()
        if content == END_MARKER:
            continue
        total += len(content)
        if number in kept:
            in_range = False
        elif content:
            dropped += len(content)
            if in_range:
                ranges[-1] = (ranges[-1][0], number)
            else:
                ranges.append((number, number))
            in_range = True
    if dropped * 2 <= total:
        return []
    spans = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges)
    return [
        f"{document}: {dropped / total:.0%} of the text is in no question or answer (lines "
        f"{spans} left out); check where the interview starts (its first question) and ends "
        "(a line '---')"
    ]


def answer_phrasings(
    curation: Curation,
    questions: list[Question],
    turns: dict[tuple[int, str], list[Paragraph]],
    known: dict[str, Speaker] | None,
    document: str,
    path: Path,
) -> dict[tuple[int, str], tuple[str, ...]]:
    """The metadata file's phrasings of answers, by (question number, speaker id); each
    must name an interview question of the transcript and a speaker who answers it."""
    found: dict[tuple[int, str], tuple[str, ...]] = {}
    for question, label, texts in (
        (question, label, texts)
        for question, by_label in curation.answers.items()
        for label, texts in by_label.items()
    ):
        where = f"{speakers_file(path).name}: [questions] {question[:100]!r} answers.{label[:100]}"
        numbers = [q.number for q in questions if q.text == question]
        if not numbers:
            raise CareerbotError(
                f"{where}: not a question in {document}; copy it from there word for word"
            )
        # Without [speakers], a label stands as written, as in the transcript.
        speaker = known.get(label) if known is not None else Speaker(slug(label), label, "")
        if speaker is None:
            names = ", ".join(sorted({s.name for s in (known or {}).values()}))
            raise CareerbotError(
                f"{where}: no speaker is called {label[:100]!r}; the file lists {names}"
            )
        # A question asked twice: the phrasings are for each of the speaker's answers to it.
        keys = [(n, speaker.id) for n in numbers if (n, speaker.id) in turns]
        if not keys:
            raise CareerbotError(f"{where}: {speaker.name!r} gives no answer to that question")
        for key in keys:
            found[key] = tuple(dict.fromkeys([*found.get(key, ()), *texts]))
    return found


def parse_transcript(
    path: Path, document: str | None = None, max_bytes: int = MAX_TRANSCRIPT_BYTES
) -> Transcript:
    """Parse one transcript file; `document` is the name shown in sources and errors."""
    document = document or str(path)
    metadata = read_toml(speakers_file(path)) if speakers_file(path).exists() else None
    known = read_speakers(speakers_file(path), metadata) if metadata is not None else None
    curation = curation_from(metadata, speakers_file(path)) if metadata else Curation()
    interview = interview_from(metadata, speakers_file(path)) if metadata else Interview()
    lines = read_lines(path, document, max_bytes)
    paragraphs, after, marker = interview_paragraphs(lines)
    used: list[Paragraph] = []  # the paragraphs of questions and answers, labels included
    questions: list[Question] = []
    turns: dict[tuple[int, str], list[Paragraph]] = {}
    speakers: dict[str, Speaker] = {}
    current: tuple[int, str] | None = None
    for index, paragraph in enumerate(paragraphs):
        following = paragraphs[index + 1] if index + 1 < len(paragraphs) else None
        label = speaker_label(paragraph.text)
        if is_question(paragraph, following):
            questions.append(Question(len(questions) + 1, paragraph.text, paragraph.first_line))
            current = None
        elif label:
            where = f"{document}:{paragraph.first_line}"
            name = label["label"]
            if not questions:
                raise CareerbotError(f"{where}: answer by {name!r} before any interview question")
            if known is not None and name not in known:
                names = ", ".join(sorted({s.name for s in known.values()}))
                raise CareerbotError(
                    f"{where}: unknown speaker {name!r}; {speakers_file(path).name} lists {names}"
                )
            speaker = known[name] if known is not None else Speaker(slug(name), name, "")
            twin = speakers.setdefault(speaker.id, speaker)
            if twin.name != speaker.name:  # labels as written: "Ana-Maria", "Ana Maria"
                raise CareerbotError(
                    f"{where}: {name!r} and {twin.name!r} would be one speaker (id "
                    f"{speaker.id!r}); write the label the same way each time, or give both "
                    f"in {speakers_file(path).name}"
                )
            current = (len(questions), speaker.id)
            rest = (label["rest"] or "").strip()
            first = [Paragraph(rest, paragraph.first_line, paragraph.last_line)] if rest else []
            turns.setdefault(current, []).extend(first)
        elif current is not None:
            turns[current].append(paragraph)
        else:
            continue  # anything before the first question is the intro: not an answer
        used.append(paragraph)
    if not questions:
        raise CareerbotError(
            f"{document}:1: no interview question found (a one-sentence line ending in '?' "
            "followed by a 'Name: ' answer)"
        )
    for (number, speaker_id), parts in turns.items():
        if not parts:
            line = questions[number - 1].line
            raise CareerbotError(f"{document}:{line}: {speaker_id} gives an empty answer")
    listed = {speaker.id: speaker for speaker in (known or {}).values()}
    silent = [
        f"{document}: {speakers_file(path).name} lists {speaker.name!r}, who answers no question"
        for speaker_id, speaker in listed.items()
        if speaker_id not in speakers
    ]
    asked = {question.text for question in questions}
    for question in curation.phrasings:
        if question not in asked:
            raise CareerbotError(
                f"{speakers_file(path).name}: [questions] {question[:100]!r} is not a question "
                f"in {document}; copy it from there word for word"
            )
    phrased = answer_phrasings(curation, questions, turns, known, document, path)
    return Transcript(
        curation=curation,
        interview=interview,
        document=document,
        speakers=tuple(speakers.values()),
        questions=tuple(questions),
        turns=tuple(
            Turn(
                questions[number - 1],
                speakers[speaker_id],
                tuple(parts),
                phrased.get((number, speaker_id), ()),
            )
            for (number, speaker_id), parts in turns.items()
        ),
        warnings=(
            *silent,
            *after_the_end(document, after, marker),
            *left_out(document, lines, used),
        ),
    )


def transcript_paths(corpus_dir: Path) -> list[Path]:
    """The *.txt transcripts in the corpus directory, in name order; refused when none."""
    if not corpus_dir.is_dir():
        problem = "is not a folder" if corpus_dir.exists() else "does not exist"
        raise CareerbotError(f"corpus directory {corpus_dir} {problem}")
    paths = sorted(corpus_dir.glob("*.txt"))
    if not paths:
        raise CareerbotError(f"no transcripts (*.txt) in {corpus_dir}")
    for path in paths:
        if not path.is_file():  # a folder, or a link to nothing
            raise CareerbotError(f"{path}: not a regular file")
    return paths


def parse_corpus(corpus_dir: Path, max_bytes: int = MAX_TRANSCRIPT_BYTES) -> list[Transcript]:
    """Parse every *.txt transcript in the corpus directory, in name order."""
    paths = transcript_paths(corpus_dir)
    return [parse_transcript(path, document_name(corpus_dir, path), max_bytes) for path in paths]


def document_name(corpus_dir: Path, path: Path) -> str:
    """A file of the corpus as sources name it: "corpus/qa.txt", the folder's own name
    even when it is given as "." or "../corpus"."""
    return f"{os.path.basename(os.path.abspath(corpus_dir))}/{path.name}"


def covered(transcripts: list[Transcript]) -> set[str]:
    """Every text that asks a covered question (as plain() compares them): the interview
    questions, their phrasings and their answers'. No uncovered topic may list one."""
    return {
        plain(text)
        for text in (
            *(
                text
                for t in transcripts
                for q, texts in t.curation.phrasings.items()
                for text in (q, *texts)
            ),
            *(question.text for t in transcripts for question in t.questions),
            *(text for t in transcripts for turn in t.turns for text in turn.phrasings),
        )
    }
