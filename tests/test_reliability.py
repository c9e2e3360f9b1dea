"""Hot index swap and start-up refusals."""

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from careerbot import CareerbotError, api, cli
from careerbot.api import create_app
from careerbot.config import Settings
from careerbot.index import build_index
from tests.conftest import FakeEmbedder, served_version
from tests.test_cli import dirs
from tests.test_index import HOSTILE_WORD_MODELS, reseal


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


@pytest.mark.parametrize("reload_seconds", [60.0, 0.0])
def test_health_says_when_current_was_read_from_the_start_when_watching(
    settings: Settings, fake_embedder: FakeEmbedder, reload_seconds: float
) -> None:
    build_index(settings, fake_embedder)
    watching = settings.model_copy(update={"reload_seconds": reload_seconds})
    with TestClient(create_app(watching, fake_embedder)) as client:
        checked = client.get("/health").json()["pointer_checked_seconds_ago"]
    if reload_seconds:  # read as the app loaded, a minute before the watcher's first look
        assert checked is not None and 0 <= checked < 5
    else:  # nothing watches it
        assert checked is None


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
    damaged = build_aside(settings, fake_embedder)
    (damaged / "faiss.index").write_bytes(b"not an index")
    move_in(settings, damaged)
    time.sleep(0.5)  # ten checks of the pointer
    assert client.get("/health").json()["index_version"] == first
    answer = client.post("/ask", json={"question": "core values interviews"})
    assert answer.status_code == 200 and answer.json()["answers"]


def break_pointer(data: bytes) -> Callable[[Settings, FakeEmbedder], None]:
    return lambda settings, embedder: (settings.index_dir / "CURRENT").write_bytes(data)


def build_aside(settings: Settings, embedder: FakeEmbedder) -> Path:
    """A new version built in an index of its own, where the watcher does not look."""
    aside = settings.model_copy(update={"index_dir": settings.index_dir.parent / "aside"})
    return build_index(aside, embedder).index_dir


def point(settings: Settings, name: str) -> None:
    """Swap the served index's CURRENT to name a version, atomically."""
    pointer = settings.index_dir / "CURRENT.new"
    pointer.write_text(name)
    pointer.replace(settings.index_dir / "CURRENT")


def move_in(settings: Settings, version: Path) -> Path:
    """A version built aside, moved into the served index and pointed to at once: the
    watcher, looking every 50 ms, never sees it half made."""
    moved = version.rename(settings.index_dir / "versions" / version.name)
    point(settings, moved.name)
    return moved


def publish_forged(forge: Callable[[Path], Path]) -> Callable[[Settings, FakeEmbedder], None]:
    """A new version forged (`forge` edits a built version and returns it resealed) and
    moved in, as a forger would."""

    def publish(settings: Settings, embedder: FakeEmbedder) -> None:
        move_in(settings, forge(build_aside(settings, embedder)))

    return publish


def publish_sealed(**changes: object) -> Callable[[Settings, FakeEmbedder], None]:
    """A new version whose manifest is hostile yet agrees with every digest."""
    return publish_forged(lambda version: reseal(version, **changes))


def publish_edited(name: str) -> Callable[[Settings, FakeEmbedder], None]:
    """A new version with one of HOSTILE_WORD_MODELS's edits, resealed."""

    def forge(version: Path) -> Path:
        HOSTILE_WORD_MODELS[name](version)
        return reseal(version)

    return publish_forged(forge)


WATCH_BREAKERS = {
    "pointer of bytes that are not text": break_pointer(b"\xff\xfe garbage"),
    "pointer of 300 characters": break_pointer(b"2" * 300),
    "pointer to another index": break_pointer(b"/tmp"),
    "manifest with a synonym that is a number": publish_sealed(synonyms={"ml": 5}),
    "manifest with no files": publish_sealed(files=[]),
    "word model with a backend that compiles": publish_edited("a backend that compiles"),
    "word model with a word numbered -1": publish_edited("a word numbered -1"),
}


