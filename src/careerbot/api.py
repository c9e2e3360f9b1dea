"""The HTTP service: `create_app(settings)` serves /ask, the side routes and the widget."""

import asyncio
import copy
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from careerbot import CareerbotError, __version__
from careerbot.admin import admin_router
from careerbot.config import Settings
from careerbot.embedding import BatchingEmbedder, Embedder, Text, Vectors, load_embedder
from careerbot.errors import (
    ERRORS,
    MAX_BODY_BYTES,
    QUESTION_PATTERN,
    BodyLimit,
    ErrorField,
    describe,
    error_response,
    unavailable,
    valid_unicode,
)
from careerbot.feedback import FEEDBACK_SHAPES
from careerbot.feedback import router as feedback_router
from careerbot.guard import Busy, SecurityHeaders, Slots, Throttle
from careerbot.pages import router as pages_router
from careerbot.questionlog import Ask, QuestionLog
from careerbot.reload import IndexWatch, Refusal
from careerbot.search import Hit, Searcher, UnknownSpeaker
from careerbot.store import connect
from careerbot.version import DamagedIndex, LoadedIndex, current_version, load_newest

log = logging.getLogger("careerbot")
MAX_QUESTION_CHARS = 1000


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
        value = valid_unicode(value).strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MAX_QUESTION_CHARS:
            raise ValueError(f"must be at most {MAX_QUESTION_CHARS} characters, not {len(value)}")
        return value

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


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="degraded: serving other than what CURRENT names, or a start-up problem."
    )
    version: str
    index_version: str = Field(description="The index version being served.")
    pointer_checked_seconds_ago: float | None = Field(
        description="Since the server last read CURRENT; null when it does not watch it."
    )
    refused_version: str | None = Field(description="The newest version refused, if any.")
    refused_reason: str | None
    warnings: list[str] = Field(description="Start-up problems, such as a failed rebuild.")
    question_log: "LogStats"
    model: str
    dimension: int
    documents: int
    speakers: int
    answers: int
    passages: int
    built_at: str


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


def current_version_name(index_dir: Path) -> str | None:
    try:
        version = current_version(index_dir)
    except CareerbotError:
        return None
    return version.name if version else None


class LogStats(BaseModel):
    mode: str = Field(description="full, redacted or off.")
    written: int = Field(description="Records written since start.")
    dropped: int = Field(description="Records dropped because the queue was full.")
    failed: int = Field(description="Records the database refused (see the log).")


Health.model_rebuild()

# The fields a body may have, per route, by shape: a route taking one of several shapes
# has errors located under the shape's tag ("vote"), which a client never sees.
BODY_FIELDS = {
    "/ask": {"": list(AskRequest.model_fields)},
    "/feedback": FEEDBACK_SHAPES,
}
# FastAPI's words for a body its JSON reader gives up on, and ours (a body that is not
# UTF-8 never reaches it: errors.BodyLimit refuses it first).
UNREADABLE = {
    "There was an error parsing the body": (
        "the body cannot be read as JSON text (nested too deep, or a number too long)"
    )
}


def open_log(settings: Settings) -> tuple[Engine | None, str | None]:
    """The question log's database, or why it cannot be opened: answers do not wait on it."""
    if settings.question_log == "off":
        return None, None
    try:
        return connect(settings.database), None
    except CareerbotError as error:
        log.warning("%s; answering without a question log", error)
        return None, f"{error}; answering without a question log"


async def embed_all(
    model: BatchingEmbedder, texts: Sequence[Text], passing: Sequence[Text] = ()
) -> dict[Text, Vectors]:
    """The embeddings of texts and passing ones (cached apart: BatchingEmbedder.submit_all),
    by text, from the encoder thread (batched with others)."""
    futures = map(asyncio.wrap_future, model.submit_all(texts, passing))
    return dict(zip([*texts, *passing], await asyncio.gather(*futures), strict=True))


