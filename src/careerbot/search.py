"""Answer a question from the index: hybrid scoring, one best passage per answer, a threshold."""

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import fuzz, process

from careerbot import CareerbotError
from careerbot.asking import (
    asking_spans,
    asks,
    judged_spans,
    opens_with_short_ask,
)
from careerbot.embedding import Embedder, Text, Vectors, Within
from careerbot.intent import Intents
from careerbot.lexical import WORD, Lexicon, Synonyms
from careerbot.version import (
    ANSWER,
    END,
    SPEAKER,
    START,
    TOPIC,
    AnswerRecord,
    LoadedIndex,
    PassageRecord,
    Record,
    SourceRecord,
    lexicon_text,
    search_vectors,
)

# Passages taken from the vector index for each question; all of a corpus up to this size.
CANDIDATES = 256
# The parts of a word that may name someone: "chirag_mahapatra" and "@chirag" name Chirag.
NAME_PART = re.compile(r"[^\W_]+")
# The passage shown for an answer grows from its best window into the windows beside it
# that match the question at most this much less (the weighted mean of their semantic and
# lexical signals), while it stays within this many times the best window's length
# (Searcher.shown). Chosen on the tuning questions' evidence.
NEAR_BEST = 0.06
SHOWN_GROWTH = 2.0


class UnknownSpeaker(CareerbotError):
    pass


@dataclass(frozen=True)
class Weights:
    """How the signals add up to a score in [0, 1]; chosen on the tuning questions."""

    semantic: float = 0.5  # the question against the passage (with its context)
    lexical: float = 0.2  # BM25 of the question's words in the passage
    topic: float = 0.3  # the question against the interview question and its phrasings
    # For the passages of a transcript whose every answer has phrasings of its own, which
    # tell more of what each answers: the same signals (the topic also taking the
    # answer's phrasings), weighed thus.
    phrased: tuple[float, float, float] = (0.25, 0.1, 0.55)
    # For the passages of a transcript not every interview question of which has
    # phrasings (nor every answer): there the topic mostly repeats the interview question,
    # which each passage's embedding already holds.
    plain: tuple[float, float, float] = (0.7, 0.3, 0.0)
    # An answer by someone other than the speaker a question names is worth this much less.
    other_speaker: float = 0.25
    # Scores are scaled by coverage ** this: the share of the question's information in
    # words the corpus uses at all. Off-topic questions use words the corpus never does.
    coverage: float = 0.5
    # A question is about an uncovered topic when one of its phrasings is nearer than any
    # interview question or phrasing by this margin, and at least this near.
    uncovered_margin: float = 0.02
    uncovered_floor: float = 0.3
    # It is also about one, at that floor, when the classifier of answers (Intents) finds
    # the uncovered topics together at least this likely, and the passage nearest the
    # question is one of the answers it was taught (it knows nothing of the others).
    uncovered_share: float = 0.5
    # A question that tells of the asker's situation as well as asking is ranked by its
    # embedding blended with that of its asking sentences, which weigh this much.
    asking_share: float = 0.5
    # Where the classifier of answers (Intents) finds an answer less likely than the
    # likeliest answer to the same interview question, the answer scores this much less
    # per unit of probability: it tells two speakers' answers apart better than their
    # nearest phrasings do.
    intent: float = 0.2
    # scikit-learn's C for it, the inverse of its regularisation (Intents.fit).
    intent_c: float = 10.0
    # A sentence of a question that speaks of nothing the corpus does ("Long time lurker.",
    # "We just had a baby.") is set aside (Searcher.relevant_part) when no view or passage
    # is this near it, and the question's nearest sentence is this much nearer.
    aside_floor: float = 0.25
    aside_margin: float = 0.25
    # A long question (its relevant part) tells of more than it asks, and its words and
    # meaning match any answer less than a short one's: its score s becomes
    # s + lift * s * (1 - s), which takes 0.25 to 0.30 and keeps 1 at 1, the lift growing
    # from 0 at long_words[0] words to long_lift at long_words[1].
    long_words: tuple[int, int] = (35, 45)
    long_lift: float = 0.27


