"""GET /health: whether the service is as it should be, and what it serves."""

import time
from collections.abc import Sequence
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from careerbot import __version__
from careerbot.config import Settings
from careerbot.questionlog import QuestionLog
from careerbot.reload import IndexWatch


class LogStats(BaseModel):
    mode: str = Field(description="full, redacted or off.")
    written: int = Field(description="Records written since start.")
    dropped: int = Field(description="Records dropped because the queue was full.")
    failed: int = Field(description="Records the database refused (see the log).")


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description=(
            "degraded: serving other than what CURRENT names, a start-up problem, or a "
            "question log that could not write a record in the last minute or lost its file."
        )
    )
    version: str
    index_version: str = Field(description="The index version being served.")
    pointer_checked_seconds_ago: float | None = Field(
        description="Since the server last read CURRENT; null when it does not watch it."
    )
    refused_version: str | None = Field(description="The newest version refused, if any.")
    refused_reason: str | None
    warnings: list[str] = Field(description="Start-up problems, such as a failed rebuild.")
    question_log: LogStats
    model: str
    dimension: int
    documents: int
    speakers: int
    answers: int
    passages: int
    built_at: str


def health_router(settings: Settings, warnings: Sequence[str]) -> APIRouter:
    """/health for a server with these settings; `warnings` are its start-up problems."""
    router = APIRouter()

    @router.get("/health", response_model=Health)
    async def health(request: Request) -> Health:
        """Service status, the index version served and any refused, and the index's figures."""
        watch: IndexWatch = request.app.state.watch
        questions: QuestionLog = request.app.state.questions
        index, refused = watch.searcher.index, watch.refused
        manifest = index.manifest
        checked = None if watch.checked_at is None else time.time() - watch.checked_at
        stuck = watch.overdue(settings.reload_seconds) if settings.reload_seconds else None
        problems = [*warnings, *(p for p in (stuck, questions.problem, questions.failing) if p)]
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

    return router