def create_app(
    settings: Settings,
    embedder: Embedder | None = None,
    warnings: Sequence[str] = (),
    index: LoadedIndex | None = None,
) -> FastAPI:
    """The careerbot service; the model and the index (unless given) load once, when it
    starts. `warnings` are start-up problems for /health to report."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model = BatchingEmbedder(embedder or load_embedder(settings))
        app.state.model = model
        served, problems = (index, []) if index else load_newest(settings.index_dir, model)
        for problem in problems:
            log.warning("%s", problem)
        watch = IndexWatch(
            Searcher(served, model, settings.min_score),
            settings.index_dir,
            model,
            settings.min_score,
        )
        pointed = current_version_name(settings.index_dir)
        if problems and pointed != served.version:
            # CURRENT's version was refused: say so (the watcher retries it later)
            watch.refused = Refusal(pointed or "CURRENT", problems[0])
        elif index is not None and pointed != served.version:
            # Loaded before the app started: CURRENT was refused then, or (in a worker
            # forked later to replace one) has moved on since. Look now, not in a while.
            await watch.check()
        app.state.watch = watch
        engine, unavailable = open_log(settings)
        app.state.engine = engine  # for /admin/report; None when the log is off
        questions = QuestionLog(
            engine, settings.question_log, settings.log_retention_days, problem=unavailable
        )
        questions.start()
        app.state.questions = questions
        watcher = None
        if settings.reload_seconds > 0:
            watcher = asyncio.create_task(watch.run(settings.reload_seconds))
        yield
        if watcher:
            watcher.cancel()
        questions.stop()
        if engine is not None:
            engine.dispose()

    app = FastAPI(
        title="careerbot",
        version=__version__,
        description="Career answers in the words of real practitioners, with attribution.",
        lifespan=lifespan,
    )
    app.state.slots = Slots(settings.max_in_progress)
    # The last added runs first: the client's address, then headers and CORS see every
    # response, limits come next.
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(
        Throttle, per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origin_list,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type"],
    )
    app.add_middleware(SecurityHeaders, allowed_origins=settings.cors_origin_list)
    if settings.trusted_proxy_list:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)

    base_schema: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        """The schema, with the speakers of the index being served as the allowed values."""
        if not base_schema:
            base_schema.update(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        schema = copy.deepcopy(base_schema)
        watch = getattr(app.state, "watch", None)
        if watch is not None:
            speakers = watch.searcher.speakers.values()
            names = sorted({n for s in speakers for n in (s["id"], s["name"])})
            speaker = schema["components"]["schemas"]["AskRequest"]["properties"]["speaker"]
            speaker["anyOf"] = [{"type": "string", "enum": names}, {"type": "null"}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        shapes = BODY_FIELDS.get(request.url.path, {})
        fields = []
        for each in error.errors():
            where = [part for part in each["loc"] if part != "body"]
            shape = where[0] if where and where[0] in shapes else ""
            located = {**each, "loc": tuple(where[1:] if shape else where)}
            fields.append(describe(located, shapes.get(shape, [])))
        detail = "; ".join(f"{f.field}: {f.message}" for f in fields)
        return error_response(422, detail, fields)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        """Starlette's own refusals (no such route or method, a body it cannot parse) in
        the shape of every other error."""
        detail = str(error.detail)
        detail = UNREADABLE.get(detail, detail)
        fields = [ErrorField(field="body", message=detail)] if error.status_code == 400 else []
        response = error_response(error.status_code, detail, fields)
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(UnknownSpeaker)
    async def unknown_speaker(request: Request, error: UnknownSpeaker) -> Response:
        message = str(error).encode("utf-8", "replace").decode()
        return error_response(422, message, [ErrorField(field="speaker", message=message)])

    @app.exception_handler(Busy)
    async def busy(request: Request, error: Busy) -> Response:
        return unavailable("careerbot is busy; try again in a moment")

    said: set[str] = set()

    @app.exception_handler(DamagedIndex)
    async def damaged(request: Request, error: DamagedIndex) -> Response:
        # A record is checked only when a search returns it (parsing them all would make
        # loading the size of the corpus): the operator gets the line, once; the client
        # no path, and a retry for when a good version is published.
        if str(error) not in said and len(said) < 100:
            said.add(str(error))
            log.error("%s", error)
        return unavailable("the index being served is damaged; try again later", 30)

    def searcher(request: Request) -> Searcher:
        found: Searcher = request.app.state.watch.searcher
        return found

    @app.post("/ask", response_model=AskResponse, responses=ERRORS)
    async def ask(body: AskRequest, request: Request) -> AskResponse:
        """Answer a career question with the closest attributed answers from the interviews."""
        started = time.perf_counter()
        chosen = searcher(request)
        if body.speaker:
            chosen.resolve_speaker(body.speaker)  # an unknown speaker: 422 before encoding
        # The encoder thread embeds the question (batched with others); the event loop
        # only waits for it. Scoring the passages takes well under a millisecond. Only a
        # complete, valid question takes one of the slots.
        with request.app.state.slots.take():
            model: BatchingEmbedder = request.app.state.model
            # The question as the model sees it and the other texts it needs (without the
            # words that name a speaker; its asking sentences), embedded together with
            # its sentences, each alone, to set aside those that speak of nothing the
            # corpus does. Only when some are set aside does what is left take a second
            # pass of the model.
            whole = chosen.query_texts(body.question).distinct()
            vectors = await embed_all(model, whole, chosen.sentences(body.question))
            relevant = chosen.relevant_part(body.question, vectors)
            if relevant != body.question:
                texts = chosen.query_texts(relevant).distinct()
                vectors |= await embed_all(model, [text for text in texts if text not in vectors])
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

    @app.get("/health", response_model=Health)
    async def health(request: Request) -> Health:
        """Service status, the index version served and any refused, and the index's figures."""
        watch: IndexWatch = request.app.state.watch
        questions: QuestionLog = request.app.state.questions
        index, refused = watch.searcher.index, watch.refused
        manifest = index.manifest
        checked = None if watch.checked_at is None else time.time() - watch.checked_at
        stuck = watch.overdue(settings.reload_seconds) if settings.reload_seconds else None
        problems = [*warnings, *(p for p in (stuck, questions.problem) if p)]
        return Health(
            status="degraded" if refused or problems else "ok",
            version=__version__,
            index_version=index.version,
            pointer_checked_seconds_ago=None if checked is None else round(checked, 1),
            refused_version=refused.version if refused else None,
            refused_reason=refused.reason if refused else None,
            warnings=problems,
            question_log=LogStats(
                mode=settings.question_log,
                written=questions.written,
                dropped=questions.dropped,
                failed=questions.failed,
            ),
            model=manifest.model,
            dimension=manifest.dimension,
            documents=len(manifest.documents),
            speakers=manifest.speakers,
            answers=manifest.answers,
            passages=manifest.passages,
            built_at=manifest.built_at,
        )

    app.include_router(feedback_router)
    app.include_router(pages_router)
    if settings.admin_token.get_secret_value():  # no token: no admin route at all
        token = settings.admin_token.get_secret_value()
        corpus, max_bytes = settings.corpus_dir, settings.max_transcript_bytes
        app.include_router(admin_router(token, corpus, max_bytes))

    @app.get("/speakers", response_model=list[SpeakerInfo])
    async def speakers(request: Request) -> list[SpeakerInfo]:
        """Everyone who answers in the interviews, with how many answers each gave."""
        return [SpeakerInfo(**s) for s in searcher(request).speakers.values()]

    @app.get("/topics", response_model=list[Topic])
    async def topics(request: Request) -> list[Topic]:
        """The interview questions the corpus covers, with who answered each."""
        return [
            Topic(question=question, speakers=[SpeakerRef(**s) for s in people])
            for question, people in searcher(request).topics.items()
        ]

    return app
