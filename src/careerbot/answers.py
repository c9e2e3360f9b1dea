"""POST /ask and the routes that say what it draws on (GET /speakers, GET /topics)."""

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from careerbot.embedding import BatchingEmbedder, Text, Vectors
from careerbot.errors import ERRORS
from careerbot.questionlog import Ask
from careerbot.rules import MAX_QUESTION_CHARS, QUESTION_PATTERN, question_text, valid_unicode
from careerbot.search import Hit, Searcher


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    question: str = Field(
        description="A career question in plain words.",
        json_schema_extra={
            "minLength": 1,
            "maxLength": MAX_QUESTION_CHARS,
            "pattern": QUESTION_PATTERN,
        },
        examples=["How do I move from data science to ML engineering?"],
    )
    top_k: int = Field(default=3, ge=1, le=10, description="The most answers to return.")
    speaker: str | None = Field(
        default=None, max_length=200, description="Only answers by this speaker (id or name)."
    )

    @field_validator("question")
    @classmethod
    def trimmed_question(cls, value: str) -> str:
        return question_text(value)

    @field_validator("speaker")
    @classmethod
    def valid_speaker(cls, value: str | None) -> str | None:
        return None if value is None else valid_unicode(value)


class SpeakerOut(BaseModel):
    id: str
    name: str
    role: str


class Why(BaseModel):
    semantic: float = Field(description="Meaning similarity of question and passage, 0-1.")
    lexical: float = Field(description="Word overlap of question and passage, 0-1.")
    matched_terms: list[str] = Field(description="Question words found in the answer.")


class Source(BaseModel):
    document: str = Field(description="The transcript file the answer is in.")
    lines: list[int] = Field(description="First and last line of the answer in the document.")
    title: str | None = Field(
        default=None, description="The interview's title, when its metadata gives one."
    )
    date: str | None = Field(
        default=None,
        description="The interview's date as YYYY-MM-DD, when its metadata gives one.",
        examples=["2019-01-15"],
    )
    url: str | None = Field(
        default=None,
        description="An absolute http(s) address of the interview, when its metadata gives one.",
    )


class AnswerOut(BaseModel):
    id: str
    speaker: SpeakerOut
    question: str = Field(description="The interview question this answer replied to.")
    text: str = Field(description="The speaker's whole answer, verbatim.")
    passage: str = Field(description="The best-matching part of text, verbatim.")
    score: float = Field(ge=0, le=1, description="Confidence, 0-1, comparable across questions.")
    why: Why
    source: Source


class AskResponse(BaseModel):
    id: str = Field(description="This question's log record, for POST /feedback.")
    question: str
    answered: bool
    answers: list[AnswerOut]
    suggestions: list[str] = Field(description="Interview questions to try when unanswered.")
    uncovered: str | None = Field(
        default=None, description="The topic the interviews do not cover that it looked like."
    )


class SpeakerInfo(SpeakerOut):
    answers: int


class SpeakerRef(BaseModel):
    id: str
    name: str


class Topic(BaseModel):
    question: str
    speakers: list[SpeakerRef]


def answer_out(hit: Hit) -> AnswerOut:
    answer, passage = hit.answer, hit.passage
    return AnswerOut(
        id=answer["id"],
        speaker=SpeakerOut(**{key: answer["speaker"][key] for key in ("id", "name", "role")}),
        question=answer["question"],
        text=answer["text"],
        passage=passage["text"],
        score=round(hit.score, 4),
        why=Why(
            semantic=round(hit.semantic, 4),
            lexical=round(hit.lexical, 4),
            matched_terms=hit.matched_terms,
        ),
        source=Source(**answer["source"]),
    )


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


