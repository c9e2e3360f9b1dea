"""Answer a question from the index: rank passages, keep the best one per answer."""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from careerbot import CareerbotError
from careerbot.embedding import Embedder, Vectors
from careerbot.index import LoadedIndex, Record, search_vectors


class UnknownSpeaker(CareerbotError):
    pass


@dataclass(frozen=True)
class Hit:
    """One answer picked for a question, with the passage that carried the match."""

    answer: Record
    passage: Record
    score: float
    semantic: float


@dataclass(frozen=True)
class Result:
    question: str
    answers: list[Hit]
    suggestions: list[str] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        return bool(self.answers)


class Searcher:
    def __init__(self, index: LoadedIndex, embedder: Embedder, min_score: float = 0.0) -> None:
        self.index = index
        self.embedder = embedder
        self.min_score = min_score
        answers = index.answers.values()
        counts = Counter(answer["speaker"]["id"] for answer in answers)
        self.speakers: dict[str, Record] = {
            a["speaker"]["id"]: {**a["speaker"], "answers": counts[a["speaker"]["id"]]}
            for a in answers
        }
        # The interview questions, each with who answered it: the topics the corpus covers.
        self.topics: dict[str, list[Record]] = {}
        for answer in answers:
            speaker = {key: answer["speaker"][key] for key in ("id", "name")}
            self.topics.setdefault(answer["question"], []).append(speaker)
        self.topic_vectors = embedder.embed(list(self.topics))

    def resolve_speaker(self, name: str) -> str:
        """A speaker's id from their id or name, in any case."""
        wanted = name.strip().casefold()
        for speaker in self.speakers.values():
            if wanted in (speaker["id"].casefold(), speaker["name"].casefold()):
                return str(speaker["id"])
        known = ", ".join(f"{s['name']} ({s['id']})" for s in self.speakers.values())
        raise UnknownSpeaker(f"unknown speaker {name[:100]!r}; known speakers: {known}")

    def ask(self, question: str, top_k: int = 3, speaker: str | None = None) -> Result:
        speaker_id = self.resolve_speaker(speaker) if speaker else None
        query = self.embedder.embed([question])
        scores, ids = search_vectors(self.index.vectors, query, self.index.vectors.ntotal)
        best: dict[str, Hit] = {}
        for score, position in zip(scores, ids, strict=True):
            passage = self.index.passages[position]
            if speaker_id and passage["speaker"]["id"] != speaker_id:
                continue
            if passage["answer_id"] not in best:
                semantic = float(np.clip(score, 0.0, 1.0))
                answer = self.index.answers[passage["answer_id"]]
                best[passage["answer_id"]] = Hit(answer, passage, semantic, semantic)
        hits = sorted(best.values(), key=lambda hit: -hit.score)
        hits = [hit for hit in hits if hit.score >= self.min_score][:top_k]
        return Result(question, hits, [] if hits else self.suggest(query))

    def suggest(self, query: Vectors, count: int = 3) -> list[str]:
        """The interview questions closest to the query, for a person to pick from."""
        order = np.argsort(-(self.topic_vectors @ query[0]))[:count]
        questions = list(self.topics)
        return [questions[i] for i in order]