@pytest.mark.parametrize("case", WATCH_BREAKERS)
def test_the_watcher_survives_anything_and_logs_each_refusal_once(
    live: tuple[TestClient, str],
    settings: Settings,
    fake_embedder: FakeEmbedder,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    client, first = live
    caplog.set_level(logging.WARNING, logger="careerbot")
    WATCH_BREAKERS[case](settings, fake_embedder)
    wait_for(lambda: client.get("/health").json()["refused_reason"] is not None)
    time.sleep(0.3)  # six more checks of the pointer
    health = client.get("/health").json()
    assert (health["status"], health["index_version"]) == ("degraded", first)
    assert health["pointer_checked_seconds_ago"] < 1
    refusals = [r for r in caplog.records if r.getMessage().startswith("refused index version")]
    assert len(refusals) == 1 and health["refused_reason"] in refusals[0].getMessage()
    assert client.post("/ask", json={"question": "hiring"}).status_code == 200
    third = build_index(settings, fake_embedder).index_dir.name
    wait_for(lambda: client.get("/health").json()["index_version"] == third)
    assert client.get("/health").json()["status"] == "ok"


def test_a_refused_version_is_tried_again_once_its_folder_changes(
    live: tuple[TestClient, str], settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    client, _ = live
    second = build_aside(settings, fake_embedder)
    point(settings, second.name)  # CURRENT names a folder still being copied in
    wait_for(lambda: client.get("/health").json()["refused_version"] == second.name)
    move_in(settings, second)
    wait_for(lambda: client.get("/health").json()["index_version"] == second.name)
    assert client.get("/health").json()["status"] == "ok"


@pytest.mark.parametrize("gone", ["CURRENT", "the served version's folder"])
def test_health_says_degraded_when_a_restart_could_not_serve_what_is_served(
    live: tuple[TestClient, str], settings: Settings, gone: str
) -> None:
    client, first = live
    if gone == "CURRENT":
        (settings.index_dir / "CURRENT").unlink()
    else:
        served_version(settings.index_dir).rename(settings.index_dir / "moved-away")
    wait_for(lambda: client.get("/health").json()["status"] == "degraded")
    health = client.get("/health").json()
    assert health["index_version"] == first
    assert ("missing" if gone == "CURRENT" else "folder is gone") in health["refused_reason"]
    assert client.post("/ask", json={"question": "hiring"}).status_code == 200


def test_health_says_degraded_when_the_watcher_is_stuck_on_a_version(
    live: tuple[TestClient, str],
    settings: Settings,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, _ = live
    loading, release = threading.Event(), threading.Event()

    def stuck(*args: object) -> None:  # as a read of a file that never ends would be
        loading.set()
        release.wait(10)
        raise CareerbotError("released")

    monkeypatch.setattr("careerbot.reload.load_version", stuck)
    build_index(settings, fake_embedder)
    assert loading.wait(10)
    watch = client.app.state.watch  # type: ignore[attr-defined]
    watch.checked_at -= 600  # as if stuck for ten minutes
    health = client.get("/health").json()
    release.set()
    assert health["status"] == "degraded"
    assert "new versions are not being followed" in health["warnings"][-1]


def test_the_watcher_survives_an_error_nobody_foresaw(
    live: tuple[TestClient, str],
    settings: Settings,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, _ = live

    def explode(*args: object) -> None:
        raise MemoryError("simulated")

    monkeypatch.setattr("careerbot.reload.load_version", explode)
    second = build_index(settings, fake_embedder).index_dir.name
    wait_for(lambda: client.get("/health").json()["refused_version"] == second)
    assert "MemoryError('simulated')" in client.get("/health").json()["refused_reason"]
    monkeypatch.undo()
    third = build_index(settings, fake_embedder).index_dir.name
    wait_for(lambda: client.get("/health").json()["index_version"] == third)


def serve(
    settings: Settings, embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, list[Any]]:
    """Run `careerbot serve` up to the point of serving: its exit code and the app it
    would have served, if any."""
    monkeypatch.setattr(cli, "load_embedder", lambda settings: embedder)
    apps: list[Any] = []
    monkeypatch.setattr("careerbot.server.run", lambda app, settings: apps.append(app))
    return cli.main(["serve", *dirs(settings)]), apps


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
def test_serve_refuses_a_damaged_index_it_cannot_replace_with_one_line_and_exit_2(
    settings: Settings,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    build_index(settings, fake_embedder)
    DAMAGE[case](served_version(settings.index_dir))
    shutil.rmtree(settings.corpus_dir)  # nothing to rebuild from
    code, started = serve(settings, fake_embedder, monkeypatch)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "does not match its checksum" in err[0]
    assert err[-1].startswith("careerbot: error: ") and "does not exist" in err[-1]
    assert started == []


@pytest.mark.parametrize("case", DAMAGE)
def test_serve_rebuilds_a_damaged_index_when_no_version_verifies(
    settings: Settings,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    damaged = build_index(settings, fake_embedder).index_dir
    DAMAGE[case](damaged)
    code, started = serve(settings, fake_embedder, monkeypatch)
    assert code == 0
    assert "does not match its checksum" in capsys.readouterr().err
    assert len(started) == 1 and served_version(settings.index_dir) != damaged


def test_the_refused_version_is_the_one_current_named_when_the_app_loaded(
    settings: Settings, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = build_index(settings, fake_embedder).index_dir
    damaged = build_index(settings, fake_embedder).index_dir
    (damaged / "faiss.index").write_bytes(b"damaged")
    loading = api.load_newest

    def then_a_build_publishes(index_dir: Path, embedder: Any) -> Any:
        newest = loading(index_dir, embedder)
        build_index(settings, fake_embedder)  # CURRENT moves on before the app looks
        return newest

    monkeypatch.setattr(api, "load_newest", then_a_build_publishes)
    never = settings.model_copy(update={"reload_seconds": 0})
    with TestClient(create_app(never, fake_embedder)) as client:
        health = client.get("/health").json()
    assert (health["index_version"], health["refused_version"]) == (good.name, damaged.name)


def test_serve_falls_back_to_the_newest_version_that_verifies(
    settings: Settings,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = build_index(settings, fake_embedder).index_dir
    damaged = build_index(settings, fake_embedder).index_dir
    (damaged / "faiss.index").write_bytes(b"damaged")
    code, apps = serve(settings, fake_embedder, monkeypatch)
    assert code == 0
    assert f"serving {good.name}, the newest version that verifies" in capsys.readouterr().err
    with TestClient(apps[0]) as client:
        health = client.get("/health").json()
    assert health["index_version"] == good.name
    assert (health["status"], health["refused_version"]) == ("degraded", damaged.name)
    assert "faiss.index does not match its checksum" in health["refused_reason"]


def test_a_failed_rebuild_at_start_keeps_serving_the_index_on_disk(
    settings: Settings,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = build_index(settings, fake_embedder).index_dir
    (settings.corpus_dir / "broken.txt").write_text("Ada: an answer before any question\n")
    code, apps = serve(settings, fake_embedder, monkeypatch)
    assert code == 0
    err = capsys.readouterr().err
    assert "careerbot: warning: the rebuild failed (corpus/broken.txt:1: " in err
    assert f"still serving index version {good.name}" in err
    with TestClient(apps[0]) as client:
        health = client.get("/health").json()
        assert client.post("/ask", json={"question": "hiring"}).status_code == 200
    assert health["index_version"] == good.name and health["status"] == "degraded"
    assert "the rebuild failed" in health["warnings"][0]


@pytest.mark.parametrize(
    "model, message",
    [("another-model", "built with model 'fake-model'"), ("fake-model", "64-dimensional vectors")],
)
def test_serve_rebuilds_an_index_of_another_model_or_dimension(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    model: str,
    message: str,
) -> None:
    old = build_index(settings, FakeEmbedder()).index_dir
    other = FakeEmbedder(model_id=model, dimension=32)
    code, apps = serve(settings, other, monkeypatch)
    assert code == 0
    assert f"careerbot: warning: {old}" in capsys.readouterr().err
    with TestClient(apps[0]) as client:
        health = client.get("/health").json()
    assert health["model"] == model and health["dimension"] == 32


def test_serve_without_index_or_corpus_says_so(
    tmp_path: Path,
    fake_embedder: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cli, "load_embedder", lambda settings: fake_embedder)
    monkeypatch.setattr("careerbot.server.run", lambda *a: pytest.fail("served without"))
    args = ["serve", "--corpus-dir", str(tmp_path / "none"), "--index-dir", str(tmp_path / "ix")]
    assert cli.main(args) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"careerbot: error: corpus directory {tmp_path / 'none'} does not exist"
    )


def test_a_record_damaged_under_a_running_server_is_503_and_logged_once(
    live: tuple[TestClient, str], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = live
    caplog.set_level(logging.ERROR, logger="careerbot")
    answers = served_version(settings.index_dir) / "answers.jsonl"
    size = answers.stat().st_size
    with answers.open("r+b") as file:  # in place, as the server maps it
        file.write(b"[" + b" " * (size - 3) + b"]\n")
    for _ in range(2):
        response = client.post("/ask", json={"question": "core values interviews"})
        assert response.status_code == 503, response.text
        assert response.json()["detail"] == "the index being served is damaged; try again later"
        assert response.headers["Retry-After"] == "30"
    damaged = [r for r in caplog.records if "answers.jsonl: line " in r.getMessage()]
    assert len(damaged) == 1


def test_an_app_given_an_index_older_than_current_serves_current_from_the_start(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    """A worker forked after CURRENT moved holds the version loaded before the fork."""
    build_index(settings, fake_embedder)
    old = cli.load_index(settings.index_dir, fake_embedder)
    new = build_index(settings, fake_embedder).index_dir.name
    never = settings.model_copy(update={"reload_seconds": 0})  # no watcher: only the start
    with TestClient(create_app(never, fake_embedder, index=old)) as client:
        health = client.get("/health").json()
    assert (health["index_version"], health["refused_version"]) == (new, None)
