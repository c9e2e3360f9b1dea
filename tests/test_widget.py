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


def logged(api: Served, table: sa.Table, until: Any = bool) -> list[Any]:
    """The rows of a question log table, once `until(rows)` holds (the writer writes a
    moment later) or 10 s have passed."""
    engine = sa.create_engine(api.database)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    try:
        while True:
            with engine.connect() as connection:
                rows = list(connection.execute(sa.select(table)))
            if until(rows) or time.monotonic() > deadline:
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


def questions_sent(page: Page) -> list[str]:
    """The questions the page posts to /ask from now on, in order (filled in as the
    browser's events are processed)."""
    sent: list[str] = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.post_data_json["question"])
            if request.url.endswith("/ask")
            else None
        ),
    )
    return sent


def until(page: Page, condition: Any) -> None:
    """Waits (processing the browser's events) until condition() holds, for up to 5 s."""
    for _ in range(100):
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError("condition never held")


TITLE = "Machine learning engineer careers: Q&A with Airbnb and SurveyMonkey engineers"


def test_ask_shows_an_attributed_card_with_the_passage_first(page: Page, api: Served) -> None:
    page.goto(api.url + "/")
    ask(page, "titanic project resume")
    card = page.locator("article.card").first
    expect(card).to_contain_text("Shubhankar Jain")
    expect(card.locator(".avatar")).to_have_text("SJ")
    expect(card).to_contain_text("Machine learning engineer at SurveyMonkey")
    expect(card).to_contain_text("Asked: What are some tips for the interview process?")
    expect(card.locator(".text")).to_contain_text("Titanic")
    # The interview's title from the metadata, not a file path.
    expect(card.locator(".source")).to_have_text(f"From {TITLE}")
    # Collapsed, the passage is shown alone: nothing to mark yet.
    expect(card.locator("mark")).to_have_count(0)
    labels = page.locator("article.card .confidence").all_inner_texts()
    assert labels[0] in {"Strong match", "Possible match"} and set(labels[1:]) <= {"Also related"}
    expect(page.locator(".asked")).to_have_text("titanic project resume")
    assert page.errors == []  # type: ignore[attr-defined]


def test_long_answers_are_collapsed_and_expand_with_the_keyboard(page: Page, api: Served) -> None:
    page.goto(api.url + "/")
    page.get_by_label("Your question").focus()
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
    mark = card.locator("mark")
    assert mark.inner_text() in expanded and mark.inner_text() in collapsed
    assert in_view(page, mark), "the passage is out of view after expanding"


def test_a_question_of_paragraphs_keeps_its_line_breaks(page: Page, api: Served) -> None:
    """People paste posts with a title line and paragraphs: Shift+Enter breaks the line
    without asking, the box grows, and the question goes to /ask with its breaks (a
    one-line input would drop them, joining the last word of a line to the next)."""
    sent = questions_sent(page)
    page.goto(api.url + "/")
    box = page.get_by_label("Your question")
    expect(box).to_have_attribute("aria-describedby", "careerbot-hint careerbot-counter")
    expect(page.locator("#careerbot-hint")).to_have_text(
        "Enter asks; Shift+Enter starts a new line."
    )
    box.focus()
    page.keyboard.type("Titanic project on my resume")
    one_line = box.bounding_box()["height"]  # type: ignore[index]
    for line in ("", "I am a data analyst.", "Is a Titanic project worth showing?"):
        page.keyboard.press("Shift+Enter")
        page.keyboard.type(line)
    expect(page.locator(".asked")).to_have_count(0)  # nothing asked yet
    assert box.bounding_box()["height"] > one_line  # type: ignore[index]
    page.keyboard.press("Enter")
    expect(page.locator("article.card").first).to_be_visible()
    asked = (
        "Titanic project on my resume\n\nI am a data analyst.\nIs a Titanic project worth showing?"
    )
    until(page, lambda: sent == [asked])
    bubble = page.locator(".asked")
    assert bubble.text_content() == asked
    assert bubble.inner_text().count("\n") >= 2  # shown on lines of their own
    expect(box).to_have_value("")
    assert box.bounding_box()["height"] <= one_line + 1  # type: ignore[index]
    assert page.errors == []  # type: ignore[attr-defined]


