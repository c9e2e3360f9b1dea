import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from careerbot import CareerbotError
from careerbot.api import create_app
from careerbot.config import Settings
from careerbot.embedding import OnnxEmbedder, Vectors
from careerbot.index import build_index
from careerbot.rules import QUESTION_PATTERN, question_text
from tests.conftest import FakeEmbedder


@pytest.fixture
def built(settings: Settings, fake_embedder: FakeEmbedder) -> Settings:
    build_index(settings, fake_embedder)
    return settings


@pytest.fixture
def client(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[TestClient]:
    with TestClient(create_app(built, fake_embedder)) as client:
        yield client


def test_ask_returns_attributed_answers_in_the_contract_shape(client: TestClient) -> None:
    response = client.post("/ask", json={"question": "core values interviews at Airbnb"})
    assert response.status_code == 200
    body = response.json()
    assert body["question"] == "core values interviews at Airbnb"
    assert body["answered"] is True
    assert body["suggestions"] == []
    assert 1 <= len(body["answers"]) <= 3
    for answer in body["answers"]:
        assert set(answer) == {
            "id", "speaker", "question", "text", "passage", "score", "why", "source"
        }  # fmt: skip
        assert set(answer["speaker"]) == {"id", "name", "role"}
        assert answer["passage"] in answer["text"]
        assert 0 <= answer["score"] <= 1
        assert set(answer["why"]) == {"semantic", "lexical", "matched_terms"}
        assert answer["source"]["document"] == "corpus/ml-engineer-career-qa.txt"
        first, last = answer["source"]["lines"]
        assert 1 <= first <= last
    scores = [answer["score"] for answer in body["answers"]]
    assert scores == sorted(scores, reverse=True)


def sources_after_rebuild(settings: Settings, embedder: FakeEmbedder) -> list[dict[str, Any]]:
    """The answers /ask gives for one question, from an index built anew."""
    build_index(settings, embedder)
    with TestClient(create_app(settings, embedder)) as client:
        answers = client.post("/ask", json={"question": "hiring process"}).json()["answers"]
    assert answers
    return list(answers)


def test_ask_answers_carry_the_interview_title_date_and_url(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    metadata = settings.corpus_dir / "ml-engineer-career-qa.speakers.toml"
    text = metadata.read_text(encoding="utf-8")
    title = text[text.index("title = ") : text.index("\n", text.index("title = "))]
    interview = f'{title}\ndate = 2019-01-15\nurl = "https://example.org/ml-qa"'
    metadata.write_text(text.replace(title, interview), encoding="utf-8")
    for answer in sources_after_rebuild(settings, fake_embedder):
        source = answer["source"]
        assert source["title"] == (
            "Machine learning engineer careers: Q&A with Airbnb and SurveyMonkey engineers"
        )
        assert (source["date"], source["url"]) == ("2019-01-15", "https://example.org/ml-qa")


def test_ask_answers_without_interview_metadata_have_null_title_date_and_url(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    metadata = settings.corpus_dir / "ml-engineer-career-qa.speakers.toml"
    text = metadata.read_text(encoding="utf-8")
    metadata.write_text(text[text.index("\n# Who speaks") :], encoding="utf-8")
    for answer in sources_after_rebuild(settings, fake_embedder):
        source = answer["source"]
        assert set(source) == {"document", "lines", "title", "date", "url"}
        assert (source["title"], source["date"], source["url"]) == (None, None, None)


def test_ask_question_is_trimmed(client: TestClient) -> None:
    response = client.post("/ask", json={"question": "  hiring process \n"})
    assert response.json()["question"] == "hiring process"
    # Of characters that show nothing too (a pasted BOM), but not within the question.
    response = client.post("/ask", json={"question": "\ufeff\u200bhiring\u200dprocess\u2060 "})
    assert response.json()["question"] == "hiring\u200dprocess"


@pytest.mark.parametrize("top_k", [1, 5, 10])
def test_at_most_top_k_answers_one_per_question_and_speaker(client: TestClient, top_k: int) -> None:
    answers = client.post("/ask", json={"question": "machine learning", "top_k": top_k}).json()
    ids = [answer["id"] for answer in answers["answers"]]
    # The corpus has 9 answers: asking for 10 must not pad with FAISS's -1 results.
    assert len(ids) == min(top_k, 9)
    assert len(set(ids)) == len(ids)


def test_speaker_filter_by_name_or_id(client: TestClient) -> None:
    for speaker in ("Shubhankar Jain", "shubhankar-jain", "SHUBHANKAR JAIN"):
        body = client.post("/ask", json={"question": "interview", "speaker": speaker, "top_k": 10})
        names = {answer["speaker"]["name"] for answer in body.json()["answers"]}
        assert names == {"Shubhankar Jain"}


def test_unanswered_question_offers_the_closest_interview_questions(
    built: Settings, fake_embedder: FakeEmbedder
) -> None:
    strict = built.model_copy(update={"min_score": 1.0})
    with TestClient(create_app(strict, fake_embedder)) as client:
        body = client.post("/ask", json={"question": "tips for the interview process"}).json()
    assert body["answered"] is False
    assert body["answers"] == []
    assert body["suggestions"][0] == "What are some tips for the interview process?"
    assert len(body["suggestions"]) == 3


BAD_REQUESTS = {
    "empty question": ({"question": ""}, "question: must not be empty"),
    "whitespace question": ({"question": " \t\n "}, "question: must not be empty"),
    "invisible question": ({"question": "\u200b \ufeff\u2060"}, "question: must not be empty"),
    "over-long question": ({"question": "a" * 1001}, "question: must be at most 1000 characters"),
    "missing question": ({"top_k": 3}, "question: is required"),
    "question not text": ({"question": 5}, "question: must be text"),
    "top_k as text": ({"question": "x", "top_k": "5"}, "top_k: must be a whole number"),
    "top_k as boolean": ({"question": "x", "top_k": True}, "top_k: must be a whole number"),
    "top_k as fraction": ({"question": "x", "top_k": 2.5}, "top_k: must be a whole number"),
    "top_k zero": ({"question": "x", "top_k": 0}, "top_k: must be at least 1"),
    "top_k eleven": ({"question": "x", "top_k": 11}, "top_k: must be at most 10"),
    "unknown field": ({"question": "x", "k": 3}, "k: unknown field; the fields are question"),
    "unknown speaker": (
        {"question": "x", "speaker": "Mallory"},
        "unknown speaker 'Mallory'; known speakers: Chirag Mahapatra (chirag-mahapatra), ",
    ),
    "body a list": (["question"], "body: must be a JSON object"),
    "question a list": ({"question": ["a"]}, "question: must be text"),
    "question true": ({"question": True}, "question: must be text"),
    "question with NUL": ({"question": "hi\u0000there"}, "question: must not contain control"),
    "question with escape": ({"question": "hi\u001b[31m"}, "question: must not contain control"),
    "top_k 5.0": ({"question": "x", "top_k": 5.0}, "top_k: must be a whole number"),
    "top_k negative": ({"question": "x", "top_k": -1}, "top_k: must be at least 1"),
    "top_k 10^9": ({"question": "x", "top_k": 10**9}, "top_k: must be at most 10"),
    "top_k 2^70": ({"question": "x", "top_k": 2**70}, "top_k: must be at most 10"),
    "speaker a number": ({"question": "x", "speaker": 7}, "speaker: must be text"),
    "speaker too long": ({"question": "x", "speaker": "M" * 201}, "speaker: must be at most 200 "),
}


@pytest.mark.parametrize(
    "question",
    ["", " ", "\u200b", " \ufeff\u2060 ", "\u200d\n", "a", "\u200ba", "a\u200c", "\u00a0x"],
)
def test_the_schema_pattern_and_the_question_rule_agree(question: str) -> None:
    try:
        question_text(question)
        accepted = True
    except ValueError:
        accepted = False
    assert bool(re.fullmatch(QUESTION_PATTERN, question)) == accepted


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_request_gets_422_with_an_actionable_message(client: TestClient, case: str) -> None:
    body, message = BAD_REQUESTS[case]
    response = client.post("/ask", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(message)
    assert client.get("/health").status_code == 200


def test_error_messages_do_not_echo_large_input(client: TestClient) -> None:
    for body in ({"question": "x" * 5000}, {"question": "x", "speaker": "y" * 190}):
        response = client.post("/ask", json=body)
        assert response.status_code == 422
        assert "x" * 101 not in response.text and "y" * 101 not in response.text


RAW_BODIES = {
    "invalid JSON": b'{"question": ',
    "invalid UTF-8": b'{"question": "\xff\xfe"}',
    "lone surrogate in question": b'{"question": "\\ud800"}',
    "lone surrogate in speaker": b'{"question": "hi", "speaker": "\\udfff"}',
    "lone surrogate as unknown field": b'{"question": "hi", "\\ud800": 1}',
    "lone surrogate with wrong type": b'{"question": ["\\ud800"]}',
    "not JSON at all": b"question=hello",
    "empty body": b"",
}


def test_a_lone_surrogate_in_any_text_field_is_refused_in_plain_words(client: TestClient) -> None:
    response = client.post(
        "/ask",
        content=RAW_BODIES["lone surrogate in speaker"],
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert (
        response.json()["detail"] == "speaker: contains characters that are not valid Unicode text"
    )


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("route", ["/ask", "/feedback"])
def test_json_in_utf16_or_utf32_is_refused_although_python_could_read_it(
    client: TestClient, fake_embedder: FakeEmbedder, route: str, encoding: str
) -> None:
    body = json.dumps({"question": "how do I get hired?"}).encode(encoding)
    calls = len(fake_embedder.calls)
    response = client.post(route, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail == NOT_UTF8
    assert response.json()["errors"] == [{"field": "body", "message": detail}]
    assert len(fake_embedder.calls) == calls


NOT_UTF8 = (
    "the body cannot be read as JSON text in UTF-8 (it holds bytes that are not UTF-8, or NUL"
    " bytes, as UTF-16 and UTF-32 text does)"
)


def test_json_sent_as_a_form_is_told_to_say_json(client: TestClient) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = client.post("/ask", content=b'{"question": "hi"}', headers=form)
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "body: must be JSON sent with Content-Type: application/json"
    )


def test_a_get_with_a_body_that_is_not_utf8_is_answered_as_without_one(
    client: TestClient,
) -> None:
    assert client.request("GET", "/health", content=b"\xff\x00").status_code == 200
    assert client.request("GET", "/no-such-route", content=b"\xff").status_code == 404


def test_a_raw_nul_byte_is_refused_and_an_escaped_one_is_a_control_character(
    client: TestClient,
) -> None:
    json_body = {"Content-Type": "application/json"}
    raw = client.post("/ask", content=b'{"question": "a\x00b"}', headers=json_body)
    assert raw.status_code == 400 and raw.json()["detail"] == NOT_UTF8
    escaped = client.post("/ask", content=b'{"question": "a\\u0000b"}', headers=json_body)
    assert escaped.status_code == 422
    assert escaped.json()["detail"] == "question: must not contain control characters such as NUL"


def test_a_utf8_byte_order_mark_is_ignored(client: TestClient) -> None:
    body = json.dumps({"question": "how do I get hired?"}).encode("utf-8-sig")
    response = client.post("/ask", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body", [b"[" * 8000 + b"]" * 8000, b'{"question": "x", "top_k": 1' + b"0" * 4400 + b"}"]
)
def test_json_too_deep_or_with_a_number_too_long_says_so(client: TestClient, body: bytes) -> None:
    response = client.post("/ask", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "nested too deep, or a number too long" in response.json()["detail"]


@pytest.mark.parametrize("case", RAW_BODIES)
def test_undecodable_body_is_a_4xx_never_a_5xx(client: TestClient, case: str) -> None:
    response = client.post(
        "/ask", content=RAW_BODIES[case], headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422)
    assert "Traceback" not in response.text and "/" not in response.json()["detail"]
    assert client.get("/health").status_code == 200


def test_every_refusal_has_the_error_shape(client: TestClient) -> None:
    json_body = {"Content-Type": "application/json"}
    latin = {"Content-Type": "application/json; charset=latin-1"}
    for response, status in [
        (client.post("/ask", content=RAW_BODIES["invalid UTF-8"], headers=json_body), 400),
        (
            client.post(
                "/ask", content='{"question": "caf\u00e9"}'.encode("latin-1"), headers=latin
            ),
            400,
        ),
        (client.get("/no-such-route"), 404),
        (client.get("/ask"), 405),
    ]:
        assert response.status_code == status
        body = response.json()
        assert set(body) == {"detail", "errors"} and body["detail"], body
        if status == 400:
            assert body["detail"].startswith("the body cannot be read as JSON text in UTF-8")
            assert body["errors"] == [{"field": "body", "message": body["detail"]}]
    assert client.get("/ask").headers["allow"] == "POST"


@pytest.mark.parametrize("size", [100 * 1024, 1024 * 1024])
def test_large_bodies_get_413_without_running_the_encoder(
    client: TestClient, fake_embedder: FakeEmbedder, size: int
) -> None:
    calls = len(fake_embedder.calls)
    body = b'{"question": "' + b"a" * size + b'"}'
    response = client.post("/ask", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert len(response.content) < 200
    assert len(fake_embedder.calls) == calls


def test_text_plain_and_get_are_refused_with_4xx(client: TestClient) -> None:
    plain = client.post(
        "/ask", content=b'{"question": "hiring"}', headers={"Content-Type": "text/plain"}
    )
    assert plain.status_code == 422
    assert plain.json()["detail"] == "body: must be JSON sent with Content-Type: application/json"
    wrong_method = client.get("/ask")
    assert wrong_method.status_code == 405


def test_body_over_16_kib_gets_413(client: TestClient) -> None:
    big = b'{"question": "' + b"a" * (16 * 1024) + b'"}'
    response = client.post("/ask", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["detail"] == "request body is over 16384 bytes"


def test_chunked_body_over_16_kib_gets_413_without_a_content_length(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(20):
            yield b"a" * 1024
        yield b'"}'

    response = client.post("/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_body_of_exactly_16_kib_is_read(client: TestClient) -> None:
    body = b'{"question": "' + b"a" * (16 * 1024 - 16) + b'"}'
    assert len(body) == 16 * 1024
    response = client.post("/ask", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422  # read and validated: the question is over 1000


def test_side_routes(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert (health["documents"], health["speakers"], health["answers"]) == (1, 2, 9)
    assert health["model"] == "fake-model"
    speakers = client.get("/speakers").json()
    assert speakers == [
        {"id": "chirag-mahapatra", "name": "Chirag Mahapatra",
         "role": "Machine learning engineer at Airbnb", "answers": 6},
        {"id": "shubhankar-jain", "name": "Shubhankar Jain",
         "role": "Machine learning engineer at SurveyMonkey", "answers": 3},
    ]  # fmt: skip
    topics = client.get("/topics").json()
    assert len(topics) == 7
    assert topics[0]["question"].startswith("How does the role of machine learning engineer")
    assert [s["name"] for s in topics[0]["speakers"]] == ["Chirag Mahapatra", "Shubhankar Jain"]
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/widget.js"' in page.text
    script = client.get("/widget.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert client.get("/docs").status_code == 200


def test_openapi_lists_the_contract_and_its_errors(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    ask = schema["paths"]["/ask"]["post"]
    assert set(ask["responses"]) == {"200", "400", "413", "422", "429", "503"}
    assert ask["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorResponse"
    )
    request = schema["components"]["schemas"]["AskRequest"]
    assert request["additionalProperties"] is False
    assert request["required"] == ["question"]
    assert request["properties"]["question"]["maxLength"] == 1000
    assert (
        request["properties"]["top_k"]["minimum"],
        request["properties"]["top_k"]["maximum"],
    ) == (1, 10)
    assert ask["summary"] and "Answer a career question" in ask["description"]
    source = schema["components"]["schemas"]["Source"]
    assert source["required"] == ["document", "lines"]
    assert all(source["properties"][key]["description"] for key in ("title", "date", "url"))
    for path in ("/health", "/speakers", "/topics"):
        assert schema["paths"][path]["get"]["description"]


def test_cors_is_same_origin_only_by_default(client: TestClient) -> None:
    response = client.post(
        "/ask", json={"question": "x"}, headers={"Origin": "https://elsewhere.example"}
    )
    assert "access-control-allow-origin" not in response.headers


def test_cors_allows_configured_origins_only(built: Settings, fake_embedder: FakeEmbedder) -> None:
    allowed = built.model_copy(update={"cors_origins": "https://a.example, https://b.example"})
    with TestClient(create_app(allowed, fake_embedder)) as client:
        preflight = {"Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type"}  # fmt: skip
        ok = client.options("/ask", headers={"Origin": "https://b.example", **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://b.example"
        assert "POST" in ok.headers["access-control-allow-methods"]
        assert "DELETE" not in ok.headers["access-control-allow-methods"]
        denied = client.options("/ask", headers={"Origin": "http://a.example", **preflight})
        assert "access-control-allow-origin" not in denied.headers
        simple = client.post(
            "/ask", json={"question": "x"}, headers={"Origin": "https://a.example"}
        )
        assert simple.headers["access-control-allow-origin"] == "https://a.example"


class BlockingEmbedder(FakeEmbedder):
    """Holds every question embedding until released, like a very slow model."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()
        self.blocking = False

    def embed(self, texts: Sequence[str], progress: bool = False) -> Vectors:
        if self.blocking:
            self.entered.set()
            self.release.wait(10)
        return super().embed(texts, progress)


@contextlib.asynccontextmanager
async def one_question_stuck(
    app: FastAPI, embedder: BlockingEmbedder
) -> AsyncIterator[tuple[httpx.AsyncClient, "asyncio.Task[httpx.Response]"]]:
    """The app running, a client for it, and one question stuck in the encoder until
    embedder.release is set."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            embedder.blocking = True
            stuck = asyncio.create_task(http.post("/ask", json={"question": "hiring"}))
            await asyncio.to_thread(embedder.entered.wait, 5)
            yield http, stuck


def test_a_slow_question_does_not_stall_health(built: Settings) -> None:
    embedder = BlockingEmbedder()
    app = create_app(built, embedder)

    async def scenario() -> None:
        async with one_question_stuck(app, embedder) as (http, slow):
            health = await asyncio.wait_for(http.get("/health"), timeout=5)
            assert health.status_code == 200
            assert not slow.done()
            embedder.release.set()
            assert (await slow).status_code == 200

    asyncio.run(scenario())


@pytest.mark.model
def test_real_model_answers_over_http(
    tmp_path: Path, settings: Settings, real_embedder: OnnxEmbedder
) -> None:
    build_index(settings, real_embedder)
    with TestClient(create_app(settings, real_embedder)) as client:
        body = client.post(
            "/ask", json={"question": "how do I move from data science to ML engineering?"}
        ).json()
    best = body["answers"][0]
    assert best["id"] == "ml-engineer-career-qa/2/chirag-mahapatra"
    assert (
        best["question"]
        == "How can a data scientist transition to a machine learning engineer role?"
    )
    assert best["passage"] in best["text"]
    assert 0 < best["score"] <= 1


def test_an_app_that_stops_leaves_no_encoder_thread_behind(
    built: Settings, fake_embedder: FakeEmbedder
) -> None:
    def encoders() -> int:
        return sum(t.name.startswith("careerbot-encoder") for t in threading.enumerate())

    before = encoders()
    for _ in range(3):
        with TestClient(create_app(built, fake_embedder)) as started:
            assert started.post("/ask", json={"question": "hiring"}).status_code == 200
            assert encoders() == before + 1
    # Nor one whose start fails (no index), and a request after shutdown is a 503.
    empty = built.model_copy(update={"index_dir": built.index_dir.parent / "none"})
    with pytest.raises(CareerbotError), TestClient(create_app(empty, fake_embedder)):
        pass
    stopped = TestClient(create_app(built, fake_embedder), raise_server_exceptions=False)
    with stopped:
        pass
    late = stopped.post("/ask", json={"question": "hiring"})
    assert late.status_code == 503 and "shutting down" in late.json()["detail"]
    deadline = time.monotonic() + 5
    while encoders() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert encoders() == before
