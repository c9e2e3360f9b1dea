"""Every refusal the service makes, in the one error shape of errors.py."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from careerbot.answers import AskRequest, ClientGone
from careerbot.embedding import EncoderClosed
from careerbot.errors import ErrorField, describe, error_response, unavailable
from careerbot.feedback import FEEDBACK_SHAPES
from careerbot.guard import Busy
from careerbot.search import UnknownSpeaker
from careerbot.version import DamagedIndex

log = logging.getLogger("careerbot")

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


def add_error_handlers(app: FastAPI) -> None:
    """Turn invalid requests, Starlette's own refusals, an unknown speaker, a full house,
    a damaged index and a request after shutdown into careerbot's error responses."""

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

    @app.exception_handler(ClientGone)
    async def client_gone(request: Request, error: ClientGone) -> Response:
        # No one reads it, and uvicorn writes no access-log line for a client gone: 499 is
        # nginx's "client closed request", for whatever else sees it.
        return Response(status_code=499)

    @app.exception_handler(EncoderClosed)
    async def stopping(request: Request, error: EncoderClosed) -> Response:
        return unavailable("careerbot is shutting down; try again in a moment")

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
