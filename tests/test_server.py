"""The HTTP server's own limits, on a real socket: slow and oversized requests."""

import contextlib
import gc
import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from careerbot.api import create_app
from careerbot.config import Settings
from careerbot.embedding import Text, Vectors
from careerbot.index import build_index
from careerbot.server import server_config
from tests.conftest import FakeEmbedder

DEADLINE = 0.5
HEADER_LIMIT = 1024
ASK = b'{"question": "hiring"}'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(settings: Settings, embedder: FakeEmbedder) -> Iterator[tuple[str, FastAPI]]:
    """careerbot on a loopback port, with a short request deadline and two question
    slots: its address and its app."""
    build_index(settings, embedder)
    limited = settings.model_copy(
        update={
            "request_seconds": DEADLINE,
            "max_in_progress": 2,
            "max_header_bytes": HEADER_LIMIT,
            "port": free_port(),
        }
    )
    app = create_app(limited, embedder)
    running = uvicorn.Server(server_config(app, limited, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield f"127.0.0.1:{limited.port}", app
    finally:
        running.should_exit = True
        thread.join(10)


@pytest.fixture
def server(settings: Settings, fake_embedder: FakeEmbedder) -> Iterator[str]:
    with serving(settings, fake_embedder) as (address, _):
        yield address


def connect(address: str) -> socket.socket:
    host, port = address.split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def reply_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def stalled_ask(address: str) -> socket.socket:
    """A question whose body says 100 bytes and stops after 12."""
    sock = connect(address)
    head = b"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    sock.sendall(head + b"Content-Length: 100\r\n\r\n" + ASK[:12])
    return sock


def test_stalled_bodies_hold_no_slot_and_are_cut_off_with_408(server: str) -> None:
    stalled = [stalled_ask(server) for _ in range(5)]  # more than the two slots
    time.sleep(0.1)
    started = time.monotonic()
    with httpx.Client(base_url=f"http://{server}") as http:
        answers = [http.post("/ask", json={"question": "hiring"}) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    for sock in stalled:
        assert reply_of(sock).startswith(b"HTTP/1.1 408 ")
        sock.close()
    assert time.monotonic() - started < DEADLINE + 2


class Gated(FakeEmbedder):
    """Embeds only while its gate is open; notes each batch as it arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.gate, self.arrived = threading.Event(), threading.Event()
        self.gate.set()

    def embed(self, texts: Sequence[Text], progress: bool = False) -> Vectors:
        self.arrived.set()
        assert self.gate.wait(10)
        return super().embed(texts, progress)


def ask_bytes(question: str) -> bytes:
    body = json.dumps({"question": question}).encode()
    head = b"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def asked(address: str, question: str) -> socket.socket:
    """A connection that has sent a whole question."""
    sock = connect(address)
    sock.sendall(ask_bytes(question))
    return sock


@contextlib.contextmanager
def held_in_the_model(settings: Settings) -> Iterator[tuple[str, FastAPI, Gated]]:
    """A server whose model holds each batch until the gate opens (closed now)."""
    gated = Gated()
    with serving(settings, gated) as (address, app):
        gated.gate.clear()
        gated.arrived.clear()
        try:
            yield address, app, gated
        finally:
            gated.gate.set()


def until(done: Any, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done()


def test_a_client_that_hangs_up_gives_back_its_slot_and_its_place_in_the_queue(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with held_in_the_model(settings) as (address, app, gated):
        slots: Any = app.state.slots
        first = asked(address, "interview tips for candidates")
        assert gated.arrived.wait(5)  # in the model, held there
        second = asked(address, "giraffes and zebras")
        until(lambda: slots.used == 2)  # queued behind it
        first.close()
        second.close()
        until(lambda: slots.used == 0)  # both slots back, the model still holding the first
        gated.gate.set()
        with httpx.Client(base_url=f"http://{address}") as http:
            assert http.post("/ask", json={"question": "hiring"}).status_code == 200
            # Only the answered question is recorded.
            until(lambda: http.get("/health").json()["question_log"]["written"] >= 1)
            time.sleep(0.2)
            assert http.get("/health").json()["question_log"]["written"] == 1
        # The queued question gave up its place: the model never read it.
        assert not any("giraffes" in str(text) for call in gated.calls for text in call)
    gc.collect()  # what was given up is read, not left for asyncio to log
    assert "never retrieved" not in caplog.text


def test_headers_that_never_finish_get_408(server: str) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /ask HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        assert reply_of(sock).startswith(b"HTTP/1.1 408 ")
    assert DEADLINE * 0.8 < time.monotonic() - started < DEADLINE + 2


def test_a_connection_that_sends_nothing_is_closed(server: str) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        reply_of(sock)
    assert time.monotonic() - started < DEADLINE + 2


def test_headers_over_the_limit_get_431_at_once(server: str) -> None:
    big = b"X-Big: " + b"a" * 50_000 + b"\r\n"
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
        assert reply_of(sock).startswith(b"HTTP/1.1 431 ")


def test_headers_trickled_past_the_limit_get_431(server: str) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Long: ")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(40):  # 40 KiB of one header value, 1 KiB at a time
                sock.sendall(b"a" * 1024)
                time.sleep(0.005)
        assert reply_of(sock).startswith(b"HTTP/1.1 431 ")


def test_keep_alive_requests_are_not_cut_off_by_the_deadline(server: str) -> None:
    with httpx.Client(base_url=f"http://{server}") as http:
        for _ in range(3):
            assert http.get("/health").status_code == 200
            time.sleep(DEADLINE * 0.8)  # the deadline runs per request, not per connection
        assert http.post("/ask", json={"question": "hiring"}).status_code == 200


def test_a_body_and_pipelined_requests_do_not_count_as_header_bytes(server: str) -> None:
    question = b'{"question": "' + b"how do I get hired " * 50 + b'"}'  # 950 bytes of body
    head = b"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    one = head + b"Content-Length: %d\r\n\r\n" % len(question) + question
    health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with connect(server) as sock:
        sock.sendall(one * 2 + health * 40 + last)  # 3.7 KiB in one write, limit 1 KiB
        replies = reply_of(sock)
    assert replies.count(b"HTTP/1.1 200 ") == 43 and b" 431 " not in replies


def test_pipelined_questions_whose_client_hangs_up_give_back_their_slots(
    settings: Settings,
) -> None:
    """uvicorn tells only the newest of a connection's requests that the client has gone:
    the one being answered went on, its slot held, and wrote to the closed socket."""
    with held_in_the_model(settings) as (address, app, gated):
        with connect(address) as sock:
            sock.sendall(ask_bytes("interview tips") * 3)
            assert gated.arrived.wait(5)  # the first in the model, two waiting behind it
        slots: Any = app.state.slots
        until(lambda: slots.used == 0)
        gated.gate.set()


def test_a_connection_with_too_many_requests_waiting_is_closed(server: str) -> None:
    """A client that sends requests and reads no answers (HTTP/1.1 pipelining) would have
    uvicorn read and hold every one: past 64 waiting behind the one being answered, the
    connection is closed, with no reply that could pass for an answer."""
    health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with connect(server) as sock:
        sock.sendall(health * 64 + last)  # one answered, 64 waiting
        assert reply_of(sock).count(b"HTTP/1.1 200 ") == 65
    with connect(server) as sock:
        sock.sendall(health * 65 + last)  # one answered, 65 waiting
        replies = reply_of(sock)
    assert replies.count(b"HTTP/1.1 200 ") < 66 and b"HTTP/1.1 4" not in replies
    with httpx.Client(base_url=f"http://{server}") as http:  # others are served as before
        assert http.get("/health").status_code == 200


def test_an_error_never_answers_for_an_earlier_request(settings: Settings) -> None:
    """Headers over the limit on a request pipelined behind one still being answered: a
    431 then would read as that request's answer, so the connection is closed instead."""
    with held_in_the_model(settings) as (address, _, gated):
        big = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n"
        with connect(address) as sock:
            sock.sendall(ask_bytes("interview tips"))
            assert gated.arrived.wait(5)  # in the model, held there
            sock.sendall(big)
            time.sleep(0.3)
            gated.gate.set()
            replies = reply_of(sock)
        assert b" 431 " not in replies


@pytest.mark.parametrize("wanted", [False, True])
def test_the_access_log_is_off_unless_asked_for(wanted: bool) -> None:
    settings = Settings(access_log=wanted) if wanted else Settings()
    assert server_config(object(), settings).access_log is wanted
