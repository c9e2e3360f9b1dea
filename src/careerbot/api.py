"""The HTTP service: `create_app(settings)` serves /ask, the side routes and the widget."""

import asyncio
import copy
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy.engine import Engine
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from careerbot import CareerbotError, __version__
from careerbot.admin import admin_router
from careerbot.answers import router as answers_router
from careerbot.config import Settings
from careerbot.embedding import BatchingEmbedder, Embedder, load_embedder, server_encoder
from careerbot.errors import MAX_BODY_BYTES, BodyLimit
from careerbot.feedback import router as feedback_router
from careerbot.guard import Cors, SecurityHeaders, Slots, Throttle
from careerbot.handlers import add_error_handlers
from careerbot.health import health_router
from careerbot.pages import router as pages_router
from careerbot.questionlog import QuestionLog
from careerbot.reload import IndexWatch, Refusal
from careerbot.search import Searcher
from careerbot.store import connect
from careerbot.version import LoadedIndex, Newest, current_version, load_newest

log = logging.getLogger("careerbot")


def current_version_name(index_dir: Path) -> str | None:
    try:
        version = current_version(index_dir)
    except CareerbotError:
        return None
    return version.name if version else None


def open_log(settings: Settings) -> tuple[Engine | None, str | None]:
    """The question log's database, or why it cannot be opened: answers do not wait on it."""
    if settings.question_log == "off":
        return None, None
    try:
        return connect(settings.database), None
    except CareerbotError as error:
        log.warning("%s; answering without a question log", error)
        return None, f"{error}; answering without a question log"


def lifespan(
    settings: Settings, embedder: Embedder | None, index: LoadedIndex | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """What the app does at start (load the model, the index and the question log, watch
    CURRENT) and at shutdown (write out the queued records)."""

    @asynccontextmanager
    async def serving(app: FastAPI) -> AsyncIterator[None]:
        model = server_encoder(embedder or load_embedder(settings), settings)
        try:
            async with running(app, model):
                yield
        finally:  # also when start-up fails: its thread would wait for ever
            model.close()

    @asynccontextmanager
    async def running(app: FastAPI, model: BatchingEmbedder) -> AsyncIterator[None]:
        """The index, its watcher and the question log, for as long as the app runs."""
        app.state.model = model
        read_at = time.time()  # CURRENT is read now (load_newest or current_version_name)
        newest = Newest(index, []) if index else load_newest(settings.index_dir, model)
        served = newest.index
        for problem in newest.problems:
            log.warning("%s", problem)
        watch = IndexWatch(
            Searcher(served, model, settings.min_score),
            settings.index_dir,
            model,
            settings.min_score,
        )
        if newest.refused is not None:
            # CURRENT's version was refused: say so (the watcher retries it later)
            watch.refused = Refusal(newest.refused, newest.problems[0])
        elif index is not None and current_version_name(settings.index_dir) != served.version:
            # Loaded before the app started: CURRENT was refused then, or (in a worker
            # forked later to replace one) has moved on since. Look now, not in a while.
            await watch.check()
        if settings.reload_seconds > 0 and watch.checked_at is None:
            watch.checked_at = read_at  # /health: not null until the watcher's first look
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
        await asyncio.to_thread(questions.stop)  # may wait on the database: not in the loop
        if engine is not None:
            engine.dispose()

    return serving


def speakers_in_schema(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """app.openapi: the schema, with the speakers of the index being served as the
    allowed values of /ask's speaker (the rest is made once)."""
    base_schema: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
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

    return openapi


def create_app(
    settings: Settings,
    embedder: Embedder | None = None,
    warnings: Sequence[str] = (),
    index: LoadedIndex | None = None,
) -> FastAPI:
    """The careerbot service; the model and the index (unless given) load once, when it
    starts. `warnings` are start-up problems for /health to report."""
    app = FastAPI(
        title="careerbot",
        version=__version__,
        description="Career answers in the words of real practitioners, with attribution.",
        lifespan=lifespan(settings, embedder, index),
    )
    app.state.slots = Slots(settings.max_in_progress)
    # The last added runs first: the client's address, then headers and CORS see every
    # response, limits come next.
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(
        Throttle, per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst
    )
    app.add_middleware(
        Cors,
        allow_origins=settings.cors_origin_list,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type"],
    )
    app.add_middleware(SecurityHeaders, allowed_origins=settings.cors_origin_list)
    if settings.trusted_proxy_list:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)
    app.openapi = speakers_in_schema(app)  # type: ignore[method-assign]
    add_error_handlers(app)
    app.include_router(answers_router)
    app.include_router(health_router(settings, warnings))
    app.include_router(feedback_router)
    app.include_router(pages_router)
    if settings.admin_token.get_secret_value():  # no token: no admin route at all
        token = settings.admin_token.get_secret_value()
        corpus, max_bytes = settings.corpus_dir, settings.max_transcript_bytes
        app.include_router(admin_router(token, corpus, max_bytes))

    return app
