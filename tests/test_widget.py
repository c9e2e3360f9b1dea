"""The chat widget in a real headless Chromium (Debian's), driven by Playwright."""

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from careerbot.api import create_app
from careerbot.config import Settings
from careerbot.embedding import OnnxEmbedder
from careerbot.index import build_index
from careerbot.store import asks, picks, votes
from tests.conftest import CORPUS, ROOT, FakeEmbedder, without_uncovered_topics

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
PAYLOADS = (
    '<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> '
    '<svg onload="window.__xss=3">'
)
HOSTILE = f"""Intro.

What is hostile markup?

Mallory: It looks like {PAYLOADS} and must show as text.
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """An ASGI app served by uvicorn on loopback in a background thread."""

    def __init__(self, app: Starlette | FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class HostPages:
    """A third-party site: pages registered by the tests, served with the headers given."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, dict[str, str]]] = {}

        async def page(request: Request) -> Response:
            if request.url.path not in self.pages:
                return Response("not here", status_code=404)
            body, headers = self.pages[request.url.path]
            kinds = {"js": "text/javascript", "css": "text/css"}
            kind = kinds.get(request.url.path.rsplit(".", 1)[-1], "text/html")
            return Response(body, media_type=kind, headers=headers)

        self.app = Starlette(routes=[Route("/{path:path}", page)])


@pytest.fixture(scope="module")
def host() -> Iterator[tuple[Served, HostPages]]:
    pages = HostPages()
    served = Served(pages.app)
    yield served, pages
    served.stop()


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, host: tuple[Served, HostPages]
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("widget")
    shutil.copytree(CORPUS, root / "corpus")
    without_uncovered_topics(root / "corpus")
    (root / "corpus" / "hostile.txt").write_text(HOSTILE)
    embedder = FakeEmbedder()
    settings = Settings(
        corpus_dir=root / "corpus",
        index_dir=root / "index",
        min_score=0.2,
        cors_origins=host[0].url,
    )
    build_index(settings, embedder)
    served = Served(create_app(settings, embedder))
    served.database = settings.database  # type: ignore[attr-defined]
    yield served
    served.stop()


def logged(api: Served, table: sa.Table) -> list[Any]:
    """The rows of a question log table, waiting a little for the writer."""
    engine = sa.create_engine(api.database)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    try:
        while True:
            with engine.connect() as connection:
                rows = list(connection.execute(sa.select(table)))
            if rows or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    opened = context.new_page()
    opened.errors = []  # type: ignore[attr-defined]
    opened.on("pageerror", lambda error: opened.errors.append(str(error)))  # type: ignore[attr-defined]
    yield opened
    context.close()


def ask(page: Page, question: str) -> None:
    page.get_by_label("Your question").fill(question)
    page.get_by_label("Your question").press("Enter")


def test_ask_shows_an_attributed_card_with_the_passage_highlighted(page: Page, api: Served) -> None:
    page.goto(api.url + "/")
    ask(page, "titanic project resume")
    card = page.locator("article.card").first
    expect(card).to_contain_text("Shubhankar Jain")
    expect(card).to_contain_text("Machine learning engineer at SurveyMonkey")
    expect(card).to_contain_text("Asked: What are some tips for the interview process?")
    expect(card.locator("mark")).to_contain_text("Titanic")
    expect(card).to_contain_text("Source: corpus/ml-engineer-career-qa.txt, line")
    expect(card.locator(".confidence")).to_have_text(
        # A label a person reads, with the score behind it.
        __import__("re").compile(r"(Strong|Good|Possible) match \(0\.\d\d\)")
    )
    expect(page.locator(".asked")).to_have_text("titanic project resume")
    assert page.errors == []  # type: ignore[attr-defined]


def test_long_answers_are_collapsed_and_expand_with_the_keyboard(page: Page, api: Served) -> None:
    page.goto(api.url + "/")
    page.keyboard.press("Tab")  # the question field comes first
    page.keyboard.type("tips for the interview process, projects and the math behind models")
    page.keyboard.press("Enter")
    card = page.locator("article.card", has=page.locator("button.link")).first
    toggle = card.locator("button.link")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_have_text("Show the whole answer")
    collapsed = card.locator(".text").inner_text()
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(toggle).to_have_text("Show less")
    expanded = card.locator(".text").inner_text()
    assert len(expanded) > len(collapsed)
    assert card.locator("mark").inner_text() in expanded


