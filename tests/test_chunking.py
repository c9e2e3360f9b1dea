import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import SupportsIndex

import pytest

from careerbot import CareerbotError
from careerbot.chunking import Answer, answers_of, embedding_text, sentence_spans, split_passages
from careerbot.embedding import OnnxEmbedder
from careerbot.transcript import parse_transcript
from tests.conftest import CORPUS, FakeEmbedder

DEFAULT = CORPUS / "ml-engineer-career-qa.txt"


def test_one_answer_per_question_and_speaker_with_the_whole_reply() -> None:
    answers = answers_of(parse_transcript(DEFAULT, "corpus/ml-engineer-career-qa.txt"))
    assert len(answers) == 9
    assert len({a.id for a in answers}) == 9
    hiring = next(a for a in answers if a.id == "ml-engineer-career-qa/4/chirag-mahapatra")
    assert hiring.text.startswith("For a machine learning engineer, you will have one interview")
    assert hiring.text.endswith("experimentation frameworks.")
    assert hiring.lines == (31, 33)


def test_sentences_keep_closing_punctuation_and_quotes() -> None:
    text = 'He said "stop." Then left! Why? Because…  Done'
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        'He said "stop."',
        "Then left!",
        "Why?",
        "Because…",
        "Done",
    ]
    # The interrobang's kin end a sentence; full-width punctuation does without a space.
    text = "Really‽ Sure⁇ 我是数据科学家。怎么转行？！「好」。Done"
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "Really‽",
        "Sure⁇",
        "我是数据科学家。",
        "怎么转行？！",
        "「好」。",
        "Done",
    ]


@pytest.mark.parametrize("budget", [16, 40, 128])
def test_passages_are_verbatim_overlapping_windows_that_cover_the_answer(budget: int) -> None:
    fake = FakeEmbedder()
    for answer in answers_of(parse_transcript(DEFAULT)):
        passages = split_passages(answer, fake.count_tokens, fake.window, budget)
        assert all(p.text == answer.text[p.start : p.end] for p in passages)
        assert all(fake.count_tokens(p.text) <= budget for p in passages)
        starts = [p.start for p in passages]
        assert starts == sorted(set(starts))
        ends = [p.end for p in passages]
        assert ends == sorted(set(ends))
        covered = {i for p in passages for i in range(p.start, p.end)}
        assert all(i in covered for i, c in enumerate(answer.text) if not c.isspace())


def test_each_window_starts_at_a_sentence_and_takes_the_next_ones_that_fit() -> None:
    fake = FakeEmbedder()
    answer = answers_of(parse_transcript(DEFAULT))[0]
    passages = split_passages(answer, fake.count_tokens, fake.window, 120)
    sentences = [answer.text[a:b] for a, b in sentence_spans(answer.text)]
    assert passages[0].text.startswith(f"{sentences[0]} {sentences[1]}")
    assert passages[1].text.startswith(sentences[1])
    assert passages[0].end > passages[1].start  # they overlap


def test_an_overlong_sentence_is_split_between_words_not_cut() -> None:
    fake = FakeEmbedder(window=40)
    answer = answers_of(parse_transcript(DEFAULT))[4]  # one long sentence inside it
    passages = split_passages(answer, fake.count_tokens, fake.window, 30)
    assert len(passages) > 5
    for passage in passages:
        assert fake.count_tokens(embedding_text(answer, passage.text)) <= 40
    covered = {i for p in passages for i in range(p.start, p.end)}
    assert all(i in covered for i, c in enumerate(answer.text) if not c.isspace())


def test_a_question_too_long_for_the_window_fails_naming_the_line() -> None:
    fake = FakeEmbedder(window=10)
    answer = answers_of(parse_transcript(DEFAULT))[0]
    with pytest.raises(CareerbotError, match=r"ml-engineer-career-qa\.txt:7: .* 10 word pieces"):
        split_passages(answer, fake.count_tokens, fake.window, 64)


def long_answer(tmp_path: Path, paragraphs: int) -> Answer:
    """One answer whose paragraph n (from 0) is on line 3 + 2n."""
    path = tmp_path / "long.txt"
    body = "\n\n".join(f"I say thing {n}. And more about {n}." for n in range(paragraphs))
    path.write_text(f"Why?\n\nAda: {body}\n")
    (answer,) = answers_of(parse_transcript(path))
    return answer


