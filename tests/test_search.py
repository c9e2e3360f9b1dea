import itertools
import math
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from careerbot import search
from careerbot.asking import JUDGED_SENTENCES, asking_spans
from careerbot.chunking import sentence_spans
from careerbot.config import Settings
from careerbot.embedding import OnnxEmbedder, Text, Vectors
from careerbot.index import build_index
from careerbot.search import (
    Hit,
    Searcher,
    UnknownSpeaker,
    Weights,
    best_first,
    grown,
)
from careerbot.version import LoadedIndex, load_index
from tests.conftest import DATA, ROOT, FakeEmbedder, metadata_file


@pytest.fixture
def searcher(settings: Settings, fake_embedder: FakeEmbedder) -> Searcher:
    build_index(settings, fake_embedder)
    return Searcher(load_index(settings.index_dir, fake_embedder), fake_embedder)


def built(settings: Settings, embedder: OnnxEmbedder, min_score: float) -> Searcher:
    """A searcher, at this threshold, on the index built anew from settings.corpus_dir."""
    build_index(settings, embedder)
    return Searcher(load_index(settings.index_dir, embedder), embedder, min_score)


def test_scores_are_in_unit_range_best_first_one_per_answer(searcher: Searcher) -> None:
    hits = searcher.ask("machine learning engineer interviews at airbnb", top_k=10).answers
    assert len(hits) == 9
    assert len({hit.answer["id"] for hit in hits}) == 9
    assert all(0 <= hit.score <= 1 for hit in hits)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_explanations_name_the_matched_words_and_carry_the_passage(searcher: Searcher) -> None:
    best = searcher.ask("titanic project resume").answers[0]
    assert best.answer["question"] == "What are some tips for the interview process?"
    assert "Titanic" in best.passage["text"]
    assert best.passage["text"] in best.answer["text"]
    assert {"titanic", "project", "resume"} <= set(best.matched_terms)
    assert 0 < best.lexical <= 1 and 0 <= best.semantic <= 1


def test_a_named_speaker_or_their_company_is_preferred(searcher: Searcher) -> None:
    question = "what separates a great candidate from a good one"
    for naming, who in [
        ("according to shubhankar", "Shubhankar Jain"),
        ("at surveymonkey", "Shubhankar Jain"),
        ("says chirag", "Chirag Mahapatra"),
        ("at airbnb", "Chirag Mahapatra"),
        ("according to shubankar", "Shubhankar Jain"),  # a typo in the name
    ]:
        best = searcher.ask(f"{question} {naming}").answers[0]
        assert best.answer["speaker"]["name"] == who, naming


def test_speaker_names_do_not_count_as_matched_words(searcher: Searcher) -> None:
    best = searcher.ask("what does chirag say about trends").answers[0]
    assert "chirag" not in best.matched_terms


def test_speaker_filter_keeps_only_that_speaker(searcher: Searcher) -> None:
    hits = searcher.ask("interview", top_k=10, speaker="shubhankar-jain").answers
    assert {hit.answer["speaker"]["id"] for hit in hits} == {"shubhankar-jain"}
    with pytest.raises(UnknownSpeaker, match="known speakers: Chirag Mahapatra"):
        searcher.ask("interview", speaker="Nobody")


def test_a_shown_passage_takes_in_the_better_neighbour_first_while_near_and_short() -> None:
    # Six windows of 10 characters, each starting 5 after the one before.
    starts = np.arange(0, 30, 5, dtype=np.int64)
    ends = starts + 10
    near = 0.5 - search.NEAR_BEST / 2  # near enough
    far = 0.5 - search.NEAR_BEST * 2  # too far
    match = np.array([far, near - 0.005, near + 0.01, 0.5, near, far], dtype=np.float32)
    # 2 first (the better), then 4 (better than 1); then 1 would make it too long.
    assert grown(starts, ends, match, 3) == (2, 4)
    match[2] = far
    assert grown(starts, ends, match, 3) == (3, 4)  # the side that is near, only
    match[4] = far
    assert grown(starts, ends, match, 3) == (3, 3)  # nothing near
    match = np.full(6, 0.5, dtype=np.float32)
    first, last = grown(starts, ends, match, 0)  # at an end: grows the one way it can
    assert (first, last) == (0, 2) and ends[2] - starts[0] <= search.SHOWN_GROWTH * 10


def test_a_shown_passage_is_the_answers_text_around_its_best_window(searcher: Searcher) -> None:
    index = searcher.index
    grew = 0
    for question in ("machine learning engineer interviews", "titanic project resume", "trends"):
        for hit in searcher.ask(question, top_k=9).answers:
            best = [p["id"] for p in index.passages].index(hit.passage["id"])
            window = index.passages[best]
            start, end = hit.passage["span"]
            assert hit.passage["text"] == hit.answer["text"][start:end]
            assert window["text"] in hit.passage["text"]
            assert len(hit.passage["text"]) <= search.SHOWN_GROWTH * len(window["text"])
            first, last = hit.passage["source"]["lines"]
            assert first <= window["source"]["lines"][0] <= window["source"]["lines"][1] <= last
            grew += hit.passage != window
    assert grew  # some grew


