"""What every route shares in refusing bad input: the error body, the messages for
validation errors and the body size limit."""

from collections.abc import Iterable
from typing import Any

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from careerbot.rules import rule

MAX_BODY_BYTES = 16 * 1024


class ErrorField(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    detail: str
    errors: list[ErrorField] = []


def error_response(status: int, detail: str, errors: list[ErrorField] | None = None) -> Response:
    body = ErrorResponse(detail=detail, errors=errors or [])
    return JSONResponse(body.model_dump(), status_code=status)


def unavailable(detail: str, retry_after: int = 1) -> Response:
    """503: not the caller's fault; worth trying again after a while."""
    response = error_response(503, detail)
    response.headers["Retry-After"] = str(retry_after)
    return response


MESSAGES = {
    "missing": "is required",
    "bool_type": "must be true or false (not text or a number)",
    "int_type": "must be a whole number (not text, a fraction or true/false)",
    "string_type": "must be text",
    "string_unicode": "contains characters that are not valid Unicode text",
    "model_attributes_type": "must be a JSON object: {...} with the route's fields",
    "dict_type": "must be a JSON object: {...} with the route's fields",
}


def describe(error: dict[str, Any], fields: Iterable[str]) -> ErrorField:
    """A validation error as a field and a message a person can act on, echoing no input;
    `fields` are the fields the body may have."""
    kind = error["type"]
    path = [str(part) for part in error["loc"] if part != "body"]
    field = "body" if kind == "json_invalid" else ".".join(path) or "body"
    if kind == "extra_forbidden":
        message = f"unknown field; the fields are {', '.join(fields)}"
    elif kind == "json_invalid":
        reason = error.get("ctx", {}).get("error", "decode error")
        message = f"is not valid JSON ({reason} at character {path[0] if path else 0})"
    elif kind in ("model_attributes_type", "dict_type") and isinstance(error.get("input"), bytes):
        message = "must be JSON sent with Content-Type: application/json"  # not parsed
    else:
        message = rule(error, MESSAGES)
    # Lone surrogates cannot be encoded in a response: replace them.
    safe = message[:200].encode("utf-8", "replace").decode()
    return ErrorField(field=field[:100].encode("utf-8", "replace").decode(), message=safe)


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body could not be read."},
    413: {"model": ErrorResponse, "description": f"The body is over {MAX_BODY_BYTES} bytes."},
    422: {"model": ErrorResponse, "description": "The request breaks a rule; detail says which."},
    429: {"model": ErrorResponse, "description": "Too many questions; see Retry-After."},
    503: {"model": ErrorResponse, "description": "Too busy right now; see Retry-After."},
}


# JSON between systems is UTF-8 (RFC 8259); Python's parser would also guess UTF-16 and
# UTF-32 from the bytes, so bodies in those are refused before it sees them. Without a
# byte-order mark their ASCII is valid UTF-8 with NUL bytes, which JSON text never holds.
NOT_UTF8 = (
    "the body cannot be read as JSON text in UTF-8 (it holds bytes that are not UTF-8, or NUL"
    " bytes, as UTF-16 and UTF-32 text does)"
)


def utf8_json_text(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in body


class BodyLimit:
    """Refuse a body over the limit with 413, and one that is not UTF-8 with 400, before
    anything parses it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = error_response(413, f"request body is over {self.limit} bytes")
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await error_response(400, "bad Content-Length header")(scope, receive, send)
                return
            if int(declared) > self.limit:
                await too_big(scope, receive, send)
                return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await too_big(scope, receive, send)
                return
        if scope["method"] in ("POST", "PUT", "PATCH") and not utf8_json_text(body):
            refused = error_response(400, NOT_UTF8, [ErrorField(field="body", message=NOT_UTF8)])
            await refused(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
