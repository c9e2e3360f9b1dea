"""Headers, CORS strictness, rate limits and overload."""

import asyncio
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from careerbot.api import create_app
from careerbot.config import Settings
from careerbot.guard import DEMO_PAGE_POLICY
from careerbot.index import build_index
from tests.conftest import FakeEmbedder
from tests.test_api import BlockingEmbedder, one_question_stuck

ALLOWED = "https://careers.example"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type",
}


@pytest.fixture
def built(settings: Settings, fake_embedder: FakeEmbedder) -> Settings:
    build_index(settings, fake_embedder)
    return settings.model_copy(update={"cors_origins": ALLOWED})


@pytest.fixture
def client(built: Settings, fake_embedder: FakeEmbedder) -> Iterator[TestClient]:
    with TestClient(create_app(built, fake_embedder)) as client:
        yield client


def test_nosniff_everywhere_no_store_on_answers_csp_on_the_demo_page(client: TestClient) -> None:
    responses = {
        "/": client.get("/"),
        "/widget.js": client.get("/widget.js"),
        "/health": client.get("/health"),
        "/missing": client.get("/missing"),
        "/ask": client.post("/ask", json={"question": "hiring"}),
        "/ask 422": client.post("/ask", json={"question": ""}),
    }
    for name, response in responses.items():
        assert response.headers["x-content-type-options"] == "nosniff", name
    for name in ("/health", "/ask", "/ask 422"):
        assert responses[name].headers["cache-control"] == "no-store", name
    assert responses["/"].headers["content-security-policy"] == DEMO_PAGE_POLICY
    assert "'unsafe-inline'" not in DEMO_PAGE_POLICY


def test_preflight_from_an_allowed_origin_echoes_it_with_vary(client: TestClient) -> None:
    response = client.options("/ask", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "Origin" in response.headers["vary"]
    simple = client.post("/ask", json={"question": "hiring"}, headers={"Origin": ALLOWED})
    assert simple.headers["access-control-allow-origin"] == ALLOWED
    assert "Origin" in simple.headers["vary"]


@pytest.mark.parametrize(
    "origin",
    ["null", "http://careers.example", "https://evil.example", "https://careers.example.evil"],
)
def test_other_origins_get_no_cors_headers_at_all(client: TestClient, origin: str) -> None:
    for response in (
        client.options("/ask", headers={"Origin": origin, **PREFLIGHT}),
        client.post("/ask", json={"question": "hiring"}, headers={"Origin": origin}),
    ):
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]
    # The refused preflight is an error like any other: JSON, in the one shape.
    refused = client.options("/ask", headers={"Origin": origin, **PREFLIGHT})
    assert refused.status_code == 400
    assert refused.json() == {"detail": "Disallowed CORS origin", "errors": []}