def test_nothing_above_the_threshold_means_suggestions(searcher: Searcher) -> None:
    strict = Searcher(searcher.index, searcher.embedder, min_score=0.99)
    result = strict.ask("how do I prepare for the interview process")
    assert not result.answered
    assert result.suggestions[0] == "What are some tips for the interview process?"
    assert len(result.suggestions) == 3


def test_a_question_in_words_the_corpus_never_uses_scores_zero(searcher: Searcher) -> None:
    hits = searcher.ask("sourdough bread recipe", top_k=10).answers
    assert all(hit.score == 0 for hit in hits)


def test_the_asking_spans_are_the_sentences_that_ask_when_others_tell_the_situation() -> None:
    def asking(question: str) -> list[str]:
        return [question[start:end] for start, end in asking_spans(question)]

    situation = "I build churn models at a bank. I know Python well."
    question = f"{situation} How do I move into ML? Is a degree needed?"
    assert asking(question) == ["How do I move into ML?", "Is a degree needed?"]
    assert asking('I was asked "why ML at all?" Then I froze.') == ['I was asked "why ML at all?"']
    for ending in ("?!", "??", "？", "؟", "‽", "⁇", "﹖", "?)", "?]", "?'", "？」"):
        ask = f"What should I learn next{ending}"
        assert asking(f"{situation} {ask}") == asking(f"{ask} {situation}") == [ask]
    assert asking("How do I move into ML? Is a degree needed?") == []  # all ask
    assert asking(situation) == []  # none asks
    assert asking("how do I move into ML") == asking("") == []
    # A few words take in the sentence before: on their own they say next to nothing,
    # or they are the end of a sentence that an abbreviation cut short.
    assert asking(f"{situation} Any advice?") == ["I know Python well. Any advice?"]
    cut = "Should I take a bootcamp vs. a masters?"
    assert asking(f"{situation} {cut}") == [cut]
    assert asking("Any advice? I know Python well.") == ["Any advice?"]


