"""Answer a question from the index: rank passages, keep the best one per answer."""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from careerbot import CareerbotError
from careerbot.embedding import Embedder
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
    def __init__(self, index: LoadedIndex, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder
        answers = index.answers.values()
        counts = Counter(answer["speaker"]["id"] for answer in answers)
        self.speakers: dict[str, Record] = {
            a["speaker"]["id"]: {**a["speaker"], "answers": counts[a["speaker"]["id"]]}
            for a in answers
        }

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
        return Result(question, hits[:top_k])