async def gone(request: Request) -> None:
    """Returns once the client has disconnected (the body is read: what comes next is
    the disconnect, or nothing until the response is sent)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def embed_all(
    request: Request, model: BatchingEmbedder, texts: Sequence[Text], passing: Sequence[Text] = ()
) -> dict[Text, Vectors]:
    """The embeddings of texts and passing ones (cached apart: BatchingEmbedder.submit_all),
    by text, from the encoder thread (batched with others). Raises ClientGone, the texts'
    place in the queue given up, if the client leaves first: a client that asks and
    hangs up at once would otherwise keep its slot and the model's time."""
    futures = [asyncio.wrap_future(f) for f in model.submit_all(texts, passing)]
    vectors = asyncio.gather(*futures)
    leaving = asyncio.create_task(gone(request))
    try:
        waited: list[asyncio.Future[Any]] = [vectors, leaving]
        await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when this request is cancelled (the server stopping)
        leaving.cancel()
        ready = vectors.done()
        if not ready:
            vectors.cancel()  # a text not yet in a batch stays out of it
            vectors.add_done_callback(read_outcome)
    if not ready:
        if not leaving.cancelled():
            leaving.result()  # the watch failed, rather than the client leaving: say so
        raise ClientGone
    return dict(zip([*texts, *passing], vectors.result(), strict=True))


def read_outcome(given_up: "asyncio.Future[Any]") -> None:
    """Reads the outcome of a gather given up on (a cancelled gather ends with a
    CancelledError as its exception), which asyncio would otherwise log as never
    retrieved."""
    if not given_up.cancelled():
        given_up.exception()


def searcher(request: Request) -> Searcher:
    """The searcher of the index being served now (the watcher swaps it on a reload)."""
    found: Searcher = request.app.state.watch.searcher
    return found


router = APIRouter()


@router.post("/ask", response_model=AskResponse, responses=ERRORS)
async def ask(body: AskRequest, request: Request) -> AskResponse:
    """Answer a career question with the closest attributed answers from the interviews."""
    started = time.perf_counter()
    chosen = searcher(request)
    if body.speaker:
        chosen.resolve_speaker(body.speaker)  # an unknown speaker: 422 before encoding
    # The encoder thread embeds the question (batched with others); the event loop only
    # waits for it. Scoring the passages takes well under a millisecond. Only a complete,
    # valid question takes one of the slots.
    with request.app.state.slots.take():
        model: BatchingEmbedder = request.app.state.model
        # The question as the model sees it and the other texts it needs (without the
        # words that name a speaker; its asking sentences), embedded together with its
        # sentences, each alone, to set aside those that speak of nothing the corpus
        # does. Only when some are set aside does what is left take a second pass of
        # the model.
        whole = chosen.query_texts(body.question).distinct()
        vectors = await embed_all(request, model, whole, chosen.sentences(body.question))
        relevant = chosen.relevant_part(body.question, vectors)
        if relevant != body.question:
            texts = chosen.query_texts(relevant).distinct()
            missing = [text for text in texts if text not in vectors]
            if missing:
                vectors |= await embed_all(request, model, missing)
        result = chosen.ask(
            body.question, body.top_k, body.speaker, embedded=vectors, relevant=relevant
        )
    response = AskResponse(
        id=uuid.uuid4().hex,
        question=result.question,
        answered=result.answered,
        answers=[answer_out(hit) for hit in result.answers],
        suggestions=result.suggestions,
        uncovered=result.uncovered,
    )
    request.app.state.questions.ask(
        Ask(
            id=response.id,
            asked_at=datetime.now(UTC),
            question=body.question,
            answered=response.answered,
            uncovered=response.uncovered,
            answers=tuple((a.id, a.score) for a in response.answers),
            suggestions=tuple(response.suggestions),
            index_version=chosen.index.version,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
        )
    )
    return response


@router.get("/speakers", response_model=list[SpeakerInfo])
async def speakers(request: Request) -> list[SpeakerInfo]:
    """Everyone who answers in the interviews, with how many answers each gave."""
    return [SpeakerInfo(**s) for s in searcher(request).speakers.values()]


@router.get("/topics", response_model=list[Topic])
async def topics(request: Request) -> list[Topic]:
    """The interview questions the corpus covers, with who answered each."""
    return [
        Topic(question=question, speakers=[SpeakerRef(**s) for s in people])
        for question, people in searcher(request).topics.items()
    ]