def test_enter_does_not_ask_again_while_an_answer_is_on_its_way(page: Page, api: Served) -> None:
    held: list[Any] = []  # the /ask requests, held until released
    page.route("**/ask", lambda route: held.append(route))
    page.goto(api.url + "/")
    ask(page, "titanic project resume")
    until(page, lambda: len(held) == 1)
    ask(page, "core values interviews at Airbnb")
    expect(page.locator(".asked")).to_have_count(1)  # a bubble would show at once
    expect(page.get_by_label("Your question")).to_have_value("core values interviews at Airbnb")
    held[0].continue_()
    expect(page.locator("article.card").first).to_be_visible()
    page.get_by_label("Your question").press("Enter")  # now it asks
    until(page, lambda: len(held) == 2)
    held[1].continue_()
    expect(page.locator(".entry").nth(1).locator("article.card").first).to_be_visible()


def test_pasted_control_characters_break_lines_and_a_question_over_the_limit_is_kept_unsent(
    page: Page, api: Served
) -> None:
    sent = questions_sent(page)
    page.goto(api.url + "/")
    box = page.get_by_label("Your question")
    count = page.locator("#careerbot-counter")
    expect(box).to_have_attribute("aria-describedby", "careerbot-hint careerbot-counter")
    box.fill("x" * 950)
    expect(count).to_have_text("950 of 1000 characters")
    box.fill("x" * 850)
    expect(count).to_be_hidden()
    status = page.locator("p.status")
    # A longer paste is kept whole (it may ask at its end), says so to screen readers too,
    # and is not sent until shortened.
    box.fill("x" * 1500)
    expect(box).to_have_value("x" * 1500)
    expect(count).to_have_text("1500 of 1000 characters: shorten it by 500 to ask")
    expect(status).to_have_text("1500 of 1000 characters: shorten it by 500 to ask")
    box.press("Enter")
    expect(status).to_have_text(
        "Your question is 1500 characters; shorten it by 500 to ask (at most 1000)."
    )
    expect(box).to_have_value("x" * 1500)
    expect(box).to_be_focused()
    # Counted as the API counts: in characters (an emoji is two units in JavaScript), and
    # without the spaces and invisible characters at its ends, which are not sent.
    box.fill("\U0001f600" * 1000)
    expect(count).to_have_text("1000 of 1000 characters")
    expect(status).to_have_text("")  # within the limit again: the warning is taken back
    box.fill(" " * 40 + "x" * 1000 + "\u200b\n")
    expect(count).to_have_text("1000 of 1000 characters")
    box.fill("\u200b" + "a" + " " * 5_000 + "b" + " " * 3_000)  # only the ends trimmed
    expect(count).to_have_text("5002 of 1000 characters: shorten it by 4002 to ask")
    box.fill("x" * 15_000)  # what is beyond ten times the limit is cut
    expect(box).to_have_value("x" * 10_000)
    expect(count).to_have_text("10000 of 1000 characters: shorten it by 9000 to ask")
    ask(page, "\u200b \ufeff\u2060")  # nothing that shows: not asked
    expect(page.locator(".asked")).to_have_count(0)
    # A form feed, as in text copied from a PDF, the API would refuse: it breaks the line.
    ask(page, "\u200bParagraph one.\fParagraph two: titanic project resume\x1b?")
    expect(page.locator("article.card").first).to_be_visible()
    until(page, lambda: sent == ["Paragraph one.\nParagraph two: titanic project resume ?"])
    expect(count).to_be_hidden()
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_question_the_api_refuses_goes_back_in_the_box(page: Page, api: Served) -> None:
    page.route(
        "**/ask",
        lambda route: route.fulfill(
            status=422, json={"detail": "question: must be at most 1000 characters"}
        ),
    )
    page.goto(api.url + "/")
    ask(page, "a question to mend")
    expect(page.get_by_role("alert")).to_have_text(
        "careerbot could not answer: question: must be at most 1000 characters"
    )
    expect(page.get_by_label("Your question")).to_have_value("a question to mend")
    expect(page.get_by_role("button", name="Try again")).to_have_count(0)