def test_a_question_of_only_a_speakers_name_is_answered_or_not_never_an_error(
    tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    # The shipped corpus, uncovered topics and all: without the words that name someone,
    # such a question is empty, and that empty text is embedded too.
    settings = Settings(corpus_dir=ROOT / "corpus", index_dir=tmp_path / "index")
    build_index(settings, fake_embedder)
    searcher = Searcher(load_index(settings.index_dir, fake_embedder), fake_embedder)
    assert searcher.uncovered_vectors is not None
    for question in ("Chirag Mahapatra", "Airbnb?", "Chiragg"):
        texts = searcher.query_texts(question)
        assert texts.unnamed == "" and "" in texts.distinct()
        result = searcher.ask(question)
        assert result.answered or result.suggestions


def embedded_for(searcher: Searcher, question: str) -> dict[Text, Vectors]:
    """The embeddings of the texts the searcher needs for the question (its sentences and
    its query_texts), by text."""
    sentences: list[Text] = list(searcher.sentences(question))
    given = dict(zip(sentences, searcher.embedder.embed(sentences)[:, None], strict=True))
    texts = searcher.query_texts(searcher.relevant_part(question, given)).distinct()
    return given | dict(zip(texts, searcher.embedder.embed(texts)[:, None], strict=True))


def ranked(searcher: Searcher, question: str, embedded: dict[str, Vectors]) -> list[Hit]:
    """The question's answers, ranked by its whole embedding, whatever it asks."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search, "asking_spans", lambda question: ())
        return searcher.ask(question, top_k=9, embedded=embedded).answers


def test_a_question_telling_its_situation_is_ranked_by_its_blend_with_what_it_asks(
    searcher: Searcher, fake_embedder: FakeEmbedder
) -> None:
    question = "I interview machine learning engineers at airbnb. What about my titanic resume?"
    texts = searcher.query_texts(question)
    assert texts.asking is not None
    assert [texts.whole[a:b] for a, b in texts.asking.spans] == ["What about my titanic resume?"]
    embedded = embedded_for(searcher, question)
    whole, asking = embedded[texts.whole], embedded[texts.asking]
    fake_embedder.calls.clear()
    for share in (0.0, 0.5, 1.0):
        weighed = Searcher(searcher.index, fake_embedder, weights=Weights(asking_share=share))
        blend = (1 - share) * whole + share * asking
        expected = ranked(
            weighed, question, embedded | {texts.whole: blend / np.linalg.norm(blend)}
        )
        got = weighed.ask(question, top_k=9, embedded=embedded).answers
        assert [(h.answer["id"], h.score) for h in got] == [
            (h.answer["id"], pytest.approx(h.score)) for h in expected
        ]
    assert fake_embedder.calls == []  # what was given is not embedded again
    blended = searcher.ask(question, top_k=9, embedded=embedded).answers
    assert [h.score for h in ranked(searcher, question, embedded)] != [h.score for h in blended]


def test_when_nothing_it_asks_clears_the_threshold_the_whole_question_is_ranked(
    searcher: Searcher,
) -> None:
    question = "I do machine learning engineer interviews at airbnb. What of sourdough bread?"
    embedded = embedded_for(searcher, question)
    by_whole = ranked(searcher, question, embedded)
    only_asking = Searcher(searcher.index, searcher.embedder, weights=Weights(asking_share=1.0))
    asked = only_asking.ask(question, embedded=embedded).answers[0].score
    assert asked < by_whole[0].score
    threshold = (asked + by_whole[0].score) / 2
    strict = Searcher(searcher.index, searcher.embedder, threshold, Weights(asking_share=1.0))
    got = strict.ask(question, top_k=9, embedded=embedded).answers
    assert [h.answer["id"] for h in got] == [
        h.answer["id"] for h in by_whole if h.score >= threshold
    ]


def nearest_to_corpus(searcher: Searcher, sentence: str) -> float:
    """How near a sentence is to anything the corpus says: a view or a passage (all
    compared, not only through the vector index)."""
    vector = searcher.embedder.embed([sentence])[0]
    passages = searcher.index.vectors.reconstruct_n(0, searcher.index.vectors.ntotal)
    return float(max((searcher.index.views @ vector).max(), (passages @ vector).max()))


def test_sentences_that_speak_of_nothing_the_corpus_does_are_set_aside(
    searcher: Searcher,
) -> None:
    chatter = ["Juggle pelican igloo.", "Xylophones tangerine igloo!"]
    about = "Machine learning engineer interviews at Airbnb."
    assert all(nearest_to_corpus(searcher, line) < 0.25 for line in chatter)
    assert nearest_to_corpus(searcher, about) > 0.5
    question = f"{chatter[0]} {about}\n\n{chatter[1]}"
    assert searcher.sentences(question) == [chatter[0], about, chatter[1]]
    assert searcher.relevant_part(question) == about
    # What is set aside changes nothing of the answers, scores included.
    assert searcher.ask(question, top_k=9).answers == searcher.ask(about, top_k=9).answers
    assert searcher.ask(question).question == question  # the question as asked
    # A sentence that asks stays, however far; one sentence alone is never judged.
    asking = "Juggle pelican igloo?"
    assert searcher.relevant_part(f"{about} {asking}") == f"{about} {asking}"
    assert searcher.sentences(chatter[0]) == [] and searcher.relevant_part(chatter[0]) == chatter[0]
    # Nothing set aside: the question as it was, its layout too.
    both = f"{about}\n\nWhat does the hiring process look like for a machine learning engineer?"
    assert searcher.relevant_part(both) == both
    # What is kept keeps its layout: a title line stays a line of its own.
    title, rest = both.split("\n\n")
    assert searcher.relevant_part(f"{title}\n\n{chatter[0]}\n\n{rest}") == both


def test_kept_however_far_the_sentence_a_short_ask_points_back_to_and_a_named_speaker(
    searcher: Searcher,
) -> None:
    about = "Machine learning engineer interviews at Airbnb."
    far = "Juggle pelican igloo."
    # "Is that good?" says nothing alone: what it asks about is the sentence before.
    assert searcher.relevant_part(f"{about} {far} Is that good?") == f"{about} {far} Is that good?"
    assert searcher.relevant_part(f"{far} {about} Is that good?") == f"{about} Is that good?"
    # A longer ask stands alone.
    longer = "Is that good for my career?"
    assert searcher.relevant_part(f"{about} {far} {longer}") == f"{about} {longer}"
    # Naming a speaker steers the answers (other_speaker), wherever the name is.
    # (Here only the nearest sentence would be kept otherwise.)
    strict = Searcher(
        searcher.index, searcher.embedder, weights=Weights(aside_floor=1.0, aside_margin=0.0)
    )
    hello = "Hi Shubhankar!"
    assert nearest_to_corpus(searcher, hello) < nearest_to_corpus(searcher, about)
    assert strict.relevant_part(f"{hello} {about} {far}") == f"{hello} {about}"
    handle = "Thanks @shubhankar_jain!"  # a handle's parts name him too
    assert strict.relevant_part(f"{handle} {about} {far}") == f"{handle} {about}"
    assert strict.relevant_part(f"Hi there! {about} {far}") == about
    # An organization alone names no one to keep the sentence for.
    booked = "We booked an Airbnb in Lisbon."
    assert strict.relevant_part(f"{about} {booked}") == about


def test_a_long_question_is_lifted_by_its_words_and_stays_within_0_and_1(
    searcher: Searcher,
) -> None:
    flat = Searcher(searcher.index, searcher.embedder, weights=Weights(long_lift=0.0))
    shortest, longest = searcher.weights.long_words
    base = "machine learning engineer interviews at airbnb titanic resume"
    filler = " ".join(["projects"] * 60)

    def scores(s: Searcher, question: str) -> list[float]:
        return [hit.score for hit in s.ask(question, top_k=9).answers]

    for words, share in ((shortest, 0.0), ((shortest + longest) // 2, 0.5), (longest, 1.0)):
        question = " ".join(f"{base} {filler}".split()[:words])
        lift = searcher.weights.long_lift * share
        plain = scores(flat, question)
        assert searcher.lift(question) == pytest.approx(lift)
        assert scores(searcher, question) == pytest.approx([s + lift * s * (1 - s) for s in plain])
        assert all(0 <= s <= 1 for s in scores(searcher, question))
    # Equal ends make a step.
    step = Searcher(searcher.index, searcher.embedder, weights=Weights(long_words=(40, 40)))
    assert step.lift(" ".join(["word"] * 39)) == 0
    assert step.lift(" ".join(["word"] * 40)) == step.weights.long_lift
    # Dashes and emoji are no words.
    padded = base + " -" * 60 + " 🙂" * 10
    assert searcher.lift(padded) == 0 and scores(searcher, padded) == scores(flat, padded)
    # 0.25 becomes the shipped threshold of 0.30.
    assert 0.25 + searcher.weights.long_lift * 0.25 * 0.75 == pytest.approx(0.30, abs=0.001)


def test_a_question_of_very_many_sentences_is_judged_in_runs_of_them(searcher: Searcher) -> None:
    about, far = "Machine learning engineer interviews at Airbnb.", "Juggle pelican igloo."
    fewer = f"{about} " + " ".join([far] * (JUDGED_SENTENCES - 1))
    assert searcher.sentences(fewer) == [about] + [far] * (JUDGED_SENTENCES - 1)
    # 41 sentences: 20 runs of two or three, in order, covering the whole question.
    many = [far] * 40
    question = " ".join([about, *many])
    runs = searcher.sentences(question)
    assert len(runs) == JUDGED_SENTENCES and " ".join(runs) == question
    assert all(2 <= len(list(sentence_spans(run))) <= 3 for run in runs)
    assert runs[0].startswith(about) and len(runs[0]) <= len(f"{about} {far} {far}")
    assert searcher.relevant_part(question) == runs[0]
    # Sentence 25 (many[24]) opens a run. Asking there, the run is kept, not only when
    # the asking sentence ends it; a short ask keeps the run before it too.
    for ask, short in (("Juggle pelican igloo, or not?", False), ("Is that good?", True)):
        many[24] = ask
        runs = searcher.sentences(" ".join([about, *many]))
        at = next(number for number, run in enumerate(runs) if run.startswith(ask))
        kept = [runs[0], *([runs[at - 1]] if short else []), runs[at]]
        assert searcher.relevant_part(" ".join([about, *many])) == " ".join(kept)


def test_the_nearest_sentence_stays_and_the_margin_keeps_those_close_to_it(
    searcher: Searcher,
) -> None:
    lines = ["Juggle pelican igloo.", "Marmalade kazoo igloo.", "Lasagna hammock igloo."]
    near = [nearest_to_corpus(searcher, line) for line in lines]
    assert max(near) < 0.25
    question = " ".join(lines)
    nearest = lines[int(np.argmax(near))]
    # All under the floor: only the nearest, and those within the margin of it, stay.
    for margin in (0.0, 1.0):
        weights = Weights(aside_margin=margin)
        kept = Searcher(searcher.index, searcher.embedder, weights=weights).relevant_part(question)
        expected = [line for line, n in zip(lines, near, strict=True) if n >= max(near) - margin]
        assert kept == (question if len(expected) == 3 else " ".join(expected))
        assert nearest in kept
    # A floor under every sentence keeps them all.
    keep_all = Searcher(searcher.index, searcher.embedder, weights=Weights(aside_floor=-1.0))
    assert keep_all.relevant_part(question) == question


def test_the_sentences_given_embedded_are_not_embedded_again(
    searcher: Searcher, fake_embedder: FakeEmbedder
) -> None:
    question = "Juggle pelican igloo. Machine learning engineer interviews at Airbnb."
    embedded = embedded_for(searcher, question)
    assert set(searcher.sentences(question)) <= set(embedded)
    fake_embedder.calls.clear()
    assert searcher.ask(question, embedded=embedded).answered
    assert fake_embedder.calls == []


@pytest.mark.model
def test_real_model_rejects_off_topic_and_answers_in_domain(
    settings: Settings, real_embedder: OnnxEmbedder
) -> None:
    searcher = built(settings, real_embedder, 0.26)
    off = searcher.ask("how do i bake sourdough bread")
    assert not off.answered and len(off.suggestions) == 3
    hit = searcher.ask("how many core values interviews does airbnb do").answers[0]
    assert hit.answer["speaker"]["name"] == "Chirag Mahapatra"
    assert "two core-values interviews" in hit.passage["text"]


@pytest.mark.model
def test_with_a_second_transcript_each_question_finds_its_speaker(
    settings: Settings, real_embedder: OnnxEmbedder
) -> None:
    shutil.copytree(DATA / "second", settings.corpus_dir, dirs_exist_ok=True)
    shutil.copytree(DATA / "other", settings.corpus_dir, dirs_exist_ok=True)
    searcher = built(settings, real_embedder, 0.26)
    expected = {
        "should designers learn to code?": "Maria Okafor",
        "what do design managers want from a junior designer": "Tom Reyes",
        "How many core values interviews does Airbnb do?": "Chirag Mahapatra",
        "is the titanic project good for my resume?": "Shubhankar Jain",
    }
    for question, who in expected.items():
        assert searcher.ask(question).answers[0].answer["speaker"]["name"] == who, question
    assert len(searcher.speakers) == 7


@pytest.mark.model
def test_the_speaker_filter_refuses_only_the_uncovered_topics_its_speakers_transcript_lists(
    settings: Settings, real_embedder: OnnxEmbedder
) -> None:
    # The default transcript lists degrees as uncovered; the second lists no topic, and
    # one of its speakers answers whether a PM needs an MBA.
    shutil.copytree(ROOT / "corpus", settings.corpus_dir, dirs_exist_ok=True)
    shutil.copytree(DATA / "second", settings.corpus_dir, dirs_exist_ok=True)
    searcher = built(settings, real_embedder, 0.3)
    question = "Do I need a degree?"
    assert searcher.ask(question).uncovered == "degrees"
    assert searcher.ask(question, speaker="Chirag Mahapatra").uncovered == "degrees"
    # Not his transcript's to say: his answers decide (here none clears the threshold).
    assert searcher.ask(question, speaker="Daniel Okonkwo").uncovered is None
    # A topic only the second lists: its speakers' refusal, and under the first's filter
    # it hides none of their own topics (moving abroad for work is about the job market).
    with (settings.corpus_dir / "product-management-qa.speakers.toml").open("a") as toml:
        toml.write(
            '\n[uncovered.relocation]\nphrasings = ["Should I move to another country '
            'for a job?", "Is relocating abroad for a tech job worth it?"]\n'
        )
    searcher = built(settings, real_embedder, 0.3)
    moving = "Should I move to another country for a job?"
    assert searcher.ask(moving, speaker="Daniel Okonkwo").uncovered == "relocation"
    assert searcher.ask(moving, speaker="Chirag Mahapatra").uncovered == "job-market"


def test_second_transcript_parses(tmp_path: Path) -> None:
    from careerbot.transcript import parse_transcript

    transcript = parse_transcript(DATA / "second" / "product-management-qa.txt")
    assert len(transcript.questions) == 5
    assert len(transcript.turns) == 7
    assert all(t.speaker.title for t in transcript.turns)


def test_best_first_gives_the_order_of_a_full_sort_without_sorting_everything() -> None:
    score = np.random.default_rng(3).random(1000).astype(np.float32)
    expected = list(np.argsort(-score))
    assert list(best_first(score, first=10)) == expected
    assert list(best_first(score)) == expected
    assert list(itertools.islice(best_first(score, first=10), 5)) == expected[:5]
    score[::7] = 0.5  # with ties: still every position once, best first
    order = list(best_first(score, first=10))
    assert sorted(order) == list(range(1000))
    assert all(np.diff(score[order]) <= 0)


def test_a_filtered_or_named_speaker_is_compared_in_full_beyond_the_candidates(
    searcher: Searcher, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "CANDIDATES", 2)  # far fewer than the passages
    vectors = searcher.index.vectors.reconstruct_n(0, searcher.index.vectors.ntotal)
    for speaker, question in [
        ("Shubhankar Jain", "machine learning engineer interviews"),
        (None, "what does shubhankar say about machine learning engineer interviews"),
    ]:
        query = fake_embedder.embed([searcher.query_texts(question).whole])
        exact = np.clip(vectors @ query[0], 0, 1)
        hits = searcher.ask(question, top_k=9, speaker=speaker).answers
        his = [hit for hit in hits if hit.answer["speaker"]["name"] == "Shubhankar Jain"]
        assert len(his) >= 3 and (speaker is None or his == hits)
        ids = [passage["id"] for passage in searcher.index.passages]
        positions = [ids.index(hit.passage["id"]) for hit in his]
        assert [hit.semantic for hit in his] == pytest.approx(list(exact[positions]), abs=1e-6)


def two_answers(
    corpus: Path,
    phrasing: str | None,
    ada: str | None = None,
    questions: tuple[str, ...] = ("What matters most?", "What do chess players earn?"),
) -> None:
    """A corpus of one question answered by two speakers alike, and another question; Bob's
    answer (and Ada's) may have a phrasing of its own, and `questions` one each."""
    for old in corpus.iterdir():
        old.unlink()
    (corpus / "qa.txt").write_text(
        "What matters most?\n\nAda: Patience matters, and practice.\n\n"
        "Bob: Practice matters, and patience.\n\nWhat do chess players earn?\n\n"
        "Cy: Less than poker players.\n"
    )
    tables = [
        f'[questions."{question}".answers.{who}]\nphrasings = ["{text}"]\n'
        for question, who, text in (
            ("What matters most?", "Bob", phrasing),
            ("What matters most?", "Ada", ada),
            ("What do chess players earn?", "Cy", ada),
        )
        if text
    ] + [f'[questions."{question}"]\nphrasings = ["asked another way"]\n' for question in questions]
    (corpus / "qa.speakers.toml").write_text(
        '[speakers.Ada]\nname = "Ada"\n\n[speakers.Bob]\nname = "Bob"\n\n'
        '[speakers.Cy]\nname = "Cy"\n\n' + "\n".join(tables)
    )


def mixes(settings: Settings, embedder: FakeEmbedder) -> set[tuple[float, ...]]:
    """The weights the searcher gives the passages, each set once (to 4 places)."""
    searcher = Searcher(load_index(settings.index_dir, embedder), embedder)
    return {rounded(column) for column in searcher.mix.T}


def rounded(weights: Iterable[float]) -> tuple[float, ...]:
    return tuple(round(float(weight), 4) for weight in weights)


def scores_of(settings: Settings, embedder: FakeEmbedder, question: str) -> dict[str, float]:
    build_index(settings, embedder)
    searcher = Searcher(load_index(settings.index_dir, embedder), embedder)
    hits = searcher.ask(question, top_k=3).answers
    return {hit.answer["speaker"]["name"]: hit.score for hit in hits}


def test_an_answers_phrasings_lift_that_answer_over_the_other_speakers(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    question = "which matters, patience or practice"
    two_answers(settings.corpus_dir, None)
    before = scores_of(settings, fake_embedder, question)
    two_answers(settings.corpus_dir, question)
    after = scores_of(settings, fake_embedder, question)
    # Without it the two answers tie (the same words); with it, Bob's is first, by the
    # topic signal alone; Ada's answer, and Cy's, are scored as before.
    assert before["Ada"] == pytest.approx(before["Bob"])
    assert after["Bob"] > after["Ada"] + 0.2
    assert next(iter(after)) == "Bob"
    assert after["Ada"] == pytest.approx(before["Ada"])


def test_the_weights_for_phrased_answers_wait_for_every_answer_of_the_transcript(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """One answer given a phrasing (by `careerbot review`, say) keeps its transcript's
    weights: on a question about what it says, it scores as before."""
    question = "is practice what matters"
    two_answers(settings.corpus_dir, None)
    before = scores_of(settings, fake_embedder, question)
    two_answers(settings.corpus_dir, "how do chess players improve")
    assert scores_of(settings, fake_embedder, question)["Bob"] == pytest.approx(before["Bob"])
    w = Weights()
    assert mixes(settings, fake_embedder) == {rounded((w.semantic, w.lexical, w.topic))}
    # Every answer phrased: the transcript's passages take the phrased weights.
    two_answers(settings.corpus_dir, "how do chess players improve", ada="is patience key")
    changed = scores_of(settings, fake_embedder, question)
    assert mixes(settings, fake_embedder) == {rounded(w.phrased)}
    assert changed["Bob"] != pytest.approx(before["Bob"])


def test_a_transcript_takes_the_plain_weights_until_each_question_has_phrasings(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """Without phrasings the topic only repeats the interview question: the plain weights
    leave it out. A phrasing or two (by review, say) changes no score; phrasings for every
    interview question bring in the topic."""
    question = "is practice what matters"
    w = Weights()
    two_answers(settings.corpus_dir, None, questions=())
    bare = scores_of(settings, fake_embedder, question)
    assert mixes(settings, fake_embedder) == {rounded(w.plain)}
    assert not build_index(settings, fake_embedder).warnings  # no curation: nothing to say
    two_answers(settings.corpus_dir, question, questions=("What matters most?",))
    assert scores_of(settings, fake_embedder, question) == pytest.approx(bare)
    assert mixes(settings, fake_embedder) == {rounded(w.plain)}
    # The build says which questions still want phrasings.
    (note,) = build_index(settings, fake_embedder).warnings
    assert note.startswith("corpus/qa.txt: 1 of 2 interview questions have no phrasings")
    assert "'What do chess players earn?'" in note and "'What matters most?'" not in note
    two_answers(settings.corpus_dir, None)
    assert scores_of(settings, fake_embedder, question) != pytest.approx(bare)
    assert mixes(settings, fake_embedder) == {rounded((w.semantic, w.lexical, w.topic))}
    # Every answer phrased, though no interview question is: the phrased weights.
    two_answers(settings.corpus_dir, "what matters", ada="is patience key", questions=())
    scores_of(settings, fake_embedder, question)
    assert mixes(settings, fake_embedder) == {rounded(w.phrased)}
    assert load_index(settings.index_dir, fake_embedder).manifest.plain == []


def test_an_answers_phrasing_counts_as_covered_and_steers_suggestions(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    two_answers(settings.corpus_dir, "how much do chess players earn")
    with (settings.corpus_dir / "qa.speakers.toml").open("a") as toml:
        toml.write('\n[uncovered.pay]\nphrasings = ["how much do chess players make"]\n')
    build_index(settings, fake_embedder)
    searcher = Searcher(load_index(settings.index_dir, fake_embedder), fake_embedder, 0.99)
    # Nearer to Bob's phrasing than to the uncovered topic's: not called uncovered, and
    # Bob's interview question is the first suggestion, though the other one's words
    # ("What do chess players earn?") are nearer the question than its own.
    result = searcher.ask("how much do chess players earn")
    assert result.uncovered is None
    assert result.suggestions == ["What matters most?", "What do chess players earn?"]
    assert searcher.ask("how much do chess players make").uncovered == "pay"


def every_answer_phrased(settings: Settings, embedder: FakeEmbedder) -> LoadedIndex:
    """The two_answers corpus with a phrasing of each answer's own, built and loaded."""
    two_answers(settings.corpus_dir, "which matters, practice", ada="is patience key")
    build_index(settings, embedder)
    return load_index(settings.index_dir, embedder)


def test_a_classifier_the_phrasings_teach_lowers_the_less_likely_answers(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """Every answer phrased: Ada's and Bob's answers to one question each score less by
    Weights.intent times how much less likely the classifier of answers finds it than the
    likelier of the two; the likelier scores as before, and so does Cy's lone answer."""
    two_answers(settings.corpus_dir, "which matters, practice", ada="is patience key")
    with metadata_file(settings.corpus_dir).open("a") as toml:
        toml.write('\n[uncovered.pay]\nphrasings = ["what is the salary"]\n')
    build_index(settings, fake_embedder)
    index = load_index(settings.index_dir, fake_embedder)
    taught = Searcher(index, fake_embedder)
    untaught = Searcher(index, fake_embedder, weights=Weights(intent=0.0))
    assert taught.intents is not None
    # Classes: the pay topic (-1) and the three answers, by row.
    assert list(taught.intents.classes) == [-1, 0, 1, 2]
    question = "is it practice that matters"
    before = {h.answer["id"]: h.score for h in untaught.ask(question, top_k=3).answers}
    after = {h.answer["id"]: h.score for h in taught.ask(question, top_k=3).answers}
    short = taught.intents.shortfall(fake_embedder.embed([question]), taught.answer_topic)
    confidence = taught.lexicon.coverage(taught.lexicon.terms(question)) ** 0.5
    rows = {answer["id"]: row for row, answer in enumerate(index.answers)}
    assert set(after) == set(before)
    assert max(short[rows[answer]] for answer in after) > 0.05  # some answer is lowered
    for answer, score in after.items():
        lowered = Weights().intent * float(short[rows[answer]]) * confidence
        assert score == pytest.approx(before[answer] - lowered, abs=1e-5)
    assert sorted(short[[rows[a] for a in after]])[:2] == [0.0, 0.0]  # likelier, and Cy


def classifier_judges(index: LoadedIndex, embedder: FakeEmbedder, share: float) -> Searcher:
    """A searcher whose nearest-phrasing rule never calls a question uncovered (its margin
    is out of reach): only the classifier of answers does, at this share."""
    return Searcher(index, embedder, 0.0, Weights(uncovered_margin=1.0, uncovered_share=share))


def with_pay_and_visas(settings: Settings, embedder: FakeEmbedder) -> LoadedIndex:
    """every_answer_phrased, with two uncovered topics."""
    two_answers(settings.corpus_dir, "which matters, practice", ada="is patience key")
    with metadata_file(settings.corpus_dir).open("a") as toml:
        toml.write(
            '\n[uncovered.pay]\nphrasings = ["what is the salary"]\n'
            '\n[uncovered.visas]\nphrasings = ["do I need a visa"]\n'
        )
    build_index(settings, embedder)
    return load_index(settings.index_dir, embedder)


def test_a_question_the_classifier_finds_likely_enough_uncovered_is_refused(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """Uncovered when the classifier finds the uncovered topics together at least
    Weights.uncovered_share likely, named by the likeliest of them (here not the first),
    and only at the floor of the nearest-phrasing rule."""
    index = with_pay_and_visas(settings, fake_embedder)
    question = "do chess players need a visa"
    intents = Searcher(index, fake_embedder).intents
    assert intents is not None
    share, likeliest = intents.uncovered(fake_embedder.embed([question]))
    assert (likeliest, 0.1 < share < 0.9) == (1, True)
    refused = classifier_judges(index, fake_embedder, share).ask(question)
    assert (refused.uncovered, refused.answers) == ("visas", [])
    answered = classifier_judges(index, fake_embedder, share + 0.01).ask(question)
    assert answered.uncovered is None and answered.answers
    # Under Weights.uncovered_floor (0.3) of every uncovered phrasing: never.
    below = "salary matters most"
    phrasings = Searcher(index, fake_embedder).uncovered_vectors
    assert phrasings is not None
    assert float((phrasings @ fake_embedder.embed([below])[0]).max()) < Weights().uncovered_floor
    assert classifier_judges(index, fake_embedder, 0.0).ask(below).uncovered is None


def test_the_classifier_does_not_judge_a_question_nearest_an_answer_it_was_not_taught(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """A transcript without phrasings teaches the classifier nothing: a question nearest
    one of its passages is not taken for the nearest uncovered topic it knows."""
    with_pay_and_visas(settings, fake_embedder)
    (settings.corpus_dir / "other.txt").write_text(
        "How do chess coaches work abroad?\n\n"
        "Dee: A chess coach abroad needs a visa, and the salary is by the hour.\n"
    )
    build_index(settings, fake_embedder)
    index = load_index(settings.index_dir, fake_embedder)
    question = "do chess players need a visa"
    assert classifier_judges(index, fake_embedder, 0.0).ask(question).uncovered is None
    (settings.corpus_dir / "other.txt").unlink()
    build_index(settings, fake_embedder)
    index = load_index(settings.index_dir, fake_embedder)
    assert classifier_judges(index, fake_embedder, 0.0).ask(question).uncovered == "visas"


def test_no_classifier_without_two_answers_to_one_question_each_with_phrasings(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    two_answers(settings.corpus_dir, "which matters, practice")  # Bob's alone
    build_index(settings, fake_embedder)
    assert Searcher(load_index(settings.index_dir, fake_embedder), fake_embedder).intents is None
    # Every answer phrased, but no interview question with two answers to tell apart.
    (settings.corpus_dir / "qa.txt").write_text(
        "What matters most?\n\nAda: Patience.\n\nWhat do chess players earn?\n\nCy: Little.\n"
    )
    metadata_file(settings.corpus_dir).write_text(
        '[speakers.Ada]\nname = "Ada"\n\n[speakers.Cy]\nname = "Cy"\n\n'
        '[questions."What matters most?".answers.Ada]\nphrasings = ["is patience key"]\n\n'
        '[questions."What do chess players earn?".answers.Cy]\nphrasings = ["chess pay"]\n'
    )
    build_index(settings, fake_embedder)
    index = load_index(settings.index_dir, fake_embedder)
    assert [a.whole for a in index.manifest.answer_phrasings] == [True, True]
    assert Searcher(index, fake_embedder).intents is None


def test_an_answer_the_classifier_lowers_below_zero_still_counts_at_a_threshold_of_zero(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    index = every_answer_phrased(settings, fake_embedder)
    # A weight far above any score pushes the less likely of Ada and Bob under 0.
    searcher = Searcher(index, fake_embedder, 0.0, Weights(intent=50.0))
    hits = searcher.ask("is it practice that matters", top_k=10).answers
    assert len(hits) == len(index.answers) == 3
    assert min(hit.score for hit in hits) == 0.0
    assert all(math.copysign(1.0, hit.score) == 1.0 for hit in hits)  # no -0.0


def test_a_named_or_filtered_speaker_is_not_lowered_by_the_classifier(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """The classifier chooses between speakers; the question or the filter has chosen."""
    index = every_answer_phrased(settings, fake_embedder)
    taught = Searcher(index, fake_embedder)
    untaught = Searcher(index, fake_embedder, weights=Weights(intent=0.0))
    question = "is it practice that matters"
    lowered = {h.answer["speaker"]["name"]: h.score for h in taught.ask(question).answers}
    plain = {h.answer["speaker"]["name"]: h.score for h in untaught.ask(question).answers}
    assert lowered["Ada"] < plain["Ada"] - 0.01  # unnamed, Ada's answer is the less likely
    for speaker, asked in ((None, f"{question} says ada"), ("Ada", question)):
        with_it = taught.ask(asked, top_k=3, speaker=speaker).answers
        without = untaught.ask(asked, top_k=3, speaker=speaker).answers
        assert [(h.answer["id"], h.score) for h in with_it] == [
            (h.answer["id"], h.score) for h in without
        ], speaker


def test_one_speaker_asked_alike_in_two_interviews_is_one_answer_per_question(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    # The contract: at most one answer per (interview question, speaker), across
    # transcripts too.
    for old in settings.corpus_dir.iterdir():
        old.unlink()
    for name in ("qa.txt", "again.txt"):
        (settings.corpus_dir / name).write_text(
            "What matters most?\n\nAda: Patience matters, and practice.\n\n"
            "Bob: Practice matters, and patience.\n"
        )
    build_index(settings, fake_embedder)
    searcher = Searcher(load_index(settings.index_dir, fake_embedder), fake_embedder, 0.0)
    hits = searcher.ask("what matters, patience or practice", top_k=4).answers
    pairs = [(hit.answer["question"], hit.answer["speaker"]["id"]) for hit in hits]
    assert sorted(pairs) == [("What matters most?", "ada"), ("What matters most?", "bob")]
