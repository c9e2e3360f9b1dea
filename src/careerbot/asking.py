"""What a question asks: its sentences, those that ask, and the runs of them judged one by
one when a question is long."""

import itertools
import re

import numpy as np

from careerbot.chunking import sentence_spans

# A sentence that asks: it ends in a question mark, full-width, Arabic or of the
# interrobang's kin too ("?!" and "??" as well), before any closing quote or bracket.
ASKS = re.compile(r"[?？؟‽⁇⁈⁉﹖][?!]*[\"'”’)\]」』]*$")
# An asking sentence of fewer words takes in the sentence before it (asking_spans).
SHORT_ASK_WORDS = 4
# A question of two to this many sentences has each embedded alone, to set aside those
# that speak of nothing the corpus does (relevant_part); one of more is judged in
# JUDGED_SENTENCES runs of consecutive sentences, each as long as the others or one shorter.
JUDGED_SENTENCES = 20


def asking_spans(question: str) -> tuple[tuple[int, int], ...]:
    """Where the sentences of a question that ask (end in "?") are, when others tell of
    the asker's situation ("I am a data engineer at a bank. How do I move into ML?");
    else none. The model gives such a situation as much weight as the request, and ranks
    first the answers about the asker's present job rather than the one about what they
    ask. An asking sentence of a few words ("Any advice?", or the end of one cut short by
    an abbreviation: "vs. a masters?") takes in the sentence before it."""
    spans = list(sentence_spans(question))
    asking: list[tuple[int, int]] = []
    for number, (start, end) in enumerate(spans):
        if not ASKS.search(question[start:end]):
            continue
        if number and len(question[start:end].split()) < SHORT_ASK_WORDS:
            start = spans[number - 1][0]
        if asking and start <= asking[-1][1]:  # the sentence before asks too
            start = asking.pop()[0]
        asking.append((start, end))
    covered = sum(end - start for start, end in asking)
    whole = sum(end - start for start, end in spans)
    return tuple(asking) if asking and covered < whole else ()


def judged_spans(question: str) -> list[tuple[int, int]]:
    """Where a question's sentences are, when it has two to JUDGED_SENTENCES; where as many
    runs of them are, when it has more; none for one (Searcher.relevant_part)."""
    spans = list(sentence_spans(question))
    if len(spans) <= JUDGED_SENTENCES:
        return spans if len(spans) > 1 else []
    bounds = np.linspace(0, len(spans), JUDGED_SENTENCES + 1).round().astype(int)
    return [(spans[a][0], spans[b - 1][1]) for a, b in itertools.pairwise(bounds.tolist())]


def asks(text: str) -> bool:
    """Whether a sentence, or any sentence of a run of them, asks."""
    return any(ASKS.search(text[start:end]) for start, end in sentence_spans(text))


def opens_with_short_ask(text: str) -> bool:
    """Whether a sentence, or the first of a run of them, asks in a few words ("Is that
    good?"): what it asks about is what came before it."""
    start, end = next(sentence_spans(text), (0, 0))
    return bool(ASKS.search(text[start:end])) and len(text[start:end].split()) < SHORT_ASK_WORDS