def test_a_grown_question_box_stays_inside_a_short_launcher(browser: Browser, api: Served) -> None:
    context = browser.new_context(viewport={"width": 640, "height": 360})
    shown = context.new_page()
    shown.goto(api.url + "/launcher")
    shown.get_by_role("button", name="Open chat").click()
    box = shown.get_by_label("Your question")
    box.fill("\n".join(f"line {number}" for number in range(12)))
    panel = shown.get_by_role("dialog").bounding_box()
    form = shown.locator("form").bounding_box()
    send = shown.get_by_role("button", name="Ask", exact=True).bounding_box()
    assert panel and form and send
    assert form["y"] + form["height"] <= panel["y"] + panel["height"] + 1
    assert send["y"] + send["height"] <= 360
    # Closed, then the screen turned: reopened, the box fits its lines again.
    grown = box.bounding_box()["height"]  # type: ignore[index]
    shown.get_by_role("button", name="Close chat", exact=True).click()
    shown.set_viewport_size({"width": 360, "height": 640})
    shown.get_by_role("button", name="Open chat").click()
    assert box.bounding_box()["height"] >= grown - 1  # type: ignore[index]
    context.close()


@pytest.mark.parametrize("size", [(360, 300), (360, 740), (1280, 500)])
def test_on_a_phone_or_a_short_screen_the_open_launcher_fills_it(
    browser: Browser, api: Served, size: tuple[int, int]
) -> None:
    width, height = size
    context = browser.new_context(viewport={"width": width, "height": height})
    shown = context.new_page()
    shown.goto(api.url + "/launcher")
    button = shown.locator(".launcher")  # its name changes as it opens and closes
    button.click()
    panel = shown.get_by_role("dialog").bounding_box()
    assert panel == {"x": 0, "y": 0, "width": width, "height": height}
    expect(button).to_be_hidden()  # under the panel it could take focus unseen
    # The labels are left to screen readers; the conversation keeps room to be read.
    ask(shown, "how do I move from data science into ML engineering?")
    expect(shown.locator("article").first).to_be_visible()
    room = shown.get_by_role("log").bounding_box()
    assert room and room["height"] >= height / 2  # 172 of 300 px on 2026-11-28
    shown.keyboard.press("Escape")
    expect(button).to_be_visible()
    expect(button).to_be_focused()
    context.close()


FOCUS_IN_PANEL = """() => {
  const inner = document.querySelector(".careerbot-widget").shadowRoot.activeElement;
  return Boolean(inner && inner.closest("section"));
}"""


def test_filling_the_screen_the_panel_keeps_the_focus(browser: Browser, api: Served) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    shown = context.new_page()
    shown.goto(api.url + "/launcher")
    button = shown.locator(".launcher")
    button.click()
    dialog = shown.get_by_role("dialog")
    expect(dialog).not_to_have_attribute("aria-modal", "true")  # the page stays in view
    # The screen turns small with the focus on the button: the panel, covering it, takes
    # the focus.
    button.focus()
    shown.set_viewport_size({"width": 360, "height": 640})
    expect(dialog).to_have_attribute("aria-modal", "true")
    expect(shown.get_by_label("Your question")).to_be_focused()
    # Tab and Shift+Tab go round inside it, never to the demo page's links beneath.
    ask(shown, "how do I move from data science into ML engineering?")
    expect(shown.locator("article").first).to_be_visible()
    for key in ["Tab"] * 12 + ["Shift+Tab"] * 12:
        shown.keyboard.press(key)
        assert shown.evaluate(FOCUS_IN_PANEL), key
    # A click on the panel's title leaves the focus on the page's body: Shift+Tab still
    # goes to the panel's last control, and Escape still closes it.
    heading = shown.get_by_role("heading", name="Ask a practitioner")
    heading.click()
    shown.keyboard.press("Shift+Tab")
    expect(shown.get_by_role("button", name="Ask", exact=True)).to_be_focused()
    heading.click()
    shown.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(button).to_be_focused()
    context.close()