@dataclass(frozen=True)
class QueryTexts:
    """What the model embeds for a question (typos repaired, abbreviations expanded)."""

    whole: str
    # Without the words that name a speaker or their organization, to judge whether it
    # is about an uncovered topic; None when it names nobody or nothing is uncovered.
    unnamed: str | None
    # Its asking sentences within the whole, when it has others too (see asking_spans).
    asking: Within | None

    def distinct(self) -> list[Text]:
        texts = (self.whole, self.unnamed, self.asking)
        return list(dict.fromkeys(t for t in texts if t is not None))


@dataclass(frozen=True)
class ScoringInput:
    """What scoring a question's passages needs besides its embedding."""

    terms: dict[str, str]  # stem: the question's word (Lexicon.terms)
    lexical: NDArray[np.float64]
    confidence: float
    lift: float  # for a long question (Weights.long_lift)
    by_named: NDArray[np.bool_] | None  # passages of the speakers the question names
    by_only: NDArray[np.bool_] | None  # passages of the speaker the filter picks
    top_k: int


@dataclass(frozen=True)
class Listed:
    """The uncovered topics judged under one speaker's filter (those the transcripts the
    speaker answers in list): their numbers in Searcher.uncovered_topics, and which of
    the uncovered phrasings are theirs."""

    topics: tuple[int, ...]
    phrasings: NDArray[np.bool_]


@dataclass(frozen=True)
class Hit:
    """One answer picked for a question, with the passage that carried the match (grown
    as Searcher.shown grows it)."""

    answer: AnswerRecord
    passage: PassageRecord
    score: float
    semantic: float
    lexical: float
    matched_terms: list[str]


@dataclass(frozen=True)
class Result:
    question: str
    answers: list[Hit]
    suggestions: list[str] = field(default_factory=list)
    uncovered: str | None = None  # the uncovered topic the question looked like

    @property
    def answered(self) -> bool:
        return bool(self.answers)


def speaker_words(speaker: Record) -> set[str]:
    """The words that name a speaker in a question: names and organization, joined and apart."""
    found: set[str] = set()
    for phrase in (speaker["name"], speaker.get("organization", "")):
        parts = NAME_PART.findall(phrase.lower())
        found.update(part for part in parts if len(part) > 2)
        if len(parts) > 1:
            found.add("".join(parts))
    return found


def grown(
    starts: NDArray[np.int64], ends: NDArray[np.int64], match: NDArray[np.float32], best: int
) -> tuple[int, int]:
    """The first and last of an answer's windows (in order through its text: `starts`,
    `ends`; `match`: how well each matches) to show, from the `best` one: it takes in the
    window beside it that matches better, then the next, while each matches at least the
    best's match less NEAR_BEST and the whole spans at most SHOWN_GROWTH times the best."""
    first = last = best
    longest = SHOWN_GROWTH * (ends[best] - starts[best])
    floor = match[best] - NEAR_BEST
    while True:
        beside = [
            i
            for i in (first - 1, last + 1)
            if 0 <= i < len(match)
            and match[i] >= floor
            and max(ends[last], ends[i]) - min(starts[first], starts[i]) <= longest
        ]
        if not beside:
            return first, last
        taken = max(beside, key=lambda i: match[i])
        first, last = min(first, taken), max(last, taken)


def best_first(score: NDArray[np.float32], first: int = CANDIDATES) -> Iterator[int]:
    """Positions in order of descending score. Only the best `first` are sorted up front
    (a full sort of a large corpus costs milliseconds); the rest, when they are reached.
    Equal scores may come in any order."""
    if len(score) <= first:
        yield from np.argsort(-score, kind="stable")
        return
    top = np.argpartition(-score, first)[:first]
    yield from top[np.argsort(-score[top], kind="stable")]
    rest = np.setdiff1d(np.arange(len(score)), top)
    yield from rest[np.argsort(-score[rest], kind="stable")]