def test_each_passage_gives_the_lines_of_the_paragraphs_it_spans(tmp_path: Path) -> None:
    fake = FakeEmbedder()
    answer = long_answer(tmp_path, 50)
    passages = split_passages(answer, fake.count_tokens, fake.window, 16)
    assert len(passages) > 50

    def line(offset: int) -> int:
        return 3 + 2 * answer.text.count("\n\n", 0, offset)

    assert [p.lines for p in passages] == [(line(p.start), line(p.end - 1)) for p in passages]


def test_a_passage_ending_in_a_wrapped_paragraph_takes_its_last_line(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    wrapped = "\n".join(f"Line {n} of a paragraph wrapped over five lines." for n in range(5))
    path.write_text(f"Why?\n\nAda: {wrapped}\n\nI say a second thing. And more about it.\n")
    (answer,) = answers_of(parse_transcript(path))
    fake = FakeEmbedder()
    passages = split_passages(answer, fake.count_tokens, fake.window, 12)
    assert len(passages) > 3
    for passage in passages:
        first, last = passage.lines
        inside_first = passage.end <= answer.text.index("I say")
        assert (first, last) == ((3, 7) if inside_first else (first, 9)), passage.text
        assert first == (9 if passage.start >= answer.text.index("I say") else 3)


class CountingStarts(tuple[tuple[int, int, int], ...]):
    """Paragraph starts that count how many of them are looked at."""

    looked = 0

    def __getitem__(self, index: SupportsIndex) -> tuple[int, int, int]:  # type: ignore[override]
        CountingStarts.looked += 1
        return super().__getitem__(index)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        CountingStarts.looked += len(self)
        return super().__iter__()


def test_a_passages_lines_are_found_without_scanning_every_paragraph(tmp_path: Path) -> None:
    """A long answer has thousands of passages; a scan per passage made that quadratic."""
    fake = FakeEmbedder()
    answer = long_answer(tmp_path, 4096)
    answer = dataclasses.replace(answer, paragraph_starts=CountingStarts(answer.paragraph_starts))
    passages = split_passages(answer, fake.count_tokens, fake.window, 16)
    CountingStarts.looked = 0
    for passage in passages:
        first, last = passage.lines
        assert first <= last
    assert CountingStarts.looked <= 2 * 14 * len(passages)  # 2 lookups of log2(4096) + 1


def test_a_window_is_tokenized_a_few_times_not_once_per_sentence_it_could_take(
    tmp_path: Path,
) -> None:
    """Growing each window a sentence at a time tokenized it dozens of times: 4 minutes for 9 MB."""
    calls = 0

    def count(text: str) -> int:
        nonlocal calls
        calls += 1
        return len(text.split()) + 2

    answer = long_answer(tmp_path, 1000)
    sentences = len(list(sentence_spans(answer.text)))
    split_passages(answer, count, 256, 128)
    assert calls <= 8 * sentences  # it was 62 a sentence here


@pytest.mark.parametrize("budget", [12, 40, 100])
def test_each_window_is_the_longest_that_fits_even_when_counts_do_not_add_up(
    tmp_path: Path, budget: int
) -> None:
    def count(text: str) -> int:  # neither additive nor exact: characters, not words
        return len(text) // 7 + 2

    answer = long_answer(tmp_path, 60)
    ends = [end for _, end in sentence_spans(answer.text)]
    passages = split_passages(answer, count, 256, budget)
    for passage in passages:
        assert count(passage.text) <= budget
        later = [end for end in ends if end > passage.end]
        if later:
            assert count(answer.text[passage.start : later[0]]) > budget


@pytest.mark.model
def test_every_passage_fits_the_real_tokenizer_window(
    real_embedder: OnnxEmbedder,
) -> None:
    count = real_embedder.count_tokens
    for budget in (64, 200):
        for answer in answers_of(parse_transcript(DEFAULT)):
            for passage in split_passages(answer, count, real_embedder.window, budget):
                assert count(embedding_text(answer, passage.text)) <= real_embedder.window == 256
                assert count(passage.text) <= budget


@pytest.mark.model
def test_real_tokenizer_counts_past_the_window_instead_of_cutting(
    real_embedder: OnnxEmbedder,
) -> None:
    assert real_embedder.count_tokens("word " * 400) == 402
