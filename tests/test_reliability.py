"""Hot index swap and start-up refusals."""

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from careerbot import cli
from careerbot.api import create_app
from careerbot.config import Settings
from careerbot.index import build_index
from tests.conftest import FakeEmbedder, served_version
from tests.test_cli import dirs


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def live(settings: Settings, fake_embedder: FakeEmbedder) -> Iterator[tuple[TestClient, str]]:
    """A running app that checks the index pointer every 50 ms, and the version it serves."""
    build_index(settings, fake_embedder)
    first = served_version(settings.index_dir).name
    watching = settings.model_copy(update={"reload_seconds": 0.05})
    with TestClient(create_app(watching, fake_embedder)) as client:
        yield client, first


def test_the_server_swaps_to_a_new_version_without_a_restart(
    live: tuple[TestClient, str], settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    client, first = live
    assert client.get("/health").json()["index_version"] == first
    (settings.corpus_dir / "ml-engineer-career-qa.speakers.toml").unlink()
    second = build_index(settings, fake_embedder).index_dir.name
    wait_for(lambda: client.get("/health").json()["index_version"] == second)
    names = {s["name"] for s in client.get("/speakers").json()}
    assert names == {"Chirag", "Shubhankar"}  # the new version's speakers
    assert client.post("/ask", json={"question": "hiring"}).status_code == 200


def test_a_new_version_that_fails_verification_is_refused_and_the_old_one_serves(
    live: tuple[TestClient, str], settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    client, first = live
    damaged = build_index(settings, fake_embedder).index_dir
    (damaged / "faiss.index").write_bytes(b"not an index")
    time.sleep(0.5)  # ten checks of the pointer
    assert client.get("/health").json()["index_version"] == first
    answer = client.post("/ask", json={"question": "core values interviews"})
    assert answer.status_code == 200 and answer.json()["answers"]


DAMAGE = {
    "truncated faiss.index": lambda d: (d / "faiss.index").write_bytes(
        (d / "faiss.index").read_bytes()[:64]
    ),
    "empty faiss.index": lambda d: (d / "faiss.index").write_bytes(b""),
    "random faiss.index": lambda d: (d / "faiss.index").write_bytes(bytes(range(256)) * 8),
    "passages one line short": lambda d: (d / "passages.jsonl").write_text(
        "".join((d / "passages.jsonl").read_text().splitlines(keepends=True)[:-1])
    ),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_serve_refuses_a_damaged_index_with_one_line_and_exit_2(
    settings: Settings,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    build_index(settings, fake_embedder)
    DAMAGE[case](served_version(settings.index_dir))
    monkeypatch.setattr(cli, "load_embedder", lambda settings: fake_embedder)
    started = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: started.append(a))
    assert cli.main(["serve", *dirs(settings)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("careerbot: error: ") and "does not match its checksum" in err[-1]
    assert started == []


@pytest.mark.parametrize(
    "model, message",
    [("another-model", "built with model 'fake-model'"), ("fake-model", "64-dimensional vectors")],
)
def test_serve_refuses_an_index_of_another_model_or_dimension(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    model: str,
    message: str,
) -> None:
    build_index(settings, FakeEmbedder())
    other = FakeEmbedder(model_id=model, dimension=32)
    monkeypatch.setattr(cli, "load_embedder", lambda settings: other)
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("served a bad index"))
    assert cli.main(["serve", *dirs(settings)]) == 2
    assert message in capsys.readouterr().err


def test_serve_without_index_or_corpus_says_so(
    tmp_path: Path,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cli, "load_embedder", lambda settings: fake_embedder)
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("served without an index"))
    args = ["serve", "--corpus-dir", str(tmp_path / "none"), "--index-dir", str(tmp_path / "ix")]
    assert cli.main(args) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"careerbot: error: corpus directory {tmp_path / 'none'} does not exist"
    )