def test_no_answer_offers_suggestions_and_topics_that_ask_when_clicked(
    page: Page, api: Served
) -> None:
    page.goto(api.url + "/")
    ask(page, "how do i bake sourdough bread")
    expect(page.get_by_text("The interviews don't cover that.")).to_be_visible()
    expect(page.get_by_text("Or pick a topic the interviews cover:")).to_be_visible()
    suggestion = page.locator(".choices button").first
    question = suggestion.inner_text()
    suggestion.click()
    expect(page.locator(".asked").last).to_have_text(question)
    expect(page.locator("article.card").first).to_be_visible()


def test_a_vote_by_keyboard_thanks_the_reader_and_is_recorded(page: Page, api: Served) -> None:
    page.goto(api.url + "/")
    ask(page, "core values interviews at Airbnb")
    card = page.locator("article.card").first
    answer_question = card.locator(".question").inner_text().removeprefix("Asked: ")
    helpful = card.get_by_role("button", name="Yes, helpful")
    expect(card.get_by_role("group", name="Was this answer helpful?")).to_be_visible()
    helpful.focus()
    page.keyboard.press("Enter")
    expect(card.get_by_role("status")).to_have_text("Thanks for your feedback.")
    expect(card.get_by_role("button", name="Yes, helpful")).to_have_count(0)
    rows = [row for row in logged(api, votes) if row.helpful]
    assert rows, "no vote was written"
    answers = {row.id: row for row in logged(api, asks)}
    assert rows[-1].ask_id in answers and answer_question
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_suggestion_picked_after_no_answer_is_reported(page: Page, api: Served) -> None:
    page.goto(api.url + "/")
    ask(page, "how do i bake rye bread at home")
    suggestion = page.locator(".choices button").first
    picked = suggestion.inner_text()
    suggestion.click()
    expect(page.locator(".asked").last).to_have_text(picked)
    assert picked in {row.suggestion for row in logged(api, picks)}


def test_speaker_filter_is_filled_from_the_api(page: Page, api: Served) -> None:
    page.goto(api.url + "/")
    speaker = page.get_by_label("Speaker")
    expect(speaker.locator("option")).to_have_count(4)  # anyone + three speakers
    speaker.select_option("chirag-mahapatra")
    ask(page, "interview projects resume")
    for name in page.locator("article.card .who").all_inner_texts():
        assert name.startswith("Chirag Mahapatra")


def test_server_text_is_shown_literally_and_never_runs(page: Page, api: Served) -> None:
    page.goto(api.url + "/")
    ask(page, "what is hostile markup")
    card = page.locator("article.card").first
    expect(card).to_contain_text(PAYLOADS)
    assert page.evaluate("window.__xss") is None
    widget = page.locator(".careerbot-widget")
    assert widget.locator("img, svg, script").count() == 0
    assert page.errors == []  # type: ignore[attr-defined]


def embed_page(api_url: str) -> str:
    return f"""<!doctype html><html><head><title>host</title>
<link rel="stylesheet" href="/host.css"></head><body>
<p class="card">A host paragraph with the class card.</p><button id="own">host button</button>
<script src="{api_url}/widget.js" data-api="{api_url}"></script>
</body></html>"""


def test_the_api_being_down_shows_an_error_with_retry(
    page: Page, host: tuple[Served, HostPages]
) -> None:
    served, pages = host
    dead = f"http://127.0.0.1:{free_port()}"
    pages.pages["/down.html"] = (
        embed_page(dead).replace(f'src="{dead}/widget.js"', 'src="/w.js"'),
        {},
    )
    pages.pages["/w.js"] = ((ROOT / "src/careerbot/static/widget.js").read_text(), {})
    pages.pages["/host.css"] = ("", {})
    page.goto(served.url + "/down.html")
    ask(page, "hiring process")
    expect(page.get_by_role("alert")).to_contain_text("cannot be reached")
    retry = page.get_by_role("button", name="Try again")
    retry.click()
    expect(page.get_by_role("alert")).to_contain_text("cannot be reached")
    expect(page.locator(".asked")).to_have_count(1)
    assert page.errors == []  # type: ignore[attr-defined]


def embedding_page(api: Served, host: tuple[Served, HostPages]) -> str:
    """The address of a page on the host server that embeds the widget of api."""
    served, pages = host
    pages.pages["/embed.html"] = (embed_page(api.url), {})
    pages.pages["/host.css"] = ("", {})
    return served.url + "/embed.html"


