"""Turns become answers (one per question and speaker); answers become passages that fit."""

import bisect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from careerbot import CareerbotError
from careerbot.metadata import Interview
from careerbot.transcript import Speaker, Transcript

# Sentence punctuation (Arabic and the interrobang's kin too, with any closing quote)
# before whitespace ends a sentence; so does a paragraph break. Full-width punctuation ends
# one whatever follows: Chinese and Japanese put no space between sentences.
SENTENCE_END = re.compile(r"[.!?…؟‽⁇⁈⁉﹖][\"'”’)\]]*(?=\s)|[。！？][！？!?]*[\"'”’)\]」』]*|\n\n")
WORD = re.compile(r"\S+")
PARAGRAPH_BREAK = "\n\n"


@dataclass(frozen=True)
class Answer:
    id: str
    document: str
    question: str
    speaker: Speaker
    text: str
    lines: tuple[int, int]
    # (offset in text, first line, last line) of each paragraph, to give a passage its
    # lines: a paragraph may be wrapped over several lines of the transcript.
    paragraph_starts: tuple[tuple[int, int, int], ...]
    interview: Interview
    # Questions people ask that this answer answers, from the metadata file.
    phrasings: tuple[str, ...] = ()

    def lines_at(self, offset: int) -> tuple[int, int]:
        """The first and last line of the paragraph that holds the character at offset."""
        # A binary search: a long answer has thousands of passages and paragraphs.
        found = bisect.bisect_right(self.paragraph_starts, offset, key=lambda start: start[0])
        _, first, last = self.paragraph_starts[found - 1]
        return first, last

    def line_at(self, offset: int) -> int:
        return self.lines_at(offset)[0]


@dataclass(frozen=True)
class Passage:
    id: str
    answer: Answer
    start: int
    end: int

    @property
    def text(self) -> str:
        return self.answer.text[self.start : self.end]

    @property
    def lines(self) -> tuple[int, int]:
        return self.answer.line_at(self.start), self.answer.lines_at(self.end - 1)[1]


def embedding_text(answer: Answer, passage: str) -> str:
    """What the model sees for a passage: the interview question and speaker give it context."""
    speaker = answer.speaker
    who = f"{speaker.name} ({speaker.title})" if speaker.title else speaker.name
    return f"{answer.question}\n{who}: {passage}"


def answers_of(transcript: Transcript) -> list[Answer]:
    answers = []
    for turn in transcript.turns:
        starts, offset = [], 0
        for paragraph in turn.paragraphs:
            starts.append((offset, paragraph.first_line, paragraph.last_line))
            offset += len(paragraph.text) + len(PARAGRAPH_BREAK)
        answers.append(
            Answer(
                id=f"{transcript.name}/{turn.question.number}/{turn.speaker.id}",
                document=transcript.document,
                question=turn.question.text,
                speaker=turn.speaker,
                text=PARAGRAPH_BREAK.join(p.text for p in turn.paragraphs),
                lines=(turn.paragraphs[0].first_line, turn.paragraphs[-1].last_line),
                paragraph_starts=tuple(starts),
                interview=transcript.interview,
                phrasings=turn.phrasings,
            )
        )
    return answers


def sentence_spans(text: str) -> Iterator[tuple[int, int]]:
    """Each sentence of text as (start, end) offsets, without surrounding whitespace."""
    ends = [match.end() for match in SENTENCE_END.finditer(text)] + [len(text)]
    start = 0
    for end in ends:
        piece = text[start:end]
        if piece.strip():
            yield start + len(piece) - len(piece.lstrip()), start + len(piece.rstrip())
        start = end


# The version of split_passages (and sentence_spans): change it when they split anything
# differently, so that a build splits every answer anew rather than reuse old splits.
SPLITTER = 3


def split_passages(
    answer: Answer, count_tokens: Callable[[str], int], window: int, passage_tokens: int
) -> list[Passage]:
    """Overlapping windows of whole sentences, each of at most passage_tokens word pieces.

    A window starts at every sentence and takes as many following ones as fit, so the
    sentences that matter are found together whatever their neighbours. Each passage,
    embedded with its context, fits the model's window, so nothing is cut. A sentence too
    long on its own is split between words.
    """

    def fits(start: int, end: int) -> bool:
        text = answer.text[start:end]
        return (
            count_tokens(text) <= passage_tokens
            and count_tokens(embedding_text(answer, text)) <= window
        )

    if not fits(0, 1):
        raise CareerbotError(
            f"{answer.document}:{answer.lines[0]}: the question and speaker name alone "
            f"exceed the model's {window} word pieces"
        )
    pieces: list[tuple[int, int]] = []
    for start, end in sentence_spans(answer.text):
        if fits(start, end):
            pieces.append((start, end))
            continue
        run: tuple[int, int] | None = None
        for word in WORD.finditer(answer.text, start, end):
            if run and fits(run[0], word.end()):
                run = (run[0], word.end())
            else:
                if run:
                    pieces.append(run)
                if not fits(word.start(), word.end()):
                    raise CareerbotError(
                        f"{answer.document}:{answer.line_at(word.start())}: a single word is "
                        f"longer than {passage_tokens} word pieces"
                    )
                run = (word.start(), word.end())
        if run:
            pieces.append(run)
    # Word pieces add up across whitespace, so a window's size is first estimated from
    # each piece's count (special tokens aside) and only the window's ends are tokenized.
    special = count_tokens("")
    sizes = [count_tokens(answer.text[start:end]) - special for start, end in pieces]
    found: list[tuple[int, int]] = []
    last = total = 0  # pieces[first..last] make up the window; total is their estimate
    for first in range(len(pieces)):
        if last < first:
            last, total = first, sizes[first]
        elif first:
            total -= sizes[first - 1]
        while last + 1 < len(pieces) and special + total + sizes[last + 1] <= passage_tokens:
            last += 1
            total += sizes[last]
        while last > first and not fits(pieces[first][0], pieces[last][1]):
            total -= sizes[last]
            last -= 1
        while last + 1 < len(pieces) and fits(pieces[first][0], pieces[last + 1][1]):
            last += 1
            total += sizes[last]
        if not found or found[-1][1] < pieces[last][1]:
            found.append((pieces[first][0], pieces[last][1]))
    return [
        Passage(f"{answer.id}#{number}", answer, start, end)
        for number, (start, end) in enumerate(found, start=1)
    ]