def curation_tiers(index: LoadedIndex) -> NDArray[np.int64]:
    """Per answer, how far its transcript is curated: 0, no phrasings at all
    (Manifest.plain); 1, some; 2, every answer has phrasings of its own
    (AnswerPhrasings.whole)."""
    tier = np.ones(index.manifest.answers, dtype=np.int64)
    for span in index.manifest.plain:
        tier[span.first : span.end] = 0
    tier[[a.row for a in index.manifest.answer_phrasings if a.whole]] = 2
    return tier


class Searcher:
    def __init__(
        self,
        index: LoadedIndex,
        embedder: Embedder,
        min_score: float = 0.0,
        weights: Weights = Weights(),
    ) -> None:
        self.index, self.embedder = index, embedder
        self.min_score, self.weights = min_score, weights
        listed = index.catalog
        self.speakers: dict[str, Record] = {s.id: s.model_dump() for s in listed.speakers}
        self.speaker_row = {id: row for row, id in enumerate(self.speakers)}
        # Every word that names a speaker, and whom it names.
        self.naming: dict[str, set[str]] = {}
        for id, speaker in self.speakers.items():
            for word in speaker_words(speaker):
                self.naming.setdefault(word, set()).add(id)
        self.name_words = list(self.naming)
        # The words of their names alone: a sentence that names a speaker is never set
        # aside (relevant_part), one that names only an organization may be ("We booked
        # an Airbnb.").
        self.person_words = {
            word
            for speaker in self.speakers.values()
            for word in speaker_words({"name": speaker["name"]})
        }
        # The interview questions, each with who answered it: the topics the corpus covers.
        self.topics: dict[str, list[Record]] = {
            topic.question: [named.model_dump() for named in topic.speakers]
            for topic in listed.topics
        }
        self.synonyms = Synonyms(index.manifest.synonyms)
        # Each interview question is compared by its own words and by each other way the
        # corpus's curators say people ask it: a question's topic is its nearest view.
        # The views were embedded when the index was built; their interview questions come
        # in the catalog's order, as self.topics's do.
        views = index.layout
        topic_of = {question: i for i, question in enumerate(self.topics)}
        self.view_topic = np.array([topic_of[question] for question, _ in views.topics])
        self.view_vectors = index.views[: len(views.topics)]
        after_answers = len(views.topics) + len(views.answers)
        self.uncovered_names = [name for name, _ in views.uncovered]  # per phrasing
        self.uncovered_topics = list(dict.fromkeys(self.uncovered_names))
        self.uncovered_vectors = index.views[after_answers:] if views.uncovered else None
        # A topic one transcript lists as uncovered another may answer: under the speaker
        # filter, only the topics that speaker's transcripts list are judged.
        # Each speaker's documents, from every answer's record: read only when there are
        # topics to judge (a record is parsed on reading; a large corpus has many).
        documents: dict[str, set[str]] = {}
        for answer in index.answers if index.manifest.uncovered_by else ():
            documents.setdefault(answer["speaker"]["id"], set()).add(answer["source"]["document"])
        self.speaker_topics: dict[str, Listed] = {}
        for person in self.speakers:
            where = documents.get(person, set())
            names = [n for n, by in index.manifest.uncovered_by.items() if set(by) & where]
            self.speaker_topics[person] = Listed(
                tuple(k for k, name in enumerate(self.uncovered_topics) if name in names),
                np.isin(self.uncovered_names, names),
            )
        # Per passage, as arrays: which interview question and which speaker.
        self.passage_topic = index.rows[:, TOPIC]
        self.passage_speaker = index.rows[:, SPEAKER]
        self.answer_topic = np.zeros(len(index.answers), dtype=np.int64)
        self.answer_topic[index.rows[:, ANSWER]] = index.rows[:, TOPIC]
        # What particular answers answer: each such view counts for its answer's passages
        # only, so it can tell apart two speakers' answers to one interview question.
        self.answer_vectors = index.views[len(views.topics) : after_answers]
        phrased = np.array([row for row, _ in views.answers], dtype=np.int64)
        self.phrased, self.answer_view_slot = np.unique(phrased, return_inverse=True)
        self.phrased_passages = np.flatnonzero(np.isin(index.rows[:, ANSWER], self.phrased))
        phrased_rows = index.rows[self.phrased_passages, ANSWER]
        self.phrased_passage_slot = np.searchsorted(self.phrased, phrased_rows)
        # Every phrased answer has passages (load_index checks), so a topic.
        self.phrased_topic = self.answer_topic[self.phrased]
        # Each answer's passages in order through its text (Searcher.shown): the positions
        # of answer a's are by_answer[answer_first[a] : answer_first[a + 1]].
        self.by_answer = np.lexsort((index.rows[:, START], index.rows[:, ANSWER]))
        self.answer_first = np.searchsorted(
            index.rows[self.by_answer, ANSWER], np.arange(len(index.answers) + 1)
        )
        self.window_starts = np.ascontiguousarray(index.rows[self.by_answer, START])
        tier = curation_tiers(index)
        self.mix = self.passage_weights(index, tier, weights)
        self.intents = self.fit_intents(index, tier) if weights.intent else None
        self.lexicon = Lexicon(index.bm25, listed.vocabulary, self.synonyms)

    def passage_weights(
        self, index: LoadedIndex, tier: NDArray[np.int64], weights: Weights
    ) -> NDArray[np.float32]:
        """The weights of the semantic, lexical and topic signals (rows) of each passage
        (columns), by its answer's curation `tier`."""
        w = weights
        table = np.array([w.plain, (w.semantic, w.lexical, w.topic), w.phrased], np.float32)
        # Weight by signal, each a contiguous row over the passages.
        return np.ascontiguousarray(table[tier[index.rows[:, ANSWER]]].T)

    def fit_intents(self, index: LoadedIndex, tier: NDArray[np.int64]) -> Intents | None:
        """The classifier of answers whose transcript is curated whole (tier 2), fitted on
        their interview questions' views and their own phrasings, and of uncovered topics
        on theirs; None when no interview question has two such answers to tell apart."""
        whole = np.flatnonzero(tier == 2)
        if not len(whole) or np.bincount(self.answer_topic[whole]).max() < 2:
            return None
        answers_of: dict[int, list[int]] = {}  # interview question: its answers curated whole
        for answer in whole.tolist():
            answers_of.setdefault(int(self.answer_topic[answer]), []).append(answer)
        vectors: list[Vectors] = []
        labels: list[int] = []
        for vector, topic in zip(self.view_vectors, self.view_topic, strict=True):
            answers = answers_of.get(int(topic), [])
            vectors.extend(vector for _ in answers)
            labels.extend(answers)
        for vector, (row, _) in zip(self.answer_vectors, index.layout.answers, strict=True):
            if tier[row] == 2:
                vectors.append(vector)
                labels.append(row)
        if self.uncovered_vectors is not None:
            number = {name: k for k, name in enumerate(self.uncovered_topics)}
            for vector, name in zip(self.uncovered_vectors, self.uncovered_names, strict=True):
                vectors.append(vector)
                labels.append(-1 - number[name])
        return Intents.fit(np.array(vectors), labels, self.weights.intent_c)

    def resolve_speaker(self, name: str) -> str:
        """A speaker's id from their id or name, in any case."""
        wanted = name.strip().casefold()
        for speaker in self.speakers.values():
            if wanted in (speaker["id"].casefold(), speaker["name"].casefold()):
                return str(speaker["id"])
        known = ", ".join(f"{s['name']} ({s['id']})" for s in self.speakers.values())
        raise UnknownSpeaker(f"unknown speaker {name[:100]!r}; known speakers: {known}")

    def named_speakers(self, question: str) -> tuple[set[str], set[str]]:
        """Speakers a question names (by name or organization, allowing small typos), and
        the question's words that named them."""
        parts = NAME_PART.findall(question.lower())
        candidates = sorted(set(parts) | {a + b for a, b in itertools.pairwise(parts)})
        named: set[str] = set()
        naming: set[str] = set()
        if not (candidates and self.name_words):
            return named, naming
        similar = process.cdist(candidates, self.name_words, scorer=fuzz.ratio, score_cutoff=85)
        for row, column in zip(*np.nonzero(similar), strict=True):
            word, name = candidates[row], self.name_words[column]
            if word == name or len(name) > 4:  # short names must be exact
                named |= self.naming[name]
                naming.add(word)
        return named, naming

    def sentences(self, question: str) -> list[str]:
        """A question's sentences when it has two to JUDGED_SENTENCES (runs of them, as
        many, when it has more), else none: each is embedded alone to tell whether it
        speaks of anything the corpus does (relevant_part)."""
        return [question[start:end] for start, end in judged_spans(question)]

    def relevant_part(self, question: str, given: Mapping[Text, Vectors] | None = None) -> str:
        """The question without its sentences that speak of nothing the corpus does
        (`given`: embeddings of its sentences already made, by text). People who post a
        question online often wrap it in their life ("Long time lurker.", "We just had our
        second baby.", "Sorry for the wall of text."): words the corpus never uses, which
        would lower the question's coverage and blur its embedding until no answer clears
        the threshold. A sentence is set aside when no view (an interview question, a
        phrasing of it or of an answer, an uncovered topic's phrasing) or passage is
        Weights.aside_floor near it and the question's nearest sentence is
        Weights.aside_margin nearer still. Kept whatever their nearness: a sentence that
        asks ("?"), the one before a short one that asks ("TC is 210k. Is that good?"),
        and one that names a speaker by name (spelt right; an organization alone does not
        count). What is kept keeps its layout (a title line stays a line of its own). A
        question of more than JUDGED_SENTENCES sentences is judged in runs of them alike
        (judged_spans): a run that holds a sentence that asks is kept, and so is the run
        before one that opens with a short ask."""
        spans = judged_spans(question)
        if not spans:
            return question
        sentences = [question[start:end] for start, end in spans]
        vectors = self.vectors_of(sentences, given)
        matrix = np.vstack([vectors[sentence] for sentence in sentences])
        near = (matrix @ self.index.views.T).max(axis=1, initial=-1.0)
        scores, ids = self.index.vectors.search(matrix, 1)
        near = np.maximum(near, np.where(ids[:, 0] >= 0, scores[:, 0], -1.0))
        floor = min(self.weights.aside_floor, float(near.max()) - self.weights.aside_margin)
        asking = [asks(sentence) for sentence in sentences]
        kept = [
            number
            for number, sentence in enumerate(sentences)
            if near[number] >= floor
            or asking[number]
            or (number + 1 < len(sentences) and opens_with_short_ask(sentences[number + 1]))
            or not self.person_words.isdisjoint(NAME_PART.findall(sentence.lower()))
        ]
        if len(kept) == len(sentences):
            return question
        # Each kept sentence after the first with what came just before it (a space, a
        # line break).
        pieces = [sentences[kept[0]]]
        for number in kept[1:]:
            pieces.append(question[spans[number - 1][1] : spans[number][0]] + sentences[number])
        return "".join(pieces)

    def lift(self, relevant: str) -> float:
        """Weights.long_lift in the measure that a question (its relevant part) is long,
        by its words (not its dashes or emoji)."""
        shortest, longest = self.weights.long_words
        words = len(WORD.findall(relevant))
        if longest <= shortest:  # a step
            return self.weights.long_lift if words >= longest else 0.0
        return self.weights.long_lift * min(max((words - shortest) / (longest - shortest), 0), 1)

    def query_texts(self, question: str) -> QueryTexts:
        """What the model embeds to answer a text: ask embeds those of a question's
        relevant_part."""
        repaired = self.lexicon.repair(question)
        return self.texts_of(repaired, self.named_speakers(repaired)[1])

    def texts_of(self, repaired: str, naming: set[str]) -> QueryTexts:
        """query_texts, from the repaired question and the words that name someone. The
        model ranks "how much do engineers at Airbnb earn" near any question naming
        Airbnb, so whether a question is about an uncovered topic is judged without them."""
        unnamed = None
        if self.uncovered_vectors is not None and naming:
            kept = [
                w for w in repaired.split() if "".join(NAME_PART.findall(w.lower())) not in naming
            ]
            unnamed = self.synonyms.expand(" ".join(kept))
        whole = self.synonyms.expand(repaired)
        asking = asking_spans(whole)
        return QueryTexts(whole, unnamed, Within(whole, asking) if asking else None)

    def vectors_of(
        self, wanted: Sequence[Text], given: Mapping[Text, Vectors] | None
    ) -> dict[Text, Vectors]:
        """Each of the texts' embeddings (one row each): from `given`, or made now."""
        found = {text: given[text] for text in wanted if given and text in given}
        missing = [text for text in wanted if text not in found]
        if missing:
            made = self.embedder.embed(missing)
            found.update((text, made[row : row + 1]) for row, text in enumerate(missing))
        return found

    def topical(self, query: Vectors) -> Vectors:
        """Per interview question, its nearest view (itself or a phrasing) to the query."""
        topical = np.full(len(self.topics), -1.0, dtype=np.float32)
        np.maximum.at(topical, self.view_topic, self.view_vectors @ query[0])
        return topical

    def answer_near(self, query: Vectors) -> Vectors:
        """Per answer with phrasings (in self.phrased's order), its nearest to the query."""
        near = np.full(len(self.phrased), -1.0, dtype=np.float32)
        np.maximum.at(near, self.answer_view_slot, self.answer_vectors @ query[0])
        return near

    def covered(self, topical: Vectors, near: Vectors) -> Vectors:
        """Per interview question, the nearest of its views and its answers' phrasings."""
        covered = topical.copy()
        np.maximum.at(covered, self.phrased_topic, near)
        return covered

    def ask(
        self,
        question: str,
        top_k: int = 3,
        speaker: str | None = None,
        embedded: Mapping[Text, Vectors] | None = None,
        relevant: str | None = None,
    ) -> Result:
        """The best answers to a question. `embedded`: embeddings of its sentences
        and query_texts already made (by text, one row each); the others are made here.
        `relevant`: its relevant_part, when already found."""
        only = self.resolve_speaker(speaker) if speaker else None
        if relevant is None:
            relevant = self.relevant_part(question, embedded)
        repaired = self.lexicon.repair(relevant)
        named, naming = self.named_speakers(repaired)
        texts = self.texts_of(repaired, naming)
        vectors = self.vectors_of(texts.distinct(), embedded)
        query = vectors[texts.whole]
        topical, near = self.topical(query), self.answer_near(query)
        covered = self.covered(topical, near)
        # Judged without the words that name someone, when there are such words.
        judged, judged_covered = query, covered
        if texts.unnamed is not None:
            judged = vectors[texts.unnamed]
            judged_covered = self.covered(self.topical(judged), self.answer_near(judged))
        # Under the speaker filter only the topics that speaker's transcripts list count:
        # another transcript's topic may be what that speaker answers.
        listed = self.speaker_topics[only] if only is not None else None
        uncovered = self.uncovered_topic(judged, judged_covered, listed)
        if uncovered is not None:
            return Result(question, [], self.suggest(covered), uncovered)
        # Who is named steers the choice of speaker, not the word matching.
        terms = self.lexicon.terms(repaired, ignore=naming)
        rows = self.speaker_row
        scoring = ScoringInput(
            terms=terms,
            lexical=self.lexicon.scores(terms),
            confidence=self.lexicon.coverage(terms) ** self.weights.coverage,
            lift=self.lift(relevant),
            by_named=np.isin(self.passage_speaker, [rows[s] for s in named]) if named else None,
            by_only=self.passage_speaker == rows[only] if only else None,
            top_k=top_k,
        )
        hits: list[Hit] = []
        if texts.asking is not None:
            # Ranked by what it asks; when nothing clears the threshold that way, by the
            # whole question, whose situation may be what the corpus speaks to.
            share = self.weights.asking_share
            focused = (1 - share) * query + share * vectors[texts.asking]
            focused /= np.linalg.norm(focused)
            hits = self.best(focused, self.topical(focused), self.answer_near(focused), scoring)
        hits = hits or self.best(query, topical, near, scoring)
        return Result(question, hits, [] if hits else self.suggest(covered))

    def best(
        self, query: Vectors, topical: Vectors, near: Vectors, scoring: ScoringInput
    ) -> list[Hit]:
        """The answers whose best passage scores highest for the query (`topical` and
        `near` being its nearest views, as made by those methods), best first: at most
        scoring.top_k, none under the threshold."""
        # The nearest passages by meaning; the others count as unrelated, except those of
        # a speaker the question names or the filter picks, which are all compared.
        count = len(self.index.rows)
        semantic = np.zeros(count, dtype=np.float32)
        scores, ids = search_vectors(self.index.vectors, query, CANDIDATES)
        semantic[ids] = scores
        by_named, by_only = scoring.by_named, scoring.by_only
        wanted = by_only if by_only is not None else by_named
        if wanted is not None and count > CANDIDATES:
            picked = np.flatnonzero(wanted)
            semantic[picked] = self.index.vectors.reconstruct_batch(picked) @ query[0]
        semantic = np.clip(semantic, 0.0, 1.0)
        # A passage's topic: the nearest view of its interview question or of its answer.
        topic = topical[self.passage_topic]
        phrased = self.phrased_passages
        topic[phrased] = np.maximum(topic[phrased], near[self.phrased_passage_slot])
        topic = np.clip(topic, 0.0, 1.0)
        mix = self.mix
        score = semantic * mix[0] + scoring.lexical * mix[1] + topic * mix[2]
        # The classifier chooses between speakers' answers; a question that names a
        # speaker, or the speaker filter, has chosen already.
        if self.intents is not None and by_named is None and by_only is None:
            shortfall = self.intents.shortfall(query, self.answer_topic)
            score -= self.weights.intent * shortfall[self.index.rows[:, ANSWER]]
            # Not below 0, where a threshold of 0 would drop it (nor -0.0 after scaling).
            np.maximum(score, 0.0, out=score)
        score *= scoring.confidence
        if by_named is not None:
            score[~by_named] *= 1 - self.weights.other_speaker
        if scoring.lift:
            score += scoring.lift * score * (1 - score)  # scores stay in [0, 1]
        if by_only is not None:
            score[~by_only] = -1.0
        hits: list[Hit] = []
        seen: set[tuple[int, int]] = set()
        # Best passages first; the first of each answer is its best, and of each interview
        # question and speaker (one person asked alike in two interviews). Stop at top_k.
        for position in best_first(score):
            if score[position] < max(self.min_score, 0.0) or len(hits) == scoring.top_k:
                break
            answer, topic, speaker = self.index.rows[position, [ANSWER, TOPIC, SPEAKER]].tolist()
            if (topic, speaker) in seen:
                continue
            seen.add((topic, speaker))
            record = self.index.answers[answer]
            passage = self.shown(int(position), query, scoring.lexical, record["text"])
            hits.append(
                Hit(
                    answer=record,
                    passage=passage,
                    score=float(np.clip(score[position], 0.0, 1.0)),
                    semantic=float(semantic[position]),
                    lexical=float(scoring.lexical[position]),
                    matched_terms=self.lexicon.matched(
                        scoring.terms, lexicon_text(passage["question"], passage["text"])
                    ),
                )
            )
        return hits

    def shown(
        self, position: int, query: Vectors, lexical: NDArray[np.float64], text: str
    ) -> PassageRecord:
        """The passage at `position` as shown: grown (see `grown`) into the windows beside
        it that match the query nearly as well. A window of a few sentences often stops
        short of the thought that matched, and its neighbours carry the rest. `lexical`:
        every passage's word matching; `text`: the passage's answer."""
        rows = self.index.rows
        answer = rows[position, ANSWER]
        low, high = self.answer_first[answer], self.answer_first[answer + 1]
        # Only the windows it could grow into (a long answer has thousands): those that
        # start and end within reach, found by the starts' order.
        start, stop = rows[position, START], rows[position, END]
        reach = SHOWN_GROWTH * (stop - start)
        answer_starts = self.window_starts[low:high]
        near = slice(
            low + np.searchsorted(answer_starts, stop - reach),
            low + np.searchsorted(answer_starts, start + reach, side="right"),
        )
        order = self.by_answer[near]
        starts, ends = rows[order, START], rows[order, END]
        kept = ends <= start + reach
        order, starts, ends = order[kept], starts[kept], ends[kept]
        # Within one answer the topic, coverage and speaker factors are alike: its windows
        # differ in meaning and words only. Each is compared exactly (not only those among
        # the nearest candidates), as the weighted mean of the two, so that the margin
        # means the same whatever weights the transcript's curation gives.
        weight = self.mix[:2, order]
        semantic = np.clip(self.index.vectors.reconstruct_batch(order) @ query[0], 0.0, 1.0)
        total = weight.sum(axis=0)
        match = (weight[0] * semantic + weight[1] * lexical[order]) / np.where(total, total, 1)
        # Alike windows tie whatever their place in the product (the last bits differ).
        match = np.round(match, 6)
        first, last = grown(starts, ends, match, int(np.flatnonzero(order == position)[0]))
        passage = self.index.passages[position]
        if first == last:
            return passage
        start, end = int(starts[first]), int(ends[last])
        lines = [
            self.index.passages[int(order[first])]["source"]["lines"][0],
            self.index.passages[int(order[last])]["source"]["lines"][1],
        ]
        source: SourceRecord = {**passage["source"], "lines": lines}
        return {**passage, "text": text[start:end], "span": [start, end], "source": source}

    def uncovered_topic(
        self, query: Vectors, covered: Vectors, listed: Listed | None = None
    ) -> str | None:
        """The uncovered topic a question is about, if any: the one it is nearer to than
        to anything covered (`covered`, for the same query); else, at the same floor, the
        one the classifier of answers finds likeliest, when it finds the uncovered topics
        together at least Weights.uncovered_share likely. `listed`: only these topics
        (all when None)."""
        if self.uncovered_vectors is None or (listed is not None and not listed.topics):
            return None
        near = self.uncovered_vectors @ query[0]
        if listed is not None:
            near = np.where(listed.phrasings, near, -np.inf)
        best = int(np.argmax(near))
        margin, floor = self.weights.uncovered_margin, self.weights.uncovered_floor
        if near[best] >= max(floor, float(covered.max()) + margin):
            return self.uncovered_names[best]
        if self.intents is None or near[best] < floor:
            return None
        allowed = listed.topics if listed is not None else None
        share, likeliest = self.intents.uncovered(query, allowed)
        if share < self.weights.uncovered_share or not self.taught_nearest(query):
            return None
        return self.uncovered_topics[likeliest]

    def taught_nearest(self, query: Vectors) -> bool:
        """Whether the passage nearest the query is of an answer the classifier of answers
        was taught: of the others (a transcript without whole curation) it knows nothing,
        and would take a question about them for the nearest of what it knows."""
        assert self.intents is not None
        _, ids = search_vectors(self.index.vectors, query, 1)
        return bool(np.isin(self.index.rows[ids, ANSWER], self.intents.classes).all())

    def suggest(self, covered: Vectors, count: int = 3) -> list[str]:
        """The interview questions closest to the question, for a person to pick from."""
        questions = list(self.topics)
        return [questions[i] for i in np.argsort(-covered)[:count]]
