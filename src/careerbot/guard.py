"""ASGI middleware that treats every request as hostile: headers, rate limits, overload."""

import contextlib
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Iterator

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from careerbot.errors import error_response

DEMO_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class Cors(CORSMiddleware):
    """Starlette's CORS, but a preflight it refuses (an origin, method or header not
    allowed) gets the JSON error every other refusal gets, not plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        refused = error_response(400, bytes(response.body).decode())
        if "vary" in response.headers:  # the answer depends on the Origin: caches must know
            refused.headers["vary"] = response.headers["vary"]
        return refused


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


def client_of(scope: Scope) -> str:
    """Who is asking, for rate limits: the socket's address (or, from a trusted proxy, the
    address it forwarded). An IPv4 address written as IPv6 is the IPv4 address; an IPv6
    client is its /64, the block one host is given. Anything that is not an IP address
    shares one bucket."""
    host = scope["client"][0] if scope.get("client") else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


LIMITED = {"/ask", "/feedback"}


class Throttle:
    """Per-client token buckets for POST /ask and /feedback (one bucket for both): a
    client over its rate gets 429 with Retry-After, before its body is read."""

    MAX_CLIENTS = 10_000

    def __init__(self, app: ASGIApp, per_minute: int, burst: int) -> None:
        self.app, self.per_minute, self.burst = app, per_minute, burst
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
        asking = scope["type"] == "http" and scope["path"] in LIMITED and scope["method"] == "POST"
        if asking and self.per_minute > 0 and (wait := self.wait_for_token(client_of(scope))) > 0:
            limit = f"too many questions: at most {self.per_minute} a minute; try again shortly"
            refused = error_response(429, limit)
            refused.headers["Retry-After"] = str(math.ceil(wait))
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)


class Busy(Exception):
    """Too many questions are being answered at once."""


class Slots:
    """A bound on questions being answered at once. A question takes a slot only once its
    body is complete and valid, so a client that stalls mid-body holds none."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    @contextlib.contextmanager
    def take(self) -> Iterator[None]:
        if self.used >= self.limit:
            raise Busy
        self.used += 1
        try:
            yield
        finally:
            self.used -= 1
