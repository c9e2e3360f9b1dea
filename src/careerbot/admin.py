"""GET /admin/report: the question log's report for curators, behind a bearer token.

The app includes this router only when CAREERBOT_ADMIN_TOKEN is set, so without a token
the route does not exist at all (404, absent from the OpenAPI schema).
"""

import hmac
import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from careerbot import CareerbotError
from careerbot.errors import ErrorField, ErrorResponse, error_response, unavailable
from careerbot.report import Report, answer_facts, curated_report, parse_since

ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No admin token, or not the right one."},
    404: {"model": ErrorResponse, "description": "The question log is off."},
    422: {"model": ErrorResponse, "description": "`since` is not like 7d or 12h."},
    503: {"model": ErrorResponse, "description": "The question log cannot be read now."},
}

log = logging.getLogger(__name__)


def authorized(header: str | None, token: str) -> bool:
    """Whether the Authorization header is `Bearer <token>`; compared in constant time,
    so the response time does not tell how much of a guess was right."""
    scheme, _, given = (header or "").partition(" ")
    matches = hmac.compare_digest(given.strip().encode(), token.encode())
    return scheme.lower() == "bearer" and matches


def admin_router(token: str, corpus: Path, max_bytes: int) -> APIRouter:
    """The admin routes, accepting only `token`; `corpus` is the corpus folder, whose
    metadata files say which proposed phrasings a curator has taken in already."""
    router = APIRouter()

    @router.get("/admin/report", responses=ADMIN_ERRORS)
    async def admin_report(
        request: Request,
        # Checked in the handler, after the token: a caller without it learns nothing.
        since: str = Query("7d", description="How far back: Nd or Nh, such as 7d or 12h."),
    ) -> Response:
        """What `careerbot report --json` gives: asks, answers shown and judged, unanswered
        questions grouped, unhelpful votes and proposed phrasings since `since`. Needs
        `Authorization: Bearer <CAREERBOT_ADMIN_TOKEN>`."""
        if not authorized(request.headers.get("authorization"), token):
            response = error_response(401, "this route needs the admin token")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        engine = request.app.state.engine
        if engine is None:
            return error_response(
                404, "the question log is off or unavailable, so there is nothing to report"
            )
        try:
            moment = parse_since(since)
        except CareerbotError as error:
            message = str(error).removeprefix("since: ")
            return error_response(422, str(error), [ErrorField(field="since", message=message)])
        # The index being served names the answers; taken once, as a search would.
        index, model = request.app.state.watch.searcher.index, request.app.state.model

        def report() -> tuple[Report, list[str]]:  # reads and embedding: off the event loop
            answers = answer_facts(index.answers)
            return curated_report(engine, model, moment, answers, corpus, max_bytes)

        try:
            made, warnings = await run_in_threadpool(report)
        except SQLAlchemyError:  # the database is down: not the caller's fault, nor a 500
            return unavailable("the question log cannot be read now; try again", retry_after=10)
        for warning in warnings:
            log.warning("report: %s", warning)
        # The report holds what people asked: no cache keeps a copy.
        return JSONResponse(made.to_json(), headers={"Cache-Control": "no-store"})

    return router