def test_on_a_wide_tall_screen_the_launcher_panel_floats_beside_its_button(
    browser: Browser, api: Served
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    shown = context.new_page()
    shown.goto(api.url + "/launcher")
    button = shown.locator(".launcher")
    button.click()
    panel = shown.get_by_role("dialog").bounding_box()
    assert panel and panel["width"] <= 400 and panel["height"] <= 640
    expect(button).to_be_visible()
    context.close()


def test_no_answer_offers_suggestions_and_topics_that_ask_when_clicked(
    page: Page, api: Served
) -> None:
    page.goto(api.url + "/")
    ask(page, "how do i bake sourdough bread")
    expect(page.get_by_text("The interviews don't cover that.")).to_be_visible()
    offered = page.locator(".entry .chips button")
    expect(offered.first).to_be_visible()
    assert 1 <= offered.count() <= 3
    suggestion = offered.first
    question = suggestion.inner_text()
    suggestion.click()
    expect(page.locator(".asked").last).to_have_text(question)
    expect(page.locator("article.card").first).to_be_visible()


def test_a_vote_that_fails_can_be_sent_again_and_the_focus_stays_on_the_votes(
    page: Page, api: Served
) -> None:
    page.goto(api.url + "/")
    ask(page, "core values interviews at Airbnb")
    card = page.locator("article.card").first
    page.route("**/feedback", lambda route: route.fulfill(status=503, body="down"))
    helpful = card.get_by_role("button", name="Yes, helpful")
    helpful.focus()
    page.keyboard.press("Enter")
    expect(card.get_by_role("status")).to_have_text("Your feedback could not be sent; try again.")
    expect(helpful).to_be_enabled()
    expect(helpful).to_be_focused()
    page.unroute("**/feedback")
    page.keyboard.press("Enter")
    thanks = card.get_by_role("status")
    expect(thanks).to_have_text("Thanks for your feedback.")
    expect(thanks).to_be_focused()
    assert [row for row in logged(api, votes) if row.helpful], "no vote was written"


def test_a_vote_a_server_does_not_record_says_so_and_offers_no_retry(
    page: Page, api: Served
) -> None:
    # As with CAREERBOT_QUESTION_LOG=off, or an answer whose record the retention purged.
    page.goto(api.url + "/")
    ask(page, "core values interviews at Airbnb")
    card = page.locator("article.card").first
    body = '{"detail": "no such ask", "errors": []}'
    page.route("**/feedback", lambda route: route.fulfill(status=404, body=body))
    card.get_by_role("button", name="Not helpful").focus()
    page.keyboard.press("Enter")
    said = card.get_by_role("status")
    expect(said).to_have_text("Feedback isn't recorded here.")
    expect(said).to_be_focused()
    expect(card.get_by_role("button", name="Not helpful")).to_have_count(0)


def test_a_vote_stored_at_once_still_leaves_the_focus_on_the_thanks(
    page: Page, api: Served
) -> None:
    page.goto(api.url + "/")
    ask(page, "core values interviews at Airbnb")
    # An answer quicker than the browser's moving the focus off the disabled button.
    page.evaluate(
        """() => {
          const real = window.fetch;
          window.fetch = (url, init) => String(url).endsWith("/feedback")
            ? Promise.resolve(new Response(null, { status: 204 })) : real(url, init);
        }"""
    )
    card = page.locator("article.card").first
    card.get_by_role("button", name="Yes, helpful").focus()
    page.keyboard.press("Enter")
    thanks = card.get_by_role("status")
    expect(thanks).to_have_text("Thanks for your feedback.")
    expect(thanks).to_be_focused()


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
    suggestion = page.locator(".entry .chips button").first
    picked = suggestion.inner_text()
    suggestion.click()
    expect(page.locator(".asked").last).to_have_text(picked)
    rows = logged(api, picks, lambda rows: picked in {row.suggestion for row in rows})
    assert picked in {row.suggestion for row in rows}


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
    # The widget's own styles applied: the send button has the accent colour.
    send = page.get_by_role("button", name="Ask")
    assert send.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(9, 105, 218)"


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


def in_view(page: Page, locator: Any, whole: bool = True) -> bool:
    """Whether the element is inside the viewport (wholly, or its top at least) and not
    hidden by a scrolled-away part of the box that holds it."""
    return bool(
        locator.evaluate(
            """(node, whole) => {
                const box = node.getBoundingClientRect();
                let top = 0, bottom = window.innerHeight;
                for (let up = node.parentElement || node.getRootNode().host; up;
                     up = up.parentElement || (up.getRootNode().host || null)) {
                    const style = getComputedStyle(up);
                    if (/(auto|scroll|hidden)/.test(style.overflowY)) {
                        const clip = up.getBoundingClientRect();
                        top = Math.max(top, clip.top); bottom = Math.min(bottom, clip.bottom);
                    }
                }
                return box.top >= top - 1 && (whole ? box.bottom <= bottom + 1
                                                    : box.top + 40 <= bottom);
            }""",
            whole,
        )
    )


SIZES = {"1280x800": (1280, 800), "360x740": (360, 740)}


def opened(browser: Browser, api: Served, mode: str, size: str) -> Page:
    """The demo page of a mode at a size, the chat ready for a question."""
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    shown = context.new_page()
    shown.errors = []  # type: ignore[attr-defined]
    shown.on("pageerror", lambda error: shown.errors.append(str(error)))  # type: ignore[attr-defined]
    shown.on(
        "console",
        lambda m: shown.errors.append(m.text) if m.type == "error" else None,  # type: ignore[attr-defined]
    )
    shown.goto(api.url + ("/launcher" if mode == "launcher" else "/"))
    if mode == "launcher":
        shown.get_by_role("button", name="Open chat").click()
    expect(shown.get_by_label("Your question")).to_be_visible()
    return shown


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", ["inline", "launcher"])
def test_the_newest_question_and_its_first_answer_stay_in_view(
    browser: Browser, api: Served, mode: str, size: str
) -> None:
    shown = opened(browser, api, mode, size)
    for question in ("hiring process at airbnb", "titanic project resume", "core values"):
        ask(shown, question)
        expect(shown.locator(".entry").last.locator("article.card").first).to_be_visible()
        bubble = shown.locator(".asked").last
        expect(bubble).to_have_text(question)
        assert in_view(shown, bubble), f"{question!r}: the question is out of view"
        first = shown.locator(".entry").last.locator("article.card").first
        assert in_view(shown, first, whole=False), f"{question!r}: its answer is out of view"
    # Expanding an answer keeps it, and the passage inside it, in view.
    toggle = shown.locator(".entry").last.locator("button.link").first
    if toggle.count():
        toggle.click()
        card = shown.locator("article.card", has=shown.locator("mark")).last
        assert in_view(shown, card.locator("mark"))
    assert shown.evaluate("document.documentElement.scrollWidth") <= SIZES[size][0]
    assert shown.errors == []  # type: ignore[attr-defined]
    shown.context.close()


def test_the_launcher_opens_and_closes_with_the_keyboard(browser: Browser, api: Served) -> None:
    shown = opened(browser, api, "inline", "360x740")
    shown.goto(api.url + "/launcher")
    launcher = shown.get_by_role("button", name="Open chat")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    expect(shown.get_by_label("Your question")).to_be_hidden()
    launcher.focus()
    shown.keyboard.press("Enter")
    expect(shown.get_by_role("dialog")).to_be_visible()
    expect(shown.get_by_label("Your question")).to_be_focused()
    shown.keyboard.type("hiring process")
    shown.keyboard.press("Enter")
    expect(shown.locator("article.card").first).to_be_visible()
    shown.keyboard.press("Escape")
    expect(shown.get_by_role("dialog")).to_be_hidden()
    reopen = shown.get_by_role("button", name="Open chat")
    expect(reopen).to_be_focused()
    expect(reopen).to_have_attribute("aria-expanded", "false")
    shown.keyboard.press("Enter")  # the conversation is still there
    expect(shown.locator(".asked")).to_have_text("hiring process")
    shown.get_by_role("button", name="Close chat", exact=True).click()
    expect(shown.get_by_role("dialog")).to_be_hidden()
    assert shown.errors == []  # type: ignore[attr-defined]
    shown.context.close()


@pytest.mark.parametrize("mode", ["inline", "launcher"])
def test_the_first_screen_says_who_is_in_the_interviews_and_offers_three_questions(
    browser: Browser, api: Served, mode: str
) -> None:
    shown = opened(browser, api, mode, "1280x800")
    welcome = shown.locator(".welcome")
    expect(welcome).to_contain_text("Chirag Mahapatra")
    expect(welcome).to_contain_text("Shubhankar Jain")
    examples = welcome.locator(".chips button")
    expect(examples).to_have_count(3)
    picked = examples.nth(1).inner_text()
    examples.nth(1).click()
    expect(shown.locator(".asked")).to_have_text(picked)
    expect(shown.locator("article.card").first).to_be_visible()
    # No console errors from loading to a whole conversation (favicon included).
    shown.locator("article.card").first.get_by_role("button", name="Yes, helpful").click()
    expect(shown.locator("article.card").first.get_by_role("status")).to_have_text(
        "Thanks for your feedback."
    )
    assert shown.errors == []  # type: ignore[attr-defined]
    shown.context.close()


def test_the_favicon_is_served(api: Served) -> None:
    import httpx

    for path in ("/favicon.ico", "/favicon.svg"):
        response = httpx.get(api.url + path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("image/svg+xml")
    for path in ("/", "/launcher", "/widget.js", "/demo.css", "/favicon.ico"):
        assert httpx.head(api.url + path).status_code == 200, path


def test_the_accent_colour_and_title_come_from_the_script_tag(
    page: Page, api: Served, host: tuple[Served, HostPages]
) -> None:
    served, pages = host
    html = embed_page(api.url).replace(
        'data-api="', 'data-title="Ask our mentors" data-accent="rgb(170, 0, 0)" data-api="'
    )
    pages.pages["/themed.html"] = (html, {})
    pages.pages["/host.css"] = ("", {})
    page.goto(served.url + "/themed.html")
    expect(page.get_by_role("button", name="Ask")).to_be_visible()
    assert page.errors == []  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name="Ask our mentors")).to_be_visible()
    send = page.get_by_role("button", name="Ask")
    assert send.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(170, 0, 0)"
    # Not a plain colour: ignored, the default accent stays (var() would pass CSS.supports
    # and could carry url(), which loads).
    for bad in ("red;}*{display:none", "var(--x, url(http://127.0.0.1:9/track))"):
        pages.pages["/bad.html"] = (html.replace("rgb(170, 0, 0)", bad), {})
        page.goto(served.url + "/bad.html")
        assert send.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(9, 105, 218)"
        assert send.evaluate("b => getComputedStyle(b).backgroundImage") == "none"