def ask_from(
    app: FastAPI, client_ip: str, count: int, forwarded: Callable[[int], str] | None = None
) -> list[httpx.Response]:
    """Questions from one socket address, each with an X-Forwarded-For header if given."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=(client_ip, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return [
                await http.post(
                    "/ask",
                    json={"question": "hiring"},
                    headers={"X-Forwarded-For": forwarded(n)} if forwarded else {},
                )
                for n in range(count)
            ]

    return asyncio.run(run())


def statuses(responses: list[httpx.Response]) -> list[int]:
    return [response.status_code for response in responses]


def test_forwarded_addresses_are_ignored_unless_the_proxy_is_trusted(
    built: Settings, fake_embedder: FakeEmbedder
) -> None:
    limited = built.model_copy(update={"rate_limit_per_minute": 6, "rate_limit_burst": 2})
    app = create_app(limited, fake_embedder)
    with TestClient(app):
        spoofed = ask_from(app, "127.0.0.1", 4, lambda n: f"10.9.0.{n}")
        assert statuses(spoofed) == [200, 200, 429, 429]
    behind = limited.model_copy(update={"trusted_proxies": "127.0.0.1, ::1"})
    app = create_app(behind, fake_embedder)
    with TestClient(app):
        assert statuses(ask_from(app, "127.0.0.1", 4, lambda n: f"10.9.0.{n}")) == [200] * 4
        # A client the proxy forwards is one client, whatever it claims behind the proxy.
        same = ask_from(app, "127.0.0.1", 3, lambda n: f"10.8.0.{n}, 10.7.7.7")
        assert statuses(same) == [200, 200, 429]
        # Garbage from a trusted proxy is not an address: all of it shares one bucket.
        garbage = ask_from(app, "127.0.0.1", 3, lambda n: f"not-an-address-{n}")
        assert statuses(garbage) == [200, 200, 429]
        # An untrusted socket address is believed as it is.
        assert statuses(ask_from(app, "10.1.1.1", 3, lambda n: f"10.6.0.{n}")) == [200, 200, 429]


def test_a_trusted_network_written_with_host_bits_is_trusted(
    built: Settings, fake_embedder: FakeEmbedder
) -> None:
    behind = built.model_copy(
        update={"rate_limit_per_minute": 6, "rate_limit_burst": 2}
    ).model_copy(
        update={"trusted_proxies": Settings(trusted_proxies="127.0.0.1/8").trusted_proxies}
    )
    assert behind.trusted_proxy_list == ["127.0.0.0/8"]
    app = create_app(behind, fake_embedder)
    with TestClient(app):
        assert statuses(ask_from(app, "127.0.0.9", 4, lambda n: f"10.9.0.{n}")) == [200] * 4


@pytest.mark.parametrize(
    "written",
    [
        ["10.4.0.1", "::ffff:10.4.0.1", "::ffff:a04:1"],  # one IPv4 client, three spellings
        ["2001:db8::1", "2001:db8::2", "2001:db8::ffff:1"],  # one IPv6 host's /64
    ],
)
def test_one_client_written_several_ways_is_one_client(
    built: Settings, fake_embedder: FakeEmbedder, written: list[str]
) -> None:
    limited = built.model_copy(update={"rate_limit_per_minute": 6, "rate_limit_burst": 2})
    app = create_app(limited, fake_embedder)
    with TestClient(app):
        got = [statuses(ask_from(app, address, 1))[0] for address in written]
    assert got == [200, 200, 429]


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    with pytest.raises(ValueError, match="'nginx' is not an IP address or network"):
        Settings(trusted_proxies="10.0.0.0/8, nginx")


def test_a_client_over_its_rate_gets_429_with_retry_after_others_do_not(
    built: Settings, fake_embedder: FakeEmbedder
) -> None:
    limited = built.model_copy(update={"rate_limit_per_minute": 6, "rate_limit_burst": 2})
    app = create_app(limited, fake_embedder)
    with TestClient(app):
        statuses = [r.status_code for r in ask_from(app, "10.0.0.1", 3)]
        assert statuses == [200, 200, 429]
        refused = ask_from(app, "10.0.0.1", 1)[0]
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 10
        assert "at most 6 a minute" in refused.json()["detail"]
        assert [r.status_code for r in ask_from(app, "10.0.0.2", 2)] == [200, 200]


def test_overload_gets_an_immediate_503_not_a_wait(built: Settings) -> None:
    embedder = BlockingEmbedder()
    busy = built.model_copy(update={"max_in_progress": 1})
    app = create_app(busy, embedder)

    async def scenario() -> None:
        async with one_question_stuck(app, embedder) as (http, first):
            second = await asyncio.wait_for(http.post("/ask", json={"question": "tips"}), timeout=2)
            assert second.status_code == 503
            assert second.headers["retry-after"] == "1"
            assert (await http.get("/health")).status_code == 200
            embedder.release.set()
            assert (await first).status_code == 200
            again = await http.post("/ask", json={"question": "tips"})
            assert again.status_code == 200

    asyncio.run(scenario())