def test_embedded_from_an_allowed_origin_it_works(
    page: Page, api: Served, host: tuple[Served, HostPages]
) -> None:
    page.goto(embedding_page(api, host))
    ask(page, "titanic project resume")
    expect(page.locator("article.card").first).to_contain_text("Shubhankar Jain")
    assert page.errors == []  # type: ignore[attr-defined]


def test_embedded_from_an_origin_not_allowed_it_shows_the_error_state(
    page: Page, api: Served, host: tuple[Served, HostPages]
) -> None:
    # localhost and 127.0.0.1 are different origins; only the latter is allowed.
    page.goto(embedding_page(api, host).replace("127.0.0.1", "localhost"))
    ask(page, "titanic project resume")
    expect(page.get_by_role("alert")).to_contain_text("cannot be reached")
    assert page.locator("article.card").count() == 0
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_host_page_with_a_strict_csp_sees_no_violations(
    page: Page, api: Served, host: tuple[Served, HostPages]
) -> None:
    served, pages = host
    policy = (
        f"default-src 'none'; script-src 'self' {api.url}; style-src 'self'; connect-src {api.url}"
    )
    record = (
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    pages.pages["/record.js"] = (record, {})
    pages.pages["/host.css"] = ("", {})
    html = embed_page(api.url).replace("<body>", '<body><script src="/record.js"></script>')
    pages.pages["/csp.html"] = (html, {"Content-Security-Policy": policy})
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.goto(served.url + "/csp.html")
    ask(page, "titanic project resume")
    expect(page.locator("article.card").first).to_contain_text("Shubhankar Jain")
    page.get_by_role("button", name="Show the whole answer").first.click()
    assert page.evaluate("window.__violations") == []
    assert not [m for m in messages if "Content Security Policy" in m]
    # The widget's own styles applied: the send button is green, not the browser default.
    send = page.get_by_role("button", name="Ask")
    assert send.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(31, 136, 61)"


def test_host_styles_and_widget_styles_stay_apart(
    page: Page, api: Served, host: tuple[Served, HostPages]
) -> None:
    served, pages = host
    pages.pages["/styled.html"] = (embed_page(api.url), {})
    pages.pages["/host.css"] = (
        "* { color: rgb(255, 0, 0) !important; font-size: 40px !important; }"
        " button { background: rgb(0, 0, 255) !important; }",
        {},
    )
    page.goto(served.url + "/styled.html")
    send = page.get_by_role("button", name="Ask")
    expect(send).to_be_visible()
    assert send.evaluate("b => getComputedStyle(b).color") == "rgb(255, 255, 255)"
    assert send.evaluate("b => getComputedStyle(b).fontSize") == "15px"
    own = page.locator("#own")
    assert own.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(0, 0, 255)"
    host_card = page.locator("p.card")
    assert host_card.evaluate("p => getComputedStyle(p).borderTopWidth") == "0px"


def test_works_at_360_pixels_wide(browser: Browser, api: Served) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740})
    narrow = context.new_page()
    narrow.goto(api.url + "/")
    ask(narrow, "tips for the interview process")
    expect(narrow.locator("article.card").first).to_be_visible()
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 360
    box = narrow.get_by_role("button", name="Ask").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 360
    context.close()


@pytest.mark.model
def test_screenshot_of_the_demo_page(
    browser: Browser, tmp_path: Path, real_embedder: OnnxEmbedder
) -> None:
    """Set CAREERBOT_UPDATE_SCREENSHOT=1 to refresh docs/widget.png for the README."""
    settings = Settings(corpus_dir=CORPUS, index_dir=tmp_path / "index")
    build_index(settings, real_embedder)
    served = Served(create_app(settings, real_embedder))
    try:
        context = browser.new_context(viewport={"width": 900, "height": 1000})
        shot = context.new_page()
        shot.goto(served.url + "/")
        ask(shot, "How many core values interviews does Airbnb do?")
        expect(shot.locator("article.card").first).to_contain_text("Chirag Mahapatra")
        target = ROOT / "docs" / "widget.png"
        if not os.environ.get("CAREERBOT_UPDATE_SCREENSHOT"):
            target = tmp_path / "widget.png"
        shot.screenshot(path=str(target), full_page=True)
        assert target.stat().st_size > 10_000
        context.close()
    finally:
        served.stop()