def test_a_long_title_wraps_and_the_close_button_stays_in_reach(
    browser: Browser, api: Served, host: tuple[Served, HostPages]
) -> None:
    served, pages = host
    html = embed_page(api.url).replace(
        'data-api="', f'data-mode="launcher" data-title="{"W" * 79}😀" data-api="'
    )
    pages.pages["/long.html"] = (html, {})
    pages.pages["/host.css"] = ("", {})
    context = browser.new_context(viewport={"width": 360, "height": 740})
    shown = context.new_page()
    shown.goto(served.url + "/long.html")
    shown.get_by_role("button", name="Open chat").click()
    close = shown.get_by_role("button", name="Close chat", exact=True)
    assert in_view(shown, close)
    heading = shown.get_by_role("heading").inner_text()
    assert heading.endswith("😀") and len(heading) == 80  # cut by characters, not halves
    assert shown.evaluate("document.documentElement.scrollWidth") <= 360
    context.close()


@pytest.mark.model
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", ["inline", "launcher"])
def test_screenshots_of_the_demo_pages(
    browser: Browser, tmp_path: Path, real_embedder: OnnxEmbedder, mode: str, size: str
) -> None:
    """Set CAREERBOT_UPDATE_SCREENSHOT=1 to refresh docs/widget-*.png for the README."""
    settings = Settings(corpus_dir=CORPUS, index_dir=tmp_path / "index")
    build_index(settings, real_embedder)
    served = Served(create_app(settings, real_embedder))
    try:
        shown = opened(browser, served, mode, size)
        ask(shown, "How many core values interviews does Airbnb do?")
        first = shown.locator("article.card").first
        expect(first).to_contain_text("Chirag Mahapatra")
        assert in_view(shown, shown.locator(".asked").last)
        assert in_view(shown, first, whole=False)
        name = f"widget-{mode}-{size.split('x')[0]}.png"
        target = ROOT / "docs" / name
        if not os.environ.get("CAREERBOT_UPDATE_SCREENSHOT"):
            target = tmp_path / name
        shown.screenshot(path=str(target))
        assert target.stat().st_size > 10_000
        assert shown.errors == []  # type: ignore[attr-defined]
        shown.context.close()
    finally:
        served.stop()
