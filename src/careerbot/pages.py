"""The widget and the pages that show it: the demo pages (inline and launcher), their
style sheet and icon. All read once, at import, from the package's static folder."""

from collections.abc import Awaitable, Callable
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from careerbot.guard import DEMO_PAGE_POLICY


class JavaScriptResponse(Response):
    media_type = "text/javascript"


def static_text(name: str) -> str:
    return files("careerbot").joinpath("static", name).read_text(encoding="utf-8")


router = APIRouter()
Endpoint = Callable[[], Awaitable[Response]]
INLINE, LAUNCHER, WIDGET, STYLE, ICON = (
    static_text(name)
    for name in ("index.html", "launcher.html", "widget.js", "demo.css", "favicon.svg")
)


def page(html: str) -> HTMLResponse:
    return HTMLResponse(html, headers={"Content-Security-Policy": DEMO_PAGE_POLICY})


def served(
    path: str, kind: type[Response] = Response, documented: bool = True
) -> Callable[[Endpoint], Endpoint]:
    """GET, and HEAD (which is left out of the schema, whose operation ids must differ)."""

    def register(endpoint: Endpoint) -> Endpoint:
        for method, listed in (("GET", documented), ("HEAD", False)):
            router.add_api_route(
                path, endpoint, methods=[method], response_class=kind, include_in_schema=listed
            )
        return endpoint

    return register


@served("/", HTMLResponse)
async def demo() -> HTMLResponse:
    """A demo page with the chat widget inline."""
    return page(INLINE)


@served("/launcher", HTMLResponse)
async def demo_launcher() -> HTMLResponse:
    """A demo page with the chat widget as a launcher button."""
    return page(LAUNCHER)


@served("/widget.js", JavaScriptResponse)
async def widget_script() -> JavaScriptResponse:
    """The chat widget; embed it with a script tag."""
    return JavaScriptResponse(WIDGET)


@served("/demo.css", documented=False)
async def demo_style() -> Response:
    return Response(STYLE, media_type="text/css")


@served("/favicon.svg", documented=False)
@served("/favicon.ico", documented=False)
async def icon() -> Response:
    return Response(ICON, media_type="image/svg+xml")
