"""POST /feedback: whether an answer helped, or which suggested question was picked."""

import asyncio
import re
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator
from starlette.concurrency import run_in_threadpool

from careerbot.errors import (
    ERRORS,
    ErrorField,
    ErrorResponse,
    error_response,
    unavailable,
)
from careerbot.questionlog import Ask, Pick, QuestionLog, Vote
from careerbot.rules import CONTROLS, QUESTION_PATTERN, valid_unicode

MAX_COMMENT_CHARS = 500


def text(value: str | None) -> str | None:
    return None if value is None else valid_unicode(value)


ASK_ID_FORM = re.compile("[0-9a-f]{32}")
ASK_ID = Field(
    description="The id /ask returned.", json_schema_extra={"pattern": f"^{ASK_ID_FORM.pattern}$"}
)


def an_ask_id(value: str) -> str:
    if not ASK_ID_FORM.fullmatch(value):
        raise ValueError("must be the id of an /ask response: 32 characters, 0-9 and a-f")
    return value


class VoteRequest(BaseModel):
    """Whether one of the answers an ask returned helped."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ask_id: str = ASK_ID
    answer_id: str = Field(
        min_length=1,
        max_length=300,
        description="One of its answers' id.",
        json_schema_extra={"pattern": QUESTION_PATTERN},
    )
    helpful: bool
    comment: str | None = Field(
        default=None,
        max_length=MAX_COMMENT_CHARS,
        description="What was missing, say.",
        json_schema_extra={"pattern": f"^[^{CONTROLS}]*$"},
    )

    checked = field_validator("answer_id", "comment")(text)
    asked = field_validator("ask_id")(an_ask_id)


class PickRequest(BaseModel):
    """A suggestion picked after an ask got no answer."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ask_id: str = ASK_ID
    suggestion: str = Field(
        min_length=1,
        max_length=1000,
        description="One of that ask's suggestions, verbatim.",
        json_schema_extra={"pattern": QUESTION_PATTERN},
    )

    checked = field_validator("suggestion")(text)
    asked = field_validator("ask_id")(an_ask_id)


def shape(body: Any) -> str:
    return "pick" if isinstance(body, dict) and "suggestion" in body else "vote"


FeedbackRequest = Annotated[
    Annotated[VoteRequest, Tag("vote")] | Annotated[PickRequest, Tag("pick")],
    Discriminator(shape),
]
# The fields of each shape, by the tag that validation errors carry in their location.
FEEDBACK_SHAPES = {"vote": list(VoteRequest.model_fields), "pick": list(PickRequest.model_fields)}


def not_returned(field: str, what: str) -> Response:
    message = f"not one of the {what} that ask returned"
    return error_response(422, f"{field}: {message}", [ErrorField(field=field, message=message)])


MISSING: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorResponse,
        "description": "No logged ask has that id (or the question log is off or unavailable).",
    },
}

router = APIRouter()


@router.post("/feedback", status_code=204, responses={**ERRORS, **MISSING})
async def feedback(body: FeedbackRequest, request: Request) -> Response:
    """Say whether an answer helped, or which suggested question was picked after no answer."""
    questions: QuestionLog = request.app.state.questions
    if questions.problem:  # not opened at start: no ask of this server was logged
        return error_response(404, "the question log could not be opened: nothing is logged")
    if questions.mode == "off":
        return error_response(404, "the question log is off: nothing is logged")
    try:
        asked = await find(questions, body.ask_id)
    except sa.exc.SQLAlchemyError:
        return busy("the question log cannot be read right now")
    if asked is None:
        return error_response(404, "no ask with that ask_id was logged")
    now = datetime.now(UTC)
    record: Vote | Pick
    if isinstance(body, PickRequest):
        if body.suggestion not in asked.suggestions:
            return not_returned("suggestion", "suggestions")
        record = Pick(asked.id, body.suggestion, now)
    else:
        if body.answer_id not in {answer_id for answer_id, _ in asked.answers}:
            return not_returned("answer_id", "answers")
        record = Vote(asked.id, body.answer_id, body.helpful, body.comment or None, now)
    if not questions.feedback(record):
        return busy("careerbot is busy")
    return Response(status_code=204)


def busy(reason: str) -> Response:
    return unavailable(f"{reason}; try again in a moment")


# With several servers on one PostgreSQL, an ask answered by one may not be written yet
# when its feedback reaches another: look again a few times before saying it is unknown.
# (SQLite serves one server, which remembers its recent asks.)
LOOKS = (0.0, 0.25, 0.5, 1.0)


async def find(questions: QuestionLog, ask_id: str) -> Ask | None:
    shared = questions.engine is not None and questions.engine.dialect.name == "postgresql"
    for pause in LOOKS if shared else LOOKS[:1]:
        await asyncio.sleep(pause)
        asked = await run_in_threadpool(questions.facts, ask_id)
        if asked is not None or not questions.on:
            return asked
    return None
