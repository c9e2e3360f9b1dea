"""ASGI middleware that treats every request as hostile: headers, rate limits, overload."""

import json
import math
import time
from collections import OrderedDict

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEMO_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def refuse(send: Send, status: int, detail: str, retry_after: int) -> None:
    body = json.dumps({"detail": detail, "errors": []}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """nosniff everywhere, no-store on JSON answers, and no CORS headers at all for an
    origin that is not allowed (Starlette's CORS middleware still sends some)."""

    def __init__(self, app: ASGIApp, allowed_origins: list[str]) -> None:
        self.app, self.allowed = app, set(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = Headers(scope=scope).get("origin")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if headers.get("content-type", "").startswith("application/json"):
                    headers["Cache-Control"] = "no-store"
                if origin is not None and origin not in self.allowed:
                    for name in [n for n in headers if n.startswith("access-control-")]:
                        del headers[name]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Throttle:
    """Per-client token buckets and a bound on questions in progress, for POST /ask.

    A client over its rate gets 429 with Retry-After; when the bound is reached, further
    questions get an immediate 503 instead of waiting until they time out.
    """

    MAX_CLIENTS = 10_000

    def __init__(self, app: ASGIApp, per_minute: int, burst: int, max_in_progress: int) -> None:
        self.app, self.per_minute, self.burst = app, per_minute, burst
        self.max_in_progress, self.in_progress = max_in_progress, 0
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait_for_token(self, client: str) -> float:
        """Take a token for the client; 0 if it had one, else seconds until it will."""
        now = time.monotonic()
        rate = self.per_minute / 60
        tokens, then = self.buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * rate)
        if tokens >= 1:
            tokens -= 1
            wait = 0.0
        else:
            wait = (1 - tokens) / rate
        self.buckets[client] = (tokens, now)
        while len(self.buckets) > self.MAX_CLIENTS:
            self.buckets.popitem(last=False)
        return wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (scope["type"] == "http" and scope["path"] == "/ask" and scope["method"] == "POST"):
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        if self.per_minute > 0 and (wait := self.wait_for_token(client)) > 0:
            limit = f"too many questions: at most {self.per_minute} a minute; try again shortly"
            await refuse(send, 429, limit, math.ceil(wait))
            return
        if self.in_progress >= self.max_in_progress:
            await refuse(send, 503, "careerbot is busy; try again in a moment", 1)
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1
