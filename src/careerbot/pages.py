"""The widget and the pages that show it: the demo pages (inline and launcher), their
style sheet and icon. All read once, at import, from the package's static folder."""

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from careerbot.guard import DEMO_PAGE_POLICY


class JavaScriptResponse(Response):
    media_type = "text/javascript"


def static_text(name: str) -> str:
    return files("careerbot").joinpath("static", name).read_text(encoding="utf-8")


router = APIRouter()
INLINE, LAUNCHER, WIDGET, STYLE, ICON = (
    static_text(name)
    for name in ("index.html", "launcher.html", "widget.js", "demo.css", "favicon.svg")
)


def page(html: str) -> HTMLResponse:
    return HTMLResponse(html, headers={"Content-Security-Policy": DEMO_PAGE_POLICY})


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def demo() -> HTMLResponse:
    """A demo page with the chat widget inline."""
    return page(INLINE)


@router.api_route("/launcher", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def demo_launcher() -> HTMLResponse:
    """A demo page with the chat widget as a launcher button."""
    return page(LAUNCHER)


@router.api_route("/widget.js", methods=["GET", "HEAD"], response_class=JavaScriptResponse)
async def widget_script() -> JavaScriptResponse:
    """The chat widget; embed it with a script tag."""
    return JavaScriptResponse(WIDGET)


@router.api_route("/demo.css", methods=["GET", "HEAD"], include_in_schema=False)
async def demo_style() -> Response:
    return Response(STYLE, media_type="text/css")


@router.api_route("/favicon.svg", methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route("/favicon.ico", methods=["GET", "HEAD"], include_in_schema=False)
async def icon() -> Response:
    return Response(ICON, media_type="image/svg+xml")
